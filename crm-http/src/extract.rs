//! Extractors: the caller (from the bearer token), request metadata, and JSON bodies
//! whose rejections are problem documents.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use crm_core::service::Authenticated;
use crm_core::{Actor, Crm, Error, RequestMeta};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Meta(pub RequestMeta);

fn meta_of(parts: &Parts) -> RequestMeta {
    let header =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
    RequestMeta {
        request_id: header(REQUEST_ID),
        ip: client_ip(&parts.extensions).map(|ip| ip.to_string()),
        user_agent: header(USER_AGENT.as_str()),
    }
}

/// The client's address: the one [`crate::client::resolve`] found, else the TCP peer.
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<crate::client::ClientIp>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(meta_of(parts)))
    }
}

/// The authenticated caller: `Authorization: Bearer <access token>`, checked by
/// [`crm_core::service::AuthService::authenticate`].
#[derive(Debug, Clone)]
pub struct Caller(pub Authenticated);

impl Caller {
    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.0.actor
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for Caller
where
    Crm: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let crm = Crm::from_ref(state);
        let token = bearer(parts).ok_or(Error::Unauthenticated)?;
        let auth = crm.auth().authenticate(token, meta_of(parts)).await?;
        if let Some(slot) = parts.extensions.get::<CallerSlot>() {
            if let Ok(mut s) = slot.0.lock() {
                *s = Some(auth.actor.clone());
            }
        }
        Ok(Caller(auth))
    }
}

/// Where [`Caller`] leaves the actor it found, for [`audit_denied`].
#[derive(Debug, Clone, Default)]
struct CallerSlot(std::sync::Arc<std::sync::Mutex<Option<crm_core::Actor>>>);

/// Writes an `access.denied` audit event for every request that a known caller's role
/// may not make (answered 403), as a middleware.
pub async fn audit_denied(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let res = next.run(req).await;
    if res.status() == axum::http::StatusCode::FORBIDDEN {
        let actor = slot.0.lock().ok().and_then(|mut s| s.take());
        if let Some(actor) = actor {
            let what = serde_json::json!({"method": method, "path": path, "route": route});
            if let Err(e) = state.crm.audit().denied(&actor, what).await {
                tracing::warn!(error = %e, "could not audit a denied request");
            }
        }
    }
    res
}

/// A caller when there is a bearer token, nobody otherwise.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Authenticated>);

impl<S> FromRequestParts<S> for MaybeCaller
where
    Crm: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if bearer(parts).is_none() {
            return Ok(MaybeCaller(None));
        }
        Caller::from_request_parts(parts, state).await.map(|c| MaybeCaller(Some(c.0)))
    }
}

/// A JSON body. Bad syntax answers 400; a body that does not fit the type (a member
/// missing, of the wrong type, outside an enumeration, or unknown) answers 400 with every
/// such field in `errors` ([`crm_core::decode::from_json`]).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        Ok(ApiJson(crm_core::decode::from_json(v)?))
    }
}

/// An optional JSON body (an empty one is `T::default()`), decoded like [`ApiJson`].
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    Ok(crm_core::decode::from_json(v)?)
}

/// Wraps one of axum's part extractors so that its rejection is a problem document
/// (axum's own answer plain text).
macro_rules! problem_extractor {
    ($(#[$doc:meta])* $name:ident, $inner:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T, S> FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let axum::extract::$inner(v) = axum::extract::$inner::<T>::from_request_parts(parts, state).await?;
                Ok($name(v))
            }
        }
    };
}

problem_extractor!(
    /// Path parameters.
    ApiPath,
    Path
);
problem_extractor!(
    /// The query string.
    ApiQuery,
    Query
);

/// An uploaded file: its bytes and, when the client said, its name.
pub struct Upload {
    /// The file.
    pub bytes: bytes::Bytes,
    /// Its name (a form part's file name).
    pub file_name: Option<String>,
}

/// The file of an upload: the body itself, or, from a browser form
/// (`multipart/form-data`), the part named `file` (else the first part with a file name).
/// A body over the route's limit answers `too_large()`.
pub async fn uploaded_file(req: Request, too_large: fn() -> ApiError) -> Result<Upload, ApiError> {
    use axum::extract::Multipart;
    use axum::http::StatusCode;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = bytes::Bytes::from_request(req, &()).await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            _ => ApiError::bad_request(e.body_text()),
        })?;
        return Ok(Upload { bytes: body, file_name: None });
    }
    let bad_form = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_field("file", "invalid_value", format!("the form cannot be read: {}", e.body_text())),
    };
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::bad_field("file", "invalid_value", format!("the form cannot be read: {}", e.body_text()))
    })?;
    let mut first_file: Option<Upload> = None;
    while let Some(part) = form.next_field().await.map_err(bad_form)? {
        let named_file = part.name() == Some("file");
        let file_name = part.file_name().map(str::to_string);
        if !named_file && (file_name.is_none() || first_file.is_some()) {
            continue;
        }
        let bytes = part.bytes().await.map_err(bad_form)?;
        if named_file {
            return Ok(Upload { bytes, file_name });
        }
        first_file = Some(Upload { bytes, file_name });
    }
    first_file
        .ok_or_else(|| ApiError::bad_field("file", "required", "the form has no file: send it in a part named file"))
}
