//! Sessions: refresh with rotation and reuse detection, access-token checks, logout, revocation, purging.

use super::*;

impl AuthService<'_> {
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

    pub(super) async fn reused(&self, user: &User, session: Session, meta: &RequestMeta) -> Result<()> {
        let ev = self.account_event(
            Some(user),
            "auth.refresh_reused",
            json!({"sessionId": session.id, "revoked": session.revoked_at.is_none()}),
            meta,
        );
        self.revoke(session, "refresh_reuse", ev).await
    }

    /// Revokes a session (retrying when a refresh races it), with an audit event.
    pub(super) async fn revoke(&self, mut session: Session, reason: &str, ev: NewAuditEvent) -> Result<()> {
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
    pub(super) async fn session_actor(
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
}
