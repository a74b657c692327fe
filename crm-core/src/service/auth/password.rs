//! Passwords: forgotten, reset, checked, changed.

use super::*;

impl AuthService<'_> {
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
        let update = ProfileUpdate {
            patch: UserPatch { current_password: Some(current.to_string()), ..Default::default() },
            password: Some(new.to_string()),
            remove_picture: false,
        };
        let users = self.crm.users();
        let changed = users.update_profile(&auth.actor, Some(auth.session_id), auth.actor.user_id, update).await;
        // This route's members are `currentPassword` and `newPassword`.
        changed.map(|_| ()).map_err(|e| e.renamed("password", "newPassword"))
    }
}
