//! Waits after failed sign-ins ([`crate::auth::Lockout`]): the counts live in the store
//! (`login_throttles`), under the digest of the login name alone and of the name with the
//! client's address, so every replica and every restart sees them, and a name of no
//! account is counted exactly like a name of one.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::auth::AuthService;
use crate::auth::SecretToken;
use crate::error::{Error, Result};
use crate::model::auth::LoginThrottle;
use crate::model::user::User;
use crate::policy::RequestMeta;
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, Write};

/// How many times counting a failure is tried again when another one raced it.
const RETRIES: usize = 8;

/// What a sign-in is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// The name from one address.
    Client,
    /// The name from anywhere.
    Account,
}

impl Key {
    fn as_str(self) -> &'static str {
        match self {
            Key::Client => "client",
            Key::Account => "account",
        }
    }
}

/// The digest a key is stored under.
fn digest(key: Key, login: &str, meta: &RequestMeta) -> String {
    let text = match key {
        Key::Client => format!("login-client\0{login}\0{}", meta.ip.as_deref().unwrap_or("unknown")),
        Key::Account => format!("login-account\0{login}"),
    };
    SecretToken::digest_of(&text)
}

/// The wait a sign-in failure began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    /// Failures of the name from this address, now.
    pub failures: i64,
    /// The wait that began with this failure, and which key it is under.
    pub wait: Option<(Duration, &'static str)>,
}

/// The stored counts a sign-in is under.
pub(crate) struct Throttles(Vec<LoginThrottle>);

impl Throttles {
    /// Until when the sign-in waits, if it must: the longest wait of its counts.
    pub(crate) fn blocked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.iter().filter_map(|t| t.blocked_until).filter(|b| *b > now).max()
    }

    /// The writes that forget them (after a success).
    pub(crate) fn forget(&self) -> Vec<Write> {
        self.0.iter().map(|t| Write::Purge { kind: EntityKind::LoginThrottle, column: "id", id: t.id }).collect()
    }
}

impl AuthService<'_> {
    async fn throttle(&self, hash: &str) -> Result<Option<LoginThrottle>> {
        self.crm.find_by("key_hash", Value::Text(hash.to_string())).await
    }

    /// The counts of `login`: from this client, and from anywhere (read once for a
    /// sign-in: whether it waits, and what a success forgets).
    pub(crate) async fn throttles(&self, login: &str, meta: &RequestMeta) -> Result<Throttles> {
        let mut rows = Vec::new();
        for key in [Key::Client, Key::Account] {
            rows.extend(self.throttle(&digest(key, login, meta)).await?);
        }
        Ok(Throttles(rows))
    }

    /// Counts a failed sign-in under `login` (both keys), with `audit` (the failure's
    /// events, written with the counts). A wait that begins now is audited too
    /// (`auth.locked`, under `user`'s name when the login names an account).
    pub(crate) async fn count_failure(
        &self,
        login: &str,
        user: Option<&User>,
        meta: &RequestMeta,
        audit: impl Fn(i64) -> Vec<crate::audit::NewAuditEvent>,
    ) -> Result<Counted> {
        let lockout = self.crm.auth_settings()?.lockout;
        for _ in 0..RETRIES {
            let now = self.crm.now();
            let mut writes = Vec::new();
            let mut counted = Counted { failures: 0, wait: None };
            for (key, threshold) in [(Key::Client, lockout.per_client), (Key::Account, lockout.per_account)] {
                let hash = digest(key, login, meta);
                let before = self.throttle(&hash).await?;
                let failures = before.as_ref().map_or(0, |t| lockout.decayed(t.failures, t.last_failure_at, now)) + 1;
                let wait = lockout.wait(failures, threshold);
                let blocked_until = wait.map(|w| now + w);
                // Every failure is forgotten once each has decayed, and not before the wait.
                let forgotten = now + lockout.decay * i32::try_from(failures.min(10_000)).unwrap_or(10_000);
                let expires_at = blocked_until.map_or(forgotten, |b| b.max(forgotten));
                if key == Key::Client {
                    counted.failures = failures;
                }
                if let Some(w) = wait {
                    if counted.wait.is_none_or(|(longest, _)| w > longest) {
                        counted.wait = Some((w, key.as_str()));
                    }
                }
                writes.push(match before {
                    Some(b) => {
                        let after = LoginThrottle {
                            failures,
                            last_failure_at: now,
                            blocked_until,
                            expires_at,
                            version: b.version + 1,
                            ..b.clone()
                        };
                        Write::Update {
                            kind: EntityKind::LoginThrottle,
                            row: to_row(&after)?,
                            expected_version: b.version,
                        }
                    }
                    None => {
                        let t = LoginThrottle {
                            id: self.crm.new_id(now),
                            key_hash: hash,
                            failures,
                            last_failure_at: now,
                            blocked_until,
                            expires_at,
                            version: 1,
                        };
                        Write::Insert { kind: EntityKind::LoginThrottle, row: to_row(&t)? }
                    }
                });
            }
            let mut events = audit(counted.failures);
            if let Some((w, scope)) = counted.wait {
                let changes = json!({
                    "failedLogins": counted.failures,
                    "seconds": w.num_seconds(),
                    "scope": scope,
                    "known": user.is_some(),
                });
                events.push(self.account_event(user, "auth.locked", changes, meta));
            }
            match self.crm.store().apply(Changeset { writes, audit: events }).await {
                Ok(()) => return Ok(counted),
                // Another failure under the same key was counted first: count again on top.
                Err(Error::VersionConflict { .. } | Error::Conflict { .. } | Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal_msg("counting a failed sign-in kept racing other failures"))
    }

    /// The writes that forget the failures of these login names (from anywhere) and of
    /// the first of them from this client: after a password reset.
    pub(crate) async fn forget_failures(&self, logins: &[&str], meta: &RequestMeta) -> Result<Vec<Write>> {
        let mut hashes: Vec<String> = logins.iter().map(|l| digest(Key::Account, l, meta)).collect();
        if let Some(first) = logins.first() {
            hashes.push(digest(Key::Client, first, meta));
        }
        let mut rows = Vec::new();
        for hash in hashes {
            rows.extend(self.throttle(&hash).await?);
        }
        Ok(Throttles(rows).forget())
    }

    /// Checks a password the signed-in `user` gives to confirm a change (a new email, a
    /// new password, a linked identity), under the same waits as sign-ins: answers
    /// whether it is right, or [`Error::AccountLocked`] while the user must wait.
    pub(crate) async fn confirm_password(&self, user: &User, password: &str, meta: &RequestMeta) -> Result<bool> {
        let now = self.crm.now();
        if let Some(until) = self.throttles(&user.username, meta).await?.blocked_until(now) {
            return Err(super::auth::locked(until, now));
        }
        if self.password_is(user, password).await? {
            return Ok(true);
        }
        self.count_failure(&user.username, Some(user), meta, |_| Vec::new()).await?;
        Ok(false)
    }
}
