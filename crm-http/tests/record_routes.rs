//! The record and user routes in process: success, validation, 401, 403, 404 for what
//! is out of scope, 409 on a stale version, lists with filters and cursors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::{json, Value};

struct World {
    app: App,
    admin: String,
    rep: String,
    other: String,
    rep_id: String,
}

async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let team = app.call(Method::POST, "/api/teams", Some(&admin), Some(json!({"name": "North"}))).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let mut ids = Vec::new();
    for name in ["rep", "other"] {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        assert!(u.body.get("passwordHash").is_none());
        ids.push(u.body["id"].as_str().unwrap().to_string());
    }
    let rep = app.token("rep", PASSWORD).await;
    let other = app.token("other", PASSWORD).await;
    World { app, admin, rep, other, rep_id: ids[0].clone() }
}

#[tokio::test]
async fn contacts_crud_scope_versions_and_lists() {
    let w = world().await;
    let app = &w.app;
    let c = app
        .call(
            Method::POST,
            "/api/contacts",
            Some(&w.rep),
            Some(json!({"name": "Ann Lee", "email": "Ann@Acme.com", "lifecycleStage": "lead"})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let id = c.body["id"].as_str().unwrap().to_string();
    assert_eq!(c.headers[header::LOCATION].to_str().unwrap(), format!("/api/contacts/{id}"));
    assert_eq!((c.body["email"].clone(), c.body["version"].clone()), (json!("ann@acme.com"), json!(1)));
    let path = format!("/api/contacts/{id}");

    // Validation, unknown fields, no token.
    let bad = app.call(Method::POST, "/api/contacts", Some(&w.rep), Some(json!({"name": "", "email": "nope"}))).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["email", "name"]);
    assert_problem(
        &app.call(
            Method::POST,
            "/api/contacts",
            Some(&w.rep),
            Some(json!({"name": "X", "version": 3, "hacked": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    assert_problem(&app.call(Method::GET, &path, None, None).await, StatusCode::UNAUTHORIZED, "unauthenticated");

    // Another user's record is not found, not forbidden.
    assert_problem(&app.call(Method::GET, &path, Some(&w.other), None).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(
        &app.call(Method::PATCH, &path, Some(&w.other), Some(json!({"jobTitle": "x"}))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(app.call(Method::GET, &path, Some(&w.admin), None).await.status, StatusCode::OK);

    // Versions: If-Match, or the body's version.
    let stale =
        app.with_headers(Method::PUT, &path, &w.rep, &[("if-match", "\"7\"")], json!({"jobTitle": "CTO"})).await;
    assert_problem(&stale, StatusCode::CONFLICT, "version_conflict");
    assert_eq!(stale.body["currentVersion"], 1);
    let ok = app.with_headers(Method::PATCH, &path, &w.rep, &[("if-match", "\"1\"")], json!({"jobTitle": "CTO"})).await;
    assert_eq!((ok.status, ok.body["version"].clone()), (StatusCode::OK, json!(2)));
    let body_version = app.call(Method::PUT, &path, Some(&w.rep), Some(json!({"jobTitle": "CEO", "version": 1}))).await;
    assert_problem(&body_version, StatusCode::CONFLICT, "version_conflict");
    assert_problem(
        &app.with_headers(Method::PUT, &path, &w.rep, &[("if-match", "abc")], json!({})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );

    // Lists: filter, search, cursor, count; bad ones are 400 naming the problem.
    for i in 0..3 {
        app.call(
            Method::POST,
            "/api/contacts",
            Some(&w.rep),
            Some(json!({"name": format!("Bo {i}"), "lifecycleStage": "customer"})),
        )
        .await;
    }
    let page = app
        .call(
            Method::GET,
            "/api/contacts?filter=lifecycleStage%5Beq%5D:customer&limit=2&count=true&sort=name",
            Some(&w.rep),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!((page.body["data"].as_array().unwrap().len(), page.body["totalCount"].clone()), (2, json!(3)));
    assert_eq!(page.body["pageInfo"]["hasNextPage"], true);
    let cursor = page.body["pageInfo"]["endCursor"].as_str().unwrap();
    let next = app
        .call(
            Method::GET,
            &format!("/api/contacts?filter=lifecycleStage%5Beq%5D:customer&limit=2&sort=name&after={cursor}"),
            Some(&w.rep),
            None,
        )
        .await;
    assert_eq!(next.body["data"][0]["name"], "Bo 2");
    assert_eq!(app.call(Method::GET, "/api/contacts", Some(&w.other), None).await.body["data"], json!([]));
    let bad_field = app.call(Method::GET, "/api/contacts?filter=shoeSize%5Beq%5D:9", Some(&w.rep), None).await;
    assert_problem(&bad_field, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(bad_field.body.to_string().contains("shoeSize"));
    assert_problem(
        &app.call(Method::GET, "/api/contacts?colour=red", Some(&w.rep), None).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
    let search =
        app.call(Method::POST, "/api/contacts/search", Some(&w.rep), Some(json!({"q": "ann", "limit": 10}))).await;
    assert_eq!(search.body["data"][0]["id"], json!(id));

    // Soft delete, hidden, restore needs a manager or admin.
    let del = app.with_headers(Method::DELETE, &path, &w.rep, &[("if-match", "\"2\"")], Value::Null).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_problem(&app.call(Method::GET, &path, Some(&w.rep), None).await, StatusCode::NOT_FOUND, "not_found");
    let restored = app.call(Method::POST, &format!("{path}/restore"), Some(&w.admin), None).await;
    assert_eq!((restored.status, restored.body["deletedAt"].clone()), (StatusCode::OK, Value::Null));
}

#[tokio::test]
async fn deals_tasks_companies_and_teams() {
    let w = world().await;
    let app = &w.app;
    let co = app
        .call(Method::POST, "/api/companies", Some(&w.rep), Some(json!({"name": "Acme", "domain": "acme.com"})))
        .await;
    assert_eq!(co.status, StatusCode::CREATED, "{}", co.body);
    let dup = app
        .call(Method::POST, "/api/companies", Some(&w.rep), Some(json!({"name": "Acme 2", "domain": "ACME.com"})))
        .await;
    assert_problem(&dup, StatusCode::CONFLICT, "conflict");
    let deal = app
        .call(
            Method::POST,
            "/api/deals",
            Some(&w.rep),
            Some(json!({"name": "Rollout", "amount": 100000, "currency": "EUR", "companyId": co.body["id"]})),
        )
        .await;
    assert_eq!((deal.status, deal.body["probability"].clone()), (StatusCode::CREATED, json!(10)));
    let did = deal.body["id"].as_str().unwrap();
    let moved =
        app.call(Method::PATCH, &format!("/api/deals/{did}"), Some(&w.rep), Some(json!({"stage": "closed_won"}))).await;
    assert_eq!((moved.status, moved.body["probability"].clone()), (StatusCode::OK, json!(100)), "{}", moved.body);
    let hist = app.call(Method::GET, &format!("/api/deals/{did}/history"), Some(&w.rep), None).await;
    assert_eq!(hist.body["data"].as_array().unwrap().len(), 2);
    assert_problem(
        &app.call(Method::GET, &format!("/api/deals/{did}/history"), Some(&w.other), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let pipes = app.call(Method::GET, "/api/pipelines", Some(&w.rep), None).await;
    assert_eq!(pipes.body["data"][0]["stages"].as_array().unwrap().len(), 6);

    let task = app
        .call(Method::POST, "/api/tasks", Some(&w.admin), Some(json!({"name": "Call Ann", "priority": "high"})))
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let tid = task.body["id"].as_str().unwrap();
    let assigned = app
        .call(
            Method::POST,
            &format!("/api/tasks/{tid}/assign"),
            Some(&w.admin),
            Some(json!({"assignedUser": w.rep_id})),
        )
        .await;
    assert_eq!((assigned.status, assigned.body["assignedUser"].clone()), (StatusCode::OK, json!(w.rep_id)));
    let seen = app.call(Method::GET, &format!("/api/tasks/{tid}"), Some(&w.rep), None).await;
    assert_eq!(seen.status, StatusCode::OK, "the assignee sees the task");
    let done = app.call(Method::POST, &format!("/api/tasks/{tid}/complete"), Some(&w.rep), None).await;
    assert_eq!(done.body["status"], "done");

    assert_problem(
        &app.call(Method::POST, "/api/teams", Some(&w.rep), Some(json!({"name": "South"}))).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn users_profile_settings_avatar_logs_and_lifecycle() {
    let w = world().await;
    let app = &w.app;
    let me = format!("/api/users/{}", w.rep_id);
    assert_problem(
        &app.call(Method::POST, "/api/users", Some(&w.rep), Some(json!({"username": "x1", "email": "x1@example.com"})))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let raise = app.call(Method::PATCH, &me, Some(&w.rep), Some(json!({"role": "admin"}))).await;
    assert_problem(&raise, StatusCode::FORBIDDEN, "forbidden");
    let s = app
        .call(
            Method::PUT,
            &format!("{me}/settings"),
            Some(&w.rep),
            Some(json!({"language": "fr", "timezone": "Europe/Paris"})),
        )
        .await;
    assert_eq!((s.status, s.body["language"].clone()), (StatusCode::OK, json!("fr")));
    let bad = app.call(Method::PUT, &format!("{me}/settings"), Some(&w.rep), Some(json!({"language": "xx"}))).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // A 2 MB PNG is over the JSON limit but within the avatar's.
    let mut png = Vec::new();
    let img = image_png(1200, 900);
    png.extend(img);
    let (status, _, body) = app.raw(Method::PUT, &format!("{me}/avatar"), Some(&w.rep), "image/png", png).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, headers, pic) =
        app.raw(Method::GET, &format!("{me}/avatar"), Some(&w.admin), "image/png", vec![]).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "image/png"));
    assert!(pic.starts_with(b"\x89PNG"));
    let (status, _, _) =
        app.raw(Method::PUT, &format!("{me}/avatar"), Some(&w.rep), "image/svg+xml", b"<svg/>".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let logs = app.call(Method::GET, &format!("{me}/logs?action=auth.login"), Some(&w.rep), None).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    assert!(!logs.body["data"].as_array().unwrap().is_empty());
    assert!(logs.body["data"].as_array().unwrap().iter().all(|e| e["action"] == "auth.login"));

    let sus = app.call(Method::POST, &format!("{me}/suspend"), Some(&w.admin), Some(json!({"reason": "review"}))).await;
    assert_eq!((sus.status, sus.body["status"].clone()), (StatusCode::OK, json!("suspended")));
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&w.rep), None).await.status, StatusCode::UNAUTHORIZED);
    let un = app.call(Method::POST, &format!("{me}/unsuspend"), Some(&w.admin), None).await;
    assert_eq!(un.body["status"], "active");
    let erased = app.call(Method::POST, &format!("{me}/erase"), Some(&w.admin), None).await;
    assert_eq!((erased.status, erased.body["status"].clone()), (StatusCode::OK, json!("erased")));
    assert!(erased.body["username"].as_str().unwrap().starts_with("erased-"));
}

fn image_png(w: u32, h: u32) -> Vec<u8> {
    // A noisy picture, so the PNG stays large (over 1 MiB).
    let mut seed = 12345u32;
    let img = image::ImageBuffer::from_fn(w, h, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = seed.to_be_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    let v = out.into_inner();
    assert!(v.len() > 1024 * 1024, "{}", v.len());
    v
}

#[tokio::test]
async fn idempotency_key_replays_and_refuses_another_body() {
    let w = world().await;
    let app = &w.app;
    let body = json!({"name": "Once Only"});
    let first =
        app.with_headers(Method::POST, "/api/contacts", &w.rep, &[("idempotency-key", "k-1")], body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again =
        app.with_headers(Method::POST, "/api/contacts", &w.rep, &[("idempotency-key", "k-1")], body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers[header::LOCATION], first.headers[header::LOCATION]);
    let list = app.call(Method::GET, "/api/contacts?q=once", Some(&w.rep), None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "created once");
    let other_body = app
        .with_headers(Method::POST, "/api/contacts", &w.rep, &[("idempotency-key", "k-1")], json!({"name": "Twice"}))
        .await;
    assert_problem(&other_body, StatusCode::CONFLICT, "conflict");
    // Keys belong to their caller: another user's k-1 is another key.
    let theirs = app.with_headers(Method::POST, "/api/contacts", &w.other, &[("idempotency-key", "k-1")], body).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.body["id"], first.body["id"]);
    // A refused request is remembered as refused.
    let bad = app
        .with_headers(Method::POST, "/api/contacts", &w.rep, &[("idempotency-key", "k-2")], json!({"name": ""}))
        .await;
    let bad_again = app
        .with_headers(Method::POST, "/api/contacts", &w.rep, &[("idempotency-key", "k-2")], json!({"name": ""}))
        .await;
    assert_eq!((bad.status, bad_again.status), (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(bad_again.headers["idempotent-replayed"], "true");
    // A login with a key is not remembered: its tokens never reach the database.
    let login = json!({"username": "rep", "password": PASSWORD});
    let a = app.raw(Method::POST, "/api/auth/login", None, "application/json", login.to_string().into_bytes()).await;
    assert_eq!(a.0, StatusCode::OK);
    let keyed = app.with_headers(Method::POST, "/api/auth/login", "", &[("idempotency-key", "login-1")], login).await;
    assert_eq!(keyed.status, StatusCode::OK);
    assert!(!keyed.headers.contains_key("idempotent-replayed"));
    let stored = app.crm.store().count(crm_core::EntityKind::IdempotencyKey, None, true).await.unwrap();
    assert_eq!(stored, 3, "k-1 for two callers and k-2; nothing for the login");
}

#[tokio::test]
async fn user_put_takes_password_and_clears_the_picture() {
    let w = world().await;
    let app = &w.app;
    let me = format!("/api/users/{}", w.rep_id);
    let no_current =
        app.call(Method::PUT, &me, Some(&w.rep), Some(json!({"password": "a fresh long passphrase 1"}))).await;
    assert_problem(&no_current, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(no_current.body["errors"][0]["field"], "currentPassword");
    let mine = app
        .call(
            Method::PUT,
            &me,
            Some(&w.rep),
            Some(json!({"password": "a fresh long passphrase 1", "currentPassword": PASSWORD})),
        )
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    app.token("rep", "a fresh long passphrase 1").await;
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&w.rep), None).await.status,
        StatusCode::OK,
        "the caller's session stays"
    );

    // An admin sets another's password: their sessions end.
    let other_id =
        app.call(Method::GET, "/api/auth/me", Some(&w.other), None).await.body["id"].as_str().unwrap().to_string();
    let by_rep = app
        .call(
            Method::PUT,
            &format!("/api/users/{other_id}"),
            Some(&w.rep),
            Some(json!({"password": "x long passphrase 22"})),
        )
        .await;
    assert_eq!(by_rep.status, StatusCode::FORBIDDEN, "setting another's password is for admins (like suspend)");
    let by_admin = app
        .call(
            Method::PUT,
            &format!("/api/users/{other_id}"),
            Some(&w.admin),
            Some(json!({"password": "set by the admin 2026"})),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.body);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&w.other), None).await.status, StatusCode::UNAUTHORIZED);
    app.token("other", "set by the admin 2026").await;

    let (status, _, _) = app.raw(Method::PUT, &format!("{me}/avatar"), Some(&w.rep), "image/png", tiny_png()).await;
    assert_eq!(status, StatusCode::OK);
    let cleared = app.call(Method::PUT, &me, Some(&w.rep), Some(json!({"profilePicture": null}))).await;
    assert_eq!((cleared.status, cleared.body["profilePicture"].clone()), (StatusCode::OK, Value::Null));
    let (status, _, _) = app.raw(Method::GET, &format!("{me}/avatar"), Some(&w.rep), "image/png", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(
        &app.call(Method::PUT, &me, Some(&w.rep), Some(json!({"colour": "red"}))).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    );
}

/// A profile form's change (name, picture, password) is one change: a refused password
/// leaves the name and the picture as they were (they used to be written first, each in
/// a changeset of its own), and an accepted one is one audit event with the whole diff.
#[tokio::test]
async fn a_profile_update_is_all_or_nothing() {
    let w = world().await;
    let app = &w.app;
    let me = format!("/api/users/{}", w.rep_id);
    let (status, _, _) = app.raw(Method::PUT, &format!("{me}/avatar"), Some(&w.rep), "image/png", tiny_png()).await;
    assert_eq!(status, StatusCode::OK);
    let (admin, path) = (&w.admin, &me);
    let unchanged = |why: &'static str| async move {
        let now = app.call(Method::GET, path, Some(admin), None).await;
        assert_eq!(now.body["username"], "rep", "{why}: {}", now.body);
        assert!(now.body["profilePicture"].is_string(), "{why}: {}", now.body);
    };
    let weak = app
        .call(
            Method::PUT,
            &me,
            Some(&w.rep),
            Some(json!({"username": "rep2", "profilePicture": null, "password": "short", "currentPassword": PASSWORD})),
        )
        .await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(weak.body["errors"][0]["field"], "password", "{}", weak.body);
    unchanged("a weak password").await;
    let wrong = app
        .call(
            Method::PUT,
            &me,
            Some(&w.rep),
            Some(json!({"username": "rep2", "profilePicture": null, "password": "a fresh long passphrase 1", "currentPassword": "not it at all"})),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(wrong.body["errors"][0]["field"], "currentPassword", "{}", wrong.body);
    unchanged("a wrong current password").await;
    let taken = app
        .call(
            Method::PUT,
            &me,
            Some(&w.rep),
            Some(json!({"username": "other", "profilePicture": null, "password": "a fresh long passphrase 1", "currentPassword": PASSWORD})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    unchanged("a name in use").await;
    app.token("rep", PASSWORD).await;

    let all = app
        .call(
            Method::PUT,
            &me,
            Some(&w.rep),
            Some(json!({"username": "rep2", "profilePicture": null, "password": "a fresh long passphrase 1", "currentPassword": PASSWORD})),
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!((all.body["username"].clone(), all.body["profilePicture"].clone()), (json!("rep2"), Value::Null));
    app.token("rep2", "a fresh long passphrase 1").await;
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&w.rep), None).await.status,
        StatusCode::OK,
        "the caller's session stays"
    );
    let events = app.call(Method::GET, &format!("/api/audit?entity={}", w.rep_id), Some(&w.admin), None).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    let actions: Vec<&str> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    let changed: Vec<&&str> = actions
        .iter()
        .filter(|a| a.starts_with("user.password") || **a == "user.updated" || **a == "user.avatar_removed")
        .collect();
    assert_eq!(changed, [&"user.password_changed"], "one event for the whole change: {actions:?}");
    let event =
        events.body["data"].as_array().unwrap().iter().find(|e| e["action"] == "user.password_changed").unwrap();
    let diff = event["changes"].to_string();
    assert!(diff.contains("rep2") && diff.contains("profile"), "the whole diff: {diff}");
}

fn tiny_png() -> Vec<u8> {
    let img = image::ImageBuffer::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 100]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
