//! `/api/auth`: registration, email confirmation, login, refresh, logout, sessions,
//! passwords, third-party login and linking.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use crm_core::auth::oauth::SignInLink;
use crm_core::model::auth::{Identity, Session};
use crm_core::service::{Registration, TokenPair};
use crm_core::{Crm, Error, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, Caller, MaybeCaller, Meta};
use crate::openapi::{Api, Spec};
use crate::views::UserView;
use crate::AppState;

/// The routes and their document.
pub fn api() -> Api {
    const T: &str = "auth";
    Api::new()
        .op(
            Spec::post("/api/auth/register", T, "Sign up; the account waits for the emailed confirmation link")
                .public()
                .body::<Registration>()
                .example(serde_json::json!({"username": "ada", "email": "ada@example.com", "password": "Analytical-Engine-1843"}))
                .created::<UserView>("The pending account")
                .error(409, "The user name or email is taken (`conflict`)"),
            post(register),
        )
        .op(
            Spec::post("/api/auth/verify-email", T, "Confirm an email address with the token of the emailed link")
                .public()
                .body::<TokenBody>()
                .ok::<UserView>("The confirmed account"),
            post(verify_email),
        )
        .op(
            Spec::post("/api/auth/resend-verification", T, "Send the confirmation link again")
                .public()
                .body::<EmailBody>()
                .ok_status::<Accepted>(202, "Accepted, whether or not the address has an account"),
            post(resend_verification),
        )
        .op(
            Spec::post("/api/auth/accept-invitation", T, "Set the first password of an invited account")
                .public()
                .body::<TokenPasswordBody>()
                .ok::<UserView>("The active account"),
            post(accept_invitation),
        )
        .op(
            Spec::post("/api/auth/login", T, "Log in with a user name or email and a password")
                .public()
                .body::<LoginBody>()
                .example(serde_json::json!({"username": "ada@example.com", "password": "Analytical-Engine-1843"}))
                .ok::<TokenPairView>("An access token and a refresh token")
                .error(401, "Wrong name or password (`unauthenticated`)")
                .error(403, "Email not confirmed, or the account is suspended or deactivated")
                .error(423, "Locked after repeated failures (`account_locked`), with `Retry-After`"),
            post(login),
        )
        .op(
            Spec::post(
                "/api/auth/refresh",
                T,
                "Trade a refresh token for a new pair (single use; reuse ends the session)",
            )
            .public()
            .body::<RefreshBody>()
            .ok::<TokenPairView>("The next pair")
            .error(401, "Unknown, used, expired or revoked refresh token (`unauthenticated`)"),
            post(refresh),
        )
        .op(
            Spec::post("/api/auth/logout", T, "End a session: the refresh token's, or the access token's")
                .public()
                .optional_auth()
                .optional_body::<LogoutBody>()
                .empty(204, "Logged out")
                .error(401, "Neither a refresh token nor an access token (`unauthenticated`)"),
            post(logout),
        )
        .op(
            Spec::post("/api/auth/logout-all", T, "End every session of the caller").empty(204, "Logged out"),
            post(logout_all),
        )
        .op(Spec::get("/api/auth/me", T, "The caller's account").ok::<UserView>("The account"), get(me))
        .op(
            Spec::get("/api/auth/sessions", T, "The caller's sessions").list::<SessionView>("The sessions"),
            get(sessions),
        )
        .op(
            Spec::delete("/api/auth/sessions/{id}", T, "End one of the caller's sessions").empty(204, "Ended"),
            delete(revoke_session),
        )
        .op(
            Spec::post("/api/auth/password/forgot", T, "Email a password reset link")
                .public()
                .body::<EmailBody>()
                .ok_status::<Accepted>(202, "Accepted, whether or not the address has an account"),
            post(forgot),
        )
        .op(
            Spec::post("/api/auth/password/reset", T, "Set a new password with the token of the emailed link")
                .public()
                .body::<TokenPasswordBody>()
                .empty(204, "Changed; every session ended"),
            post(reset),
        )
        .op(
            Spec::post("/api/auth/password/change", T, "Change the caller's password (other sessions end)")
                .body::<ChangeBody>()
                .empty(204, "Changed"),
            post(change),
        )
        .op(
            Spec::get("/api/auth/providers", T, "The third-party logins a sign-in page offers, and where each sends the browser")
                .public()
                .list::<SignInLink>("The providers with a sign-in page"),
            get(providers),
        )
        .op(
            Spec::post("/api/auth/oauth/{provider}", T, "Log in with a third-party token (OIDC ID token or Facebook)")
                .public()
                .body::<OauthBody>()
                .ok::<TokenPairView>("An access token and a refresh token")
                .error(401, "The provider's token was refused: invalid, used already, or another nonce (`unauthenticated`)")
                .error(403, "A new account whose address the provider has not verified waits for the emailed link (`email_not_verified`)")
                .error(404, "No such provider is configured (`not_found`)")
                .error(409, "The email belongs to an account that must link this provider first (`conflict`)"),
            post(oauth_login),
        )
        .op(
            Spec::post("/api/auth/oauth/{provider}/link", T, "Link a third-party identity to the caller (with the current password, when the account has one)")
                .body::<OauthLinkBody>()
                .ok::<IdentityView>("The linked identity")
                .error(404, "No such provider is configured (`not_found`)")
                .error(409, "The identity belongs to another account (`conflict`)"),
            post(oauth_link),
        )
        .op(
            Spec::delete("/api/auth/oauth/{provider}/link", T, "Unlink a third-party identity (never the last way in)")
                .empty(204, "Unlinked")
                .error(404, "Not linked (`not_found`)")
                .error(409, "It is the only way to log in (`conflict`)"),
            delete(oauth_unlink),
        )
        .op(
            Spec::get("/api/auth/identities", T, "The caller's linked identities")
                .list::<IdentityView>("The identities"),
            get(identities),
        )
}

/// What the address-taking routes answer, whatever the address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// `accepted`.
    status: &'static str,
}

/// A token pair as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPairView {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
    session_id: Uuid,
    user: UserView,
}

impl From<TokenPair> for TokenPairView {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: p.token_type,
            expires_in: p.expires_in,
            session_id: p.session_id,
            user: UserView::from(p.user),
        }
    }
}

async fn register(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(input): ApiJson<Registration>,
) -> ApiResult<impl IntoResponse> {
    let user = crm.auth().register(input, meta).await?;
    Ok((StatusCode::CREATED, [("location", format!("/api/users/{}", user.id))], Json(UserView::from(user))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    token: String,
}

async fn verify_email(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.auth().verify_email(&b.token, meta).await?.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailBody {
    email: String,
}

/// The same answer whatever the address.
fn accepted() -> (StatusCode, Json<Accepted>) {
    (StatusCode::ACCEPTED, Json(Accepted { status: "accepted" }))
}

async fn resend_verification(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<EmailBody>,
) -> ApiResult<impl IntoResponse> {
    crm.auth().resend_verification(&b.email, meta).await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenPasswordBody {
    token: String,
    password: String,
}

async fn accept_invitation(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<TokenPasswordBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.auth().accept_invitation(&b.token, &b.password, meta).await?.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoginBody {
    /// User name or email.
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Json<TokenPairView>, Response> {
    crate::limit::per_account(&state, &b.username).await.map_err(|d| d.refusal())?;
    let pair = state.crm.auth().login(&b.username, &b.password, meta).await.map_err(refusal)?;
    Ok(Json(pair.into()))
}

fn refusal(e: Error) -> Response {
    crate::error::ApiError::from(e).into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenPairView>> {
    Ok(Json(crm.auth().refresh(&b.refresh_token, meta).await?.into()))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn logout(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    MaybeCaller(caller): MaybeCaller,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let body: LogoutBody = crate::extract::optional_json(&body)?;
    match (body.refresh_token, caller) {
        (Some(t), _) => crm.auth().logout(&t, meta).await?,
        (None, Some(c)) => crm.auth().logout_session(&c).await?,
        (None, None) => return Err(Error::Unauthenticated.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_all(State(crm): State<Crm>, caller: Caller) -> ApiResult<StatusCode> {
    crm.auth().logout_all(caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<UserView>> {
    let a = caller.actor();
    let user: User = crm.users().get(a, a.user_id).await?;
    Ok(Json(user.into()))
}

/// A session as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    id: Uuid,
    method: String,
    created_at: chrono::DateTime<chrono::Utc>,
    last_used_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

async fn sessions(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let list: Vec<Session> = crm.auth().sessions(caller.actor()).await?;
    let data: Vec<SessionView> = list
        .into_iter()
        .map(|s| SessionView {
            current: s.id == caller.0.session_id,
            id: s.id,
            method: s.method,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(serde_json::json!({ "data": data })))
}

async fn revoke_session(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.auth().revoke_session(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn forgot(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, Response> {
    crate::limit::per_account(&state, &b.email).await.map_err(|d| d.refusal())?;
    state.crm.auth().forgot_password(&b.email, meta).await.map_err(refusal)?;
    Ok(accepted())
}

async fn reset(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<TokenPasswordBody>,
) -> ApiResult<StatusCode> {
    crm.auth().reset_password(&b.token, &b.password, meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangeBody {
    current_password: String,
    new_password: String,
}

async fn change(State(crm): State<Crm>, caller: Caller, ApiJson(b): ApiJson<ChangeBody>) -> ApiResult<StatusCode> {
    crm.auth().change_password(&caller.0, &b.current_password, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OauthBody {
    /// The provider's token: an OIDC ID token, or a Facebook access token. An ID token
    /// logs in once.
    oauth_token: String,
    /// The `nonce` the client put in its authorization request; the ID token must carry
    /// the same.
    #[serde(default)]
    nonce: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OauthLinkBody {
    /// The provider's token, as for a login.
    oauth_token: String,
    /// As for a login.
    #[serde(default)]
    nonce: Option<String>,
    /// The account's password, when it has one: linking adds a way in.
    #[serde(default)]
    current_password: Option<String>,
}

async fn oauth_login(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiPath(provider): ApiPath<String>,
    ApiJson(b): ApiJson<OauthBody>,
) -> ApiResult<Json<TokenPairView>> {
    Ok(Json(crm.auth().oauth_login(&provider, &b.oauth_token, b.nonce.as_deref(), meta).await?.into()))
}

/// A linked identity as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    provider: String,
    subject: String,
    email: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Identity> for IdentityView {
    fn from(i: Identity) -> Self {
        Self {
            provider: i.provider,
            subject: i.subject,
            email: i.email,
            created_at: i.created_at,
            last_login_at: i.last_login_at,
        }
    }
}

async fn oauth_link(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(provider): ApiPath<String>,
    ApiJson(b): ApiJson<OauthLinkBody>,
) -> ApiResult<Json<IdentityView>> {
    let (token, nonce, password) = (&b.oauth_token, b.nonce.as_deref(), b.current_password.as_deref());
    Ok(Json(crm.auth().oauth_link(caller.actor(), &provider, token, nonce, password).await?.into()))
}

async fn oauth_unlink(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<StatusCode> {
    crm.auth().oauth_unlink(caller.actor(), &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn providers(State(crm): State<Crm>) -> ApiResult<Json<serde_json::Value>> {
    let data = crm.auth_settings().map(|s| s.providers.sign_in_links()).unwrap_or_default();
    Ok(Json(serde_json::json!({ "data": data })))
}

async fn identities(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let data: Vec<IdentityView> =
        crm.auth().identities(caller.actor()).await?.into_iter().map(IdentityView::from).collect();
    Ok(Json(serde_json::json!({ "data": data })))
}
