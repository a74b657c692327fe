//! `Idempotency-Key` on POST, over crm-core's idempotency service
//! (`crm_core::service::idempotency`: the rules, the store, the clock): the first request
//! with a key runs and its answer is kept; the same key with the same request within 24
//! hours replays that answer (`Idempotent-Replayed: true`) and acts no more; the same key
//! with another request, or while the first still runs, is a 409. Keys are scoped to the
//! caller (their user id, or anonymous). A 5xx answer is not kept, so the request can be
//! retried; nor is one too large to keep or not text, which goes back whole all the same.
//! The auth routes are left out: their answers hold tokens, which the database never keeps.

use axum::body::{to_bytes, Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::service::idempotency::{Begun, KeptAnswer};

use crate::error::ApiError;
use crate::AppState;

/// The header.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const TTL_HOURS: i64 = crm_core::service::idempotency::TTL_HOURS;

fn replay(answer: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut res = (status, answer.body).into_response();
    let h = res.headers_mut();
    for (name, value) in [(header::CONTENT_TYPE, answer.content_type), (header::LOCATION, answer.location)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The auth routes answer with tokens, which must never be stored; they are safe to
    // repeat anyway (a second login is a second session).
    if req.method() != Method::POST || req.uri().path().starts_with("/api/auth/") {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).map(|v| v.to_str().unwrap_or_default().to_string()) else {
        return next.run(req).await;
    };
    // The caller: their user id when the token is good (checked again by the handler).
    let scope = match req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(v) => match v.split_once(' ').map(|(_, t)| t.trim()) {
            Some(t) => match state.crm.auth().authenticate(t, Default::default()).await {
                Ok(a) => a.actor.user_id.to_string(),
                Err(e) => return ApiError::from(e).into_response(),
            },
            None => "anonymous".to_string(),
        },
        None => "anonymous".to_string(),
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, crate::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is too large")
                .into_response()
        }
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or_default().to_string();
    let idempotency = state.crm.idempotency();
    let request = [parts.method.as_str().as_bytes(), path.as_bytes(), &bytes];
    let ticket = match idempotency.begin(&scope, &key, &request).await {
        Ok(Begun::Replay(answer)) => return replay(answer),
        Ok(Begun::Run(ticket)) => ticket,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (rparts, rbody) = res.into_parts();
    // A file sent while it is made (a streamed export) is not kept: it goes by as it is.
    if rbody.size_hint().exact().is_none() {
        if let Err(e) = idempotency.forget(ticket).await {
            tracing::warn!(error = %e, "could not let go of an idempotency key");
        }
        return Response::from_parts(rparts, rbody);
    }
    // The whole answer goes back to the client, kept or not.
    let rbytes = match to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let _ = idempotency.forget(ticket).await;
            return ApiError::from(crm_core::Error::internal("reading an answer", e)).into_response();
        }
    };
    let text = std::str::from_utf8(&rbytes).ok();
    let outcome = match text {
        Some(body) if !rparts.status.is_server_error() => {
            let header_str =
                |n: header::HeaderName| rparts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
            let answer = KeptAnswer {
                status: rparts.status.as_u16(),
                body: body.to_string(),
                content_type: header_str(header::CONTENT_TYPE),
                location: header_str(header::LOCATION),
            };
            idempotency.keep(ticket, answer).await.map(|_| ())
        }
        // Not kept: the client may try again with the same key.
        _ => idempotency.forget(ticket).await,
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not keep an idempotent answer");
    }
    Response::from_parts(rparts, Body::from(rbytes))
}
