//! Registration, email verification and invitations.

use super::*;

impl AuthService<'_> {
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
}
