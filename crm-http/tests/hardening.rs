//! Security fixes over HTTP, each with the audit events it leaves: an email change cannot
//! take an account over, and reset links die with the password or address they were
//! asked for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
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
    assert!(second.starts_with(b"PK") && second.len() == first.len(), "the same workbook, not a mangled replay");
}
