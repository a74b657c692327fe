//! Files (avatars, attachments) behind a [`BlobStore`]: [`ObjectBlobStore`] puts them
//! in any `object_store` backend, a local directory by default or an S3 bucket; [`avatar`] turns an
//! uploaded picture into a clean 256×256 PNG.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};

/// Where files live.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key` (replacing what was there).
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    /// The bytes under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Removes `key` (nothing happens when it is absent).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Every key held, in no particular order: what a copy of the whole CRM carries
    /// ([`crate::copy::copy_files`]). The default says the store cannot list its files.
    async fn keys(&self) -> Result<Vec<String>> {
        Err(Error::internal_msg("this file store cannot list its files"))
    }
}

/// A [`BlobStore`] on an `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
}

impl ObjectBlobStore {
    /// Files under a local directory (made when missing).
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        std::fs::create_dir_all(dir.as_ref()).map_err(|e| Error::internal("making the file directory", e))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| Error::internal("opening the file directory", e))?;
        Ok(Self { inner: Arc::new(fs) })
    }

    /// Files in memory (lost at exit): the default of an embedded engine.
    pub fn memory() -> Self {
        Self { inner: Arc::new(InMemory::new()) }
    }

    /// Any `object_store` backend (S3, GCS, Azure, …).
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// Files in an S3 bucket, or any S3-compatible storage: `s3://bucket` or
    /// `s3://bucket/prefix`. The rest comes from the usual variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and for other providers `AWS_ENDPOINT`
    /// (`https://minio.internal:9000`), `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`. TLS is rustls with ring and the system's
    /// certificates.
    #[cfg(feature = "s3")]
    pub fn s3(url: &str) -> Result<Self> {
        Self::s3_with(url, std::iter::empty::<(&str, &str)>())
    }

    /// [`ObjectBlobStore::s3`] with settings given here rather than in the environment
    /// (`("endpoint", "http://127.0.0.1:9000")`, `("allow_http", "true")`, `("region", …)`,
    /// `("access_key_id", …)`: object_store's `AmazonS3ConfigKey` names); they win over
    /// the environment's.
    #[cfg(feature = "s3")]
    pub fn s3_with<K: AsRef<str>, V: Into<String>>(
        url: &str,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        use object_store::prefix::PrefixStore;
        let bad = |why: String| Error::invalid("filesUrl", "invalid_value", why);
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("'{url}' is not a URL: {e}")))?;
        if parsed.scheme() != "s3" {
            return Err(bad(format!("'{url}' is not an s3:// URL")));
        }
        let bucket =
            parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad(format!("'{url}' names no bucket")))?;
        // reqwest's rustls takes the process's crypto provider: ring, as everywhere else.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in settings {
            let key: AmazonS3ConfigKey =
                k.as_ref().parse().map_err(|e| bad(format!("'{}' is no S3 setting: {e}", k.as_ref())))?;
            builder = builder.with_config(key, v);
        }
        let s3 = builder.build().map_err(|e| bad(format!("the S3 storage cannot be set up: {e}")))?;
        let prefix = parsed.path().trim_matches('/');
        let inner: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        Ok(Self { inner })
    }
}

fn path(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| Error::internal("a file key", e))
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&path(key)?, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| Error::internal("storing a file", e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&path(key)?).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| Error::internal("reading a file", e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::internal("reading a file", e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::internal("removing a file", e)),
        }
    }

    async fn keys(&self) -> Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let listed: Vec<object_store::ObjectMeta> =
            self.inner.list(None).try_collect().await.map_err(|e| Error::internal("listing the files", e))?;
        Ok(listed.into_iter().map(|m| m.location.to_string()).collect())
    }
}

/// Avatar pictures.
pub mod avatar {
    use std::io::Cursor;

    use image::imageops::FilterType;
    use image::{ImageFormat, ImageReader, Limits};

    use crate::error::{Error, Result};

    /// The largest upload accepted.
    pub const MAX_BYTES: usize = 5 * 1024 * 1024;
    /// The side of the stored square.
    pub const SIDE: u32 = 256;
    /// The largest picture decoded (pixels per side): larger is a decompression bomb or
    /// simply too big for an avatar.
    pub const MAX_SIDE: u32 = 8_000;
    /// The most memory decoding may take.
    pub const MAX_ALLOC: u64 = 128 * 1024 * 1024;

    fn bad(code: &'static str, message: impl Into<String>) -> Error {
        Error::invalid("avatar", code, message)
    }

    /// Checks an upload by its content (PNG, JPEG or WebP, at most 5 MB and
    /// [`MAX_SIDE`] pixels a side), decodes it, crops it to a centred square and
    /// re-encodes it as a 256×256 PNG: whatever metadata it carried (EXIF, GPS, …) is
    /// gone. CPU work: call it off the async executor.
    pub fn normalize(upload: &[u8]) -> Result<Vec<u8>> {
        if upload.is_empty() {
            return Err(bad("required", "the picture is empty"));
        }
        if upload.len() > MAX_BYTES {
            return Err(bad("too_large", "a picture has at most 5 MB"));
        }
        let format =
            image::guess_format(upload).map_err(|_| bad("invalid_format", "not a PNG, JPEG or WebP picture"))?;
        if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) {
            return Err(bad("invalid_format", "only PNG, JPEG and WebP pictures are accepted"));
        }
        let mut reader = ImageReader::with_format(Cursor::new(upload), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_ALLOC);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| match e {
            image::ImageError::Limits(_) => bad("too_large", format!("a picture has at most {MAX_SIDE} pixels a side")),
            other => bad("invalid_format", format!("the picture cannot be read: {other}")),
        })?;
        let (w, h) = (img.width(), img.height());
        let side = w.min(h);
        let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
        let small = square.resize_exact(SIDE, SIDE, FilterType::Lanczos3).to_rgba8();
        let mut out = Cursor::new(Vec::new());
        small.write_to(&mut out, ImageFormat::Png).map_err(|e| Error::internal("encoding an avatar", e))?;
        Ok(out.into_inner())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use image::{ImageBuffer, Rgb};

        fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
            let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, format).unwrap_or_else(|e| panic!("{e}"));
            out.into_inner()
        }

        fn crc32(data: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFFu32;
            for b in data {
                crc ^= u32::from(*b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
                }
            }
            !crc
        }

        #[test]
        fn pictures_become_256_pngs() {
            for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
                let out = normalize(&encoded(640, 480, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
                let back =
                    image::load_from_memory_with_format(&out, ImageFormat::Png).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!((back.width(), back.height()), (256, 256), "{format:?}");
            }
        }

        #[test]
        fn refuses_what_is_not_a_small_picture() {
            let code = |r: Result<Vec<u8>>| r.err().map(|e| e.field_errors()[0].code).unwrap_or("accepted");
            assert_eq!(code(normalize(b"")), "required");
            assert_eq!(code(normalize(b"GIF89a not really")), "invalid_format");
            assert_eq!(code(normalize(b"<svg xmlns='http://www.w3.org/2000/svg'/>")), "invalid_format");
            assert_eq!(code(normalize(&vec![0u8; MAX_BYTES + 1])), "too_large");
            // A PNG header claiming 100,000 × 100,000 pixels: refused before decoding.
            let mut bomb = encoded(1, 1, ImageFormat::Png);
            bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
            bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
            let crc = crc32(&bomb[12..29]);
            bomb[29..33].copy_from_slice(&crc.to_be_bytes());
            assert_eq!(code(normalize(&bomb)), "too_large");
            let mut truncated = encoded(64, 64, ImageFormat::Png);
            truncated.truncate(60);
            assert_eq!(code(normalize(&truncated)), "invalid_format");
        }
    }
}
