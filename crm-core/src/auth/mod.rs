//! Authentication building blocks: password hashing and policy, access tokens (JWT),
//! opaque secret tokens, sealed secrets, and the settings of the flows
//! ([`crate::service::AuthService`]) built on them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::policy::Actor;

pub mod jwt;
pub mod oauth;
pub mod password;
pub mod seal;
pub mod token;

pub use jwt::{AccessClaims, JwtConfig, JwtKeys, TokenRejection};
pub use oauth::{ExternalIdentity, IdentityProvider, Providers};
pub use password::{PasswordHasher, PasswordPolicy, Verified};
pub use seal::Sealer;
pub use token::SecretToken;

/// Per-account lockout after repeated failed logins: from the `threshold`-th failure in
/// a row, the account is locked for `base`, doubled with every further failure, at most
/// `max`. A successful login starts the count again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures in a row before the first lock.
    pub threshold: i64,
    /// The first lock's length.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self { threshold: 5, base: Duration::minutes(1), max: Duration::hours(1) }
    }
}

impl Lockout {
    /// How long to lock after `failures` failures in a row (`None` below the threshold).
    pub fn lock_for(&self, failures: i64) -> Option<Duration> {
        if failures < self.threshold {
            return None;
        }
        let doublings = u32::try_from((failures - self.threshold).min(30)).unwrap_or(30);
        let ms = self.base.num_milliseconds().saturating_mul(1i64 << doublings);
        Some(Duration::milliseconds(ms).min(self.max))
    }
}

/// Settings of authentication.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access token keys and lifetime.
    pub keys: JwtKeys,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Which passwords are accepted.
    pub password_policy: PasswordPolicy,
    /// The absolute lifetime of a session (default 30 days).
    pub session_ttl: Duration,
    /// How long a refresh token may wait unused (default 14 days).
    pub refresh_ttl: Duration,
    /// Email verification links (default 48 hours).
    pub verify_ttl: Duration,
    /// Password reset links (1 hour).
    pub reset_ttl: Duration,
    /// Invitations (default 7 days).
    pub invite_ttl: Duration,
    /// Failed-login lockout.
    pub lockout: Lockout,
    /// How stale the session state an access-token check relies on may be (≤ 1 s).
    pub session_cache_ttl: std::time::Duration,
    /// Seals the tokens that wait in the outbox for the mail worker.
    pub sealer: Sealer,
    /// Third-party identity providers, by name.
    pub providers: Providers,
}

impl AuthSettings {
    /// Settings with fresh random keys: tokens and queued mail work only within this
    /// process. A server passes keys from its configuration instead.
    pub fn ephemeral() -> Result<Self> {
        let secret = SecretToken::generate()?;
        Ok(Self::with_keys(JwtKeys::new(JwtConfig::default(), "ephemeral", secret.text.as_bytes())?, Sealer::random()?))
    }

    /// Default settings with these keys.
    pub fn with_keys(keys: JwtKeys, sealer: Sealer) -> Self {
        Self {
            keys,
            hasher: PasswordHasher::owasp(),
            password_policy: PasswordPolicy::default(),
            session_ttl: Duration::days(30),
            refresh_ttl: Duration::days(14),
            verify_ttl: Duration::hours(48),
            reset_ttl: Duration::hours(1),
            invite_ttl: Duration::days(7),
            lockout: Lockout::default(),
            session_cache_ttl: std::time::Duration::from_secs(1),
            sealer,
            providers: Providers::default(),
        }
    }
}

/// The most entries the in-memory tables keep before they are emptied.
const MAX_ENTRIES: usize = 100_000;

/// Failures in a row and the lock they led to, of a login name with no account.
type GhostEntry = (i64, Option<DateTime<Utc>>);

/// Process-local state of authentication: the short session cache and the failure
/// counts of logins that name no account (so they lock out like real ones).
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    sessions: Mutex<HashMap<Uuid, (Instant, Option<Actor>)>>,
    ghosts: Mutex<HashMap<String, GhostEntry>>,
    rejections: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Refused access tokens audited per client address and minute; more are only logged,
/// so a flood of bad tokens cannot turn into a flood of writes.
pub const REJECTIONS_AUDITED_PER_MINUTE: u32 = 60;

impl AuthState {
    /// The cached outcome of a session check, when younger than `ttl`.
    pub(crate) fn cached(&self, sid: Uuid, ttl: std::time::Duration) -> Option<Option<Actor>> {
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&sid).filter(|(at, _)| at.elapsed() <= ttl).map(|(_, a)| a.clone())
    }

    pub(crate) fn remember(&self, sid: Uuid, actor: Option<Actor>) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(sid, (Instant::now(), actor));
    }

    /// Forgets every cached session check (after a revocation in this process).
    pub(crate) fn forget_sessions(&self) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Should this refused token be audited (under the per-address budget)?
    pub(crate) fn audit_rejection(&self, ip: Option<&str>) -> bool {
        let now = Instant::now();
        let mut map = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let entry = map.entry(ip.unwrap_or("unknown").to_string()).or_insert((now, 0));
        if now.duration_since(entry.0).as_secs() >= 60 {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 == REJECTIONS_AUDITED_PER_MINUTE + 1 {
            tracing::warn!(ip = ip.unwrap_or("unknown"), "refused access tokens: audit budget spent for this minute");
        }
        entry.1 <= REJECTIONS_AUDITED_PER_MINUTE
    }

    /// When a login naming no account is locked until, if it is.
    pub(crate) fn ghost_locked(&self, login: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let map = self.ghosts.lock().unwrap_or_else(|p| p.into_inner());
        map.get(login).and_then(|(_, until)| *until).filter(|u| *u > now)
    }

    /// Counts a failure of a login naming no account; answers the lock it now has.
    pub(crate) fn ghost_failed(&self, login: &str, now: DateTime<Utc>, lockout: &Lockout) -> Option<DateTime<Utc>> {
        let mut map = self.ghosts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let entry = map.entry(login.to_string()).or_insert((0, None));
        entry.0 += 1;
        entry.1 = lockout.lock_for(entry.0).map(|d| now + d);
        entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tokens_are_audited_within_a_budget_per_address() {
        let s = AuthState::default();
        let audited = (0..100).filter(|_| s.audit_rejection(Some("10.0.0.1"))).count();
        assert_eq!(audited, REJECTIONS_AUDITED_PER_MINUTE as usize);
        assert!(s.audit_rejection(Some("10.0.0.2")), "another address has its own budget");
    }

    #[test]
    fn lockout_doubles_from_the_threshold_up_to_the_cap() {
        let l = Lockout::default();
        assert_eq!(l.lock_for(4), None);
        assert_eq!(l.lock_for(5), Some(Duration::minutes(1)));
        assert_eq!(l.lock_for(6), Some(Duration::minutes(2)));
        assert_eq!(l.lock_for(8), Some(Duration::minutes(8)));
        assert_eq!(l.lock_for(12), Some(Duration::hours(1)));
        assert_eq!(l.lock_for(10_000), Some(Duration::hours(1)));
    }
}
