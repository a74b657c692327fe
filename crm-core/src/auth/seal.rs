//! Sealing secrets that must wait in the store: a mailed token sits in the outbox until
//! the mail worker sends it, and the database must never hold it readable. AES-256-GCM
//! with a random 96-bit nonce per message; the keys live only in the processes, which
//! must share them (several replicas deliver one outbox).
//!
//! Each key has an id, written before the sealed text (`<kid>.<base64url>`), so keys can
//! rotate: a sealer seals with its current key and opens with any key it holds.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};

const NONCE: usize = 12;

/// Encrypts and decrypts short secrets with 256-bit keys: one that seals, any number
/// that still open.
#[derive(Clone)]
pub struct Sealer {
    /// The sealing key first.
    keys: Vec<(String, Aes256Gcm)>,
    /// Per key id, the key links are signed with (derived from the sealing key).
    macs: Vec<(String, [u8; 32])>,
}

/// The key that signs links, derived from a sealing key (never the key itself).
fn mac_key(key: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new().chain_update(b"crm-rs link signing\0").chain_update(key).finalize().into()
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Sealer").field("kids", &kids).finish_non_exhaustive()
    }
}

/// The id of a key when none is given: 8 hex digits of a hash of it, so that the same
/// key has the same id on every replica, and another key another id.
pub fn key_id(key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"crm-rs key id\0").chain_update(key).finalize();
    hex::encode(&digest[..4])
}

fn check_kid(kid: &str) -> Result<()> {
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::invalid("kid", "invalid_value", "a key id has 1 to 64 letters, digits, - or _"));
    }
    Ok(())
}

impl Sealer {
    /// A sealer with this key (its id: [`key_id`]).
    pub fn new(key: &[u8; 32]) -> Self {
        Self { keys: vec![(key_id(key), Aes256Gcm::new(key.into()))], macs: vec![(key_id(key), mac_key(key))] }
    }

    /// A sealer with this key under this id.
    pub fn with_id(kid: &str, key: &[u8; 32]) -> Result<Self> {
        check_kid(kid)?;
        Ok(Self {
            keys: vec![(kid.to_string(), Aes256Gcm::new(key.into()))],
            macs: vec![(kid.to_string(), mac_key(key))],
        })
    }

    /// Seals with a new key from now on; what the older keys sealed still opens.
    pub fn rotate(&mut self, kid: &str, key: &[u8; 32]) -> Result<()> {
        check_kid(kid)?;
        self.keys.retain(|(k, _)| k != kid);
        self.keys.insert(0, (kid.to_string(), Aes256Gcm::new(key.into())));
        self.macs.retain(|(k, _)| k != kid);
        self.macs.insert(0, (kid.to_string(), mac_key(key)));
        Ok(())
    }

    /// Keeps an older key for opening only.
    pub fn also_open(&mut self, kid: &str, key: &[u8; 32]) -> Result<()> {
        check_kid(kid)?;
        if !self.keys.iter().any(|(k, _)| k == kid) {
            self.keys.push((kid.to_string(), Aes256Gcm::new(key.into())));
            self.macs.push((kid.to_string(), mac_key(key)));
        }
        Ok(())
    }

    /// The id of the key that seals.
    pub fn current_kid(&self) -> &str {
        self.keys.first().map_or("", |(k, _)| k.as_str())
    }

    /// A sealer with a random key: what it seals opens only in this process.
    pub fn random() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| Error::internal("reading the OS random source", e))?;
        Ok(Self::new(&key))
    }

    /// A signature of `data` for `purpose` (`<kid>.<128-bit HMAC-SHA256, base64url>`):
    /// what a link in an email carries so that nobody can make another one.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> String {
        let Some((kid, key)) = self.macs.first() else { return String::new() };
        format!("{kid}.{}", URL_SAFE_NO_PAD.encode(tag(key, purpose, data)))
    }

    /// Is `signature` what [`Sealer::sign`] made of `data` for `purpose`, under any key
    /// this sealer holds? Compared in constant time.
    pub fn verify(&self, purpose: &str, data: &[u8], signature: &str) -> bool {
        let Some((kid, sig)) = signature.split_once('.') else { return false };
        let Some((_, key)) = self.macs.iter().find(|(k, _)| k == kid) else { return false };
        let Ok(given) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        let want = tag(key, purpose, data);
        given.len() == want.len() && given.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// `<kid>.base64url(nonce ‖ ciphertext ‖ tag)`.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let (kid, cipher) = self.keys.first().ok_or_else(|| Error::internal_msg("a sealer without keys"))?;
        let mut nonce = [0u8; NONCE];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::internal("reading the OS random source", e))?;
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| Error::internal_msg("sealing a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(format!("{kid}.{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The secret `seal` made, or an error when it was sealed under a key this sealer
    /// does not hold, or altered. Text sealed before keys had ids opens with any key.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let (kid, body) = match sealed.split_once('.') {
            Some((kid, body)) => (Some(kid), body),
            None => (None, sealed),
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| Error::internal_msg("a sealed secret is not base64"))?;
        if bytes.len() < NONCE {
            return Err(Error::internal_msg("a sealed secret is too short"));
        }
        let (nonce, ct) = bytes.split_at(NONCE);
        let ciphers: Vec<&Aes256Gcm> = match kid {
            Some(kid) => match self.keys.iter().find(|(k, _)| k == kid) {
                Some((_, c)) => vec![c],
                None => {
                    return Err(Error::internal_msg(format!(
                        "a secret sealed under key {kid:?}, which this server does not hold (set the same seal \
                         key on every replica; keep a rotated one for opening)"
                    )))
                }
            },
            None => self.keys.iter().map(|(_, c)| c).collect(),
        };
        let plain = ciphers
            .into_iter()
            .find_map(|c| c.decrypt(Nonce::from_slice(nonce), ct).ok())
            .ok_or_else(|| Error::internal_msg("a sealed secret does not open with its key (altered)"))?;
        String::from_utf8(plain).map_err(|e| Error::internal("a sealed secret is not UTF-8", e))
    }
}

/// HMAC-SHA256 of `purpose ‖ 0 ‖ data`, cut to 128 bits.
fn tag(key: &[u8; 32], purpose: &str, data: &[u8]) -> [u8; 16] {
    use hmac::{Hmac, Mac};
    let mut out = [0u8; 16];
    if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_hold_only_for_their_data_purpose_and_key() {
        let s = Sealer::new(&[7u8; 32]);
        let sig = s.sign("campaign.open", b"abc");
        assert!(s.verify("campaign.open", b"abc", &sig));
        assert!(!s.verify("campaign.click", b"abc", &sig), "another purpose");
        assert!(!s.verify("campaign.open", b"abd", &sig), "other data");
        assert!(!Sealer::new(&[8u8; 32]).verify("campaign.open", b"abc", &sig), "another key");
        let mut rotated = Sealer::new(&[8u8; 32]);
        rotated.also_open(&key_id(&[7u8; 32]), &[7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(rotated.verify("campaign.open", b"abc", &sig), "a rotated-out key still verifies");
    }

    use super::*;

    #[test]
    fn seals_open_only_with_their_key_and_unaltered() {
        let a = Sealer::new(&[7; 32]);
        let sealed = a.seal("the token").unwrap_or_default();
        assert!(!sealed.contains("the token"));
        assert_eq!(a.open(&sealed).ok().as_deref(), Some("the token"));
        assert_ne!(a.seal("the token").unwrap_or_default(), sealed, "fresh nonce each time");
        assert!(Sealer::new(&[8; 32]).open(&sealed).is_err());
        let (kid, body) = sealed.split_once('.').unwrap_or_default();
        assert_eq!(kid, a.current_kid());
        let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap_or_default();
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        assert!(a.open(&format!("{kid}.{}", URL_SAFE_NO_PAD.encode(bytes))).is_err());
        // Sealed before keys had ids: opens with the key that sealed it.
        assert_eq!(a.open(body).ok().as_deref(), Some("the token"));
    }

    #[test]
    fn a_rotated_key_still_opens_what_it_sealed() {
        let mut s = Sealer::with_id("2026-01", &[1; 32]).unwrap_or_else(|e| panic!("{e}"));
        let old = s.seal("old").unwrap_or_default();
        assert!(old.starts_with("2026-01."));
        s.rotate("2026-07", &[2; 32]).unwrap_or_else(|e| panic!("{e}"));
        let new = s.seal("new").unwrap_or_default();
        assert!(new.starts_with("2026-07."));
        assert_eq!((s.open(&old).ok(), s.open(&new).ok()), (Some("old".into()), Some("new".into())));
        let only_new = Sealer::with_id("2026-07", &[2; 32]).unwrap_or_else(|e| panic!("{e}"));
        let e = only_new.open(&old).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("2026-01"), "{e}");
        assert!(Sealer::with_id("a.b", &[1; 32]).is_err(), "a key id cannot hold the separator");
        assert_eq!(key_id(&[1; 32]), Sealer::new(&[1; 32]).current_kid());
        assert_ne!(key_id(&[1; 32]), key_id(&[2; 32]));
    }
}
