//! Login: finding the account, checking the password, starting a session.

use super::*;

impl AuthService<'_> {
    /// The account a login name or email names (deactivated ones included).
    pub(super) async fn find_login(&self, login: &str) -> Result<Option<User>> {
        if login.is_empty() || login.len() > MAX_LOGIN {
            return Ok(None);
        }
        let column = if login.contains('@') { "email" } else { "username" };
        self.crm.find_by(column, Value::Text(login.to_string())).await
    }

    /// The account (deactivated ones included) whose address `email` is, in any case.
    pub(super) async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
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

    pub(super) fn refresh_token(&self, session: &Session, now: DateTime<Utc>) -> Result<(SecretToken, Write)> {
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

    pub(super) fn pair(&self, user: User, session: Uuid, refresh: String, now: DateTime<Utc>) -> Result<TokenPair> {
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
}
