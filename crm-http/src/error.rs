//! Errors as `application/problem+json` (RFC 9457) with the stable codes of API.md.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_core::{Error, FieldError};
use serde::Serialize;

/// The problem document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for people.
    pub detail: String,
    /// The stable code.
    pub code: String,
    /// Offending fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The record as it is now, on a version conflict (when the caller may still read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<serde_json::Value>,
    /// The record's current version, on a version conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// The request id (filled in by the request-id middleware).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// The problem document (RFC 9457), for answers that carry several: a batch's items.
    pub fn problem(&self) -> serde_json::Value {
        serde_json::to_value(&*self.problem).unwrap_or_default()
    }

    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        Self {
            status,
            problem: Box::new(Problem {
                kind: format!("/problems/{code}"),
                title,
                status: status.as_u16(),
                detail: detail.into(),
                code: code.to_string(),
                errors: vec![],
                current: None,
                current_version: None,
                request_id: None,
            }),
            retry_after: None,
        }
    }

    /// The same naming the field (or header) at fault in `errors[]`.
    pub fn with_field(mut self, field: &str, code: &'static str, message: impl Into<String>) -> Self {
        self.problem.errors.push(FieldError::new(field, code, message));
        self
    }

    /// The same, telling the client to retry after this many seconds (`Retry-After`).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A malformed request as a whole (bad JSON syntax, a bad path).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
    }

    /// A malformed part of a request (a query parameter, a header, a body member), named
    /// in `errors` as the client spelled it: 400.
    pub fn bad_field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut a = Self::bad_request(message.clone());
        a.problem.errors.push(FieldError::new(field, code, message));
        a
    }

    /// The same error answered with another status (a list query's bad filter is a
    /// malformed request, 400, where a bad record is 422).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self.problem.status = status.as_u16();
        self.problem.title = status.canonical_reason().unwrap_or("Error").to_string();
        self
    }

    /// A version conflict's answer with the record as it is now (`current`), so that a
    /// client can show what changed; other errors are left as they are.
    pub fn with_current<T: Serialize>(mut self, record: &T) -> Self {
        if self.problem.code == "version_conflict" {
            self.problem.current = serde_json::to_value(record).ok();
        }
        self
    }

    /// True for a version conflict.
    pub fn is_version_conflict(&self) -> bool {
        self.problem.code == "version_conflict"
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let detail = e.to_string();
        match e {
            Error::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, "not_found", detail),
            Error::Conflict { message, field } => {
                let mut a = Self::new(StatusCode::CONFLICT, "conflict", message.clone());
                if let Some(f) = field {
                    a.problem.errors.push(FieldError::new(f, "conflict", message));
                }
                a
            }
            Error::VersionConflict { current } => {
                let mut a = Self::new(StatusCode::CONFLICT, "version_conflict", detail);
                a.problem.current_version = Some(current);
                a
            }
            Error::Validation(fields) => {
                let mut a = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail);
                a.problem.errors = fields;
                a
            }
            Error::Malformed(fields) => {
                let mut a = Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail);
                a.problem.errors = fields;
                a
            }
            Error::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "missing or invalid credentials")
            }
            Error::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            Error::EmailNotVerified => Self::new(StatusCode::FORBIDDEN, "email_not_verified", detail),
            Error::AccountLocked { retry_after_secs } => {
                let mut a = Self::new(StatusCode::LOCKED, "account_locked", detail);
                a.retry_after = Some(retry_after_secs);
                a
            }
            Error::RateLimited { retry_after_secs } => {
                let mut a = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
                a.retry_after = Some(retry_after_secs);
                a
            }
            Error::Timeout(why) => {
                tracing::warn!(reason = %why, "a statement ran out of time");
                let mut a = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the request took too long; narrow it down, or retry later",
                );
                a.retry_after = Some(5);
                a
            }
            Error::Upstream { message } => {
                tracing::warn!(reason = %message, "an upstream service failed");
                let mut a = Self::new(StatusCode::BAD_GATEWAY, "upstream_failed", message);
                a.retry_after = Some(30);
                a
            }
            other => {
                // The detail is for the log only.
                tracing::error!(error = %other, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is too large")
            }
            other => Self::bad_request(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
