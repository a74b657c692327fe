//! The in-process test app shared by the route tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

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

pub const PASSWORD: &str = "correct horse battery staple";

pub struct App {
    /// The router.
    pub router: Router,
    /// The engine.
    pub crm: Crm,
    mail_dir: PathBuf,
    dir: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn app() -> App {
    app_with(crm_http::limit::RateLimits::default()).await
}

/// The app with these rate limits.
pub async fn app_with(limits: crm_http::limit::RateLimits) -> App {
    app_where(|s| s.with_limits(limits)).await
}

/// The app with its state adjusted.
pub async fn app_where(adjust: impl FnOnce(AppState) -> AppState) -> App {
    app_custom(|b| b, adjust).await
}

/// The app with its engine and its state adjusted.
pub async fn app_custom(
    engine: impl FnOnce(crm_core::CrmBuilder) -> crm_core::CrmBuilder,
    adjust: impl FnOnce(AppState) -> AppState,
) -> App {
    let dir = std::env::temp_dir().join(format!("crm-http-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let keys = JwtKeys::new(JwtConfig::default(), "k1", &[7u8; 32]).unwrap();
    let crm = engine(Crm::builder(store).auth(AuthSettings::with_keys(keys, Sealer::new(&[9; 32])))).build();
    App { router: router(adjust(AppState::new(crm.clone()))), crm, mail_dir: dir.join("mail"), dir }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl App {
    /// The URL of the app's SQLite database, for a second engine on the same data.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("t.db").display())
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
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

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, None, Some(body)).await
    }

    /// Sends the queued emails into the mail directory and returns the token of the
    /// newest one addressed to `to`.
    pub async fn mailed_token(&self, to: &str) -> String {
        let mails = self.mails_to(to).await;
        let text = &mails.iter().rev().find(|(_, text)| text.contains("?token=")).expect("a message with a link").1;
        let at = text.find("?token=").expect("a link");
        text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    /// Sends the queued emails into the mail directory and returns (subject, text) of
    /// every one addressed to `to`, oldest first.
    pub async fn mails_to(&self, to: &str) -> Vec<(String, String)> {
        let config = MailConfig {
            public_url: "https://crm.example.com".into(),
            from: "crm <no-reply@example.com>".parse().unwrap(),
            app_name: "crm-rs".into(),
        };
        let worker = MailWorker::new(self.crm.clone(), Arc::new(DirMailer::new(&self.mail_dir)), config);
        worker.run_once().await.unwrap();
        let mut found = Vec::new();
        let Ok(dir) = std::fs::read_dir(&self.mail_dir) else { return Vec::new() };
        for e in dir.flatten() {
            let raw = std::fs::read(e.path()).unwrap();
            let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to_addr = msg.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
            if to_addr != to {
                continue;
            }
            let subject = msg.subject().unwrap_or_default().to_string();
            let text = msg.body_text(0).unwrap().to_string();
            found.push((e.metadata().unwrap().modified().unwrap(), e.file_name(), subject, text));
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        found.into_iter().map(|(_, _, subject, text)| (subject, text)).collect()
    }
}

pub fn assert_problem(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(a.body["code"], code, "{}", a.body);
    assert_eq!(a.body["type"], format!("/problems/{code}"));
    assert_eq!(a.body["status"], status.as_u16());
    assert!(a.body["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{}", a.body);
    assert_eq!(a.headers["x-request-id"].to_str().unwrap(), a.body["requestId"]);
}

impl App {
    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        ctype: &str,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, ctype);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let res = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    /// The answer as the router gives it, its body not read yet.
    #[allow(dead_code)]
    pub async fn response(&self, method: Method, path: &str, token: &str, body: Vec<u8>) -> axum::response::Response {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap()
    }

    /// A request with headers.
    pub async fn with_headers(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Answer {
        let (status, headers, bytes) = self.raw_with(method, path, token, headers, body.to_string().into_bytes()).await;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, headers, body }
    }

    /// Logs in and answers the access token.
    pub async fn token(&self, who: &str, password: &str) -> String {
        let a = self.post("/api/auth/login", json!({"username": who, "password": password})).await;
        assert_eq!(a.status, StatusCode::OK, "login {who}: {}", a.body);
        a.body["accessToken"].as_str().unwrap().to_string()
    }
}

impl App {
    /// A request with a token, headers and a raw JSON body; the answer's raw bytes.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.into_body().collect().await.unwrap().to_bytes().to_vec())
    }
}

impl App {
    /// A request from a TCP peer, with headers and an optional JSON body.
    pub async fn call_from(
        &self,
        peer: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, headers, body }
    }
}
