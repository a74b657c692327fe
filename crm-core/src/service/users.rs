//! The users service: accounts, roles and teams. Authentication flows build on it.

use serde::Deserialize;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::date_or_time::DateOrTime;
use crate::error::{Error, Errors, Result};
use crate::ids::{TeamId, UserId};
use crate::mail::MailTemplate;
use crate::model::auth::{Session, TokenPurpose};
use crate::model::settings::UserSettings;
use crate::model::team::Team;
use crate::model::user::{User, UserStatus};
use crate::model::{JsonObject, RecordMeta};
use crate::policy::{Action, Actor, Ownership, Resource, Role};
use crate::query::{ListQuery, Page};
use crate::schema::{EntityKind, Value};
use crate::store::{Changeset, StoreExt, Write};

/// Input of [`UserService::create`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    /// Login name: 3–50 characters of a–z, 0–9, `.`, `_`, `-` (lower-cased).
    pub username: String,
    /// Email address; the invitation is sent there.
    pub email: String,
    /// Role (default `user`; managers may create only `user`s).
    #[serde(default)]
    pub role: Option<Role>,
    /// Team (managers: their own team).
    #[serde(default)]
    pub team_id: Option<TeamId>,
    /// A first password. Without one, the user is mailed an invitation to choose it.
    #[serde(default)]
    pub password: Option<String>,
}

/// Input of [`UserService::update`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    /// Login name.
    #[serde(default)]
    pub username: Option<String>,
    /// New email address; must be unique among users. Absent: unchanged.
    #[serde(default)]
    pub email: Option<String>,
    /// Role (admins only).
    #[serde(default)]
    pub role: Option<Role>,
    /// Team (admins only).
    #[serde(default, deserialize_with = "nullable")]
    pub team_id: Option<Option<TeamId>>,
    /// Settings (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<JsonObject>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
    /// Your current password: needed to change your own email address.
    #[serde(default)]
    pub current_password: Option<String>,
}

/// One change of an account as a profile form sends it, applied by
/// [`UserService::update_profile`] in one changeset: all of it or none of it.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// The profile fields (and `current_password`, `version`).
    pub patch: UserPatch,
    /// A new password: your own (with `patch.current_password`) or, for admins, another's.
    pub password: Option<String>,
    /// Removes the profile picture (yours, or another's for admins).
    pub remove_picture: bool,
}

pub(crate) fn username(errs: &mut Errors, raw: &str) -> String {
    let u = raw.trim().to_lowercase();
    let ok = (3..=50).contains(&u.chars().count())
        && u.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !ok {
        errs.add("username", "invalid_format", "3 to 50 characters: letters a-z, digits, '.', '_' or '-'");
    }
    u
}

pub(crate) fn required_email(errs: &mut Errors, raw: &str) -> Option<crate::values::Email> {
    if raw.trim().is_empty() {
        errs.add("email", "required", "email is required");
        return None;
    }
    input::email(errs, "email", Some(raw.to_string()))
}

/// User accounts.
#[derive(Debug, Clone, Copy)]
pub struct UserService<'a> {
    pub(super) crm: &'a Crm,
}

impl UserService<'_> {
    /// Creates the first admin of an empty store (the set-up step of a new installation).
    /// Fails with a conflict once any user exists.
    pub async fn bootstrap_admin(&self, username_raw: &str, email_raw: &str) -> Result<User> {
        self.bootstrap(username_raw, email_raw, None).await
    }

    /// [`Self::bootstrap_admin`] with a password (checked against the password policy),
    /// so the admin can log in at once (`crm-server create-admin`).
    pub async fn bootstrap_admin_with_password(
        &self,
        username_raw: &str,
        email_raw: &str,
        password: &str,
    ) -> Result<User> {
        self.bootstrap(username_raw, email_raw, Some(password)).await
    }

    async fn bootstrap(&self, username_raw: &str, email_raw: &str, password: Option<&str>) -> Result<User> {
        let crm = self.crm;
        if crm.store().count(EntityKind::User, None, true).await? > 0 {
            return Err(already_bootstrapped());
        }
        let mut errs = Errors::new();
        let username = username(&mut errs, username_raw);
        let email = required_email(&mut errs, email_raw);
        if let Some(p) = password {
            let local = email.as_ref().map(|e| e.local_part().to_string()).unwrap_or_default();
            errs.take("password", crm.auth_settings()?.password_policy.check("password", p, &[&username, &local]));
        }
        errs.finish()?;
        let Some(email) = email else { return Err(Error::internal_msg("validated email missing")) };
        let hash = match password {
            Some(p) => Some(crm.auth_settings()?.hasher.hash(p).await?),
            None => None,
        };
        let now = crm.now();
        let id = UserId(crm.new_id(now));
        let mut user = self.blank(id, username, email, Role::Admin, None, Some(id));
        if hash.is_some() {
            user.password_hash = hash;
            // The operator who runs the set-up vouches for the address.
            user.email_verified_at = Some(now);
        }
        // The count above gives a clear answer; this makes two bootstraps racing each
        // other safe: only one finds the table empty.
        let mut cs = Changeset { writes: vec![Write::AssertEmpty { kind: EntityKind::User }], audit: vec![] };
        crm.insert_changes(&user.actor(), &user, &mut cs)?;
        crm.store().apply(cs).await.map_err(|e| match e {
            Error::Conflict { .. } => already_bootstrapped(),
            other => other,
        })?;
        Ok(user)
    }

    pub(crate) fn blank(
        &self,
        id: UserId,
        username: String,
        email: crate::values::Email,
        role: Role,
        team_id: Option<TeamId>,
        by: Option<UserId>,
    ) -> User {
        let now = self.crm.now();
        User {
            id,
            username,
            email,
            password_hash: None,
            role,
            team_id,
            status: UserStatus::Active,
            email_verified_at: None,
            suspended_until: None,
            suspension_reason: None,
            last_login_at: None,
            failed_logins: 0,
            locked_until: None,
            session_epoch: 0,
            profile_picture: None,
            settings: JsonObject::new(),
            meta: RecordMeta::new(now, by),
        }
    }

    /// Creates an account for someone else (admins; managers for `user`s of their team).
    pub async fn create(&self, actor: &Actor, input: NewUser) -> Result<User> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Users, Action::Create)?;
        let role = input.role.unwrap_or(Role::User);
        if role > Role::User {
            actor.require_role(Role::Admin)?;
        }
        let mut errs = Errors::new();
        let username = username(&mut errs, &input.username);
        let email = required_email(&mut errs, &input.email);
        if let Some(t) = input.team_id {
            crm.check_ref::<Team>(actor, t.as_uuid(), "teamId", &mut errs).await?;
        }
        errs.finish()?;
        let Some(email) = email else { return Err(Error::internal_msg("validated email missing")) };
        let now = crm.now();
        let id = UserId(crm.new_id(now));
        let own = Ownership { owner: Some(id), team: input.team_id, assignee: None };
        if !crm.policy().scope(actor.role, Resource::Users, Action::Create).covers(actor, &own) {
            return Err(Error::forbidden("managers create users in their own team only"));
        }
        let mut user = self.blank(id, username, email, role, input.team_id, Some(actor.user_id));
        let auth = crm.auth();
        let mut extra = Changeset::default();
        match input.password {
            Some(p) => {
                let s = crm.auth_settings()?;
                s.password_policy.check("password", &p, &[&user.username, user.email.local_part()])?;
                user.password_hash = Some(s.hasher.hash(&p).await?);
            }
            None => {
                user.status = UserStatus::Pending;
                extra.writes.extend(auth.mail_link(&user, TokenPurpose::Invitation)?);
            }
        }
        crm.commit_insert(actor, &user, extra).await?;
        Ok(user)
    }

    /// A live account the actor may read.
    pub async fn get(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// The account a user name or an email (any case) names, deleted and deactivated ones
    /// included, without a policy check: for tools that act as a user they were told
    /// (crm-py's `connect(user=…)`), never to answer a client (use [`Self::get`]).
    pub async fn by_login(&self, login: &str) -> Result<Option<User>> {
        let login = login.trim();
        if login.is_empty() || login.len() > super::auth::MAX_LOGIN {
            return Ok(None);
        }
        let (column, value) =
            if login.contains('@') { ("email", login.to_lowercase()) } else { ("username", login.to_string()) };
        self.crm.find_by(column, crate::schema::Value::Text(value)).await
    }

    /// A page of accounts the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<User>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes an account. Role and team changes need an admin; nobody changes their own role.
    pub async fn update(&self, actor: &Actor, id: UserId, patch: UserPatch) -> Result<User> {
        self.update_profile(actor, None, id, ProfileUpdate { patch, ..Default::default() }).await
    }

    /// Changes an account's profile, password and picture at once, in one changeset:
    /// every field is checked before anything is written, and a refusal leaves the
    /// account as it was. Your own password and email address take
    /// `patch.current_password` (checked once, with the login's backoff); another's
    /// password is for admins and lifts a lockout. A password change ends every other
    /// session (`session`, the caller's, is kept), retires the reset links asked for
    /// before it and mails the owner. The audit event is `user.password_changed` (your
    /// own), `user.password_set` (another's), `user.updated`, or `user.avatar_removed`
    /// when that is all, with the diff of everything that changed.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        session: Option<uuid::Uuid>,
        id: UserId,
        update: ProfileUpdate,
    ) -> Result<User> {
        let crm = self.crm;
        let ProfileUpdate { patch, password, remove_picture } = update;
        let own = id == actor.user_id;
        if !own && (remove_picture || password.is_some()) {
            actor.require_role(Role::Admin)?;
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let role_change = patch.role.filter(|r| *r != before.role);
        if role_change.is_some() || patch.team_id.is_some_and(|t| t != before.team_id) {
            let refusal = match actor.require_role(Role::Admin) {
                Err(e) => Some(e),
                Ok(()) if id == actor.user_id && role_change.is_some() => {
                    Some(Error::forbidden("nobody changes their own role"))
                }
                Ok(()) => None,
            };
            if let Some(err) = refusal {
                // A refused attempt at a role or team is a security event of its own.
                let changes = serde_json::json!({
                    "role": role_change.map(|r| r.as_str()),
                    "teamId": patch.team_id,
                    "reason": err.to_string(),
                });
                let ev = crm.audit_event(
                    actor,
                    "user.role_change_denied".into(),
                    EntityKind::User,
                    Some(id.as_uuid()),
                    changes,
                );
                crm.store().apply(Changeset { writes: vec![], audit: vec![ev] }).await?;
                return Err(err);
            }
        }
        let mut errs = Errors::new();
        let mut u = before.clone();
        if let Some(n) = patch.username {
            u.username = username(&mut errs, &n);
        }
        // Your own new address waits for the link sent to it (the old one stays the login
        // and reset address until then), and asking takes your password: a stolen access
        // token must not be enough to take the account over. An admin's change to another
        // account applies at once, and that address is confirmed by a link too.
        let mut own_new_email = None;
        if let Some(e) = patch.email {
            if let Some(email) = input::email(&mut errs, "email", Some(e)) {
                if email != before.email && id == actor.user_id {
                    own_new_email = Some(email);
                } else if email != before.email {
                    u.email = email;
                    u.email_verified_at = None;
                }
            }
        }
        let own_password = password.is_some() && own;
        if own_new_email.is_some() || own_password {
            match patch.current_password.as_deref() {
                None if own_new_email.is_some() => {
                    errs.add("currentPassword", "required", "your current password is needed to change your email")
                }
                None => errs.add("currentPassword", "required", "your current password is needed"),
                Some(p) => {
                    if !crm.auth().confirm_password(&before, p, &actor.meta).await? {
                        // Who asked for what, as before one form did both.
                        let ev = if own_new_email.is_some() {
                            crm.audit_event(
                                actor,
                                "user.email_change_denied".into(),
                                EntityKind::User,
                                Some(id.as_uuid()),
                                serde_json::json!({"reason": "wrong current password"}),
                            )
                        } else {
                            crm.auth().account_event(
                                Some(&before),
                                "auth.password_change_failed",
                                serde_json::json!({}),
                                &actor.meta,
                            )
                        };
                        crm.store().apply(Changeset { writes: vec![], audit: vec![ev] }).await?;
                        return Err(Error::invalid(
                            "currentPassword",
                            "invalid_value",
                            "the current password is not right",
                        ));
                    }
                }
            }
        }
        let mut verb = "updated";
        // Only a password needs the auth settings (an embedder may run without them).
        let s = if password.is_some() { Some(crm.auth_settings()?) } else { None };
        if let (Some(p), Some(s)) = (&password, s) {
            // The rules hold against the name and address the account will have.
            let local = u.email.local_part().to_string();
            if let Err(e) = s.password_policy.check("password", p, &[&u.username, &local, &before.username]) {
                errs.absorb("password", e);
            }
        }
        if let Some(r) = patch.role {
            u.role = r;
        }
        if let Some(t) = patch.team_id {
            if let Some(team) = t {
                crm.check_ref::<Team>(actor, team.as_uuid(), "teamId", &mut errs).await?;
            }
            u.team_id = t;
        }
        if let Some(s) = patch.settings {
            match merged_settings(&before, s) {
                Ok(merged) => u.settings = merged,
                Err(e) => errs.absorb_under("settings", e),
            }
        }
        errs.finish()?;
        let mut extra = Changeset::default();
        let auth = crm.auth();
        if let (Some(p), Some(s)) = (&password, s) {
            u.password_hash = Some(s.hasher.hash(p).await?);
            u.session_epoch += 1;
            if own {
                verb = "password_changed";
                // The caller's session moves to the new epoch; every other one is left behind.
                if let Some(sid) = session {
                    if let Some(current) = crm.load::<Session>(sid).await?.filter(|c| c.user_id == before.id) {
                        let mut kept = current.clone();
                        kept.epoch = u.session_epoch;
                        kept.version += 1;
                        extra.writes.push(Write::Update {
                            kind: EntityKind::Session,
                            row: crate::schema::to_row(&kept)?,
                            expected_version: current.version,
                        });
                    }
                }
            } else {
                verb = "password_set";
                u.failed_logins = 0;
                u.locked_until = None;
            }
            extra.writes.extend(auth.retire_links(&before, &[TokenPurpose::ResetPassword], None).await?);
            extra.writes.push(auth.mail(
                &before,
                before.email.as_str(),
                MailTemplate::PasswordChanged,
                None,
                |_| {},
            )?);
        }
        let removed_picture = if remove_picture { u.profile_picture.take() } else { None };
        if removed_picture.is_some() && u == (User { profile_picture: None, ..before.clone() }) {
            verb = "avatar_removed";
        }
        if u.email != before.email {
            // The new address is confirmed by a link sent to it; the old one is told.
            extra.writes.extend(auth.mail_link(&u, TokenPurpose::VerifyEmail)?);
            extra.writes.push(auth.email_change_notice(&before, u.email.as_str())?);
        }
        if let Some(new) = own_new_email {
            if crm.find_by::<User>("email", Value::Text(new.as_str().to_string())).await?.is_some() {
                return Err(Error::Conflict {
                    message: "another account uses this email address".into(),
                    field: Some("email".into()),
                });
            }
            extra.writes.extend(auth.mail_link_to(&before, TokenPurpose::ChangeEmail, new.as_str())?);
            extra.writes.push(auth.email_change_notice(&before, new.as_str())?);
            extra.audit.push(crm.audit_event(
                actor,
                "user.email_change_requested".into(),
                EntityKind::User,
                Some(id.as_uuid()),
                serde_json::json!({"email": {"after": new.as_str()}}),
            ));
            if u == before {
                // Nothing else changes: the record stays as it is until the link is followed.
                crm.store().apply(extra).await?;
                return Ok(before);
            }
        }
        let after = crm.commit_update(actor, &before, u, verb, extra).await?;
        if password.is_some() {
            crm.auth_state().forget_sessions();
        }
        if let Some(key) = removed_picture {
            crm.blobs().delete(&key).await?;
        }
        Ok(after)
    }

    /// Deactivates an account (soft delete): it can no longer log in or be assigned.
    pub async fn deactivate(&self, actor: &Actor, id: UserId, expected_version: Option<i64>) -> Result<User> {
        let crm = self.crm;
        if id == actor.user_id {
            return Err(Error::forbidden("nobody deactivates their own account"));
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Delete).await?;
        check_version(expected_version, before.meta.version)?;
        let mut u = before.clone();
        u.status = UserStatus::Deactivated;
        u.session_epoch += 1;
        u.meta.deleted_at = Some(crm.now());
        u.meta.deleted_by = Some(actor.user_id);
        let after = crm.commit_update(actor, &before, u, "deactivated", Default::default()).await?;
        crm.auth_state().forget_sessions();
        Ok(after)
    }

    /// Suspends an account (admins): its sessions end at once and it cannot log in
    /// until `until` (for good while absent) or until unsuspended. The user is mailed.
    pub async fn suspend(
        &self,
        actor: &Actor,
        id: UserId,
        until: Option<DateOrTime>,
        reason: Option<String>,
    ) -> Result<User> {
        let crm = self.crm;
        actor.require_role(Role::Admin)?;
        // A bare date: the account is usable again from the start of that day.
        let until = crm.moment(actor, until, false).await?;
        if id == actor.user_id {
            return Err(Error::forbidden("nobody suspends their own account"));
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        let mut errs = Errors::new();
        let now = crm.now();
        if until.is_some_and(|u| u <= now) {
            errs.add("until", "out_of_range", "the end of a suspension is in the future");
        }
        let reason = input::text(&mut errs, "reason", reason, 500, true);
        if matches!(before.status, UserStatus::Deactivated | UserStatus::Erased) {
            errs.add("status", "invalid_value", format!("a {} account cannot be suspended", before.status));
        }
        errs.finish()?;
        let mut u = before.clone();
        u.status = UserStatus::Suspended;
        u.suspended_until = until.map(crate::clock::truncate_ms);
        u.suspension_reason = reason.clone();
        u.session_epoch += 1;
        let mail = crm.auth().mail(&before, before.email.as_str(), MailTemplate::AccountSuspended, None, |m| {
            m.until = until;
            m.reason = reason;
        })?;
        let after =
            crm.commit_update(actor, &before, u, "suspended", Changeset { writes: vec![mail], audit: vec![] }).await?;
        crm.auth_state().forget_sessions();
        Ok(after)
    }

    /// Lifts a suspension (admins).
    pub async fn unsuspend(&self, actor: &Actor, id: UserId) -> Result<User> {
        let crm = self.crm;
        actor.require_role(Role::Admin)?;
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        if before.status != UserStatus::Suspended {
            return Ok(before);
        }
        let mut u = before.clone();
        u.status = UserStatus::Active;
        u.suspended_until = None;
        u.suspension_reason = None;
        crm.commit_update(actor, &before, u, "unsuspended", Default::default()).await
    }

    /// Sets a user's picture (self or admin) from an upload: PNG, JPEG or WebP by
    /// content, at most 5 MB, re-encoded to a 256×256 PNG without metadata.
    pub async fn set_avatar(&self, actor: &Actor, id: UserId, upload: Vec<u8>) -> Result<User> {
        let crm = self.crm;
        if actor.user_id != id {
            actor.require_role(Role::Admin)?;
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        if upload.len() > crate::blob::avatar::MAX_BYTES {
            return Err(Error::invalid("avatar", "too_large", "a picture has at most 5 MB"));
        }
        let png = tokio::task::spawn_blocking(move || crate::blob::avatar::normalize(&upload))
            .await
            .map_err(|e| Error::internal("processing an avatar", e))??;
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&png));
        let key = format!("avatars/{}/{}.png", id, &digest[..16]);
        crm.blobs().put(&key, png.into()).await?;
        let mut u = before.clone();
        u.profile_picture = Some(key.clone());
        let after = match crm.commit_update(actor, &before, u, "avatar_changed", Default::default()).await {
            Ok(a) => a,
            Err(e) => {
                // The record did not change: the new file is not needed.
                let _ = crm.blobs().delete(&key).await;
                return Err(e);
            }
        };
        if let Some(old) = before.profile_picture.filter(|k| *k != key) {
            crm.blobs().delete(&old).await?;
        }
        Ok(after)
    }

    /// A user's picture (a 256×256 PNG), for anyone who may see the user.
    pub async fn avatar(&self, actor: &Actor, id: UserId) -> Result<Option<Vec<u8>>> {
        let user: User = self.crm.authorized(actor, id.as_uuid(), Action::Read).await?;
        match user.profile_picture {
            Some(key) => Ok(self.crm.blobs().get(&key).await?.map(|b| b.to_vec())),
            None => Ok(None),
        }
    }

    /// Erases an account for good (admins, never their own): the personal data goes
    /// (name, email, password, picture, settings, sessions, tokens, identities, queued
    /// emails), the row stays as a pseudonym (`erased-…`) so records and audit events
    /// keep pointing somewhere. The user's CRM records go to `reassign_to` when given,
    /// else keep the erased owner. Audit events about the account lose their content and
    /// request details, the user's other events their request details; both are replaced
    /// by digests, so the audit chain still verifies.
    pub async fn erase(&self, actor: &Actor, id: UserId, reassign_to: Option<UserId>) -> Result<User> {
        let crm = self.crm;
        actor.require_role(Role::Admin)?;
        if id == actor.user_id {
            return Err(Error::forbidden("nobody erases their own account"));
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Purge).await?;
        if before.status == UserStatus::Erased {
            return Ok(before);
        }
        let mut errs = Errors::new();
        if let Some(to) = reassign_to {
            if to == id {
                errs.add("reassignTo", "invalid_value", "records cannot be reassigned to the erased user");
            } else {
                crm.check_user(to, "reassignTo", &mut errs).await?;
            }
        }
        errs.finish()?;
        let now = crm.now();
        let uuid = id.as_uuid();
        let tail = uuid.simple().to_string();
        let pseudonym = format!("erased-{}", &tail[tail.len() - 12..]);
        let mut u = before.clone();
        u.username = pseudonym.clone();
        u.email = crate::values::Email::parse(&format!("{pseudonym}@erased.invalid"))?;
        u.password_hash = None;
        u.status = UserStatus::Erased;
        u.email_verified_at = None;
        u.suspended_until = None;
        u.suspension_reason = None;
        u.last_login_at = None;
        u.failed_logins = 0;
        u.locked_until = None;
        u.session_epoch += 1;
        u.profile_picture = None;
        u.settings = JsonObject::new();
        u.meta.version = before.meta.version + 1;
        u.meta.updated_at = now;
        u.meta.updated_by = Some(actor.user_id);
        if u.meta.deleted_at.is_none() {
            u.meta.deleted_at = Some(now);
            u.meta.deleted_by = Some(actor.user_id);
        }
        // The write carries no diff: a diff would copy the personal data into the log.
        let mut cs = Changeset::default();
        cs.writes.push(Write::Update {
            kind: EntityKind::User,
            row: crate::schema::to_row(&u)?,
            expected_version: before.meta.version,
        });
        for kind in [EntityKind::Session, EntityKind::RefreshToken, EntityKind::AuthToken, EntityKind::Identity] {
            cs.writes.push(Write::Purge { kind, column: "user_id", id: uuid });
        }
        cs.writes.push(Write::Purge { kind: EntityKind::OutboxEvent, column: "entity_id", id: uuid });
        // Their emails and notifications, queued, sent or shown.
        cs.writes.push(Write::Purge { kind: EntityKind::Delivery, column: "target_id", id: uuid });
        cs.writes.push(Write::Purge { kind: EntityKind::Notification, column: "user_id", id: uuid });
        cs.writes.push(Write::Purge { kind: EntityKind::ChatChannel, column: "scope_id", id: uuid });
        cs.writes.push(Write::ClearReference { kind: EntityKind::Team, column: "manager_id", id: uuid, at: now });
        // The files they attached stay with the records, no longer naming them.
        cs.writes.push(Write::ClearReference {
            kind: EntityKind::Attachment,
            column: "uploaded_by",
            id: uuid,
            at: now,
        });
        if let Some(to) = reassign_to {
            for (kind, column) in [
                (EntityKind::Contact, "owner_id"),
                (EntityKind::Company, "owner_id"),
                (EntityKind::Deal, "owner_id"),
                (EntityKind::Task, "owner_id"),
                (EntityKind::Task, "assigned_user"),
                (EntityKind::Interaction, "owner_id"),
            ] {
                cs.writes.push(Write::Reassign { kind, column, from: uuid, to: to.as_uuid(), at: now });
            }
        }
        let redacted = self.redactions(id).await?;
        let count = redacted.len();
        cs.writes.extend(redacted);
        let changes =
            serde_json::json!({"pseudonym": pseudonym, "reassignedTo": reassign_to, "auditEventsRedacted": count});
        cs.audit.push(crm.audit_event(actor, "user.erased".into(), EntityKind::User, Some(uuid), changes));
        crm.store().apply(cs).await?;
        crm.auth_state().forget_sessions();
        if let Some(key) = before.profile_picture {
            crm.blobs().delete(&key).await?;
        }
        Ok(u)
    }

    /// The rewrites of the audit events that hold an erased user's data.
    async fn redactions(&self, id: UserId) -> Result<Vec<Write>> {
        use crate::audit::AuditEvent;
        use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
        let kind = EntityKind::AuditEvent;
        let col = |n: &str| kind.require_column(n);
        let who = Value::Uuid(id.as_uuid());
        let mut out = Vec::new();
        let mut after: i64 = 0;
        loop {
            let filter = Filter::And(vec![
                Filter::Or(vec![
                    Filter::Cmp(Cmp { column: col("entity_id")?, pred: Predicate::Eq(who.clone()) }),
                    Filter::Cmp(Cmp { column: col("actor_id")?, pred: Predicate::Eq(who.clone()) }),
                ]),
                Filter::Cmp(Cmp { column: col("seq")?, pred: Predicate::Gt(Value::Int(after)) }),
            ]);
            let q = StoreQuery {
                filter: Some(filter),
                sort: vec![SortKey { column: col("seq")?, direction: Direction::Asc }],
                limit: 1000,
                include_deleted: true,
            };
            let page: Vec<AuditEvent> = self.crm.store().list_as(&q).await?;
            let Some(last) = page.last().map(|e| e.seq) else { break };
            for mut ev in page {
                let before = (ev.changes.clone(), ev.request.clone());
                if ev.entity_id == Some(id.as_uuid()) {
                    ev.redact();
                } else {
                    ev.redact_request();
                }
                if (ev.changes.clone(), ev.request.clone()) != before {
                    out.push(Write::Update { kind, row: ev.into_row(), expected_version: 0 });
                }
            }
            after = last;
        }
        Ok(out)
    }

    /// Sets another user's password (admins): their sessions end, a lockout is lifted, and
    /// they are mailed that it changed. Users change their own with
    /// [`crate::service::AuthService::change_password`], which needs the current one.
    pub async fn set_password(&self, actor: &Actor, id: UserId, password: &str) -> Result<User> {
        actor.require_role(Role::Admin)?;
        if id == actor.user_id {
            return Err(Error::forbidden("change your own password with the current one (auth/password/change)"));
        }
        let update = ProfileUpdate { password: Some(password.to_string()), ..Default::default() };
        self.update_profile(actor, None, id, update).await
    }

    /// Removes a user's picture (self or admin).
    pub async fn remove_avatar(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.update_profile(actor, None, id, ProfileUpdate { remove_picture: true, ..Default::default() }).await
    }

    /// A user's preferences (self or admin).
    pub async fn settings(&self, actor: &Actor, id: UserId) -> Result<UserSettings> {
        let user: User = self.crm.authorized(actor, id.as_uuid(), Action::Read).await?;
        if actor.user_id != id {
            actor.require_role(Role::Admin)?;
        }
        Ok(UserSettings::from_stored(&user.settings))
    }

    /// Changes a user's preferences (self or admin): the keys given replace the stored
    /// ones; the result is validated as a whole.
    pub async fn update_settings(&self, actor: &Actor, id: UserId, changes: JsonObject) -> Result<UserSettings> {
        let crm = self.crm;
        if actor.user_id != id {
            actor.require_role(Role::Admin)?;
        }
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        let mut u = before.clone();
        u.settings = merged_settings(&before, changes)?;
        let after = crm.commit_update(actor, &before, u, "settings_changed", Default::default()).await?;
        Ok(UserSettings::from_stored(&after.settings))
    }

    /// Restores a deactivated account.
    pub async fn restore(&self, actor: &Actor, id: UserId) -> Result<User> {
        let crm = self.crm;
        let before: User = crm.authorized(actor, id.as_uuid(), Action::Restore).await?;
        if before.status == UserStatus::Erased {
            // Erasure is final: the personal data is gone and the address a placeholder.
            return Err(Error::Conflict { message: "an erased account cannot be restored".into(), field: None });
        }
        if !before.meta.is_deleted() {
            return Ok(before);
        }
        let mut u = before.clone();
        u.status = UserStatus::Active;
        u.meta.deleted_at = None;
        u.meta.deleted_by = None;
        crm.commit_update(actor, &before, u, "restored", Default::default()).await
    }
}

/// The stored settings with `changes` laid over them (top-level keys replace), validated.
fn merged_settings(user: &User, changes: JsonObject) -> Result<JsonObject> {
    let mut all = UserSettings::from_stored(&user.settings).to_stored();
    for (k, v) in changes {
        all.insert(k, v);
    }
    Ok(UserSettings::parse(&all)?.to_stored())
}

fn already_bootstrapped() -> Error {
    Error::Conflict { message: "users exist already; an admin creates the others".into(), field: None }
}
