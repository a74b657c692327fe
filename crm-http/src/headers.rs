//! The headers every answer carries for the client's safety, and the check of the
//! request id a client sends.
//!
//! - `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on everything;
//! - `Cache-Control: no-store` unless the route chose its own caching (tokens, personal
//!   data and problem documents are never kept by a browser or a shared cache);
//! - a `Content-Security-Policy` that loads nothing and may not be framed, unless the
//!   route set its own (the API reference and the problem pages do);
//! - `Strict-Transport-Security` when the public URL is `https://`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// What an answer without a policy of its own may load: nothing.
pub const DEFAULT_CSP: &str = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Two years, subdomains included (the value the preload list asks for).
pub const HSTS: &str = "max-age=63072000; includeSubDomains";
/// The longest request id kept.
pub const MAX_REQUEST_ID: usize = 128;

/// Adds the headers, as a middleware.
pub async fn secure(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    if state.https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
}

/// Is this a request id worth keeping? 1 to 128 characters of letters, digits and
/// `-_.:=+/@` (UUIDs, hex, base64, `Root=1-…` trace ids), nothing a log line or a
/// terminal would read as more than text.
pub fn valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:=+/@".contains(b))
}

/// Drops a request id the client sent that is not [`valid_request_id`], so that the
/// server makes one of its own: only checked ids reach the logs, the audit log and the
/// answer.
pub async fn check_request_id(mut req: Request, next: Next) -> Response {
    let mut sent = req.headers().get_all(crate::extract::REQUEST_ID).iter();
    let one_good = matches!((sent.next(), sent.next()), (Some(v), None) if valid_request_id(v.as_bytes()));
    if !one_good && req.headers().contains_key(crate::extract::REQUEST_ID) {
        req.headers_mut().remove(crate::extract::REQUEST_ID);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_plain_text() {
        assert!(valid_request_id(b"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(valid_request_id(b"Root=1-5759e988-bd862e3fe1be46a994272793"));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(&[b'a'; MAX_REQUEST_ID + 1]));
        assert!(!valid_request_id(b"a b"));
        assert!(!valid_request_id(b"<script>"));
        assert!(!valid_request_id("é".as_bytes()));
        assert!(!valid_request_id(b"a\x1b[31m"));
    }
}
