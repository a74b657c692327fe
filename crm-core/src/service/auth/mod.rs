//! Authentication flows: registration with email confirmation, login with lockout,
//! sessions with rotating refresh tokens, access-token checks, password change, forgot
//! and reset, invitations. Every outcome that matters for security is an audit event
//! (`auth.*`), and every email is queued in the outbox in the same atomic write.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::users::{required_email, username, ProfileUpdate, UserPatch};
use super::Crm;
use crate::audit::NewAuditEvent;
use crate::auth::{AccessClaims, AuthSettings, SecretToken, Verified};
use crate::error::{Error, Errors, Result};
use crate::ids::UserId;
use crate::mail::{MailRequest, MailTemplate, MAIL_TOPIC};
use crate::model::auth::{AuthToken, RefreshToken, Session, TokenPurpose};
use crate::model::user::{User, UserStatus};
use crate::policy::{Actor, RequestMeta, Role};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, StoreExt, Write};
use crate::values::Email;

/// Longer login names or passwords are not even looked at.
pub(crate) const MAX_LOGIN: usize = 320;
const MAX_PASSWORD: usize = 1024;
/// How many times a write racing another is retried.
const RETRIES: usize = 5;

/// Input of [`AuthService::register`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    /// Login name.
    pub username: String,
    /// Email; the account stays `pending` until it is confirmed.
    pub email: String,
    /// Password: at least 10 characters and not easily guessed (zxcvbn score 3).
    pub password: String,
}

/// What a login or a refresh answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// The JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// The opaque token that gets the next pair (single use).
    pub refresh_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user: User,
}

/// A caller whose access token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who, with their current role and team.
    pub actor: Actor,
    /// The session of the token.
    pub session_id: Uuid,
    /// The token's claims.
    pub claims: AccessClaims,
}

/// Authentication.
#[derive(Debug, Clone, Copy)]
pub struct AuthService<'a> {
    pub(super) crm: &'a Crm,
}

fn invalid_token() -> Error {
    Error::invalid("token", "invalid_token", "this link is invalid, used or expired")
}

/// May this user hold a session at `now`?
fn may_sign_in(u: &User, now: DateTime<Utc>) -> bool {
    if u.meta.is_deleted() {
        return false;
    }
    match u.status {
        UserStatus::Active => true,
        UserStatus::Suspended => u.suspended_until.is_some_and(|until| until <= now),
        UserStatus::Pending | UserStatus::Deactivated | UserStatus::Erased => false,
    }
}

fn language_of(u: &User) -> String {
    crate::mail::language(u.settings.get("language").and_then(Json::as_str)).to_string()
}

/// A write of bookkeeping fields (failures, lock, last login): the version moves so
/// that racing writers notice each other.
fn bookkeeping(before: &User, mut after: User) -> Result<Write> {
    after.meta.version = before.meta.version + 1;
    Ok(Write::Update { kind: EntityKind::User, row: to_row(&after)?, expected_version: before.meta.version })
}

fn versioned<T: crate::schema::Persist>(kind: EntityKind, row: &T, expected_version: i64) -> Result<Write> {
    Ok(Write::Update { kind, row: to_row(row)?, expected_version })
}

mod login;
mod password;
mod register;
mod sessions;

impl AuthService<'_> {
    fn settings(&self) -> Result<&AuthSettings> {
        self.crm.auth_settings()
    }

    /// An audit event about a user's account (`actor` = that user, whoever typed the
    /// request: the user's activity log shows attempts on their account).
    pub(super) fn account_event(
        &self,
        user: Option<&User>,
        action: &str,
        changes: Json,
        meta: &RequestMeta,
    ) -> NewAuditEvent {
        let at = self.crm.now();
        NewAuditEvent {
            id: self.crm.new_id(at),
            at,
            actor_id: user.map(|u| u.id),
            actor_role: user.map(|u| u.role.as_str().to_string()),
            action: action.to_string(),
            entity_type: EntityKind::User.name().to_string(),
            entity_id: user.map(|u| u.id.as_uuid()),
            changes,
            request: serde_json::to_value(meta).unwrap_or(Json::Null),
            key: self.crm.audit_key(),
        }
    }

    /// Stores an account event alone.
    pub(super) async fn audit_alone(
        &self,
        user: Option<&User>,
        action: &str,
        changes: Json,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.audit_only(self.account_event(user, action, changes, meta)).await
    }

    /// Stores an audit event alone.
    async fn audit_only(&self, ev: NewAuditEvent) -> Result<()> {
        self.crm.store().apply(Changeset { writes: vec![], audit: vec![ev] }).await
    }

    /// The outbox write of an account email; `token` is sealed into it.
    pub(crate) fn mail(
        &self,
        user: &User,
        to: &str,
        template: MailTemplate,
        token: Option<(&SecretToken, Duration)>,
        extra: impl FnOnce(&mut MailRequest),
    ) -> Result<Write> {
        let mut req = MailRequest {
            template,
            to: to.to_string(),
            lang: language_of(user),
            username: user.username.clone(),
            sealed_token: None,
            expires_minutes: None,
            until: None,
            reason: None,
            address: None,
        };
        if let Some((t, ttl)) = token {
            req.sealed_token = Some(self.settings()?.sealer.seal(&t.text)?);
            req.expires_minutes = Some(ttl.num_minutes());
        }
        extra(&mut req);
        let payload = serde_json::to_value(&req).map_err(|e| Error::internal("serialising an email", e))?;
        self.crm.event(MAIL_TOPIC.to_string(), EntityKind::User, user.id.as_uuid(), payload)
    }

    /// The email that tells an account's current address that it is to change to `new`.
    pub(crate) fn email_change_notice(&self, user: &User, new: &str) -> Result<Write> {
        self.mail(user, user.email.as_str(), MailTemplate::EmailChangeNotice, None, |m| {
            m.address = Some(new.to_string());
        })
    }

    /// The writes that mail `user` a link carrying a fresh single-use token for
    /// `purpose`, to their current address: the token (stored as its digest) and the
    /// queued email (the token sealed in it).
    pub(crate) fn mail_link(&self, user: &User, purpose: TokenPurpose) -> Result<[Write; 2]> {
        self.mail_link_to(user, purpose, user.email.as_str())
    }

    /// [`Self::mail_link`] to another address (the new one of an email change, which the
    /// token then carries).
    pub(crate) fn mail_link_to(&self, user: &User, purpose: TokenPurpose, to: &str) -> Result<[Write; 2]> {
        let s = self.settings()?;
        let (ttl, template) = match purpose {
            TokenPurpose::VerifyEmail => (s.verify_ttl, MailTemplate::VerifyEmail),
            TokenPurpose::ResetPassword => (s.reset_ttl, MailTemplate::PasswordReset),
            TokenPurpose::Invitation => (s.invite_ttl, MailTemplate::Invitation),
            TokenPurpose::ChangeEmail => (s.verify_ttl, MailTemplate::EmailChange),
            TokenPurpose::UsedProviderToken => {
                return Err(Error::internal_msg("a used provider token is never mailed"));
            }
        };
        let secret = SecretToken::generate()?;
        let now = self.crm.now();
        let token = AuthToken {
            id: self.crm.new_id(now),
            purpose,
            token_hash: secret.digest.clone(),
            user_id: user.id,
            email: to.to_string(),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            version: 1,
        };
        let insert = Write::Insert { kind: EntityKind::AuthToken, row: to_row(&token)? };
        Ok([insert, self.mail(user, to, template, Some((&secret, ttl)), |_| {})?])
    }

    /// A mailed token that is valid now, with the write that uses it up. The write is
    /// versioned: of two requests using one token at once, exactly one commits.
    async fn take_token(&self, text: &str, purpose: TokenPurpose) -> Result<(AuthToken, User, Write)> {
        self.take_token_of(text, &[purpose]).await
    }

    /// [`Self::take_token`] for a token of any of these purposes.
    async fn take_token_of(&self, text: &str, purposes: &[TokenPurpose]) -> Result<(AuthToken, User, Write)> {
        if text.trim().is_empty() || text.len() > 256 {
            return Err(invalid_token());
        }
        let digest = SecretToken::digest_of(text);
        let now = self.crm.now();
        let token: AuthToken = self.crm.find_by("token_hash", Value::Text(digest)).await?.ok_or_else(invalid_token)?;
        if !purposes.contains(&token.purpose) || token.used_at.is_some() || token.expires_at <= now {
            return Err(invalid_token());
        }
        let user: User = self.crm.load(token.user_id.as_uuid()).await?.ok_or_else(invalid_token)?;
        // An email change's token carries the new address; every other one the address it
        // was sent to, which must still be the account's.
        let sent_to_current = token.purpose == TokenPurpose::ChangeEmail || token.email == user.email.as_str();
        if user.meta.is_deleted() || user.status == UserStatus::Erased || !sent_to_current {
            // The address changed since the token was sent, or the account is gone.
            return Err(invalid_token());
        }
        let mut used = token.clone();
        used.used_at = Some(now);
        used.version += 1;
        let write = versioned(EntityKind::AuthToken, &used, token.version)?;
        Ok((token, user, write))
    }

    /// The writes that retire every unused link of `user` for these purposes: a reset link
    /// asked for before a password or email change must not work after it. `except` is
    /// the token being used now (already written).
    pub(crate) async fn retire_links(
        &self,
        user: &User,
        purposes: &[TokenPurpose],
        except: Option<Uuid>,
    ) -> Result<Vec<Write>> {
        use crate::query::{id_key, Cmp, Direction, Filter, Predicate, StoreQuery};
        let now = self.crm.now();
        let kind = EntityKind::AuthToken;
        let cmp = |name: &str, pred: Predicate| {
            kind.column(name)
                .map(|column| Filter::Cmp(Cmp { column, pred }))
                .ok_or_else(|| Error::internal_msg(format!("auth tokens have no {name}")))
        };
        // The live links only: however many used ones an account has gathered.
        let filter = Filter::And(vec![
            cmp("user_id", Predicate::Eq(Value::Uuid(user.id.as_uuid())))?,
            cmp("used_at", Predicate::IsNull)?,
            cmp("expires_at", Predicate::Gt(Value::Timestamp(now)))?,
        ]);
        let sort = vec![id_key(kind, Direction::Asc)];
        let q = StoreQuery { filter: Some(filter), sort, limit: 10_000, include_deleted: true };
        let tokens: Vec<AuthToken> = self.crm.store().list_as(&q).await?;
        let mut writes = Vec::new();
        for t in tokens {
            if purposes.contains(&t.purpose) && Some(t.id) != except {
                let mut used = t.clone();
                used.used_at = Some(now);
                used.version += 1;
                writes.push(versioned(EntityKind::AuthToken, &used, t.version)?);
            }
        }
        Ok(writes)
    }

    /// Applies a changeset that uses up a token: losing the race for it is an invalid token.
    async fn apply_with_token(&self, cs: Changeset) -> Result<()> {
        self.crm.store().apply(cs).await.map_err(|e| match e {
            Error::VersionConflict { .. } | Error::NotFound { .. } => invalid_token(),
            other => other,
        })
    }
}

/// Why a user whose credentials are right still may not log in, if they may not.
pub(super) fn refusal(user: &User, now: DateTime<Utc>) -> Option<(&'static str, Error)> {
    match user.status {
        _ if user.meta.is_deleted() || user.status == UserStatus::Deactivated => {
            Some(("deactivated", Error::forbidden("this account is deactivated")))
        }
        UserStatus::Pending => Some(("email_not_verified", Error::EmailNotVerified)),
        UserStatus::Suspended if !may_sign_in(user, now) => Some((
            "suspended",
            Error::forbidden(match user.suspended_until {
                Some(u) => format!("this account is suspended until {}", crate::schema::format_ts(&u)),
                None => "this account is suspended".to_string(),
            }),
        )),
        UserStatus::Erased => Some(("erased", Error::Unauthenticated)),
        _ => None,
    }
}

pub(crate) fn locked(until: DateTime<Utc>, now: DateTime<Utc>) -> Error {
    let ms = (until - now).num_milliseconds().max(0);
    Error::AccountLocked { retry_after_secs: u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1) }
}
