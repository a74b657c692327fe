//! Encryption at rest of sensitive billing fields (bank details in payment
//! instructions, tax ids of buyers and sellers): AES-256-GCM with a fresh 96-bit nonce
//! per value, the table, column and record id as associated data (a value copied to
//! another row or column does not open), and the key's id in the stored text so that
//! keys rotate: the current key seals, earlier ones still open until `rotate` has
//! sealed everything again.
//!
//! Stored form: `enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. A value
//! without the prefix (written before encryption was on) opens as itself.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};

const PREFIX: &str = "enc:v1:";

/// One key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The keys of the billing fields: the current one seals, all of them open.
#[derive(Clone)]
pub struct FieldKeys {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids only: never the keys.
        f.debug_struct("FieldKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

/// The id of a key: the first 8 hex digits of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

fn key(bytes: &[u8; 32]) -> Key {
    Key { id: key_id(bytes), cipher: Aes256Gcm::new(bytes.into()) }
}

/// A key from 64 hex digits; errors name `field`.
pub fn parse_key(hex_key: &str, field: &str) -> Result<[u8; 32]> {
    let raw = hex::decode(hex_key.trim())
        .map_err(|_| Error::invalid(field, "invalid_format", "a billing key is 64 hex digits (32 bytes)"))?;
    raw.try_into().map_err(|_| Error::invalid(field, "invalid_format", "a billing key is 64 hex digits (32 bytes)"))
}

/// Where a value lives: bound into its ciphertext.
pub fn aad(table: &str, column: &str, id: Uuid) -> String {
    format!("{table}.{column}:{id}")
}

impl FieldKeys {
    /// Keys sealing with `current`.
    pub fn new(current: &[u8; 32]) -> Self {
        Self { current: key(current), previous: vec![] }
    }

    /// The same also opening what `old` sealed.
    pub fn with_previous(mut self, old: &[u8; 32]) -> Self {
        let k = key(old);
        if k.id != self.current.id && !self.previous.iter().any(|p| p.id == k.id) {
            self.previous.push(k);
        }
        self
    }

    /// The current key's id.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals a value for the place `aad` names.
    pub fn seal(&self, aad: &str, plain: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::internal("reading the OS random source", e))?;
        let ct = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| Error::internal_msg("sealing a billing field"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}:{}", self.current.id, URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a stored value (a value never sealed opens as itself). A value under an
    /// unknown key, or moved from another place, is an error naming neither.
    pub fn open(&self, aad: &str, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let (kid, data) =
            rest.split_once(':').ok_or_else(|| Error::internal_msg("a malformed sealed billing field"))?;
        let key =
            std::iter::once(&self.current).chain(self.previous.iter()).find(|k| k.id == kid).ok_or_else(|| {
                Error::internal_msg(format!("a billing field sealed under key {kid}, which is not configured"))
            })?;
        let raw = URL_SAFE_NO_PAD.decode(data).map_err(|_| Error::internal_msg("a malformed sealed billing field"))?;
        if raw.len() < 12 {
            return Err(Error::internal_msg("a malformed sealed billing field"));
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| Error::internal_msg(format!("a billing field does not open for {aad}")))?;
        String::from_utf8(plain).map_err(|_| Error::internal_msg("a sealed billing field is not text"))
    }

    /// Is the stored value sealed under the current key (or empty)?
    pub fn is_current(&self, stored: &str) -> bool {
        match stored.strip_prefix(PREFIX) {
            Some(rest) => rest.split_once(':').is_some_and(|(kid, _)| kid == self.current.id),
            None => false,
        }
    }

    /// Seals an optional value.
    pub fn seal_opt(&self, aad: &str, v: &Option<String>) -> Result<Option<String>> {
        v.as_deref().map(|p| self.seal(aad, p)).transpose()
    }

    /// Opens an optional value.
    pub fn open_opt(&self, aad: &str, v: &Option<String>) -> Result<Option<String>> {
        v.as_deref().map(|s| self.open(aad, s)).transpose()
    }
}

/// A key derived from a secret (the engine's default when none is configured: the
/// seal key's signature for this purpose, so it is stable as long as that key is).
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(b"crm-rs billing fields v1:").chain_update(secret).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_binds_and_rotates() -> Result<()> {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let keys = FieldKeys::new(&a);
        let id = Uuid::nil();
        let here = aad("invoices", "payment_instructions", id);
        let sealed = keys.seal(&here, "IBAN FR76 3000 6000 0112 3456 7890 189")?;
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("3000"), "{sealed}");
        assert_eq!(keys.open(&here, &sealed)?, "IBAN FR76 3000 6000 0112 3456 7890 189");
        // Twice sealed, twice different (a fresh nonce each time).
        assert_ne!(keys.seal(&here, "x")?, keys.seal(&here, "x")?);
        // Moved to another row or column: does not open.
        assert!(keys.open(&aad("invoices", "payment_instructions", Uuid::max()), &sealed).is_err());
        assert!(keys.open(&aad("invoices", "notes", id), &sealed).is_err());
        // Rotation: the new key seals, the old one still opens, until it is dropped.
        let rotated = FieldKeys::new(&b).with_previous(&a);
        assert_eq!(rotated.open(&here, &sealed)?, "IBAN FR76 3000 6000 0112 3456 7890 189");
        assert!(!rotated.is_current(&sealed) && keys.is_current(&sealed));
        assert!(FieldKeys::new(&b).open(&here, &sealed).is_err());
        // A value never sealed opens as itself.
        assert_eq!(keys.open(&here, "plain")?, "plain");
        assert!(!format!("{keys:?}").contains("0101"));
        Ok(())
    }
}
