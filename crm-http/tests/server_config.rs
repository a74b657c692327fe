//! crm-server's configuration at work.
//!
//! Secrets out of the data directory: replicas given one seal key (`CRM_SEAL_KEY`, or a
//! file) deliver each other's queued mail, and a rotated key still opens what it sealed;
//! a delivered email's token leaves the database; the database, the secrets file and
//! mailed messages are readable by the server's user only.
//!
//! Third-party login: an OpenID Connect issuer found by discovery, Google and Facebook,
//! each ID token logging in once, with its nonce, and linking only with the password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use clap::Parser;
use crm_core::mail::MailWorker;
use crm_core::query::StoreQuery;
use crm_core::schema::EntityKind;
use crm_core::store::StoreExt;
use crm_http::config::ServerConfig;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const SEAL: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OLD_SEAL: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: ServerConfig,
}

fn config(args: &[&str]) -> ServerConfig {
    Cli::try_parse_from(std::iter::once("crm-server").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("crm-secrets-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()));
    let res = app.clone().oneshot(req.unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The `?token=` of the one `.eml` file in `dir`.
fn mailed_token(dir: &Path) -> String {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    assert_eq!(mode(&files[0]), 0o600, "a mailed message carries a live link");
    let raw = std::fs::read(&files[0]).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = msg.body_text(0).unwrap().to_string();
    let at = text.find("?token=").expect("a link");
    text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

#[tokio::test]
async fn replicas_sharing_a_seal_key_deliver_each_others_mail_and_its_link_works() {
    let dir = tmp();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    std::fs::write(dir.join("seal.key"), format!("{SEAL}\n")).unwrap();
    let jwt = "j".repeat(40);
    let audit = "a".repeat(40);
    let replica = |n: u8, seal: &[&str]| {
        let secrets = dir.join(format!("pod{n}.secrets.json")).display().to_string();
        let mail = dir.join(format!("mail{n}")).display().to_string();
        let mut args: Vec<&str> = vec!["--database-url", db.as_str(), "--secrets-file", secrets.as_str()];
        args.extend(["--mail-dir", mail.as_str(), "--jwt-secret", jwt.as_str(), "--audit-key", audit.as_str()]);
        args.extend(["--billing-key", "5a".repeat(32).leak()]);
        args.extend_from_slice(seal);
        config(&args)
    };
    // Pod 1 seals with the old key; pod 2 has rotated to the new one (from a file) and
    // keeps the old one for opening.
    let pod1 = replica(1, &["--seal-key", OLD_SEAL]);
    let key_file = dir.join("seal.key").display().to_string();
    let pod2 = replica(2, &["--seal-key-file", &key_file, "--seal-previous-keys", OLD_SEAL]);
    let store1 = pod1.store().await.unwrap();
    let crm1 = pod1.crm(store1.store()).unwrap();
    let store2 = pod2.store().await.unwrap();
    let crm2 = pod2.crm(store2.store()).unwrap();
    crm1.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let app1 = crm_http::router(crm_http::AppState::new(crm1.clone()));

    // Pod 1 queues a reset email; pod 2's worker sends it.
    let (status, _) = post(&app1, "/api/auth/password/forgot", json!({"email": "admin@example.com"})).await;
    assert!(status.is_success(), "{status}");
    let worker = MailWorker::new(crm2.clone(), pod2.mailer().unwrap(), pod2.mail_config().unwrap());
    let report = worker.run_once().await.unwrap();
    assert_eq!((report.sent, report.abandoned), (1, 0), "{report:?}");

    // The link works on pod 1.
    let token = mailed_token(&dir.join("mail2"));
    let reset = json!({"token": token, "password": "a brand new passphrase 42"});
    let (status, body) = post(&app1, "/api/auth/password/reset", reset).await;
    assert!(status.is_success(), "{status} {body}");

    // The delivered email's token is gone from the database.
    let q = StoreQuery::all(EntityKind::OutboxEvent, 1000);
    let rows = store1.store().list_as::<crm_core::outbox::OutboxEvent>(&q).await.unwrap();
    let sent: Vec<_> =
        rows.iter().filter(|e| e.topic == crm_core::mail::MAIL_TOPIC && e.delivered_at.is_some()).collect();
    assert_eq!(sent.len(), 1, "the reset email");
    assert!(sent[0].payload.get("sealedToken").is_none(), "{}", sent[0].payload);

    // Every key was given: no secrets file was written; the database is private. Both
    // pods keyed the audit chain alike.
    assert!(matches!(crm2.verify_audit_chain().await.unwrap(), crm_core::ChainStatus::Intact { unkeyed: 0, .. }));
    assert!(!dir.join("pod1.secrets.json").exists() && !dir.join("pod2.secrets.json").exists());
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("crm.db")), 0o600);
    store1.close().await;
    store2.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_generated_secrets_file_is_private_and_bad_keys_are_named() {
    let dir = tmp();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    let c = config(&["--database-url", &db]);
    c.auth().unwrap();
    let secrets = dir.join("crm.db.secrets.json");
    #[cfg(unix)]
    assert_eq!(mode(&secrets), 0o600);
    // The same keys the next time.
    let first = std::fs::read_to_string(&secrets).unwrap();
    c.auth().unwrap();
    assert_eq!(std::fs::read_to_string(&secrets).unwrap(), first);

    // A secrets file from before the audit key gets one, and keeps its other keys.
    let old = dir.join("old.json");
    std::fs::write(&old, format!("{{\"jwtSecret\": \"{}\", \"sealKey\": \"{SEAL}\"}}", "k".repeat(40))).unwrap();
    let c = config(&["--database-url", &db, "--secrets-file", old.to_str().unwrap()]);
    c.audit_keys().unwrap();
    let upgraded: Value = serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    assert_eq!((upgraded["sealKey"].as_str(), upgraded["auditKey"].as_str().map(str::len)), (Some(SEAL), Some(64)));
    #[cfg(unix)]
    assert_eq!(mode(&old), 0o600);

    // Nothing below writes beside the working directory's default database.
    let scratch = dir.join("scratch.json").display().to_string();
    let config = |args: &[&str]| config(&[&["--secrets-file", scratch.as_str()], args].concat());
    let field = |args: &[&str]| {
        let e = config(args).auth().err().unwrap_or_else(|| panic!("{args:?} accepted"));
        e.field_errors().first().map(|f| f.field.clone()).unwrap_or_else(|| e.to_string())
    };
    let j = "j".repeat(40);
    assert_eq!(field(&["--seal-key", "not hex", "--jwt-secret", &j]), "sealKey");
    assert_eq!(field(&["--seal-key", SEAL, "--jwt-secret", "short"]), "jwtSecret");
    assert_eq!(field(&["--seal-key", SEAL, "--jwt-secret", &j, "--seal-previous-keys", "abc"]), "sealPreviousKeys");
    assert_eq!(field(&["--seal-key", SEAL, "--seal-key-file", "/nonexistent", "--jwt-secret", &j]), "sealKeyFile");
    assert_eq!(field(&["--seal-key-file", "/nonexistent/key", "--jwt-secret", &j]), "sealKeyFile");
    let afield = |args: &[&str]| {
        let e = config(args).audit_keys().err().unwrap_or_else(|| panic!("{args:?} accepted"));
        e.field_errors().first().map(|f| f.field.clone()).unwrap_or_else(|| e.to_string())
    };
    let all = ["--seal-key", SEAL, "--jwt-secret", &j];
    assert_eq!(afield(&[&all[..], &["--audit-key", "short"]].concat()), "auditKey");
    let prev = [&all[..], &["--audit-key", &j, "--audit-previous-keys", "short"]].concat();
    assert_eq!(afield(&prev), "auditPreviousKeys");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--analytics-cache-mb` bounds the engine's snapshot cache: at 0 a second report on an
/// unchanged CRM reads the store again; by default the snapshot is kept.
#[tokio::test]
async fn the_analytics_cache_bound_reaches_the_engine() {
    use crm_core::analytics::Params;
    let dir = tmp();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    let secrets = dir.join("secrets.json").display().to_string();
    let base = ["--database-url", db.as_str(), "--secrets-file", secrets.as_str()];
    let store = config(&base).store().await.unwrap();
    let first = config(&base).crm(store.store()).unwrap();
    let admin = first.users().bootstrap_admin("admin", "admin@example.com").await.unwrap().actor();
    let company = crm_core::service::NewCompany { name: "Acme".into(), ..Default::default() };
    first.companies().create(&admin, company).await.unwrap();
    // Two reports on a new engine: how its snapshots were made.
    let reports_twice = |args: &[&str]| {
        let crm = config(&[&base[..], args].concat()).crm(store.store()).unwrap();
        let admin = admin.clone();
        async move {
            for _ in 0..2 {
                crm.standard_report(&admin, "r1_pipeline_by_stage", &Params::default()).await.unwrap();
            }
            (crm.config().analytics_cache_bytes, crm.analytics_snapshot_stats())
        }
    };
    let (bound, stats) = reports_twice(&["--analytics-cache-mb", "0"]).await;
    assert_eq!((bound, stats.loads, stats.hits), (Some(0), 2, 0), "nothing kept: {stats:?}");
    let (bound, stats) = reports_twice(&["--analytics-cache-mb", "64"]).await;
    assert_eq!((bound, stats.loads, stats.hits), (Some(64 << 20), 1, 1), "kept: {stats:?}");
    let (bound, stats) = reports_twice(&[]).await;
    assert_eq!((bound, stats.loads, stats.hits), (None, 1, 1), "kept by default: {stats:?}");
    let e = Cli::try_parse_from(["crm-server", "--analytics-cache-mb", "lots"]).err().expect("refused");
    assert!(e.to_string().contains("--analytics-cache-mb"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn post_with(app: &axum::Router, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn crm_server_logs_in_with_a_configured_oidc_issuer_once_per_token() {
    let idp = crm_tests::idp::LocalIdp::start().await;
    let dir = tmp();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    let secrets = dir.join("s.json").display().to_string();
    let base = idp.base();
    let c = config(&[
        "--database-url",
        &db,
        "--secrets-file",
        &secrets,
        "--oidc-issuer",
        &base,
        "--oidc-name",
        "acme",
        "--oidc-client-ids",
        "crm-web, crm-mobile",
        "--oidc-label",
        "Acme SSO",
        "--google-client-ids",
        "g-web",
    ]);
    let store = c.store().await.unwrap();
    let crm = c.engine(store.store()).await.unwrap();
    crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let app = crm_http::router(crm_http::AppState::new(crm.clone()));
    let now = chrono::Utc::now().timestamp();
    let token = |aud: &str, email: &str, verified: bool, nonce: &str| {
        let claims = json!({"iss": base, "aud": aud, "sub": format!("sub-{email}"), "email": email,
            "email_verified": verified, "iat": now, "exp": now + 600, "nonce": nonce,
            "jti": uuid::Uuid::now_v7().to_string()});
        idp.id_token(1, &claims)
    };
    let login = |t: String, nonce: &str| {
        let app = app.clone();
        let body = json!({"oauthToken": t, "nonce": nonce});
        async move { post_with(&app, "/api/auth/oauth/acme", None, body).await }
    };

    // The sign-in page's buttons: where each provider sends the browser, and what to ask.
    let res = app.clone().oneshot(Request::get("/api/auth/providers").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let links: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let link = |provider: &str, label: &str, url: &str, client: &str| {
        json!({"provider": provider, "label": label, "authorizeUrl": url, "clientId": client,
               "responseType": "id_token", "scope": "openid email profile"})
    };
    assert_eq!(
        links["data"],
        json!([
            link("acme", "Acme SSO", &format!("{base}/authorize"), "crm-web"),
            link("google", "Google", "https://accounts.google.com/o/oauth2/v2/auth", "g-web"),
        ])
    );

    // Either client id will do; the account is made, verified by the provider.
    let t = token("crm-mobile", "oscar@example.com", true, "n1");
    let (status, body) = login(t.clone(), "n1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "oscar@example.com");
    // The same token again, a nonce that differs, an audience not configured: refused.
    assert_eq!(login(t, "n1").await.0, StatusCode::UNAUTHORIZED, "a token logs in once");
    assert_eq!(login(token("crm-web", "oscar@example.com", true, "n1"), "n2").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(token("crm-other", "oscar@example.com", true, "n1"), "n1").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(token("crm-web", "oscar@example.com", true, "n3"), "n3").await.0, StatusCode::OK);
    // An address the provider has not verified makes a pending account, not a session.
    let (status, body) = login(token("crm-web", "una@example.com", false, "n4"), "n4").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("email_not_verified")), "{body}");
    // Google is configured too (this token is not Google's); other names are not.
    let (status, _) = post_with(&app, "/api/auth/oauth/google", None, json!({"oauthToken": "x.y.z"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_with(&app, "/api/auth/oauth/okta", None, json!({"oauthToken": "x.y.z"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Linking to an account with a password takes the password.
    let (_, pair) = post_with(&app, "/api/auth/login", None, json!({"username": "admin", "password": PASSWORD})).await;
    let access = pair["accessToken"].as_str().unwrap();
    let link = |password: Option<&str>| {
        let t = token("crm-web", "admin.elsewhere@example.org", true, "n5");
        let mut body = json!({"oauthToken": t, "nonce": "n5"});
        if let Some(p) = password {
            body["currentPassword"] = json!(p);
        }
        let app = app.clone();
        async move { post_with(&app, "/api/auth/oauth/acme/link", Some(access), body).await }
    };
    let (status, body) = link(None).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("currentPassword"))
    );
    let (status, body) = link(Some(PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], "acme");
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The field the error of these third-party login settings names (or its text).
async fn provider_error(secrets: &str, args: &[&str]) -> String {
    let args = [&["--secrets-file", secrets], args].concat();
    let e = config(&args).providers().await.err().unwrap_or_else(|| panic!("{args:?} accepted"));
    e.field_errors().first().map(|f| f.field.clone()).unwrap_or_else(|| e.to_string())
}

#[tokio::test]
async fn third_party_login_settings_name_their_mistakes() {
    let dir = tmp();
    let secrets = dir.join("s.json").display().to_string();
    let s = secrets.as_str();
    assert_eq!(provider_error(s, &["--facebook-app-id", "123"]).await, "facebookAppSecret");
    assert_eq!(provider_error(s, &["--facebook-app-secret", "s"]).await, "facebookAppId");
    assert_eq!(provider_error(s, &["--oidc-client-ids", "x"]).await, "oidcIssuer");
    assert_eq!(provider_error(s, &["--oidc-issuer", "https://login.example.com"]).await, "oidcClientIds");
    let plain_http = ["--oidc-issuer", "http://login.example.com", "--oidc-client-ids", "x"];
    assert_eq!(provider_error(s, &plain_http).await, "oidcIssuer");
    let idp = crm_tests::idp::LocalIdp::start().await;
    let other = format!("{}/realms/other", idp.base());
    let e = provider_error(s, &["--oidc-issuer", &other, "--oidc-client-ids", "x"]).await;
    assert!(e.contains("oidcIssuer") || e.contains("openid-configuration"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
