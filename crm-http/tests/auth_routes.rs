//! The auth routes in process (`oneshot`): status codes, problem documents, and the
//! whole registration flow with the confirmation email read back from the mail
//! directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn registration_confirmation_login_refresh_logout() {
    let app = app().await;
    let reg = json!({"username": "ann", "email": "ann@example.com", "password": PASSWORD});
    let a = app.post("/api/auth/register", reg.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["status"], "pending");
    assert!(a.body.get("passwordHash").is_none(), "no hash on the wire");
    assert_eq!(a.headers[header::LOCATION].to_str().unwrap(), format!("/api/users/{}", a.body["id"].as_str().unwrap()));
    assert_problem(&app.post("/api/auth/register", reg).await, StatusCode::CONFLICT, "conflict");

    let login = json!({"username": "ann", "password": PASSWORD});
    assert_problem(&app.post("/api/auth/login", login.clone()).await, StatusCode::FORBIDDEN, "email_not_verified");
    let token = app.mailed_token("ann@example.com").await;
    let v = app.post("/api/auth/verify-email", json!({"token": token})).await;
    assert_eq!((v.status, v.body["status"].clone()), (StatusCode::OK, json!("active")));
    assert_problem(
        &app.post("/api/auth/verify-email", json!({"token": token})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let pair = app.post("/api/auth/login", login).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    assert_eq!((pair.body["tokenType"].clone(), pair.body["expiresIn"].clone()), (json!("Bearer"), json!(900)));
    let access = pair.body["accessToken"].as_str().unwrap().to_string();
    let refresh = pair.body["refreshToken"].as_str().unwrap().to_string();
    let me = app.call(Method::GET, "/api/auth/me", Some(&access), None).await;
    assert_eq!((me.status, me.body["username"].clone()), (StatusCode::OK, json!("ann")));
    let anon = app.call(Method::GET, "/api/auth/me", None, None).await;
    assert_problem(&anon, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(anon.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_problem(
        &app.call(Method::GET, "/api/auth/me", Some("not.a.jwt"), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    let sessions = app.call(Method::GET, "/api/auth/sessions", Some(&access), None).await;
    assert_eq!(sessions.body["data"][0]["current"], true);

    let next = app.post("/api/auth/refresh", json!({"refreshToken": refresh})).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_problem(
        &app.post("/api/auth/refresh", json!({"refreshToken": refresh})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // The reuse revoked the session: the new pair is dead too.
    let new_access = next.body["accessToken"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(new_access), None).await.status, StatusCode::UNAUTHORIZED);

    let again = app.post("/api/auth/login", json!({"username": "ann@example.com", "password": PASSWORD})).await;
    let access = again.body["accessToken"].as_str().unwrap().to_string();
    let out = app.call(Method::POST, "/api/auth/logout", Some(&access), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&access), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_requests_are_problem_documents() {
    let app = app().await;
    let unknown = app
        .post(
            "/api/auth/register",
            json!({"username": "x", "email": "x@example.com", "password": PASSWORD, "role": "admin"}),
        )
        .await;
    assert_problem(&unknown, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(unknown.body["detail"].as_str().unwrap().contains("role"), "{}", unknown.body);
    let weak =
        app.post("/api/auth/register", json!({"username": "bob", "email": "bob@example.com", "password": "bob"})).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(weak.body["errors"][0]["field"], "password");
    let syntax = app.call(Method::POST, "/api/auth/login", None, None).await;
    assert_eq!(syntax.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_problem(&app.call(Method::GET, "/api/nope", None, None).await, StatusCode::NOT_FOUND, "not_found");
    let big = json!({"username": "x".repeat(2 * 1024 * 1024), "password": "y"});
    assert_problem(&app.post("/api/auth/login", big).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((ready.status, ready.body["backend"].clone()), (StatusCode::OK, json!("sqlite")));
}

#[tokio::test]
async fn lockout_is_423_with_retry_after_and_forgot_never_tells() {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("root", "root@example.com", PASSWORD).await.unwrap();
    for _ in 0..5 {
        let a = app.post("/api/auth/login", json!({"username": "root", "password": "wrong wrong wrong"})).await;
        assert_problem(&a, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let locked = app.post("/api/auth/login", json!({"username": "root", "password": PASSWORD})).await;
    assert_problem(&locked, StatusCode::LOCKED, "account_locked");
    assert_eq!(locked.headers[header::RETRY_AFTER], "60");
    let known = app.post("/api/auth/password/forgot", json!({"email": "root@example.com"})).await;
    let unknown = app.post("/api/auth/password/forgot", json!({"email": "nobody@example.com"})).await;
    assert_eq!((known.status, &known.body), (StatusCode::ACCEPTED, &unknown.body));
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    // The reset link works even while locked, and lifts the lock.
    let token = app.mailed_token("root@example.com").await;
    let r =
        app.post("/api/auth/password/reset", json!({"token": token, "password": "a brand new passphrase 42"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let ok = app.post("/api/auth/login", json!({"username": "root", "password": "a brand new passphrase 42"})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_address_and_per_account() {
    use crm_http::limit::{Quota, RateLimits};
    use std::time::Duration;
    let minute = Duration::from_secs(60);
    let app = app_with(RateLimits {
        per_ip: Quota { limit: 8, window: minute },
        per_account: Quota { limit: 3, window: minute },
        ..RateLimits::default()
    })
    .await;
    let wrong = |who: &str| json!({"username": who, "password": "wrong wrong wrong"});
    let first = app.post("/api/auth/login", wrong("alice")).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.headers["ratelimit-limit"], "8");
    assert_eq!(first.headers["ratelimit-remaining"], "7");
    for _ in 0..2 {
        app.post("/api/auth/login", wrong("alice")).await;
    }
    let per_account = app.post("/api/auth/login", wrong("ALICE")).await;
    assert_problem(&per_account, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(per_account.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(app.post("/api/auth/login", wrong("bob")).await.status, StatusCode::UNAUTHORIZED, "another account");
    for _ in 0..3 {
        app.post("/api/auth/password/forgot", json!({"email": "x@example.com"})).await;
    }
    // (The fourth request for x@example.com would be refused per account too.)
    let per_ip = app.post("/api/auth/login", wrong("carol")).await;
    assert_problem(&per_ip, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(per_ip.headers["ratelimit-remaining"], "0");
    let retry: u64 = per_ip.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Other routes are not limited by it.
    assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
}
