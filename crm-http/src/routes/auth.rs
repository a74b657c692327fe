//! `/api/auth`: registration, email confirmation, login, refresh, logout, sessions,
//! passwords, third-party login and linking.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use crm_core::model::auth::{Identity, Session};
use crm_core::service::{Registration, TokenPair};
use crm_core::{Crm, Error, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller, MaybeCaller, Meta};
use crate::views::UserView;
use crate::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/verify-email", post(verify_email))
        .route("/resend-verification", post(resend_verification))
        .route("/accept-invitation", post(accept_invitation))
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/me", get(me))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/password/forgot", post(forgot))
        .route("/password/reset", post(reset))
        .route("/password/change", post(change))
        .route("/oauth/{provider}", post(oauth_login))
        .route("/oauth/{provider}/link", post(oauth_link).delete(oauth_unlink))
        .route("/identities", get(identities))
}

/// A token pair as answered.
#[derive(Debug, Serialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailBody {
    email: String,
}

/// The same answer whatever the address.
fn accepted() -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::ACCEPTED, Json(serde_json::json!({"status": "accepted"})))
}

async fn resend_verification(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<EmailBody>,
) -> ApiResult<impl IntoResponse> {
    crm.auth().resend_verification(&b.email, meta).await?;
    Ok(accepted())
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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
    crate::limit::per_account(&state, &b.username).map_err(|d| d.refusal())?;
    let pair = state.crm.auth().login(&b.username, &b.password, meta).await.map_err(api)?;
    Ok(Json(pair.into()))
}

fn api(e: Error) -> Response {
    crate::error::ApiError::from(e).into_response()
}

#[derive(Deserialize)]
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

#[derive(Deserialize, Default)]
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
    let body: LogoutBody = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| crate::error::ApiError::bad_request(e.to_string()))?
    };
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
#[derive(Debug, Serialize)]
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

async fn revoke_session(State(crm): State<Crm>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    crm.auth().revoke_session(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn forgot(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, Response> {
    crate::limit::per_account(&state, &b.email).map_err(|d| d.refusal())?;
    state.crm.auth().forgot_password(&b.email, meta).await.map_err(api)?;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangeBody {
    current_password: String,
    new_password: String,
}

async fn change(State(crm): State<Crm>, caller: Caller, ApiJson(b): ApiJson<ChangeBody>) -> ApiResult<StatusCode> {
    crm.auth().change_password(&caller.0, &b.current_password, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OauthBody {
    oauth_token: String,
}

async fn oauth_login(
    State(crm): State<Crm>,
    Meta(meta): Meta,
    Path(provider): Path<String>,
    ApiJson(b): ApiJson<OauthBody>,
) -> ApiResult<Json<TokenPairView>> {
    Ok(Json(crm.auth().oauth_login(&provider, &b.oauth_token, meta).await?.into()))
}

/// A linked identity as answered.
#[derive(Debug, Serialize)]
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
    Path(provider): Path<String>,
    ApiJson(b): ApiJson<OauthBody>,
) -> ApiResult<Json<IdentityView>> {
    Ok(Json(crm.auth().oauth_link(caller.actor(), &provider, &b.oauth_token).await?.into()))
}

async fn oauth_unlink(State(crm): State<Crm>, caller: Caller, Path(provider): Path<String>) -> ApiResult<StatusCode> {
    crm.auth().oauth_unlink(caller.actor(), &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn identities(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let data: Vec<IdentityView> =
        crm.auth().identities(caller.actor()).await?.into_iter().map(IdentityView::from).collect();
    Ok(Json(serde_json::json!({ "data": data })))
}
