//! `Idempotency-Key` on POST: the first request with a key runs and its answer is
//! stored (in the database, so every server instance sees it); the same key with the
//! same request within 24 hours replays that answer (`Idempotent-Replayed: true`) and
//! acts no more; the same key with another request, or while the first still runs, is a
//! 409. Keys are scoped to the caller (their user id, or anonymous). A 5xx answer is not
//! kept, so the request can be retried. The auth routes are left out: their answers hold
//! tokens, which the database never keeps.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use crm_core::model::idempotency::IdempotencyRecord;
use crm_core::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crm_core::schema::to_row;
use crm_core::{Changeset, EntityKind, Error, StoreExt, Value, Write};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

/// The header.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const TTL_HOURS: i64 = 24;
/// The largest answer kept.
const MAX_KEPT: usize = 1024 * 1024;

fn sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn conflict(msg: &str) -> Response {
    ApiError::from(Error::Conflict { message: msg.into(), field: Some("Idempotency-Key".into()) }).into_response()
}

async fn find(state: &AppState, key_hash: &str) -> Result<Option<IdempotencyRecord>, Error> {
    let kind = EntityKind::IdempotencyKey;
    let col = |n: &str| kind.require_column(n);
    let q = StoreQuery {
        filter: Some(Filter::Cmp(Cmp { column: col("key_hash")?, pred: Predicate::Eq(Value::Text(key_hash.into())) })),
        sort: vec![SortKey { column: col("id")?, direction: Direction::Asc }],
        limit: 1,
        include_deleted: true,
    };
    Ok(state.crm.store().list_as::<IdempotencyRecord>(&q).await?.pop())
}

fn replay(rec: &IdempotencyRecord) -> Response {
    let status = rec.status.and_then(|s| u16::try_from(s).ok()).and_then(|s| StatusCode::from_u16(s).ok());
    let resp = rec.response.clone().unwrap_or_default();
    let body = resp.get("body").and_then(|b| b.as_str()).unwrap_or_default().to_string();
    let mut res = (status.unwrap_or(StatusCode::OK), body).into_response();
    let h = res.headers_mut();
    for (name, field) in [(header::CONTENT_TYPE, "contentType"), (header::LOCATION, "location")] {
        if let Some(v) = resp.get(field).and_then(|v| v.as_str()).and_then(|v| HeaderValue::from_str(v).ok()) {
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
    if key.is_empty() || key.len() > 255 {
        return ApiError::bad_field(
            "Idempotency-Key",
            "invalid_value",
            "Idempotency-Key has 1 to 255 visible characters",
        )
        .into_response();
    }
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
    let key_hash = sha(&[scope.as_bytes(), key.as_bytes()]);
    let request_hash = sha(&[parts.method.as_str().as_bytes(), path.as_bytes(), &bytes]);
    let crm = &state.crm;
    let now = crm.now();
    let existing = match find(&state, &key_hash).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut cs = Changeset::default();
    if let Some(rec) = existing {
        if rec.expires_at > now {
            if rec.request_hash != request_hash {
                return conflict("this Idempotency-Key was used with another request");
            }
            if rec.status.is_none() {
                return conflict("a request with this Idempotency-Key is still running");
            }
            return replay(&rec);
        }
        cs.writes.push(Write::Purge { kind: EntityKind::IdempotencyKey, column: "id", id: rec.id });
    }
    let rec = IdempotencyRecord {
        id: uuid::Uuid::now_v7(),
        key_hash,
        request_hash,
        status: None,
        response: None,
        created_at: now,
        expires_at: now + Duration::hours(TTL_HOURS),
        version: 1,
    };
    match to_row(&rec) {
        Ok(row) => cs.writes.push(Write::Insert { kind: EntityKind::IdempotencyKey, row }),
        Err(e) => return ApiError::from(e).into_response(),
    }
    match crm.store().apply(cs).await {
        Ok(()) => {}
        Err(Error::Conflict { .. }) => return conflict("a request with this Idempotency-Key is still running"),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (rparts, rbody) = res.into_parts();
    let rbytes = to_bytes(rbody, MAX_KEPT).await.unwrap_or_default();
    let outcome = if rparts.status.is_server_error() {
        // Not kept: the client may try again with the same key.
        Write::Purge { kind: EntityKind::IdempotencyKey, column: "id", id: rec.id }
    } else {
        let header_str =
            |n: header::HeaderName| rparts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut done = rec.clone();
        done.status = Some(i64::from(rparts.status.as_u16()));
        done.response = Some(serde_json::json!({
            "body": String::from_utf8_lossy(&rbytes),
            "contentType": header_str(header::CONTENT_TYPE),
            "location": header_str(header::LOCATION),
        }));
        done.version += 1;
        match to_row(&done) {
            Ok(row) => Write::Update { kind: EntityKind::IdempotencyKey, row, expected_version: rec.version },
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    if let Err(e) = crm.store().apply(Changeset { writes: vec![outcome], audit: vec![] }).await {
        tracing::warn!(error = %e, "could not keep an idempotent answer");
    }
    Response::from_parts(rparts, Body::from(rbytes))
}
