//! Opaque secret tokens (refresh, email verification, password reset, invitation):
//! 256 bits from the operating system's CSPRNG, handed out once as base64url text and
//! stored only as their SHA-256 digest.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A freshly made token: the text for its holder, the digest for the store.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken {
    /// What the holder gets (43 base64url characters). Never stored.
    pub text: String,
    /// SHA-256 of `text`, hex: what the store keeps and looks tokens up by.
    pub digest: String,
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretToken").field("digest", &self.digest).finish_non_exhaustive()
    }
}

impl SecretToken {
    /// 32 random bytes from the OS.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| Error::internal("reading the OS random source", e))?;
        let text = URL_SAFE_NO_PAD.encode(bytes);
        let digest = Self::digest_of(&text);
        Ok(Self { text, digest })
    }

    /// The digest under which a presented token is looked up.
    pub fn digest_of(text: &str) -> String {
        hex::encode(Sha256::digest(text.trim().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let a = SecretToken::generate().unwrap_or_else(|e| panic!("{e}"));
        let b = SecretToken::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.text, b.text);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.text).map(|v| v.len()).ok(), Some(32));
        assert_eq!(a.digest, SecretToken::digest_of(&a.text));
        assert_eq!(a.digest.len(), 64);
        assert!(!a.digest.contains(&a.text));
        assert!(!format!("{a:?}").contains(&a.text), "Debug never shows the token");
    }
}
