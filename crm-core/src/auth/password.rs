//! Passwords: a policy after NIST SP 800-63B (length, no composition rules, no common or
//! context-derived passwords) and argon2id hashing at OWASP's parameters or stronger,
//! run off the async executor with bounded concurrency so a login storm cannot starve
//! other requests.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Errors, Result};

/// What a new password must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// The fewest characters (default 10).
    pub min_length: usize,
    /// The most characters accepted (default 128).
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 10, max_length: 128 }
    }
}

/// A word no password may contain, whoever the user.
const ALWAYS_CONTEXT: &str = "crm";

impl PasswordPolicy {
    /// Checks a new password against the length limits, the words of its context
    /// (username, email local part — and "crm"), and a guessability estimate (zxcvbn,
    /// whose dictionaries hold the most common and breached passwords). Errors are on
    /// `field`.
    pub fn check(&self, field: &str, password: &str, context: &[&str]) -> Result<()> {
        let mut errs = Errors::new();
        let length = password.chars().count();
        if length < self.min_length {
            errs.add(field, "too_short", format!("a password has at least {} characters", self.min_length));
        } else if length > self.max_length {
            errs.add(field, "too_long", format!("a password has at most {} characters", self.max_length));
        } else if password.chars().any(char::is_control) {
            errs.add(field, "invalid_value", "a password has no control characters");
        } else {
            let lower = password.to_lowercase();
            let words: Vec<String> = context
                .iter()
                .chain(std::iter::once(&ALWAYS_CONTEXT))
                .map(|w| w.trim().to_lowercase())
                .filter(|w| w.chars().count() >= 3)
                .collect();
            if let Some(w) = words.iter().find(|w| lower.contains(w.as_str())) {
                errs.add(field, "contains_context", format!("a password may not contain '{w}'"));
            } else {
                let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
                if zxcvbn::zxcvbn(password, &inputs).score() < zxcvbn::Score::Three {
                    errs.add(field, "too_common", "this password is too common or too easy to guess");
                }
            }
        }
        errs.finish()
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// It does not match.
    Wrong,
    /// It matches; `rehash` when the stored hash is weaker than the current parameters.
    Ok {
        /// Store a new hash made with the current parameters.
        rehash: bool,
    },
}

/// Hashes and verifies passwords with argon2id on Tokio's blocking pool, at most
/// `max_concurrent` at a time.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of nothing anyone knows, verified against for unknown accounts so they
    /// take as long as known ones.
    decoy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    /// OWASP's argon2id minimum (m = 19,456 KiB, t = 2, p = 1), one hash per core at a time.
    pub fn owasp() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        // The OWASP parameters are valid, so this never falls back.
        let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
        Self::new(params, cores)
    }

    /// Given parameters and concurrency.
    pub fn new(params: Params, max_concurrent: usize) -> Self {
        Self { params, permits: Arc::new(Semaphore::new(max_concurrent.max(1))), decoy: Arc::new(OnceLock::new()) }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs `f` on the blocking pool once a permit is free.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|e| Error::internal("password hashing closed", e))?;
        tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal("password hashing failed", e))
    }

    /// A PHC-format argon2id hash with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let argon = self.argon2();
        let password = password.to_owned();
        self.blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon.hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| Error::internal_msg(format!("hashing a password: {e}")))
    }

    /// Checks a password against a stored hash (any argon2 variant and parameters).
    pub async fn verify(&self, password: &str, stored: &str) -> Result<Verified> {
        let (password, stored) = (password.to_owned(), stored.to_owned());
        let wanted = self.params.clone();
        self.blocking(move || {
            let parsed = PasswordHash::new(&stored).map_err(|e| Error::internal_msg(format!("a stored hash: {e}")))?;
            if Argon2::default().verify_password(password.as_bytes(), &parsed).is_err() {
                return Ok(Verified::Wrong);
            }
            let weaker = match Params::try_from(&parsed) {
                Ok(p) => {
                    parsed.algorithm.as_str() != "argon2id"
                        || parsed.version != Some(Version::V0x13 as u32)
                        || p.m_cost() < wanted.m_cost()
                        || p.t_cost() < wanted.t_cost()
                        || p.p_cost() < wanted.p_cost()
                }
                Err(_) => true,
            };
            Ok(Verified::Ok { rehash: weaker })
        })
        .await?
    }

    /// Spends the time of a real check and answers `Wrong`: for logins naming no account,
    /// so that neither the answer nor its timing tells whether the account exists.
    pub async fn verify_decoy(&self, password: &str) -> Result<Verified> {
        let decoy = match self.decoy.get() {
            Some(d) => d.clone(),
            None => {
                let made = self.hash(&crate::auth::SecretToken::generate()?.text).await?;
                self.decoy.get_or_init(|| made).clone()
            }
        };
        self.verify(password, &decoy).await.map(|_| Verified::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        // Small parameters keep the unit tests quick; `owasp()` is tested once below.
        PasswordHasher::new(Params::new(1024, 1, 1, None).unwrap_or_default(), 2)
    }

    fn code(r: Result<()>) -> Option<&'static str> {
        r.err().and_then(|e| e.field_errors().first().map(|f| f.code))
    }

    #[test]
    fn policy_rules() {
        let p = PasswordPolicy::default();
        let ctx = ["annlee", "ann.lee"];
        assert_eq!(code(p.check("password", "short1!", &ctx)), Some("too_short"));
        assert_eq!(code(p.check("password", &"x".repeat(129), &ctx)), Some("too_long"));
        assert_eq!(code(p.check("password", "password123", &ctx)), Some("too_common"));
        assert_eq!(code(p.check("password", "qwertyuiop", &ctx)), Some("too_common"));
        assert_eq!(code(p.check("password", "AnnLee-rules-2026", &ctx)), Some("contains_context"));
        assert_eq!(code(p.check("password", "my crm secret box", &ctx)), Some("contains_context"));
        assert_eq!(code(p.check("password", "tab\there-is-long", &ctx)), Some("invalid_value"));
        // No composition rules: a long passphrase of lower-case words passes, and so
        // does one in any script, up to 128 characters.
        assert_eq!(code(p.check("password", "correct horse battery staple", &ctx)), None);
        assert_eq!(code(p.check("password", "ζωντανό βουνό πάνω από τη λίμνη", &ctx)), None);
        assert_eq!(code(p.check("password", &"violet harbor quantum ".repeat(6)[..128], &ctx)), None);
        let strict = PasswordPolicy { min_length: 16, ..Default::default() };
        assert_eq!(code(strict.check("password", "Vq8#pL2!xZ4m", &ctx)), Some("too_short"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hash_and_verify() {
        let h = fast();
        let stored = h.hash("correct horse battery staple").await.unwrap_or_default();
        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert_ne!(stored, h.hash("correct horse battery staple").await.unwrap_or_default(), "salted");
        assert_eq!(h.verify("correct horse battery staple", &stored).await.ok(), Some(Verified::Ok { rehash: false }));
        assert_eq!(h.verify("correct horse battery stapler", &stored).await.ok(), Some(Verified::Wrong));
        assert!(h.verify("x", "not a hash").await.is_err());
        assert_eq!(h.verify_decoy("anything at all").await.ok(), Some(Verified::Wrong));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn weaker_hashes_ask_for_a_rehash() {
        let weak = fast().hash("correct horse battery staple").await.unwrap_or_default();
        let owasp = PasswordHasher::owasp();
        assert_eq!(owasp.verify("correct horse battery staple", &weak).await.ok(), Some(Verified::Ok { rehash: true }));
        let strong = owasp.hash("correct horse battery staple").await.unwrap_or_default();
        assert!(strong.contains("m=19456,t=2,p=1"), "{strong}");
        assert_eq!(
            owasp.verify("correct horse battery staple", &strong).await.ok(),
            Some(Verified::Ok { rehash: false })
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let h = PasswordHasher::new(Params::new(1024, 1, 1, None).unwrap_or_default(), 2);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (h, now, most) = (h.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    h.blocking(move || {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for j in jobs {
            assert!(j.await.is_ok_and(|r| r.is_ok()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "never more than two hashes at once, and two did run together");
    }
}
