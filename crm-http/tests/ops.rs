//! Operations: metrics, CORS from configuration, compression, request ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use crm_http::{router, AppState};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn metrics_count_requests_by_route_and_report_the_outbox() {
    let app = app().await;
    app.call(Method::GET, "/healthz", None, None).await;
    app.call(Method::GET, "/api/contacts/not-a-uuid", None, None).await;
    let req = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#), "{text}");
    assert!(text.contains(r#"route="/api/contacts/{id}""#), "routes are patterns, never raw paths: {text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("crm_outbox_backlog"), "{text}");
    assert!(text.contains("crm_store_up 1"), "{text}");
}

#[tokio::test]
async fn cors_only_for_configured_origins_and_gzip_when_asked() {
    let base = app().await;
    let app = router(AppState::new(base.crm.clone()).with_cors(vec!["https://app.example.com".into()]));
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/contacts")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .body(Body::empty())
            .unwrap()
    };
    let ok = app.clone().oneshot(preflight("https://app.example.com")).await.unwrap();
    assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    let evil = app.clone().oneshot(preflight("https://evil.example")).await.unwrap();
    assert!(!evil.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let none = base.router.clone().oneshot(preflight("https://app.example.com")).await.unwrap();
    assert!(!none.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "no CORS unless configured");

    let req = Request::builder().uri("/metrics").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    let req = Request::builder().uri("/healthz").header("x-request-id", "abc-123").body(Body::empty()).unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123", "a caller's request id is kept");
}
