//! What authentication stores besides the user: sessions, their refresh tokens, the
//! single-use tokens mailed to people (email verification, password reset, invitation),
//! third-party identities, and the counts of failed sign-ins. Secret tokens are kept only
//! as SHA-256 digests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::string_enum;
use crate::ids::UserId;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

/// A login: one family of refresh tokens. Access tokens name it in `sid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Id (the `sid` claim).
    pub id: Uuid,
    /// The user signed in by this session.
    pub user_id: UserId,
    /// The user's `sessionEpoch` when the session was made; raising the user's epoch
    /// ends every older session at once.
    pub epoch: i64,
    /// How the user logged in (`password`, `oauth:google`, …).
    pub method: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// The absolute end of the session, whatever the refreshes.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why (`logout`, `revoked`, `refresh_reuse`, …).
    pub revoked_reason: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
    /// Version, for revocation racing a refresh.
    pub version: i64,
}

impl Session {
    /// Is the session usable at `now` for a user at `epoch`?
    pub fn is_live(&self, now: DateTime<Utc>, epoch: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.epoch == epoch
    }
}

impl Persist for Session {
    const KIND: EntityKind = EntityKind::Session;
}

/// Storage columns of sessions.
pub static SESSION_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("user_id", "userId", T::Uuid).filter(),
    Column::new("epoch", "epoch", T::Int).filter(),
    Column::new("method", "method", T::Text).filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("last_used_at", "lastUsedAt", T::Timestamp).sort(),
    Column::new("expires_at", "expiresAt", T::Timestamp).sort(),
    Column::new("revoked_at", "revokedAt", T::Timestamp).null().sort(),
    Column::new("revoked_reason", "revokedReason", T::Text).null(),
    Column::new("ip", "ip", T::Text).null(),
    Column::new("user_agent", "userAgent", T::Text).null(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `sessions` besides the primary key.
pub static SESSION_INDEXES: &[Index] = &[Index::on("sessions_user_idx", &["user_id", "created_at"])];

/// One refresh token of a session. Each refresh marks the presented token used and
/// issues the next; presenting a used one again revokes the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshToken {
    /// The token's id; the token itself is only kept hashed.
    pub id: Uuid,
    /// The session (family).
    pub session_id: Uuid,
    /// The user whose session it renews.
    pub user_id: UserId,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for the next one.
    pub used_at: Option<DateTime<Utc>>,
    /// Version: of two refreshes racing with one token, exactly one wins.
    pub version: i64,
}

impl Persist for RefreshToken {
    const KIND: EntityKind = EntityKind::RefreshToken;
}

/// Storage columns of refresh tokens.
pub static REFRESH_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("session_id", "sessionId", T::Uuid).filter(),
    Column::new("user_id", "userId", T::Uuid).filter(),
    Column::new("token_hash", "tokenHash", T::Text).filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("expires_at", "expiresAt", T::Timestamp).sort(),
    Column::new("used_at", "usedAt", T::Timestamp).null().sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `refresh_tokens` besides the primary key.
pub static REFRESH_INDEXES: &[Index] = &[
    Index::on("refresh_tokens_hash_key", &["token_hash"]).unique(),
    Index::on("refresh_tokens_session_idx", &["session_id"]),
];

string_enum! {
    /// What a mailed token is for.
    TokenPurpose {
        /// Confirms an email address (registration, email change).
        VerifyEmail = "verify_email",
        /// Sets a new password after "forgot password".
        ResetPassword = "reset_password",
        /// Sets the first password of an account an admin made.
        Invitation = "invitation",
        /// Confirms the new address of an email change (sent to that address).
        ChangeEmail = "change_email",
        /// Not mailed: a third-party token already used to log in or link, refused until
        /// it expires.
        UsedProviderToken = "used_provider_token",
    }
}

/// A single-use token sent by email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthToken {
    /// The token's id; the token itself is only kept hashed.
    pub id: Uuid,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The user it acts for.
    pub user_id: UserId,
    /// The address it was sent to (a verification confirms this address).
    pub email: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used.
    pub used_at: Option<DateTime<Utc>>,
    /// Version: of two uses racing, exactly one wins.
    pub version: i64,
}

impl Persist for AuthToken {
    const KIND: EntityKind = EntityKind::AuthToken;
}

/// Storage columns of mailed tokens.
pub static TOKEN_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("purpose", "purpose", T::Text).filter().choices(TokenPurpose::CHOICES),
    Column::new("token_hash", "tokenHash", T::Text).filter(),
    Column::new("user_id", "userId", T::Uuid).filter(),
    Column::new("email", "email", T::Text).filter().lower(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("expires_at", "expiresAt", T::Timestamp).sort(),
    Column::new("used_at", "usedAt", T::Timestamp).null().sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `auth_tokens` besides the primary key.
pub static TOKEN_INDEXES: &[Index] = &[
    Index::on("auth_tokens_hash_key", &["token_hash"]).unique(),
    Index::on("auth_tokens_user_idx", &["user_id", "purpose"]),
];

/// A third-party identity linked to a user, keyed by (provider, subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The link's id.
    pub id: Uuid,
    /// `google`, `facebook`, or a configured OIDC provider's name.
    pub provider: String,
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    /// The local account the identity signs in to.
    pub user_id: UserId,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
    /// Last login with it.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Raised by each change (optimistic concurrency).
    pub version: i64,
}

impl Persist for Identity {
    const KIND: EntityKind = EntityKind::Identity;
}

/// Storage columns of identities.
pub static IDENTITY_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("provider", "provider", T::Text).filter(),
    Column::new("subject", "subject", T::Text).filter(),
    Column::new("user_id", "userId", T::Uuid).filter(),
    Column::new("email", "email", T::Text).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("last_login_at", "lastLoginAt", T::Timestamp).null().sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `identities` besides the primary key.
pub static IDENTITY_INDEXES: &[Index] = &[
    Index::on("identities_provider_subject_key", &["provider", "subject"]).unique(),
    Index::on("identities_user_idx", &["user_id"]),
];

/// Failed sign-ins counted under one key: a login name from one client address, or a
/// login name from anywhere. Kept in the store, so every replica and every restart sees
/// the same counts, for names of accounts and names of none alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginThrottle {
    /// The counter's id.
    pub id: Uuid,
    /// SHA-256 of what is counted, hex (unique): the table holds no names or addresses.
    pub key_hash: String,
    /// Failures, as of `last_failure_at` (one is forgotten each decay period after).
    pub failures: i64,
    /// The latest failure.
    pub last_failure_at: DateTime<Utc>,
    /// Until when sign-ins under this key wait.
    pub blocked_until: Option<DateTime<Utc>>,
    /// When every failure is forgotten; the row is purged after.
    pub expires_at: DateTime<Utc>,
    /// Version: racing failures both count.
    pub version: i64,
}

impl Persist for LoginThrottle {
    const KIND: EntityKind = EntityKind::LoginThrottle;
}

/// Storage columns of failed sign-in counts.
pub static THROTTLE_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("key_hash", "keyHash", T::Text).filter(),
    Column::new("failures", "failures", T::Int),
    Column::new("last_failure_at", "lastFailureAt", T::Timestamp),
    Column::new("blocked_until", "blockedUntil", T::Timestamp).null(),
    Column::new("expires_at", "expiresAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `login_throttles` besides the primary key.
pub static THROTTLE_INDEXES: &[Index] = &[
    Index::on("login_throttles_key", &["key_hash"]).unique(),
    Index::on("login_throttles_expires_idx", &["expires_at"]),
];
