//! What records look like on the wire when their stored form holds secrets.

use chrono::{DateTime, Utc};
use crm_core::model::JsonObject;
use crm_core::{Role, TeamId, User, UserId, UserStatus};
use serde::Serialize;

/// A user account, without its password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The user's id, stable for the account's life.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Email address, unique among users; where sign-in links and notifications go.
    pub email: String,
    /// What the account may do (`admin`, `manager`, `user`).
    pub role: Role,
    /// The team whose records the user sees when its scope is the team; none: no team.
    pub team_id: Option<TeamId>,
    /// Account state.
    pub status: UserStatus,
    /// When the email was confirmed.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// End of a suspension.
    pub suspended_until: Option<DateTime<Utc>>,
    /// Why suspended.
    pub suspension_reason: Option<String>,
    /// Last login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Has a password (as opposed to third-party login only).
    pub has_password: bool,
    /// Where the avatar is (`/api/users/{id}/avatar`), when there is one.
    pub profile_picture: Option<String>,
    /// Preferences.
    #[schema(value_type = Object)]
    pub settings: JsonObject,
    /// Raised by each change; send it back as `If-Match` to update safely.
    pub version: i64,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the account last changed.
    pub updated_at: DateTime<Utc>,
    /// Deactivated.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            profile_picture: u.profile_picture.as_ref().map(|_| format!("/api/users/{}/avatar", u.id)),
            id: u.id,
            username: u.username,
            email: u.email.as_str().to_string(),
            role: u.role,
            team_id: u.team_id,
            status: u.status,
            email_verified_at: u.email_verified_at,
            suspended_until: u.suspended_until,
            suspension_reason: u.suspension_reason,
            last_login_at: u.last_login_at,
            has_password: u.password_hash.is_some(),
            settings: u.settings,
            version: u.meta.version,
            created_at: u.meta.created_at,
            updated_at: u.meta.updated_at,
            deleted_at: u.meta.deleted_at,
        }
    }
}
