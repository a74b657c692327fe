//! Security fixes over HTTP, each with the audit events it leaves: an email change cannot
//! take an account over, and reset links die with the password or address they were
//! asked for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::{json, Value};

struct World {
    app: App,
    admin: String,
    rep_id: String,
}

async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let rep_id = u.body["id"].as_str().unwrap().to_string();
    World { app, admin, rep_id }
}

/// A link that no longer works: 422 naming `token`.
fn assert_dead_link(a: &Answer) {
    assert_problem(a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(a.body["errors"][0]["field"], "token", "{}", a.body);
    assert_eq!(a.body["errors"][0]["code"], "invalid_token", "{}", a.body);
}

async fn actions(w: &World, action: &str) -> Vec<Value> {
    let path = format!("/api/users/{}/logs?action={action}", w.rep_id);
    let a = w.app.call(Method::GET, &path, Some(&w.admin), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_stolen_access_token_cannot_change_the_accounts_email() {
    let w = world().await;
    let app = &w.app;
    let stolen = app.token("rep", PASSWORD).await;
    let me = format!("/api/users/{}", w.rep_id);
    // The token alone is not enough, nor a wrong password.
    let a = app.call(Method::PATCH, &me, Some(&stolen), Some(json!({"email": "evil@attacker.test"}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(a.body["errors"][0]["field"], "currentPassword", "{}", a.body);
    let a = app
        .call(
            Method::PATCH,
            &me,
            Some(&stolen),
            Some(json!({"email": "evil@attacker.test", "currentPassword": "guess"})),
        )
        .await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(a.body["errors"][0]["field"], "currentPassword");
    assert_eq!(actions(&w, "user.email_change_denied").await.len(), 1);
    let now = app.call(Method::GET, "/api/auth/me", Some(&stolen), None).await;
    assert_eq!(now.body["email"], "rep@example.com");
    // Nothing reached the attacker's address; the reset link still goes to the owner.
    assert!(app.mails_to("evil@attacker.test").await.is_empty());
    app.post("/api/auth/password/forgot", json!({"email": "evil@attacker.test"})).await;
    assert!(app.mails_to("evil@attacker.test").await.is_empty());
}

#[tokio::test]
async fn a_new_address_takes_over_only_once_its_link_is_followed() {
    let w = world().await;
    let app = &w.app;
    let session = app.token("rep", PASSWORD).await;
    let other_session = app.token("rep", PASSWORD).await;
    let me = format!("/api/users/{}", w.rep_id);
    // A reset link asked for before the change.
    app.post("/api/auth/password/forgot", json!({"email": "rep@example.com"})).await;
    let old_reset = app.mailed_token("rep@example.com").await;

    let a = app
        .call(
            Method::PATCH,
            &me,
            Some(&session),
            Some(json!({"email": "Rep@New.example", "currentPassword": PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["email"], "rep@example.com", "pending until confirmed");
    assert_eq!(actions(&w, "user.email_change_requested").await.len(), 1);
    // The old address is told, and stays the login and reset address meanwhile.
    let notice = app.mails_to("rep@example.com").await;
    let (subject, text) = notice.last().unwrap();
    assert!(subject.contains("address") && text.contains("rep@new.example") && !text.contains("token="), "{text}");
    assert_eq!(
        app.post("/api/auth/login", json!({"username": "rep@new.example", "password": PASSWORD})).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/auth/login", json!({"username": "rep@example.com", "password": PASSWORD})).await.status,
        StatusCode::OK
    );

    // The link sent to the new address completes it: every session ends.
    let link = app.mailed_token("rep@new.example").await;
    let done = app.post("/api/auth/verify-email", json!({"token": link})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["email"], "rep@new.example");
    assert_eq!(actions(&w, "user.email_changed").await.len(), 1);
    for t in [&session, &other_session] {
        assert_problem(
            &app.call(Method::GET, "/api/auth/me", Some(t), None).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    assert_dead_link(&app.post("/api/auth/verify-email", json!({"token": link})).await);
    assert_eq!(
        app.post("/api/auth/login", json!({"username": "rep@new.example", "password": PASSWORD})).await.status,
        StatusCode::OK
    );
    // The reset link sent to the old address before the change no longer works.
    let reset = app
        .post("/api/auth/password/reset", json!({"token": old_reset, "password": "a brand new passphrase 42"}))
        .await;
    assert_dead_link(&reset);
}

#[tokio::test]
async fn a_reset_link_asked_for_before_a_password_change_stops_working() {
    let w = world().await;
    let app = &w.app;
    app.post("/api/auth/password/forgot", json!({"email": "rep@example.com"})).await;
    let early = app.mailed_token("rep@example.com").await;
    let session = app.token("rep", PASSWORD).await;
    let changed = app
        .call(
            Method::POST,
            "/api/auth/password/change",
            Some(&session),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "another fine passphrase 7"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let reset =
        app.post("/api/auth/password/reset", json!({"token": early, "password": "an attacker's passphrase 9"})).await;
    assert_dead_link(&reset);
    // The same after an admin sets the password, and after a reset: the other links die.
    app.post("/api/auth/password/forgot", json!({"email": "rep@example.com"})).await;
    let first = app.mailed_token("rep@example.com").await;
    app.post("/api/auth/password/forgot", json!({"email": "rep@example.com"})).await;
    let second = app.mailed_token("rep@example.com").await;
    assert_ne!(first, second);
    let used =
        app.post("/api/auth/password/reset", json!({"token": second, "password": "the owner's passphrase 11"})).await;
    assert_eq!(used.status, StatusCode::NO_CONTENT, "{}", used.body);
    let stale =
        app.post("/api/auth/password/reset", json!({"token": first, "password": "an attacker's passphrase 9"})).await;
    assert_dead_link(&stale);
    app.post("/api/auth/password/forgot", json!({"email": "rep@example.com"})).await;
    let before_admin = app.mailed_token("rep@example.com").await;
    let set = app
        .call(
            Method::PATCH,
            &format!("/api/users/{}", w.rep_id),
            Some(&w.admin),
            Some(json!({"password": "set by the admin 12 ok"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let stale = app
        .post("/api/auth/password/reset", json!({"token": before_admin, "password": "an attacker's passphrase 9"}))
        .await;
    assert_dead_link(&stale);
}

#[tokio::test]
async fn an_admin_changes_another_users_address_at_once_and_the_old_one_is_told() {
    let w = world().await;
    let app = &w.app;
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/users/{}", w.rep_id),
            Some(&w.admin),
            Some(json!({"email": "rep@fixed.example"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["email"], "rep@fixed.example");
    assert!(a.body["emailVerifiedAt"].is_null());
    let told = app.mails_to("rep@example.com").await;
    assert!(told.iter().any(|(_, text)| text.contains("rep@fixed.example")), "{told:?}");
    let link = app.mailed_token("rep@fixed.example").await;
    let done = app.post("/api/auth/verify-email", json!({"token": link})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body["emailVerifiedAt"].is_string());
}

#[tokio::test]
async fn a_csv_export_never_carries_a_live_formula() {
    let w = world().await;
    let app = &w.app;
    for name in ["=HYPERLINK(\"https://evil.example\",\"click\")", "+1+1", "@SUM(A1)", "-2+3", "\tTabbed", "Plain Co"] {
        let a = app.call(Method::POST, "/api/companies", Some(&w.admin), Some(json!({"name": name, "size": -1}))).await;
        assert!(a.status == StatusCode::CREATED || a.status == StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
        if a.status != StatusCode::CREATED {
            // A name the record rules refuse (a tab) cannot reach an export anyway.
            let a = app.call(Method::POST, "/api/companies", Some(&w.admin), Some(json!({"name": name.trim()}))).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        }
    }
    let spec = json!({"source": "companies", "fields": ["name"], "sort": "name"});
    let (status, _, body) = app
        .raw(
            Method::POST,
            "/api/reports/run?format=csv",
            Some(&w.admin),
            "application/json",
            spec.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let csv = String::from_utf8(body).unwrap();
    // One column, one line a row (no cell here holds a line break): a quoted cell is
    // unquoted, its doubled quotes undoubled.
    let cells: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| match l.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => l.to_string(),
        })
        .collect();
    assert!(cells.iter().any(|c| c.starts_with("'=HYPERLINK(")), "{csv}");
    for cell in &cells {
        assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "a live formula in {cell:?}:\n{csv}");
    }
    assert!(cells.contains(&"Plain Co".to_string()) && cells.contains(&"'+1+1".to_string()), "{csv}");
}

/// An answer too large to keep, or not text, still goes back whole under an
/// `Idempotency-Key`; it is just not kept, so a repeat runs again and answers whole too
/// (a large answer used to come back empty, and a binary one was replayed mangled).
#[tokio::test]
async fn idempotent_requests_get_their_whole_answer() {
    let w = world().await;
    let app = &w.app;
    let admin = app.crm.users().by_login("admin").await.unwrap().unwrap().actor();
    // Some 1.7 MiB of contacts for a custom report to answer.
    let padding = "x".repeat(180);
    for batch in 0..8 {
        let inputs = (0..1000)
            .map(|i| crm_core::service::NewContact {
                name: format!("Person{batch}-{i} {padding}"),
                ..Default::default()
            })
            .collect();
        app.crm.contacts().create_many(&admin, inputs).await.unwrap();
    }
    let spec = json!({"source": "contacts", "fields": ["id", "first_name", "last_name"]});
    let run = |key: &'static str, format: &'static str| {
        let spec = spec.clone();
        let token = w.admin.clone();
        async move {
            app.raw_with(
                Method::POST,
                &format!("/api/reports/run?format={format}"),
                &token,
                &[("idempotency-key", key)],
                spec.to_string().into_bytes(),
            )
            .await
        }
    };
    let (status, headers, body) = run("big-1", "csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() > 1024 * 1024, "the whole CSV comes back ({} bytes)", body.len());
    assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 8001, "a header and every row");
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = run("big-1", "csv").await;
    assert_eq!((status, again.len()), (StatusCode::OK, body.len()), "not kept, so it runs again, whole");
    assert!(!headers.contains_key("idempotent-replayed"));
    // A workbook is bytes, not text: never replayed as text.
    let (status, _, first) = run("xlsx-1", "xlsx").await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.starts_with(b"PK"), "a zip");
    let (status, _, second) = run("xlsx-1", "xlsx").await;
    assert_eq!(status, StatusCode::OK);
    // A workbook made again differs only in its creation time; a mangled one would have
    // lost its zip directory (the end record, `PK\x05\x06`, 22 bytes from the end).
    let whole = |b: &[u8]| b.starts_with(b"PK") && b.len() > 22 && b[b.len() - 22..].starts_with(b"PK\x05\x06");
    assert!(whole(&first) && whole(&second), "whole workbooks, not a mangled replay");
    assert!(second.len().abs_diff(first.len()) <= 16, "{} and {} bytes", first.len(), second.len());
}

/// Logs `who` in from `peer`, which says it forwards for `forwarded_for`.
async fn login_via(app: &App, peer: &str, forwarded_for: &str, who: &str) -> Answer {
    let body = json!({"username": who, "password": PASSWORD});
    app.call_from(peer, Method::POST, "/api/auth/login", &[("x-forwarded-for", forwarded_for)], Some(body)).await
}

/// The public routes behind a customer's pay or card link make the payment gateway do
/// something (an intent, a setup) on every call: counted per client address and per
/// link, whether or not the link is good, and refused past the quota. The pages
/// themselves and every other route are not counted here.
#[tokio::test]
async fn the_pay_and_card_links_reach_the_gateway_at_a_bounded_rate_per_address_and_per_link() {
    use crm_http::limit::{Quota, RateLimits};
    let gateway = Quota { limit: 3, window: std::time::Duration::from_secs(60) };
    let limits = RateLimits { gateway, ..RateLimits::default() };
    let proxies = crm_http::client::TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    let app = app_where(|s| s.with_limits(limits).with_trusted_proxies(proxies)).await;
    let via = |client: &'static str, path: String| {
        let app = &app;
        async move { app.call_from("10.0.0.2:5000", Method::POST, &path, &[("x-forwarded-for", client)], None).await }
    };

    // One address guessing links: three calls, then 429 on any of the three routes.
    for (i, route) in ["intent", "intent", "intent"].iter().enumerate() {
        let a = via("203.0.113.1", format!("/pay/guess{i}/{route}")).await;
        assert_ne!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
        assert_eq!(a.headers["ratelimit-limit"], "3");
    }
    let refused = via("203.0.113.1", "/card/guess9/setup".into()).await;
    assert_problem(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));

    // One link from many addresses: three calls, then 429 for a fourth address too.
    for (i, route) in ["setup", "saved", "setup"].iter().enumerate() {
        let a = via(["203.0.113.10", "203.0.113.11", "203.0.113.12"][i], format!("/card/shared-link/{route}")).await;
        assert_ne!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    }
    assert_problem(
        &via("203.0.113.13", "/card/shared-link/setup".into()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );

    // The refused address still opens pages, and reaches routes that do not ask the gateway.
    let page =
        app.call_from("10.0.0.2:5000", Method::GET, "/pay/guess0", &[("x-forwarded-for", "203.0.113.1")], None).await;
    assert_ne!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let health =
        app.call_from("10.0.0.2:5000", Method::GET, "/healthz", &[("x-forwarded-for", "203.0.113.1")], None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit_and_its_own_address_in_the_audit() {
    use crm_http::limit::{Quota, RateLimits};
    let per_ip = Quota { limit: 2, window: std::time::Duration::from_secs(60) };
    let limits = RateLimits { per_ip, ..RateLimits::default() };
    let proxies = crm_http::client::TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    let app = app_where(|s| s.with_limits(limits).with_trusted_proxies(proxies)).await;
    let admin = app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();

    // Two clients behind the proxy at 10.0.0.2: each has its own bucket.
    for _ in 0..2 {
        assert_eq!(login_via(&app, "10.0.0.2:5000", "203.0.113.1", "admin").await.status, StatusCode::OK);
    }
    assert_problem(
        &login_via(&app, "10.0.0.2:5000", "203.0.113.1", "admin").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    let other = login_via(&app, "10.0.0.2:5000", "203.0.113.2", "admin").await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);

    // A client that is no proxy cannot pick its address, nor a fresh bucket.
    for n in 0..2 {
        let a = login_via(&app, "198.51.100.7:5000", &format!("203.0.113.{}", 50 + n), "admin").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    assert_problem(
        &login_via(&app, "198.51.100.7:5000", "203.0.113.52", "admin").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );

    // The audit log names the clients, not the proxy.
    let token = other.body["accessToken"].as_str().unwrap();
    let path = format!("/api/users/{}/logs?action=auth.login&limit=100", admin.id);
    let logs = app.call(Method::GET, &path, Some(token), None).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    let mut ips: Vec<&str> =
        logs.body["data"].as_array().unwrap().iter().filter_map(|e| e["request"]["ip"].as_str()).collect();
    ips.sort_unstable();
    assert_eq!(ips, ["198.51.100.7", "198.51.100.7", "203.0.113.1", "203.0.113.1", "203.0.113.2"]);
}

#[tokio::test]
async fn answers_are_not_sniffed_cached_or_framed_and_https_servers_send_hsts() {
    let w = world().await;
    let login = w.app.post("/api/auth/login", json!({"username": "admin", "password": PASSWORD})).await;
    let me = w.app.call(Method::GET, "/api/auth/me", Some(&w.admin), None).await;
    let refused = w.app.call(Method::GET, "/api/auth/me", Some("not-a-token"), None).await;
    for a in [&login, &me, &refused] {
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
        assert_eq!(a.headers["cache-control"], "no-store", "answers carrying tokens or personal data");
        assert_eq!(a.headers["referrer-policy"], "no-referrer");
        assert!(a.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert!(!a.headers.contains_key("strict-transport-security"), "plain http: no HSTS");
    }
    // A page for people keeps its own policy and caching.
    let page = w.app.call(Method::GET, "/problems/not_found", None, None).await;
    assert_eq!(page.headers["cache-control"], "public, max-age=3600");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");

    let https = app_where(|s| s.with_public_url("https://crm.example.com")).await;
    let a = https.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(a.headers["strict-transport-security"], crm_http::headers::HSTS);
}

#[tokio::test]
async fn a_request_id_from_the_client_reaches_the_logs_only_when_it_is_plain_text() {
    let w = world().await;
    let kept =
        w.app.with_headers(Method::GET, "/api/auth/me", &w.admin, &[("x-request-id", "req-42")], json!({})).await;
    assert_eq!(kept.headers["x-request-id"], "req-42");
    for bad in ["<script>alert(1)</script>", &"x".repeat(300), "a b", "id\"; drop"] {
        let body = json!({"username": "admin", "password": "wrong password"});
        let a = w
            .app
            .call_from("127.0.0.1:5000", Method::POST, "/api/auth/login", &[("x-request-id", bad)], Some(body))
            .await;
        assert_problem(&a, StatusCode::UNAUTHORIZED, "unauthenticated");
        let id = a.headers["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a fresh id, not {id:?}");
    }
    let path = format!("/api/users/{}/logs?action=auth.login_failed&limit=100", kept.body["id"].as_str().unwrap());
    let logs = w.app.call(Method::GET, &path, Some(&w.admin), None).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    let events = logs.body["data"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{}", logs.body);
    for e in events {
        let id = e["request"]["requestId"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "the audit log keeps only the server's id, not {id:?}");
    }
}

#[tokio::test]
async fn a_role_without_export_sees_reports_but_takes_no_files_and_every_export_is_audited() {
    use crm_core::policy::{Action, Policy, Resource, Role, Scope};
    let mut policy = Policy::standard();
    policy.set(Role::User, Resource::Reports, Action::Export, Scope::None);
    let app = app_custom(|b| b.policy(policy), |s| s).await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    assert_eq!(app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await.status, StatusCode::CREATED);
    let rep = app.token("rep", PASSWORD).await;

    let on_screen = app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage", Some(&rep), None).await;
    assert_eq!(on_screen.status, StatusCode::OK, "{}", on_screen.body);
    for path in [
        "/api/reports/standard/r1_pipeline_by_stage?format=csv",
        "/api/reports/standard/r1_pipeline_by_stage?format=xlsx",
    ] {
        assert_problem(&app.call(Method::GET, path, Some(&rep), None).await, StatusCode::FORBIDDEN, "forbidden");
    }
    let spec = json!({"source": "companies", "fields": ["name"]});
    let custom = app.call(Method::POST, "/api/reports/run?format=parquet", Some(&rep), Some(spec.clone())).await;
    assert_problem(&custom, StatusCode::FORBIDDEN, "forbidden");

    // An admin may; the export is in the audit log with its format and size.
    let (status, _, _) = app
        .raw(
            Method::POST,
            "/api/reports/run?format=csv",
            Some(&admin),
            "application/json",
            spec.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let me = app.call(Method::GET, "/api/auth/me", Some(&admin), None).await;
    let path = format!("/api/users/{}/logs?action=report.exported", me.body["id"].as_str().unwrap());
    let logs = app.call(Method::GET, &path, Some(&admin), None).await;
    let events = logs.body["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", logs.body);
    assert_eq!(events[0]["changes"], json!({"report": "custom", "format": "csv", "rows": 0}));
}

#[tokio::test]
async fn a_plain_user_gives_records_and_tasks_to_nobody_beyond_their_reach() {
    let w = world().await;
    let app = &w.app;
    let body = json!({"username": "other", "email": "other@example.com", "password": PASSWORD});
    let other = app.call(Method::POST, "/api/users", Some(&w.admin), Some(body)).await;
    let other_id = other.body["id"].as_str().unwrap().to_string();
    let rep = app.token("rep", PASSWORD).await;

    // Assigning a task to someone else hands them the task: refused on every path.
    let given = json!({"name": "Call back", "assignedUser": other_id});
    let a = app.call(Method::POST, "/api/tasks", Some(&rep), Some(given.clone())).await;
    assert_problem(&a, StatusCode::FORBIDDEN, "forbidden");
    assert!(a.body["detail"].as_str().unwrap().contains("assignedUser"), "{}", a.body);
    let own = app.call(Method::POST, "/api/tasks", Some(&rep), Some(json!({"name": "Call back"}))).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    let task = format!("/api/tasks/{}", own.body["id"].as_str().unwrap());
    let a = app.call(Method::PATCH, &task, Some(&rep), Some(json!({"assignedUser": other_id}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN, "forbidden");
    let a =
        app.call(Method::POST, &format!("{task}/assign"), Some(&rep), Some(json!({"assignedUser": other_id}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN, "forbidden");
    // Nor can the record itself go to them.
    let a = app.call(Method::PATCH, &task, Some(&rep), Some(json!({"ownerId": other_id}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN, "forbidden");
    let company = json!({"name": "Acme", "ownerId": other_id});
    assert_problem(
        &app.call(Method::POST, "/api/companies", Some(&rep), Some(company.clone())).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // Nothing changed hands.
    let now = app.call(Method::GET, &task, Some(&rep), None).await;
    assert_eq!((now.body["assignedUser"].clone(), now.body["ownerId"].clone()), (Value::Null, json!(w.rep_id)));
    // Themselves, and an admin to anyone: fine.
    let a =
        app.call(Method::POST, &format!("{task}/assign"), Some(&rep), Some(json!({"assignedUser": w.rep_id}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = app.call(Method::POST, "/api/tasks", Some(&w.admin), Some(given)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(
        app.call(Method::POST, "/api/companies", Some(&w.admin), Some(company)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_admin_reads_the_whole_audit_log_and_checks_its_keyed_chain() {
    use crm_core::audit::{AuditKey, AuditKeys};
    let keys = AuditKeys::new(AuditKey::new(&[4; 32]).unwrap());
    let app = app_custom(|b| b.audit_keys(keys), |s| s).await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    let rep_id = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await.body["id"].clone();
    let rep = app.token("rep", PASSWORD).await;

    // Events without an actor: an unknown name's login, a forged token.
    app.post("/api/auth/login", json!({"username": "nobody", "password": "whatever it is"})).await;
    app.call(Method::GET, "/api/auth/me", Some("eyJhbGciOiJIUzI1NiJ9.e30.forged"), None).await;
    // A denied request is audited with its caller.
    let denied = app
        .call(
            Method::PATCH,
            &format!("/api/users/{}", rep_id.as_str().unwrap()),
            Some(&rep),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_problem(&denied, StatusCode::FORBIDDEN, "forbidden");

    let list = |q: &str| {
        let path = format!("/api/audit{q}");
        let (app, admin) = (&app, &admin);
        async move { app.call(Method::GET, &path, Some(admin), None).await }
    };
    let failed = list("?action=auth.login_failed").await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert!(failed.body["data"].as_array().unwrap().iter().any(|e| e["actorId"].is_null()), "{}", failed.body);
    let rejected = list("?action=auth.token_rejected").await;
    assert_eq!(rejected.body["data"].as_array().unwrap().len(), 1, "{}", rejected.body);
    let denials = list(&format!("?action=access.denied&actorId={}", rep_id.as_str().unwrap())).await;
    let denials = denials.body["data"].as_array().unwrap().clone();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["changes"]["method"], "PATCH");
    assert_eq!(denials[0]["changes"]["route"], "/api/users/{id}");
    // By record, by time, paged.
    let about_rep = list(&format!("?entity={}", rep_id.as_str().unwrap())).await;
    assert!(about_rep.body["data"].as_array().unwrap().iter().all(|e| e["entityId"] == rep_id));
    let users = list("?entity=user&from=2000-01-01T00:00:00Z&limit=2").await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 2, "{}", users.body);
    assert_eq!(users.body["pageInfo"]["hasNextPage"], true, "{}", users.body);
    assert!(list("?to=2000-01-01T00:00:00Z").await.body["data"].as_array().unwrap().is_empty());
    let bad = list("?from=yesterday").await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");

    // The chain: intact and keyed throughout.
    let v = app.call(Method::GET, "/api/audit/verify", Some(&admin), None).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!((v.body["intact"].clone(), v.body["unkeyed"].clone()), (json!(true), json!(0)), "{}", v.body);
    assert!(v.body["events"].as_u64().unwrap() >= 6, "{}", v.body);
    // A plain user reads their own events only, and cannot check the chain.
    let own = app.call(Method::GET, "/api/audit", Some(&rep), None).await;
    assert!(own.body["data"].as_array().unwrap().iter().all(|e| e["actorId"] == rep_id), "{}", own.body);
    assert_problem(
        &app.call(Method::GET, "/api/audit/verify", Some(&rep), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn a_storm_of_wrong_passwords_from_one_address_does_not_lock_the_owner_out() {
    let w = world().await;
    let app = &w.app;
    let login = |peer: &'static str, password: &'static str| {
        let body = json!({"username": "admin", "password": password});
        async move { app.call_from(peer, Method::POST, "/api/auth/login", &[], Some(body)).await }
    };
    for _ in 0..5 {
        assert_problem(
            &login("198.51.100.7:4000", "wrong wrong wrong").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    let waiting = login("198.51.100.7:4000", PASSWORD).await;
    assert_problem(&waiting, StatusCode::LOCKED, "account_locked");
    assert_eq!(waiting.headers["retry-after"], "60");
    // The owner, from their own address, is not kept out by someone else's guesses.
    let owner = login("203.0.113.5:4000", PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    // An unknown name answers the same way, step for step.
    let ghost = |password: &'static str| {
        let body = json!({"username": "no-such-admin", "password": password});
        async move { app.call_from("198.51.100.7:4000", Method::POST, "/api/auth/login", &[], Some(body)).await }
    };
    for _ in 0..5 {
        assert_problem(&ghost("wrong wrong wrong").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let ghost_waiting = ghost(PASSWORD).await;
    assert_problem(&ghost_waiting, StatusCode::LOCKED, "account_locked");
    assert_eq!(ghost_waiting.headers["retry-after"], "60");
}

#[tokio::test]
async fn confirming_a_change_with_the_password_waits_like_a_login() {
    let w = world().await;
    let app = &w.app;
    let rep = app.token("rep", PASSWORD).await;
    let path = format!("/api/users/{}", w.rep_id);
    let change = |password: &'static str| {
        let body = json!({"email": "rep.new@example.com", "currentPassword": password});
        let (path, rep) = (path.clone(), rep.clone());
        async move { app.call(Method::PATCH, &path, Some(&rep), Some(body)).await }
    };
    for _ in 0..5 {
        let a = change("not my password").await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(a.body["errors"][0]["field"], "currentPassword");
    }
    // Guessing the password through a stolen session stops like guessing it at login.
    let a = change(PASSWORD).await;
    assert_problem(&a, StatusCode::LOCKED, "account_locked");
    let a = app
        .call(
            Method::POST,
            "/api/auth/password/change",
            Some(&rep),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "another fine passphrase 7"})),
        )
        .await;
    assert_problem(&a, StatusCode::LOCKED, "account_locked");
}

#[tokio::test]
async fn a_user_runs_so_many_reports_at_once() {
    let slots = std::sync::Arc::new(crm_http::limit::ReportSlots::new(1));
    let shared = slots.clone();
    let app = app_where(move |mut s| {
        s.report_slots = shared;
        s
    })
    .await;
    let admin_user =
        app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let path = "/api/reports/standard/r1_pipeline_by_stage";
    // One report of theirs is running (held here): the next waits its turn.
    let running = slots.take(admin_user.id).await.unwrap();
    let busy = app.call(Method::GET, path, Some(&admin), None).await;
    assert_problem(&busy, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(busy.headers["retry-after"], "1");
    let spec = json!({"source": "companies", "fields": ["name"]});
    let custom = app.call(Method::POST, "/api/reports/run", Some(&admin), Some(spec)).await;
    assert_problem(&custom, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    drop(running);
    assert_eq!(app.call(Method::GET, path, Some(&admin), None).await.status, StatusCode::OK);
}

/// A template preview's page link (`htmlUrl`, public so the app can frame it): it shows
/// the email only while its signature holds and for ten minutes, for an account still
/// active; the page is sandboxed and may be framed by this origin only.
#[tokio::test]
async fn a_preview_link_is_signed_short_lived_and_sandboxed() {
    let clock = Arc::new(crm_core::clock::FakeClock::new(chrono::Utc::now()));
    let c = clock.clone();
    let app = common::app_custom(move |b| b.clock(c), |s| s).await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let mjml = "<mjml><mj-body><mj-section><mj-column><mj-text color=\"#c00\">Hello {{ contact.name | default(\"you\") }}</mj-text>\
</mj-column></mj-section></mj-body></mjml>";
    let tpl = app
        .call(
            Method::POST,
            "/api/campaign-templates",
            Some(&admin),
            Some(json!({"name": "N", "subject": "S", "mjml": mjml})),
        )
        .await;
    assert_eq!(tpl.status, StatusCode::CREATED, "{}", tpl.body);
    let path = format!("/api/campaign-templates/{}/preview", tpl.body["id"].as_str().unwrap());
    let preview = app.call(Method::POST, &path, Some(&admin), None).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let url = preview.body["htmlUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with("/campaign-preview/"), "{url}");

    let page = |url: String| {
        let app = &app;
        async move {
            let (status, headers, body) = app.raw(Method::GET, &url, None, "text/html", vec![]).await;
            (status, headers, String::from_utf8_lossy(&body).to_string())
        }
    };
    let (status, headers, html) = page(url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Hello you") && html.contains("#c00"), "the email's HTML, its style kept: {html}");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.starts_with("sandbox;") && csp.contains("frame-ancestors 'self'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");

    // Any part changed: another template, another user, a later end, another signature.
    let token = url.trim_start_matches("/campaign-preview/").to_string();
    // (The signature is `<key id>.<mac>`.)
    let parts: Vec<&str> = token.splitn(5, '.').collect();
    assert_eq!(parts.len(), 5, "{token}");
    let other = uuid::Uuid::now_v7().simple().to_string();
    let until: i64 = parts[3].parse().unwrap();
    for forged in [
        [other.as_str(), parts[1], parts[2], parts[3], parts[4]].join("."),
        [parts[0], parts[1], other.as_str(), parts[3], parts[4]].join("."),
        [parts[0], parts[1], parts[2], &(until + 3600).to_string(), parts[4]].join("."),
        [parts[0], parts[1], parts[2], parts[3], "AAAA"].join("."),
        "nonsense".to_string(),
    ] {
        let (status, _, _) = page(format!("/campaign-preview/{forged}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{forged}");
    }
    // Ten minutes on, the link is over.
    clock.advance(chrono::Duration::minutes(11));
    assert_eq!(page(url.clone()).await.0, StatusCode::NOT_FOUND, "an expired link");
    // A link stops working once its account is suspended.
    let admin = app.token("admin", PASSWORD).await;
    let body = json!({"username": "rep", "email": "rep@example.com", "password": PASSWORD});
    let rep = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
    assert_eq!(rep.status, StatusCode::CREATED, "{}", rep.body);
    let rep_token = app.token("rep", PASSWORD).await;
    let reps = app.call(Method::POST, &path, Some(&rep_token), None).await;
    assert_eq!(reps.status, StatusCode::OK, "a user may preview: {}", reps.body);
    let reps = reps.body["htmlUrl"].as_str().unwrap().to_string();
    assert_eq!(page(reps.clone()).await.0, StatusCode::OK);
    let suspend = format!("/api/users/{}/suspend", rep.body["id"].as_str().unwrap());
    let s = app.call(Method::POST, &suspend, Some(&admin), Some(json!({"reason": "test"}))).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(page(reps).await.0, StatusCode::NOT_FOUND, "a suspended account's link");
}
