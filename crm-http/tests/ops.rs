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
    assert!(text.contains(r#"crm_delivery_backlog{consumer="webhook"} 0"#), "{text}");
    assert!(text.contains(r#"crm_delivery_oldest_seconds{consumer="mail"}"#), "{text}");
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

#[tokio::test]
async fn the_demo_seeds_a_living_crm_through_the_services() {
    use crm_http::demo::{seed, DemoSize, DEMO_PASSWORD};
    let app = app().await;
    let admin = app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let size = DemoSize { companies: 12, contacts: 240, deals: 30 };
    let steps = std::sync::atomic::AtomicU64::new(0);
    let report = seed(&app.crm, &admin.actor(), size, &|done, total, _| {
        assert!(done <= total);
        steps.store(done, std::sync::atomic::Ordering::SeqCst);
    })
    .await
    .unwrap();
    assert_eq!((report.companies, report.contacts, report.deals), (12, 240, 30));
    assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), 6 + 12 + 240 + 60);
    let token = app.token(&report.reps[1], DEMO_PASSWORD).await;
    let mine = app.call(Method::GET, "/api/deals?count=true&limit=1", Some(&token), None).await;
    assert!(mine.body["totalCount"].as_u64().unwrap() <= 30);
    let admin_token = app.token("admin", PASSWORD).await;
    let all = app.call(Method::GET, "/api/contacts?count=true&limit=1", Some(&admin_token), None).await;
    assert_eq!(all.body["totalCount"], 240);
    assert!(app.crm.verify_audit_chain().await.is_ok());
}
