//! Authentication flows: registration with email confirmation, login with lockout,
//! sessions with rotating refresh tokens, access-token checks, password change, forgot
//! and reset, invitations. Every outcome that matters for security is an audit event
//! (`auth.*`), and every email is queued in the outbox in the same atomic write.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::users::{required_email, username};
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
    /// Password.
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

    /// Registers an account: `pending` until the emailed link confirms the address.
    pub async fn register(&self, input: Registration, meta: RequestMeta) -> Result<User> {
        let crm = self.crm;
        let mut errs = Errors::new();
        let name = username(&mut errs, &input.username);
        let email = required_email(&mut errs, &input.email);
        let local = email.as_ref().map(|e| e.local_part().to_string()).unwrap_or_default();
        errs.take("password", self.settings()?.password_policy.check("password", &input.password, &[&name, &local]));
        errs.finish()?;
        let Some(email) = email else { return Err(Error::internal_msg("validated email missing")) };
        let hash = self.settings()?.hasher.hash(&input.password).await?;
        let now = crm.now();
        let id = UserId(crm.new_id(now));
        let mut user = crm.users().blank(id, name, email, Role::User, None, Some(id));
        user.status = UserStatus::Pending;
        user.password_hash = Some(hash);
        let mut cs = Changeset::default();
        crm.insert_changes(&user.actor().with_meta(meta), &user, &mut cs)?;
        cs.writes.extend(self.mail_link(&user, TokenPurpose::VerifyEmail)?);
        crm.store().apply(cs).await?;
        Ok(user)
    }

    /// Sends a new confirmation link to a pending account's address. Answers the same
    /// whether or not such an account exists.
    pub async fn resend_verification(&self, email: &str, meta: RequestMeta) -> Result<()> {
        let user = self.find_by_email(email).await?;
        let mut cs = Changeset::default();
        match user.filter(|u| u.status == UserStatus::Pending && !u.meta.is_deleted()) {
            Some(u) => {
                cs.writes.extend(self.mail_link(&u, TokenPurpose::VerifyEmail)?);
                cs.audit.push(self.account_event(Some(&u), "auth.verification_sent", json!({}), &meta));
            }
            None => cs.audit.push(self.account_event(None, "auth.verification_sent", json!({"known": false}), &meta)),
        }
        self.crm.store().apply(cs).await
    }

    /// Confirms an address with the emailed token: a pending account becomes active.
    pub async fn verify_email(&self, token: &str, meta: RequestMeta) -> Result<User> {
        let purposes = [TokenPurpose::VerifyEmail, TokenPurpose::ChangeEmail];
        let (token, before, used) = self.take_token_of(token, &purposes).await?;
        let mut after = before.clone();
        after.email_verified_at = Some(self.crm.now());
        if after.status == UserStatus::Pending {
            after.status = UserStatus::Active;
        }
        let mut cs = Changeset { writes: vec![used], audit: vec![] };
        let mut verb = "email_verified";
        if token.purpose == TokenPurpose::ChangeEmail {
            // The new address takes over: it is the login and reset address from now on,
            // the links sent to the old one stop working, and every session ends.
            let email = Email::parse(&token.email)?;
            if let Some(other) = self.crm.find_by::<User>("email", Value::Text(email.as_str().to_string())).await? {
                if other.id != before.id {
                    return Err(Error::Conflict {
                        message: "another account uses this email address now".into(),
                        field: Some("email".into()),
                    });
                }
            }
            after.email = email;
            after.session_epoch += 1;
            verb = "email_changed";
        }
        let actor = before.actor().with_meta(meta);
        let user = self.crm.update_changes(&actor, &before, after, verb, &mut cs)?.unwrap_or(before);
        self.apply_with_token(cs).await?;
        if token.purpose == TokenPurpose::ChangeEmail {
            self.crm.auth_state().forget_sessions();
        }
        Ok(user)
    }

    /// Sets the first password of an invited account; the invitation proves the address.
    pub async fn accept_invitation(&self, token: &str, password: &str, meta: RequestMeta) -> Result<User> {
        let (_, before, used) = self.take_token(token, TokenPurpose::Invitation).await?;
        let policy = &self.settings()?.password_policy;
        policy.check("password", password, &[&before.username, before.email.local_part()])?;
        let mut after = before.clone();
        after.password_hash = Some(self.settings()?.hasher.hash(password).await?);
        after.email_verified_at = Some(self.crm.now());
        if after.status == UserStatus::Pending {
            after.status = UserStatus::Active;
        }
        let mut cs = Changeset { writes: vec![used], audit: vec![] };
        let actor = before.actor().with_meta(meta);
        let user = self.crm.update_changes(&actor, &before, after, "invitation_accepted", &mut cs)?.unwrap_or(before);
        self.apply_with_token(cs).await?;
        Ok(user)
    }

    /// The account a login name or email names (deactivated ones included).
    async fn find_login(&self, login: &str) -> Result<Option<User>> {
        if login.is_empty() || login.len() > MAX_LOGIN {
            return Ok(None);
        }
        let column = if login.contains('@') { "email" } else { "username" };
        self.crm.find_by(column, Value::Text(login.to_string())).await
    }

    /// The account (deactivated ones included) whose address `email` is, in any case.
    async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        let normal = email.trim().to_lowercase();
        if normal.contains('@') {
            self.find_login(&normal).await
        } else {
            Ok(None)
        }
    }

    /// Logs in with a user name or email and a password. Wrong passwords and unknown
    /// accounts get the same answer after the same work, and are counted alike: after
    /// repeated failures the name waits from that client address, and after many from all
    /// addresses together, for a time that doubles with each further failure and ends on
    /// its own ([`crate::auth::Lockout`]).
    pub async fn login(&self, login: &str, password: &str, meta: RequestMeta) -> Result<TokenPair> {
        let s = self.settings()?;
        let login = login.trim().to_lowercase();
        let now = self.crm.now();
        let user = self.find_login(&login).await?;
        let throttles = self.throttles(&login, &meta).await?;
        if let Some(until) = throttles.blocked_until(now) {
            let ev = self.account_event(user.as_ref(), "auth.login_failed", json!({"reason": "locked"}), &meta);
            self.audit_only(ev).await?;
            return Err(locked(until, now));
        }
        let Some(user) = user else {
            s.hasher.verify_decoy(password).await?;
            self.count_failure(&login, None, &meta, |n| {
                let changes = json!({"reason": "unknown_account", "failedLogins": n});
                vec![self.account_event(None, "auth.login_failed", changes, &meta)]
            })
            .await?;
            return Err(Error::Unauthenticated);
        };
        let verified = match &user.password_hash {
            Some(hash) if password.len() <= MAX_PASSWORD => s.hasher.verify(password, hash).await?,
            _ => s.hasher.verify_decoy(password).await?,
        };
        let Verified::Ok { rehash } = verified else {
            self.count_failure(&login, Some(&user), &meta, |n| {
                let changes = json!({"reason": "wrong_password", "failedLogins": n});
                vec![self.account_event(Some(&user), "auth.login_failed", changes, &meta)]
            })
            .await?;
            return Err(Error::Unauthenticated);
        };
        if let Some((reason, err)) = refusal(&user, now) {
            let ev = self.account_event(Some(&user), "auth.login_failed", json!({"reason": reason}), &meta);
            self.audit_only(ev).await?;
            return Err(err);
        }
        let new_hash = if rehash { Some(s.hasher.hash(password).await?) } else { None };
        self.start_session(user, "password", new_hash, throttles.forget(), &meta).await
    }

    /// Opens a session for a user whose credentials checked out.
    pub(crate) async fn start_session(
        &self,
        mut user: User,
        method: &str,
        new_hash: Option<String>,
        extra: Vec<Write>,
        meta: &RequestMeta,
    ) -> Result<TokenPair> {
        let s = self.settings()?;
        for _ in 0..RETRIES {
            let now = self.crm.now();
            let mut after = user.clone();
            after.failed_logins = 0;
            after.locked_until = None;
            after.last_login_at = Some(now);
            if after.status == UserStatus::Suspended {
                after.status = UserStatus::Active;
                after.suspended_until = None;
                after.suspension_reason = None;
            }
            if let Some(h) = &new_hash {
                after.password_hash = Some(h.clone());
            }
            let session = Session {
                id: self.crm.new_id(now),
                user_id: user.id,
                epoch: user.session_epoch,
                method: method.to_string(),
                created_at: now,
                last_used_at: now,
                expires_at: now + s.session_ttl,
                revoked_at: None,
                revoked_reason: None,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.as_ref().map(|u| u.chars().take(512).collect()),
                version: 1,
            };
            let (secret, refresh) = self.refresh_token(&session, now)?;
            let mut cs = Changeset {
                writes: vec![
                    bookkeeping(&user, after.clone())?,
                    Write::Insert { kind: EntityKind::Session, row: to_row(&session)? },
                    refresh,
                ],
                audit: vec![],
            };
            cs.writes.extend(extra.iter().cloned());
            let changes = json!({"sessionId": session.id, "method": method, "rehashed": new_hash.is_some()});
            cs.audit.push(self.account_event(Some(&user), "auth.login", changes, meta));
            match self.crm.store().apply(cs).await {
                Ok(()) => {
                    after.meta.version += 1;
                    return self.pair(after, session.id, secret.text, now);
                }
                Err(Error::VersionConflict { .. }) => {
                    let fresh: User = self.crm.load(user.id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
                    if fresh.password_hash != user.password_hash || !may_sign_in(&fresh, now) {
                        return Err(Error::Unauthenticated);
                    }
                    user = fresh;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal_msg("login kept racing other writes"))
    }

    fn refresh_token(&self, session: &Session, now: DateTime<Utc>) -> Result<(SecretToken, Write)> {
        let s = self.settings()?;
        let secret = SecretToken::generate()?;
        let t = RefreshToken {
            id: self.crm.new_id(now),
            session_id: session.id,
            user_id: session.user_id,
            token_hash: secret.digest.clone(),
            created_at: now,
            expires_at: (now + s.refresh_ttl).min(session.expires_at),
            used_at: None,
            version: 1,
        };
        Ok((secret, Write::Insert { kind: EntityKind::RefreshToken, row: to_row(&t)? }))
    }

    fn pair(&self, user: User, session: Uuid, refresh: String, now: DateTime<Utc>) -> Result<TokenPair> {
        let keys = &self.settings()?.keys;
        let (access_token, claims) = keys.issue(&user.actor(), session, now)?;
        Ok(TokenPair {
            access_token,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: claims.exp - claims.iat,
            session_id: session,
            user,
        })
    }

    /// Exchanges a refresh token for a new pair. The token is used up; presenting it
    /// again (a stolen copy, or the thief's after the owner's) revokes the whole session.
    pub async fn refresh(&self, refresh_token: &str, meta: RequestMeta) -> Result<TokenPair> {
        if refresh_token.trim().is_empty() || refresh_token.len() > 256 {
            return Err(Error::Unauthenticated);
        }
        let digest = SecretToken::digest_of(refresh_token);
        let token: RefreshToken =
            self.crm.find_by("token_hash", Value::Text(digest)).await?.ok_or(Error::Unauthenticated)?;
        let now = self.crm.now();
        let session: Session = self.crm.load(token.session_id).await?.ok_or(Error::Unauthenticated)?;
        let user: User = self.crm.load(token.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
        if token.used_at.is_some() {
            self.reused(&user, session, &meta).await?;
            return Err(Error::Unauthenticated);
        }
        if !session.is_live(now, user.session_epoch) || token.expires_at <= now || !may_sign_in(&user, now) {
            return Err(Error::Unauthenticated);
        }
        let mut used = token.clone();
        used.used_at = Some(now);
        used.version += 1;
        let mut touched = session.clone();
        touched.last_used_at = now;
        touched.version += 1;
        let (secret, next) = self.refresh_token(&session, now)?;
        let cs = Changeset {
            writes: vec![
                versioned(EntityKind::RefreshToken, &used, token.version)?,
                versioned(EntityKind::Session, &touched, session.version)?,
                next,
            ],
            audit: vec![],
        };
        match self.crm.store().apply(cs).await {
            Ok(()) => self.pair(user, session.id, secret.text, now),
            Err(Error::VersionConflict { .. }) => {
                // Another refresh with this very token won: that is a reuse too.
                let session: Session = self.crm.load(token.session_id).await?.ok_or(Error::Unauthenticated)?;
                self.reused(&user, session, &meta).await?;
                Err(Error::Unauthenticated)
            }
            Err(e) => Err(e),
        }
    }

    async fn reused(&self, user: &User, session: Session, meta: &RequestMeta) -> Result<()> {
        let ev = self.account_event(
            Some(user),
            "auth.refresh_reused",
            json!({"sessionId": session.id, "revoked": session.revoked_at.is_none()}),
            meta,
        );
        self.revoke(session, "refresh_reuse", ev).await
    }

    /// Revokes a session (retrying when a refresh races it), with an audit event.
    async fn revoke(&self, mut session: Session, reason: &str, ev: NewAuditEvent) -> Result<()> {
        for _ in 0..RETRIES {
            let mut cs = Changeset { writes: vec![], audit: vec![ev.clone()] };
            if session.revoked_at.is_none() {
                let mut after = session.clone();
                after.revoked_at = Some(self.crm.now());
                after.revoked_reason = Some(reason.to_string());
                after.version += 1;
                cs.writes.push(versioned(EntityKind::Session, &after, session.version)?);
            }
            match self.crm.store().apply(cs).await {
                Ok(()) => {
                    self.crm.auth_state().forget_sessions();
                    return Ok(());
                }
                Err(Error::VersionConflict { .. }) => {
                    session = self.crm.load(session.id).await?.ok_or(Error::NotFound { entity: "session" })?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal_msg("revoking a session kept racing other writes"))
    }

    /// Deletes what can no longer be used: sessions, refresh tokens, mailed tokens and
    /// idempotency records past their expiry (after a day of grace). Call it now and
    /// then (`crm-server` does, every hour).
    pub async fn purge_expired(&self) -> Result<()> {
        let before = self.crm.now() - Duration::days(1);
        let writes = [
            EntityKind::Session,
            EntityKind::RefreshToken,
            EntityKind::AuthToken,
            EntityKind::IdempotencyKey,
            EntityKind::LoginThrottle,
        ]
        .into_iter()
        .map(|kind| Write::PurgeExpired { kind, column: "expires_at", before })
        .collect();
        self.crm.store().apply(Changeset { writes, audit: vec![] }).await
    }

    /// Checks an access token: signature, algorithm, key, times, issuer, audience, then
    /// the session and the account (through a cache at most `session_cache_ttl` old).
    /// Every refusal is an `auth.token_rejected` audit event naming the reason.
    pub async fn authenticate(&self, access_token: &str, meta: RequestMeta) -> Result<Authenticated> {
        let s = self.settings()?;
        let now = self.crm.now();
        let claims = match s.keys.verify(access_token, now) {
            Ok(c) => c,
            Err(why) => {
                if self.crm.auth_state().audit_rejection(meta.ip.as_deref()) {
                    let ev = self.account_event(None, "auth.token_rejected", json!({"reason": why.as_str()}), &meta);
                    self.audit_only(ev).await?;
                }
                return Err(Error::Unauthenticated);
            }
        };
        let state = self.crm.auth_state();
        let actor = match state.cached(claims.sid, s.session_cache_ttl) {
            Some(cached) => cached,
            None => {
                let checked = self.session_actor(&claims, now).await?;
                state.remember(claims.sid, checked.as_ref().ok().cloned());
                if let Err((user, reason)) = &checked {
                    if state.audit_rejection(meta.ip.as_deref()) {
                        let changes = json!({"reason": reason, "sessionId": claims.sid});
                        let ev = self.account_event(user.as_ref(), "auth.token_rejected", changes, &meta);
                        self.audit_only(ev).await?;
                    }
                }
                checked.ok()
            }
        };
        match actor {
            Some(a) => Ok(Authenticated { actor: a.with_meta(meta), session_id: claims.sid, claims }),
            None => Err(Error::Unauthenticated),
        }
    }

    /// The actor of a token's session, or the user and why not.
    async fn session_actor(
        &self,
        claims: &AccessClaims,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Actor, (Option<User>, &'static str)>> {
        let Some(user) = self.crm.load::<User>(claims.sub).await? else {
            return Ok(Err((None, "unknown_user")));
        };
        if !may_sign_in(&user, now) {
            return Ok(Err((Some(user), "account_inactive")));
        }
        let session = self.crm.load::<Session>(claims.sid).await?;
        match session {
            Some(s) if s.user_id == user.id && s.is_live(now, user.session_epoch) => Ok(Ok(user.actor())),
            _ => Ok(Err((Some(user), "session_revoked"))),
        }
    }

    /// Ends the session a refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str, meta: RequestMeta) -> Result<()> {
        let digest = SecretToken::digest_of(refresh_token);
        let Some(token) = self.crm.find_by::<RefreshToken>("token_hash", Value::Text(digest)).await? else {
            return Err(Error::Unauthenticated);
        };
        let session: Session = self.crm.load(token.session_id).await?.ok_or(Error::Unauthenticated)?;
        let user: Option<User> = self.crm.load(token.user_id.as_uuid()).await?;
        let ev = self.account_event(user.as_ref(), "auth.logout", json!({"sessionId": session.id}), &meta);
        self.revoke(session, "logout", ev).await
    }

    /// Ends the session of the caller's access token.
    pub async fn logout_session(&self, auth: &Authenticated) -> Result<()> {
        self.revoke_session(&auth.actor, auth.session_id).await
    }

    /// Ends every session of the caller.
    pub async fn logout_all(&self, actor: &Actor) -> Result<()> {
        let crm = self.crm;
        for _ in 0..RETRIES {
            let before: User = crm.load(actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
            let mut after = before.clone();
            after.session_epoch += 1;
            let cs = Changeset {
                writes: vec![bookkeeping(&before, after)?],
                audit: vec![self.account_event(Some(&before), "auth.logout_all", json!({}), &actor.meta)],
            };
            match crm.store().apply(cs).await {
                Ok(()) => {
                    crm.auth_state().forget_sessions();
                    return Ok(());
                }
                Err(Error::VersionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal_msg("logout-all kept racing other writes"))
    }

    /// The caller's live sessions, newest first.
    pub async fn sessions(&self, actor: &Actor) -> Result<Vec<Session>> {
        let user: User = self.crm.load(actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
        let now = self.crm.now();
        let mut all: Vec<Session> = self.crm.find_all_by("user_id", Value::Uuid(user.id.as_uuid()), 1000).await?;
        all.retain(|s| s.is_live(now, user.session_epoch));
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Ends one of the caller's sessions (another's answers not found).
    pub async fn revoke_session(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let session: Session = self.crm.load(id).await?.ok_or(Error::NotFound { entity: "session" })?;
        if session.user_id != actor.user_id {
            return Err(Error::NotFound { entity: "session" });
        }
        let user: Option<User> = self.crm.load(actor.user_id.as_uuid()).await?;
        let ev = self.account_event(user.as_ref(), "auth.session_revoked", json!({"sessionId": id}), &actor.meta);
        self.revoke(session, "revoked", ev).await
    }

    /// Mails a reset link when the address belongs to an account that may use one.
    /// Answers the same, after the same kind of work, whether or not it does.
    pub async fn forgot_password(&self, email: &str, meta: RequestMeta) -> Result<()> {
        let user = self.find_by_email(email).await?;
        let mut cs = Changeset::default();
        let eligible = user.filter(|u| {
            !u.meta.is_deleted() && matches!(u.status, UserStatus::Active | UserStatus::Pending | UserStatus::Suspended)
        });
        match eligible {
            Some(u) => {
                cs.writes.extend(self.mail_link(&u, TokenPurpose::ResetPassword)?);
                cs.audit.push(self.account_event(Some(&u), "auth.password_reset_requested", json!({}), &meta));
            }
            None => {
                let ev = self.account_event(None, "auth.password_reset_requested", json!({"known": false}), &meta);
                cs.audit.push(ev);
            }
        }
        self.crm.store().apply(cs).await
    }

    /// Sets a new password with an emailed reset token (single use, 1 hour). Every
    /// session of the account ends, and a lockout is lifted.
    pub async fn reset_password(&self, token: &str, password: &str, meta: RequestMeta) -> Result<()> {
        let (tok, before, used) = self.take_token(token, TokenPurpose::ResetPassword).await?;
        let s = self.settings()?;
        s.password_policy.check("password", password, &[&before.username, before.email.local_part()])?;
        let mut after = before.clone();
        after.password_hash = Some(s.hasher.hash(password).await?);
        after.session_epoch += 1;
        after.failed_logins = 0;
        after.locked_until = None;
        if after.status == UserStatus::Pending && tok.email == before.email.as_str() {
            // The link reached the mailbox: the address is confirmed too.
            after.status = UserStatus::Active;
            after.email_verified_at = Some(self.crm.now());
        }
        let mut cs = Changeset { writes: vec![used], audit: vec![] };
        cs.writes.extend(self.retire_links(&before, &[TokenPurpose::ResetPassword], Some(tok.id)).await?);
        cs.writes.push(self.mail(&before, before.email.as_str(), MailTemplate::PasswordChanged, None, |_| {})?);
        // The owner proved the mailbox: the waits on the account's names end.
        cs.writes.extend(self.forget_failures(&[&before.username, before.email.as_str()], &meta).await?);
        let actor = before.actor().with_meta(meta);
        self.crm.update_changes(&actor, &before, after, "password_reset", &mut cs)?;
        self.apply_with_token(cs).await?;
        self.crm.auth_state().forget_sessions();
        Ok(())
    }

    /// Whether `password` is the account's (in the time a wrong one takes, whether the
    /// account has a password or not).
    pub(crate) async fn password_is(&self, user: &User, password: &str) -> Result<bool> {
        let s = self.settings()?;
        let ok = match &user.password_hash {
            Some(h) if password.len() <= MAX_PASSWORD => s.hasher.verify(password, h).await?,
            _ => s.hasher.verify_decoy(password).await?,
        };
        Ok(matches!(ok, Verified::Ok { .. }))
    }

    /// Changes the caller's password (the current one is needed). Every other session
    /// ends; the caller's own stays.
    pub async fn change_password(&self, auth: &Authenticated, current: &str, new: &str) -> Result<()> {
        let s = self.settings()?;
        let crm = self.crm;
        let before: User = crm.load(auth.actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
        if !self.confirm_password(&before, current, &auth.actor.meta).await? {
            let ev = self.account_event(Some(&before), "auth.password_change_failed", json!({}), &auth.actor.meta);
            self.audit_only(ev).await?;
            return Err(Error::invalid("currentPassword", "invalid_value", "the current password is not right"));
        }
        s.password_policy.check("newPassword", new, &[&before.username, before.email.local_part()])?;
        let mut after = before.clone();
        after.password_hash = Some(s.hasher.hash(new).await?);
        after.session_epoch += 1;
        let mut cs = Changeset::default();
        // The caller's session moves to the new epoch; every other one is left behind.
        if let Some(session) = crm.load::<Session>(auth.session_id).await? {
            if session.user_id == before.id {
                let mut kept = session.clone();
                kept.epoch = after.session_epoch;
                kept.version += 1;
                cs.writes.push(versioned(EntityKind::Session, &kept, session.version)?);
            }
        }
        cs.writes.extend(self.retire_links(&before, &[TokenPurpose::ResetPassword], None).await?);
        cs.writes.push(self.mail(&before, before.email.as_str(), MailTemplate::PasswordChanged, None, |_| {})?);
        crm.update_changes(&auth.actor, &before, after, "password_changed", &mut cs)?;
        crm.store().apply(cs).await?;
        crm.auth_state().forget_sessions();
        Ok(())
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
