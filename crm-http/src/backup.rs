//! Moving a whole CRM: `crm-server copy` between two databases, and `crm-server backup`
//! / `restore` through one portable archive.
//!
//! The archive is a tar file (gzip-compressed when its name ends in `.gz` or `.tgz`)
//! holding:
//! - `manifest.json`: what it is ([`Manifest`]): the rows of each kind, the end of the
//!   audit chain, the number of files, the crm-rs version that wrote it;
//! - `crm.db`: the CRM as a SQLite database (a [`crm_core::copy`] of the source, so a
//!   backup of a PostgreSQL or MongoDB CRM restores anywhere, and opens with any SQLite
//!   tool);
//! - `files/<key>`: each uploaded file.
//!
//! The server's secrets are not in it (as GitLab keeps `gitlab-secrets.json` out of its
//! backups): keep them apart; the restored audit chain verifies only under its key.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use crm_core::blob::BlobStore;
use crm_core::copy::{copy_store, CopyOptions, CopyProgress, CopyReport};
use crm_core::{Error, Result, Store};
use serde::{Deserialize, Serialize};

use crate::config::rename_field;

/// What an archive says of itself (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`ARCHIVE_FORMAT`].
    pub format: String,
    /// The archive layout's version ([`ARCHIVE_VERSION`]).
    pub version: u32,
    /// The crm-rs version that wrote it.
    pub crm_version: String,
    /// When it was written.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The backend it was taken from (`sqlite`, `postgres`, `mongo`).
    pub source: String,
    /// Rows of each kind, by table name.
    pub rows: BTreeMap<String, u64>,
    /// The audit chain's last event.
    pub audit_seq: i64,
    /// Its hash.
    pub audit_hash: String,
    /// How many files.
    pub files: u64,
}

/// [`Manifest::format`].
pub const ARCHIVE_FORMAT: &str = "crm-rs backup";
/// [`Manifest::version`].
pub const ARCHIVE_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "crm.db";
const FILES: &str = "files/";

/// Opens the store `url` names, the errors naming `field` (`from`, `to`) rather than
/// `databaseUrl`. A SQLite file is created only when `create`.
pub async fn open_named(url: &str, field: &str, create: bool) -> Result<crm_storage::AnyStore> {
    let url = url.trim();
    if let Some(file) = crm_storage::sqlite_file(url) {
        if !create && !file.exists() {
            return Err(Error::invalid(field, "not_found", format!("there is no database at {}", file.display())));
        }
    }
    let url = crm_storage::with_sqlite_mode(url, if create { "rwc" } else { "rw" });
    crm_storage::open(&url).await.map_err(|e| rename_field(e, field))
}

/// A private working directory (mode 0700) that is removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(near: &Path, what: &str) -> Result<Self> {
        let dir = near.join(format!(".crm-{what}-{}", uuid::Uuid::now_v7().simple()));
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| Error::internal(format!("making {}", dir.display()), e))?;
        Ok(Self(dir))
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.0.join(DATABASE).display())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_gzip_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".gz") || name.ends_with(".tgz")
}

/// A tar entry's header: a regular file of `size` bytes, readable by its owner only.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Writes the archive of `from` (rows) and `files` to `archive`, calling `progress` while
/// the rows are copied and `file_progress` while the files are written. The archive
/// appears whole or not at all (it is written beside its place, then renamed).
pub async fn backup(
    from: &dyn Store,
    files: &dyn BlobStore,
    archive: &Path,
    progress: &(dyn Fn(CopyProgress) + Send + Sync),
    file_progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Manifest> {
    let parent = archive.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::invalid("to", "not_found", format!("there is no directory {}", parent.display())));
    }
    let work = WorkDir::new(parent, "backup")?;
    let lite = open_named(&work.database_url(), "to", true).await?;
    let copied = match copy_store(from, lite.store().as_ref(), CopyOptions::default(), progress).await {
        Ok(r) => lite.checkpoint().await.map(|()| r),
        Err(e) => Err(e),
    };
    lite.close().await;
    let report = copied?;
    let db = work.0.join(DATABASE);
    // Closing checkpoints the write-ahead log into the file: the file is the database.
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::internal_msg("the backup's database kept its write-ahead log after closing"));
    }
    let keys = {
        let mut k = files.keys().await?;
        k.sort();
        k
    };
    let manifest = Manifest {
        format: ARCHIVE_FORMAT.into(),
        version: ARCHIVE_VERSION,
        crm_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now(),
        source: from.backend().into(),
        rows: report.kinds.iter().map(|k| (k.kind.table().to_string(), k.rows)).collect(),
        audit_seq: report.audit_head.seq,
        audit_hash: report.audit_head.hash.clone(),
        files: keys.len() as u64,
    };
    let partial = work.0.join("archive.partial");
    // The archive holds the whole CRM: readable by its owner only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let out = options.open(&partial).map_err(|e| Error::internal("writing the archive", e))?;
    let out: Box<dyn std::io::Write + Send> = if is_gzip_name(archive) {
        Box::new(flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::default()))
    } else {
        Box::new(std::io::BufWriter::new(out))
    };
    let failed = |e: std::io::Error| Error::internal("writing the archive", e);
    let mut tar = tar::Builder::new(out);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal("writing the manifest", e))?;
    tar.append_data(&mut header(text.len() as u64), MANIFEST, &text[..]).map_err(failed)?;
    let mut file = std::fs::File::open(&db).map_err(failed)?;
    tar.append_file(DATABASE, &mut file).map_err(failed)?;
    let total = keys.len() as u64;
    for (i, key) in keys.iter().enumerate() {
        if let Some(bytes) = files.get(key).await? {
            tar.append_data(&mut header(bytes.len() as u64), format!("{FILES}{key}"), &bytes[..]).map_err(failed)?;
        }
        file_progress(i as u64 + 1, total);
    }
    let mut out = tar.into_inner().map_err(failed)?;
    out.flush().map_err(failed)?;
    drop(out);
    std::fs::rename(&partial, archive).map_err(|e| Error::internal(format!("writing {}", archive.display()), e))?;
    Ok(manifest)
}

/// Restores an archive into `to` (empty, or a restore that stopped, with `resume`) and
/// its files into `files`. Returns the archive's manifest and what the copy did. Nothing
/// is written unless `keys` hold the key the archive's audit chain is sealed with.
pub async fn restore(
    archive: &Path,
    to: &dyn Store,
    files: &dyn BlobStore,
    keys: &crm_core::audit::AuditKeys,
    resume: bool,
    progress: &(dyn Fn(CopyProgress) + Send + Sync),
) -> Result<(Manifest, CopyReport)> {
    let bad = |why: String| Error::invalid("archive", "invalid_value", format!("{}: {why}", archive.display()));
    let mut opened = std::fs::File::open(archive).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let mut magic = [0u8; 2];
    let gzip = opened.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(opened);
    let file = std::fs::File::open(archive).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let work = WorkDir::new(&std::env::temp_dir(), "restore")?;
    let mut manifest: Option<Manifest> = None;
    let mut has_db = false;
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| bad(format!("is not a tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("is damaged ({e})")))?;
        let name = entry.path().map_err(|e| bad(format!("names a file badly ({e})")))?.to_string_lossy().into_owned();
        if name == MANIFEST {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(|e| bad(format!("is damaged ({e})")))?;
            let m: Manifest =
                serde_json::from_slice(&text).map_err(|e| bad(format!("has an unreadable manifest ({e})")))?;
            if m.format != ARCHIVE_FORMAT || m.version != ARCHIVE_VERSION {
                return Err(bad(format!("is a '{}' archive of version {}, not a crm-rs backup", m.format, m.version)));
            }
            keys.check_holds(&crm_core::AuditHead { seq: m.audit_seq, hash: m.audit_hash.clone() })?;
            manifest = Some(m);
        } else if manifest.is_none() {
            return Err(bad(format!("starts with {name}, not manifest.json: it is not a crm-rs backup")));
        } else if name == DATABASE {
            let path = work.0.join(DATABASE);
            let mut out = std::fs::File::create(&path).map_err(|e| Error::internal("unpacking the database", e))?;
            std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("is damaged ({e})")))?;
            has_db = true;
        } else if let Some(key) = name.strip_prefix(FILES) {
            if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(bad(format!("holds a file with a bad name: {name}")));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
            entry.read_to_end(&mut bytes).map_err(|e| bad(format!("is damaged ({e})")))?;
            files.put(key, bytes.into()).await?;
        } else {
            return Err(bad(format!("holds {name}, which no crm-rs backup has")));
        }
    }
    let manifest = manifest.ok_or_else(|| bad("has no manifest.json: it is not a crm-rs backup".into()))?;
    if !has_db {
        return Err(bad("has no crm.db".into()));
    }
    let lite = open_named(&work.database_url(), "archive", false).await?;
    let copied = copy_store(lite.store().as_ref(), to, CopyOptions { resume, ..Default::default() }, progress).await;
    lite.close().await;
    let report = copied?;
    if report.audit_head.seq != manifest.audit_seq || report.audit_head.hash != manifest.audit_hash {
        return Err(bad("its database does not end where its manifest says".into()));
    }
    Ok((manifest, report))
}
