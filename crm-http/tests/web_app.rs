//! The web app as crm-server serves it: the pages at any app path, hashed assets cached
//! for good, a CSP without inline code, and the API's own 404s untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(app: &common::App, method: Method, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).to_string();
    (status, headers, body)
}

#[tokio::test]
async fn the_app_is_served_at_every_page_path() {
    let app = common::app().await;
    for path in ["/", "/contacts", "/verify-email?token=abc", "/reset-password?token=abc", "/accept-invitation?token=x"]
    {
        let (status, h, body) = get(&app, Method::GET, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8", "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{path}: the page is revalidated");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(body.contains(r#"<div id="root">"#), "{path}");
    }
    let (_, _, index) = get(&app, Method::GET, "/").await;
    let script = index.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script").to_string();
    assert!(script.starts_with("/assets/index-") && script.ends_with(".js"), "{script}");
    let (status, h, _) = get(&app, Method::GET, &script).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    let (status, h, _) = get(&app, Method::HEAD, "/contacts").await;
    assert_eq!((status, h[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "text/html; charset=utf-8"));
}

#[tokio::test]
async fn what_is_not_the_app_stays_a_404() {
    let app = common::app().await;
    for (method, path) in [
        (Method::GET, "/assets/index-00000000.js"),
        (Method::GET, "/robots-nope.txt"),
        (Method::GET, "/api/nope"),
        (Method::GET, "/api"),
        (Method::POST, "/contacts"),
        (Method::DELETE, "/"),
    ] {
        let (status, h, body) = get(&app, method.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(h[header::CONTENT_TYPE], "application/problem+json", "{method} {path}: {body}");
    }
}
