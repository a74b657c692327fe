//! Login with a third-party identity, and linking identities to accounts.
//!
//! An identity is keyed by (provider, subject). The first login with one either finds
//! the account it is linked to, links it to the account with the same email when both
//! the provider and the account have verified that email, makes a new account when no
//! account has that email, or answers a conflict (log in and link explicitly).

use serde_json::json;
use uuid::Uuid;

use super::auth::{refusal, AuthService, TokenPair};
use crate::auth::oauth::{ExternalIdentity, Rejected};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::auth::{Identity, TokenPurpose};
use crate::model::user::{User, UserStatus};
use crate::policy::{Actor, RequestMeta, Role};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, Write};
use crate::values::Email;

impl AuthService<'_> {
    /// The identity a provider's token proves; refusals are audited.
    async fn external(&self, provider: &str, token: &str, meta: &RequestMeta) -> Result<ExternalIdentity> {
        let s = self.crm.auth_settings()?;
        let p = s.providers.get(provider).ok_or(Error::NotFound { entity: "identity provider" })?;
        match p.verify(token, self.crm.now()).await {
            Ok(ext) => Ok(ext),
            Err(Rejected::Token(why)) => {
                let changes = json!({"provider": provider, "reason": why.0});
                self.audit_alone(None, "auth.oauth_failed", changes, meta).await?;
                Err(Error::Unauthenticated)
            }
            Err(Rejected::Unavailable(e)) => Err(e),
        }
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

    /// Logs in with a provider's token (`google`, `facebook`, or a configured OIDC name).
    pub async fn oauth_login(&self, provider: &str, token: &str, meta: RequestMeta) -> Result<TokenPair> {
        let ext = self.external(provider, token, &meta).await?;
        let now = self.crm.now();
        let method = format!("oauth:{}", ext.provider);
        if let Some(identity) = self.identity(&ext.provider, &ext.subject).await? {
            let user: User = self.crm.load(identity.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
            self.refuse_if_barred(&user, &meta).await?;
            let mut seen = identity.clone();
            seen.last_login_at = Some(now);
            seen.version += 1;
            let touch =
                Write::Update { kind: EntityKind::Identity, row: to_row(&seen)?, expected_version: identity.version };
            return self.start_session(user, &method, None, vec![touch], &meta).await;
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
            self.refuse_if_barred(&existing, &meta).await?;
            let (_, insert) = self.new_identity(&ext, existing.id)?;
            let changes = json!({"provider": ext.provider, "subject": ext.subject, "automatic": true});
            self.crm
                .store()
                .apply(Changeset {
                    writes: vec![insert],
                    audit: vec![self.account_event(Some(&existing), "auth.identity_linked", changes, &meta)],
                })
                .await?;
            return self.start_session(existing, &method, None, vec![], &meta).await;
        }
        let user = self.account_for(&ext, email, &meta).await?;
        self.start_session(user, &method, None, vec![], &meta).await
    }

    async fn refuse_if_barred(&self, user: &User, meta: &RequestMeta) -> Result<()> {
        // A provider-confirmed address counts as confirmed: a pending account may go on.
        let barred = refusal(user, self.crm.now()).filter(|(reason, _)| *reason != "email_not_verified");
        if let Some((reason, err)) = barred {
            self.audit_alone(Some(user), "auth.login_failed", json!({"reason": reason}), meta).await?;
            return Err(err);
        }
        Ok(())
    }

    /// A new account for a first login with a provider.
    async fn account_for(&self, ext: &ExternalIdentity, email: Email, meta: &RequestMeta) -> Result<User> {
        let crm = self.crm;
        let name = self.free_username(email.local_part()).await?;
        let now = crm.now();
        let id = UserId(crm.new_id(now));
        let mut user = crm.users().blank(id, name, email, Role::User, None, Some(id));
        user.status = UserStatus::Active;
        user.email_verified_at = ext.email_verified.then_some(now);
        let mut cs = Changeset::default();
        crm.insert_changes(&user.actor().with_meta(meta.clone()), &user, &mut cs)?;
        let (_, insert) = self.new_identity(ext, user.id)?;
        cs.writes.push(insert);
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

    /// Links a provider identity to the caller's account.
    pub async fn oauth_link(&self, actor: &Actor, provider: &str, token: &str) -> Result<Identity> {
        let ext = self.external(provider, token, &actor.meta).await?;
        let user: User = self.crm.load(actor.user_id.as_uuid()).await?.ok_or(Error::Unauthenticated)?;
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
        let changes = json!({"provider": ext.provider, "subject": ext.subject, "automatic": false});
        let ev = self.account_event(Some(&user), "auth.identity_linked", changes, &actor.meta);
        self.crm.store().apply(Changeset { writes: vec![insert], audit: vec![ev] }).await?;
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
