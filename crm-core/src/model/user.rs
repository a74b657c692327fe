//! User accounts. The authentication flows (registration, login, sessions) build on these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, string_enum, JsonObject, RecordMeta};
use crate::ids::{TeamId, UserId};
use crate::policy::{Actor, Ownership, Role};
use crate::schema::{Column, ColumnType as T, EntityKind, Index};
use crate::values::Email;

string_enum! {
    /// Account state.
    UserStatus {
        /// Registered, email not yet confirmed.
        Pending = "pending",
        /// In use.
        Active = "active",
        /// Blocked until `suspendedUntil`.
        Suspended = "suspended",
        /// Soft-deleted.
        Deactivated = "deactivated",
        /// Personal data removed for good.
        Erased = "erased",
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id, stable for the account's life.
    pub id: UserId,
    /// Login name, unique.
    pub username: String,
    /// Email, unique.
    pub email: Email,
    /// argon2id PHC string; absent until a password is set.
    pub password_hash: Option<String>,
    /// What the account may do (`admin`, `manager`, `user`).
    pub role: Role,
    /// The team whose records the user sees when its scope is the team; none: no team.
    pub team_id: Option<TeamId>,
    /// Account state.
    pub status: UserStatus,
    /// When the email address was confirmed.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// End of a suspension.
    pub suspended_until: Option<DateTime<Utc>>,
    /// Why the account is suspended.
    pub suspension_reason: Option<String>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Consecutive failed logins (lockout bookkeeping).
    pub failed_logins: i64,
    /// Locked out until.
    pub locked_until: Option<DateTime<Utc>>,
    /// Raised to invalidate every session at once.
    pub session_epoch: i64,
    /// Avatar blob key.
    pub profile_picture: Option<String>,
    /// Preferences (notifications, language, timezone, display).
    pub settings: JsonObject,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl User {
    /// The actor this user acts as.
    pub fn actor(&self) -> Actor {
        Actor::new(self.id, self.role, self.team_id)
    }

    /// May this account be named as an owner or assignee?
    pub fn is_assignable(&self) -> bool {
        !self.meta.is_deleted()
            && matches!(self.status, UserStatus::Active | UserStatus::Pending | UserStatus::Suspended)
    }
}

impl_record!(User, EntityKind::User, |u| Ownership { owner: Some(u.id), team: u.team_id, assignee: None }, |u| {
    search_words([Some(u.username.as_str()), Some(u.email.as_str())])
});

/// Storage columns of users.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("username", "username", T::Text).sort(),
    Column::new("email", "email", T::Text).sort().lower(),
    Column::new("password_hash", "passwordHash", T::Text).null(),
    Column::new("role", "role", T::Text).sort().choices(&["user", "manager", "admin"]),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("status", "status", T::Text).sort().choices(UserStatus::CHOICES),
    Column::new("email_verified_at", "emailVerifiedAt", T::Timestamp).null().sort(),
    Column::new("suspended_until", "suspendedUntil", T::Timestamp).null().sort(),
    Column::new("suspension_reason", "suspensionReason", T::Text).null(),
    Column::new("last_login_at", "lastLoginAt", T::Timestamp).null().sort(),
    Column::new("failed_logins", "failedLogins", T::Int),
    Column::new("locked_until", "lockedUntil", T::Timestamp).null(),
    Column::new("session_epoch", "sessionEpoch", T::Int),
    Column::new("profile_picture", "profilePicture", T::Text).null(),
    Column::new("settings", "settings", T::Json),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `users` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("users_username_key", &["username"]).unique(),
    Index::on("users_email_key", &["email"]).unique(),
    Index::on("users_team_idx", &["team_id"]),
    Index::on("users_created_idx", &["created_at", "id"]).live(),
];
