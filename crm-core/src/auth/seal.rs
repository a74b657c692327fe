//! Sealing secrets that must wait in the store: a mailed token sits in the outbox until
//! the mail worker sends it, and the database must never hold it readable. AES-256-GCM
//! with a random 96-bit nonce per message; the key lives only in the process.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};

const NONCE: usize = 12;

/// Encrypts and decrypts short secrets with one 256-bit key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer with this key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// A sealer with a random key: what it seals opens only in this process.
    pub fn random() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| Error::internal("reading the OS random source", e))?;
        Ok(Self::new(&key))
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)`.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::internal("reading the OS random source", e))?;
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| Error::internal_msg("sealing a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The secret `seal` made, or an error when it was sealed under another key or altered.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Error::internal_msg("a sealed secret is not base64"))?;
        if bytes.len() < NONCE {
            return Err(Error::internal_msg("a sealed secret is too short"));
        }
        let (nonce, ct) = bytes.split_at(NONCE);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| {
            Error::internal_msg("a sealed secret does not open with this key (another key, or altered)")
        })?;
        String::from_utf8(plain).map_err(|e| Error::internal("a sealed secret is not UTF-8", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_key_and_unaltered() {
        let a = Sealer::new(&[7; 32]);
        let sealed = a.seal("the token").unwrap_or_default();
        assert!(!sealed.contains("the token"));
        assert_eq!(a.open(&sealed).ok().as_deref(), Some("the token"));
        assert_ne!(a.seal("the token").unwrap_or_default(), sealed, "fresh nonce each time");
        assert!(Sealer::new(&[8; 32]).open(&sealed).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap_or_default();
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        assert!(a.open(&URL_SAFE_NO_PAD.encode(bytes)).is_err());
    }
}
