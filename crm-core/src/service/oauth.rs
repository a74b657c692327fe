//! Login with a third-party identity, and linking identities to accounts.
//!
//! An identity is keyed by (provider, subject). The first login with one either finds
//! the account it is linked to, links it to the account with the same email when both
//! the provider and the account have verified that email, makes a new account when no
//! account has that email, or answers a conflict (log in and link explicitly). A new
//! account whose address the provider has not verified waits, pending, for the emailed
//! link like a registration.
//!
//! A token proves one login: an OIDC ID token is refused a second time until it expires
//! (its digest is kept as a used token), and its `nonce` must be the one the client sent,
//! when it sent one. Linking an identity to an account with a password takes the password.

use serde_json::json;
use uuid::Uuid;

use super::auth::{refusal, AuthService, TokenPair};
use crate::auth::oauth::{ExternalIdentity, Rejected};
use crate::auth::SecretToken;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::auth::{AuthToken, Identity, TokenPurpose};
use crate::model::user::{User, UserStatus};
use crate::policy::{Actor, RequestMeta, Role};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, Write};
use crate::values::Email;

/// A single-use provider token, to be kept as used.
struct UsedToken {
    digest: String,
    until: chrono::DateTime<chrono::Utc>,
}

impl AuthService<'_> {
    /// The identity a provider's token proves, and the write that marks a single-use
    /// token used (to go with the login or link it allows); refusals are audited.
    async fn external(
        &self,
        provider: &str,
        token: &str,
        nonce: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(ExternalIdentity, Option<UsedToken>)> {
        let s = self.crm.auth_settings()?;
        let p = s.providers.get(provider).ok_or(Error::NotFound { entity: "identity provider" })?;
        let refuse = |why: String| async move {
            let changes = json!({"provider": provider, "reason": why});
            self.audit_alone(None, "auth.oauth_failed", changes, meta).await?;
            Err::<(ExternalIdentity, Option<UsedToken>), _>(Error::Unauthenticated)
        };
        let ext = match p.verify(token, self.crm.now()).await {
            Ok(ext) => ext,
            Err(Rejected::Token(why)) => return refuse(why.0).await,
            Err(Rejected::Unavailable(e)) => return Err(e),
        };
        if let Some(sent) = nonce {
            if ext.nonce.as_deref() != Some(sent) {
                return refuse("nonce does not match the one sent".into()).await;
            }
        }
        let Some(until) = ext.single_use_until else { return Ok((ext, None)) };
        let digest = SecretToken::digest_of(&format!("provider-token:{provider}:{token}"));
        if self.crm.find_by::<AuthToken>("token_hash", Value::Text(digest.clone())).await?.is_some() {
            return refuse("replayed: this token was used already".into()).await;
        }
        Ok((ext, Some(UsedToken { digest, until })))
    }

    /// The write that keeps a used token (a second use collides with it).
    fn used(&self, used: &UsedToken, user: UserId) -> Result<Write> {
        let now = self.crm.now();
        let t = AuthToken {
            id: self.crm.new_id(now),
            purpose: TokenPurpose::UsedProviderToken,
            token_hash: used.digest.clone(),
            user_id: user,
            email: String::new(),
            created_at: now,
            expires_at: used.until,
            used_at: Some(now),
            version: 1,
        };
        Ok(Write::Insert { kind: EntityKind::AuthToken, row: to_row(&t)? })
    }

    /// The identity stored for (provider, subject).
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<Identity>> {
        let all: Vec<Identity> = self.crm.find_all_by("subject", Value::Text(subject.to_string()), 100).await?;
        Ok(all.into_iter().find(|i| i.provider == provider))
    }

    fn new_identity(&self, ext: &ExternalIdentity, user: UserId) -> Result<(Identity, Write)> {
        let now = self.crm.now();
        let i = Identity {
            id: self.crm.new_id(now),
            provider: ext.provider.clone(),
            subject: ext.subject.clone(),
            user_id: user,
            email: ext.email.clone(),
            created_at: now,
            last_login_at: Some(now),
            version: 1,
        };
        let row = to_row(&i)?;
        Ok((i, Write::Insert { kind: EntityKind::Identity, row }))
    }

    /// Logs in with a provider's token (`google`, `facebook`, or a configured OIDC name);
    /// `nonce`, when the client sent one with its authorization request, must be the
    /// token's.
    pub async fn oauth_login(
        &self,
        provider: &str,
        token: &str,
        nonce: Option<&str>,
        meta: RequestMeta,
    ) -> Result<TokenPair> {
        let (ext, used) = self.external(provider, token, nonce, &meta).await?;
        let now = self.crm.now();
        let method = format!("oauth:{}", ext.provider);
        if let Some(identity) = self.identity(&ext.provider, &ext.subject).await? {
            let user: User = self.crm.load(identity.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
            self.refuse_if_barred(&user, ext.email_verified, &meta).await?;
            let mut seen = identity.clone();
            seen.last_login_at = Some(now);
            seen.version += 1;
            let touch =
                Write::Update { kind: EntityKind::Identity, row: to_row(&seen)?, expected_version: identity.version };
            let mut extra = vec![touch];
            extra.extend(used.map(|u| self.used(&u, user.id)).transpose()?);
            return self.start_session(user, &method, None, extra, &meta).await;
        }
        let email = ext.email.as_deref().and_then(|e| Email::parse(e).ok()).ok_or_else(|| {
            Error::invalid(
                "oauthToken",
                "invalid_value",
                "the provider gave no usable email address; link it from an existing account",
            )
        })?;
        if let Some(existing) = self.crm.find_by::<User>("email", Value::Text(email.as_str().to_string())).await? {
            if !(ext.email_verified && existing.email_verified_at.is_some()) {
                let changes = json!({"provider": provider, "reason": "email_conflict"});
                self.audit_alone(Some(&existing), "auth.oauth_failed", changes, &meta).await?;
                return Err(Error::Conflict {
                    message: format!(
                        "an account with this email exists: log in to it and link {provider} from the profile"
                    ),
                    field: Some("email".into()),
                });
            }
            self.refuse_if_barred(&existing, ext.email_verified, &meta).await?;
            let (_, insert) = self.new_identity(&ext, existing.id)?;
            let mut writes = vec![insert];
            writes.extend(used.map(|u| self.used(&u, existing.id)).transpose()?);
            let changes = json!({"provider": ext.provider, "subject": ext.subject, "automatic": true});
            self.crm
                .store()
                .apply(Changeset {
                    writes,
                    audit: vec![self.account_event(Some(&existing), "auth.identity_linked", changes, &meta)],
                })
                .await?;
            return self.start_session(existing, &method, None, vec![], &meta).await;
        }
        let user = self.account_for(&ext, email, used, &meta).await?;
        if !ext.email_verified {
            // Made, pending: the emailed link activates it, as for a registration.
            return Err(Error::EmailNotVerified);
        }
        self.start_session(user, &method, None, vec![], &meta).await
    }

    async fn refuse_if_barred(&self, user: &User, provider_verified: bool, meta: &RequestMeta) -> Result<()> {
        // An address the provider confirmed counts as confirmed: a pending account may go
        // on. Without that, it waits for its emailed link.
        let barred =
            refusal(user, self.crm.now()).filter(|(reason, _)| *reason != "email_not_verified" || !provider_verified);
        if let Some((reason, err)) = barred {
            self.audit_alone(Some(user), "auth.login_failed", json!({"reason": reason}), meta).await?;
            return Err(err);
        }
        Ok(())
    }

    /// A new account for a first login with a provider: active when the provider
    /// verified the address, else pending until the link mailed to it is followed.
    async fn account_for(
        &self,
        ext: &ExternalIdentity,
        email: Email,
        used: Option<UsedToken>,
        meta: &RequestMeta,
    ) -> Result<User> {
        let crm = self.crm;
        let name = self.free_username(email.local_part()).await?;
        let now = crm.now();
        let id = UserId(crm.new_id(now));
        let mut user = crm.users().blank(id, name, email, Role::User, None, Some(id));
        user.status = if ext.email_verified { UserStatus::Active } else { UserStatus::Pending };
        user.email_verified_at = ext.email_verified.then_some(now);
        let mut cs = Changeset::default();
        crm.insert_changes(&user.actor().with_meta(meta.clone()), &user, &mut cs)?;
        let (_, insert) = self.new_identity(ext, user.id)?;
        cs.writes.push(insert);
        cs.writes.extend(used.map(|u| self.used(&u, user.id)).transpose()?);
        if !ext.email_verified {
            cs.writes.extend(self.mail_link(&user, TokenPurpose::VerifyEmail)?);
        }
        let changes = json!({"provider": ext.provider, "subject": ext.subject, "automatic": false, "newAccount": true});
        cs.audit.push(self.account_event(Some(&user), "auth.identity_linked", changes, meta));
        crm.store().apply(cs).await?;
        Ok(user)
    }

    /// A user name built from `seed` that no account has yet.
    async fn free_username(&self, seed: &str) -> Result<String> {
        let mut base: String = seed
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') { c } else { '-' })
            .take(40)
            .collect();
        while base.chars().count() < 3 {
            base.push('0');
        }
        for n in 0..50u32 {
            let candidate = if n == 0 { base.clone() } else { format!("{base}{}", n + 1) };
            if self.crm.find_by::<User>("username", Value::Text(candidate.clone())).await?.is_none() {
                return Ok(candidate);
            }
        }
        Ok(format!("{base}-{}", &Uuid::now_v7().simple().to_string()[20..]))
    }

    /// Links a provider identity to the caller's account. An account with a password
    /// confirms it (`current_password`): a stolen session cannot add a way in.
    pub async fn oauth_link(
        &self,
        actor: &Actor,
        provider: &str,
        token: &str,
        nonce: Option<&str>,
        current_password: Option<&str>,
    ) -> Result<Identity> {
        let user: User = self.crm.load(actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
        if user.password_hash.is_some() {
            let Some(password) = current_password else {
                return Err(Error::invalid(
                    "currentPassword",
                    "required",
                    "your current password is needed to link another way in",
                ));
            };
            if !self.confirm_password(&user, password, &actor.meta).await? {
                let changes = json!({"provider": provider, "reason": "wrong current password"});
                self.audit_alone(Some(&user), "auth.identity_link_denied", changes, &actor.meta).await?;
                return Err(Error::invalid("currentPassword", "invalid_value", "the current password is not right"));
            }
        }
        let (ext, used) = self.external(provider, token, nonce, &actor.meta).await?;
        if let Some(existing) = self.identity(&ext.provider, &ext.subject).await? {
            if existing.user_id == user.id {
                return Ok(existing);
            }
            return Err(Error::Conflict {
                message: format!("this {provider} identity is linked to another account"),
                field: Some("oauthToken".into()),
            });
        }
        let mine: Vec<Identity> = self.crm.find_all_by("user_id", Value::Uuid(user.id.as_uuid()), 100).await?;
        if mine.iter().any(|i| i.provider == ext.provider) {
            return Err(Error::Conflict {
                message: format!("a {provider} identity is linked already; unlink it first"),
                field: Some("provider".into()),
            });
        }
        let (identity, insert) = self.new_identity(&ext, user.id)?;
        let mut writes = vec![insert];
        writes.extend(used.map(|u| self.used(&u, user.id)).transpose()?);
        let changes = json!({"provider": ext.provider, "subject": ext.subject, "automatic": false});
        let ev = self.account_event(Some(&user), "auth.identity_linked", changes, &actor.meta);
        self.crm.store().apply(Changeset { writes, audit: vec![ev] }).await?;
        Ok(identity)
    }

    /// Unlinks the caller's identity of a provider. The last way in (no password, no
    /// other identity) cannot be unlinked.
    pub async fn oauth_unlink(&self, actor: &Actor, provider: &str) -> Result<()> {
        let user: User = self.crm.load(actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
        let mine: Vec<Identity> = self.crm.find_all_by("user_id", Value::Uuid(user.id.as_uuid()), 100).await?;
        let Some(target) = mine.iter().find(|i| i.provider == provider) else {
            return Err(Error::NotFound { entity: "identity" });
        };
        if user.password_hash.is_none() && mine.len() == 1 {
            return Err(Error::Conflict {
                message: "this is the account's only way in: set a password first".into(),
                field: Some("provider".into()),
            });
        }
        let changes = json!({"provider": provider, "subject": target.subject});
        let ev = self.account_event(Some(&user), "auth.identity_unlinked", changes, &actor.meta);
        let purge = Write::Purge { kind: EntityKind::Identity, column: "id", id: target.id };
        self.crm.store().apply(Changeset { writes: vec![purge], audit: vec![ev] }).await
    }

    /// The caller's linked identities.
    pub async fn identities(&self, actor: &Actor) -> Result<Vec<Identity>> {
        self.crm.find_all_by("user_id", Value::Uuid(actor.user_id.as_uuid()), 100).await
    }
}
