//! Pages for people: the interactive API reference at `/api/docs` (Swagger UI, embedded
//! in the binary, reading `/api/openapi.json`) and a page per problem `type` at
//! `/problems/<code>`, which every error document links to.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

/// What the reference pages may load: only themselves (Swagger UI's initializer is a file
/// of its own, so no inline script is needed).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The problem pages load nothing at all.
const PAGE_CSP: &str = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/docs", get(|| async { Redirect::permanent("/api/docs/") }))
        .route("/api/docs/", get(|| swagger(String::new())))
        .route("/api/docs/{*file}", get(|Path(file): Path<String>| swagger(file)))
        .route("/problems", get(problem_index))
        .route("/problems/{code}", get(problem_page))
}

fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                utoipa_swagger_ui::Config::from("/api/openapi.json")
                    .try_it_out_enabled(true)
                    .persist_authorization(false)
                    .display_request_duration(true),
            )
        })
        .clone()
}

async fn swagger(file: String) -> Response {
    match utoipa_swagger_ui::serve(&file, swagger_config()) {
        Ok(Some(f)) => {
            let mut res = (
                [(header::CONTENT_TYPE, f.content_type), (header::CACHE_CONTROL, "no-cache".to_string())],
                f.bytes.into_owned(),
            )
                .into_response();
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
            res
        }
        Ok(None) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file of the API reference").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the API reference cannot be served");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }
    }
}

/// A problem `type`: its code, status and what it means for a client.
pub struct ProblemType {
    /// The stable code (`/problems/<code>`).
    pub code: &'static str,
    /// The HTTP statuses it comes with.
    pub status: &'static str,
    /// A title.
    pub title: &'static str,
    /// What it means and what to do.
    pub description: &'static str,
}

/// Every problem `type` the API answers with.
pub const PROBLEM_TYPES: &[ProblemType] = &[
    ProblemType {
        code: "validation_failed",
        status: "400, 422",
        title: "The request is not valid",
        description: "Every offending field is listed in errors[], each with its path in the request's own spelling \
            (products.2.quantity; a query parameter or header by its name) and a stable code: required, \
            invalid_type, invalid_value, invalid_format, unknown_field, unknown_operator, out_of_range, too_long, \
            not_found (a referenced record), invalid_token (an emailed link that is unknown, used or expired); \
            for passwords too_short, too_common, contains_context. 400: the request could not be read as sent (bad JSON, a member \
            missing, of the wrong type, outside an enumeration, or unknown; a bad query parameter). 422: it could be read, but values break a rule (an empty name, a bad email address, a \
            weak password). Fix the fields named and send again.",
    },
    ProblemType {
        code: "unauthenticated",
        status: "401",
        title: "Sign-in needed",
        description: "No access token, or one that is expired or revoked. Send Authorization: Bearer <accessToken>; \
            refresh it with POST /api/auth/refresh, or sign in again.",
    },
    ProblemType {
        code: "forbidden",
        status: "403",
        title: "Not allowed",
        description: "The caller is known, but their role may not do this (detail says what). Records outside \
            the caller's scope answer not_found instead, so their existence does not leak.",
    },
    ProblemType {
        code: "email_not_verified",
        status: "403",
        title: "Email address not confirmed",
        description: "The password was right, but the account's email address is not confirmed yet. Follow the \
            link sent at registration, or ask for a new one with POST /api/auth/resend-verification.",
    },
    ProblemType {
        code: "not_found",
        status: "404",
        title: "Not found",
        description: "No such route, or no such record among those the caller may read.",
    },
    ProblemType {
        code: "method_not_allowed",
        status: "405",
        title: "Method not allowed",
        description: "The route exists, but not with this method; the Allow header lists the ones it takes.",
    },
    ProblemType {
        code: "conflict",
        status: "409",
        title: "Conflict",
        description: "The change collides with data that exists (a taken email address or user name, a key held \
            by another record, a state that does not allow it: an erased account cannot be restored). errors[] \
            names the field when there is one. The same request will fail again until the other data changes.",
    },
    ProblemType {
        code: "version_conflict",
        status: "409",
        title: "Changed by someone else",
        description: "The record changed since the version the change was based on (If-Match, or a version \
            member). current holds the record as it is now (when the caller may still read it) and \
            currentVersion its version: show the difference, then send the change again based on that version.",
    },
    ProblemType {
        code: "payload_too_large",
        status: "413",
        title: "Body too large",
        description: "JSON bodies are at most 1 MiB; a profile picture at most 5 MB.",
    },
    ProblemType {
        code: "unsupported_media_type",
        status: "415",
        title: "Not JSON",
        description: "The body must be JSON, sent with Content-Type: application/json (the profile picture \
            upload takes an image, or a multipart/form-data form).",
    },
    ProblemType {
        code: "account_locked",
        status: "423",
        title: "Account locked",
        description: "Too many failed sign-ins. Retry-After says how many seconds to wait.",
    },
    ProblemType {
        code: "rate_limited",
        status: "429",
        title: "Too many requests",
        description: "Slow down: Retry-After says how many seconds to wait, and the RateLimit-* headers how much \
            of the allowance is left.",
    },
    ProblemType {
        code: "internal",
        status: "500",
        title: "Internal error",
        description: "Something failed on the server. Nothing more is said to the client; the server's log has \
            the detail under the request's id (requestId, the x-request-id header).",
    },
    ProblemType {
        code: "timeout",
        status: "503",
        title: "Timed out or unavailable",
        description: "The request took too long, or the store could not be reached. Retry later.",
    },
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{t} · crm-rs</title></head>\n<body>\n{body}\n\
         <p><a href=\"/problems\">All problem types</a> · <a href=\"/api/docs/\">API reference</a></p>\n</body></html>\n",
        t = escape(title)
    );
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

async fn problem_index() -> Response {
    let items: String = PROBLEM_TYPES
        .iter()
        .map(|p| {
            format!(
                "<li><a href=\"/problems/{c}\"><code>{c}</code></a> ({s}): {t}</li>\n",
                c = p.code,
                s = p.status,
                t = escape(p.title)
            )
        })
        .collect();
    page(
        "Problem types",
        &format!(
            "<h1>Problem types</h1>\n<p>Errors are answered as application/problem+json (RFC 9457); their \
             <code>type</code> is one of these pages and <code>code</code> its last segment.</p>\n<ul>\n{items}</ul>"
        ),
    )
}

async fn problem_page(Path(code): Path<String>) -> Response {
    match PROBLEM_TYPES.iter().find(|p| p.code == code) {
        Some(p) => page(
            p.title,
            &format!(
                "<h1>{t}</h1>\n<p><code>type: /problems/{c}</code> · <code>code: {c}</code> · HTTP {s}</p>\n<p>{d}</p>",
                t = escape(p.title),
                c = p.code,
                s = p.status,
                d = escape(p.description)
            ),
        ),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no problem type '{}'", escape(&code)))
            .into_response(),
    }
}
