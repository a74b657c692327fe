//! The auth routes in process (`oneshot`): status codes, problem documents, and the
//! whole registration flow with the confirmation email read back from the mail
//! directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use crm_core::auth::{AuthSettings, JwtConfig, JwtKeys, Sealer};
use crm_core::mail::{DirMailer, MailConfig, MailWorker};
use crm_core::Crm;
use crm_http::{router, AppState};
use crm_storage_sql::SqlStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

struct App {
    router: Router,
    crm: Crm,
    mail_dir: PathBuf,
    dir: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn app() -> App {
    let dir = std::env::temp_dir().join(format!("crm-http-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let keys = JwtKeys::new(JwtConfig::default(), "k1", &[7u8; 32]).unwrap();
    let crm = Crm::builder(store).auth(AuthSettings::with_keys(keys, Sealer::new(&[9; 32]))).build();
    App { router: router(AppState::new(crm.clone())), crm, mail_dir: dir.join("mail"), dir }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl App {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, headers, body }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, None, Some(body)).await
    }

    /// Sends the queued emails into the mail directory and returns the token of the
    /// newest one addressed to `to`.
    async fn mailed_token(&self, to: &str) -> String {
        let config = MailConfig {
            public_url: "https://crm.example.com".into(),
            from: "crm <no-reply@example.com>".parse().unwrap(),
            app_name: "crm-rs".into(),
        };
        let worker = MailWorker::new(self.crm.clone(), Arc::new(DirMailer::new(&self.mail_dir)), config);
        worker.run_once().await.unwrap();
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for e in std::fs::read_dir(&self.mail_dir).unwrap().flatten() {
            let raw = std::fs::read(e.path()).unwrap();
            let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to_addr = msg.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
            if to_addr != to {
                continue;
            }
            let text = msg.body_text(0).unwrap().to_string();
            let at = text.find("?token=").expect("a link");
            let token: String =
                text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            let modified = e.metadata().unwrap().modified().unwrap();
            if newest.as_ref().is_none_or(|(m, _)| modified >= *m) {
                newest = Some((modified, token));
            }
        }
        newest.expect("a message").1
    }
}

fn assert_problem(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(a.body["code"], code, "{}", a.body);
    assert_eq!(a.body["type"], format!("/problems/{code}"));
    assert_eq!(a.body["status"], status.as_u16());
    assert!(a.body["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{}", a.body);
    assert_eq!(a.headers["x-request-id"].to_str().unwrap(), a.body["requestId"]);
}

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
    assert_problem(&app.call(Method::GET, "/nope", None, None).await, StatusCode::NOT_FOUND, "not_found");
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
