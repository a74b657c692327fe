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
pub use seal::{key_id, Sealer};
pub use token::SecretToken;

/// Waits after failed sign-ins, counted in the store under two keys: the login name from
/// one client address, and the login name from anywhere. From the `per_client`-th
/// failure of a name from one address that address waits `base`, doubled with every
/// further failure, at most `max`; from the `per_account`-th failure of a name from all
/// addresses together, every address waits the same way. One failure is forgotten each
/// `decay`, so a trickle of guesses never keeps a name blocked, and a storm of guesses from
/// one address blocks that address, not the account's owner elsewhere. Names of no
/// account are counted exactly like names of one. A successful sign-in (or a password
/// reset) starts the counts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures of one name from one address before that address waits.
    pub per_client: i64,
    /// Failures of one name from all addresses before every address waits.
    pub per_account: i64,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// One failure is forgotten each this long.
    pub decay: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self {
            per_client: 5,
            per_account: 20,
            base: Duration::minutes(1),
            max: Duration::hours(1),
            decay: Duration::minutes(10),
        }
    }
}

impl Lockout {
    /// How long to wait after `failures` failures against `threshold` (`None` below it).
    pub fn wait(&self, failures: i64, threshold: i64) -> Option<Duration> {
        if failures < threshold.max(1) {
            return None;
        }
        let doublings = u32::try_from((failures - threshold).min(30)).unwrap_or(30);
        let ms = self.base.num_milliseconds().saturating_mul(1i64 << doublings);
        Some(Duration::milliseconds(ms).min(self.max))
    }

    /// The failures left of `failures` counted at `last`, at `now`.
    pub fn decayed(&self, failures: i64, last: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
        let period = self.decay.num_milliseconds().max(1);
        let forgotten = (now - last).num_milliseconds().max(0) / period;
        (failures - forgotten).max(0)
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

/// Process-local state of authentication: the short session cache and the audit budget
/// of refused tokens.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    sessions: Mutex<HashMap<Uuid, (Instant, Option<Actor>)>>,
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
    fn waits_double_from_the_threshold_up_to_the_cap_and_failures_decay() {
        let l = Lockout::default();
        assert_eq!(l.wait(4, 5), None);
        assert_eq!(l.wait(5, 5), Some(Duration::minutes(1)));
        assert_eq!(l.wait(6, 5), Some(Duration::minutes(2)));
        assert_eq!(l.wait(8, 5), Some(Duration::minutes(8)));
        assert_eq!(l.wait(12, 5), Some(Duration::hours(1)));
        assert_eq!(l.wait(10_000, 5), Some(Duration::hours(1)));
        assert_eq!(l.wait(20, 20), Some(Duration::minutes(1)));
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        assert_eq!(l.decayed(5, t, t + Duration::minutes(9)), 5);
        assert_eq!(l.decayed(5, t, t + Duration::minutes(10)), 4);
        assert_eq!(l.decayed(5, t, t + Duration::hours(1)), 0);
        assert_eq!(l.decayed(5, t, t - Duration::hours(1)), 5, "a clock going back forgets nothing");
    }
}
