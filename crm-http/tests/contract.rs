//! The API as a client meets it: every bad field named in `errors[]` in the client's
//! spelling, dates as people type them, version conflicts that carry the record, browser
//! uploads, erasure that stays final, the same status for the same problem, activity logs
//! only for those who may read them, and the pages for people (`/api/docs`, `/problems`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::{json, Value};

struct World {
    app: App,
    admin: String,
    rep: String,
    rep_id: String,
    manager: String,
    ids: Ids,
}

/// One record of each kind, for the update bodies.
struct Ids {
    contact: String,
    company: String,
    deal: String,
    task: String,
    interaction: String,
    team: String,
    report: String,
}

async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let team = app.call(Method::POST, "/api/teams", Some(&admin), Some(json!({"name": "North"}))).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let mut user_ids = Vec::new();
    for (name, role) in [("rep", "user"), ("boss", "manager")] {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "role": role, "teamId": team_id});
        let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        user_ids.push(u.body["id"].as_str().unwrap().to_string());
    }
    let rep = app.token("rep", PASSWORD).await;
    let manager = app.token("boss", PASSWORD).await;
    let make = |path: &'static str, body: Value| {
        let (app, rep) = (&app, rep.clone());
        async move {
            let a = app.call(Method::POST, path, Some(&rep), Some(body)).await;
            assert_eq!(a.status, StatusCode::CREATED, "{path}: {}", a.body);
            a.body["id"].as_str().unwrap().to_string()
        }
    };
    let contact = make("/api/contacts", json!({"name": "Ann Lee"})).await;
    let company = make("/api/companies", json!({"name": "Acme"})).await;
    let deal = make("/api/deals", json!({"name": "Big one", "amount": 1000})).await;
    let task = make("/api/tasks", json!({"name": "Call back"})).await;
    let interaction = make("/api/interactions", json!({"contactId": contact, "kind": "call"})).await;
    let report = make("/api/reports/saved", json!({"name": "Pipeline", "standard": "r1_pipeline_by_stage"})).await;
    let ids = Ids { contact, company, deal, task, interaction, team: team_id, report };
    World { app, admin, rep, rep_id: user_ids[0].clone(), manager, ids }
}

/// The field errors of an answer, as (field, code).
fn field_errors(a: &Answer) -> Vec<(String, String)> {
    a.body["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| (e["field"].as_str().unwrap_or("").to_string(), e["code"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_bad_body_field_is_named_in_the_clients_spelling() {
    let w = world().await;
    let app = &w.app;
    let i = &w.ids;
    let one = |kind: &str, id: &str| format!("/api/{kind}/{id}");
    let (contact, company, deal, task) =
        (one("contacts", &i.contact), one("companies", &i.company), one("deals", &i.deal), one("tasks", &i.task));
    let (interaction, team, report) =
        (one("interactions", &i.interaction), one("teams", &i.team), one("reports/saved", &i.report));
    let user = one("users", &w.rep_id);
    let settings = format!("{user}/settings");
    let suspend = format!("{user}/suspend");
    let ann = i.contact.as_str();
    // (who, method, path, body, the field named, its code)
    let admin = w.admin.as_str();
    let rep = w.rep.as_str();
    let table: Vec<(&str, Method, String, Value, &str, &str)> = vec![
        // Contacts.
        (rep, Method::POST, "/api/contacts".into(), json!({"email": "a@b.co"}), "name", "required"),
        (
            rep,
            Method::POST,
            "/api/contacts".into(),
            json!({"name": "A", "lifecycleStage": "vip"}),
            "lifecycleStage",
            "invalid_value",
        ),
        (rep, Method::POST, "/api/contacts".into(), json!({"name": 42}), "name", "invalid_type"),
        (
            rep,
            Method::POST,
            "/api/contacts".into(),
            json!({"name": "A", "jobTitle": {"x": 1}}),
            "jobTitle",
            "invalid_type",
        ),
        (rep, Method::POST, "/api/contacts".into(), json!({"name": "A", "tags": ["a", 3]}), "tags.1", "invalid_type"),
        (rep, Method::POST, "/api/contacts".into(), json!({"name": "A", "nickname": "x"}), "nickname", "unknown_field"),
        (rep, Method::PATCH, contact.clone(), json!({"lifecycleStage": "vip"}), "lifecycleStage", "invalid_value"),
        (rep, Method::PUT, contact.clone(), json!({"name": ["A"]}), "name", "invalid_type"),
        (rep, Method::PATCH, contact.clone(), json!({"companyId": "not-a-uuid"}), "companyId", "invalid_value"),
        // Companies.
        (rep, Method::POST, "/api/companies".into(), json!({"domain": "acme.com"}), "name", "required"),
        (rep, Method::POST, "/api/companies".into(), json!({"name": "A", "size": "big"}), "size", "invalid_type"),
        (
            rep,
            Method::POST,
            "/api/companies".into(),
            json!({"name": "A", "contactDetails": {"fax": "1"}}),
            "contactDetails.fax",
            "unknown_field",
        ),
        (rep, Method::PATCH, company.clone(), json!({"size": 12.5}), "size", "invalid_type"),
        // Deals.
        (rep, Method::POST, "/api/deals".into(), json!({"amount": 100}), "name", "required"),
        (rep, Method::POST, "/api/deals".into(), json!({"name": "D", "stage": "won"}), "stage", "invalid_value"),
        (rep, Method::POST, "/api/deals".into(), json!({"name": "D", "amount": 12.5}), "amount", "invalid_type"),
        (
            rep,
            Method::POST,
            "/api/deals".into(),
            json!({"name": "D", "expectedCloseDate": "2030-13-45"}),
            "expectedCloseDate",
            "invalid_value",
        ),
        (
            rep,
            Method::POST,
            "/api/deals".into(),
            json!({"name": "D", "products": [{"name": "a", "quantity": 1, "unitPrice": 1}, {"name": "b", "quantity": 1, "unitPrice": 1}, {"name": "c", "quantity": "two", "unitPrice": 1}]}),
            "products.2.quantity",
            "invalid_type",
        ),
        (rep, Method::PATCH, deal.clone(), json!({"stage": "won"}), "stage", "invalid_value"),
        (rep, Method::PATCH, deal.clone(), json!({"amount": "100"}), "amount", "invalid_type"),
        (
            rep,
            Method::PATCH,
            deal.clone(),
            json!({"expectedCloseDate": "2030-02-30"}),
            "expectedCloseDate",
            "invalid_value",
        ),
        // Tasks.
        (rep, Method::POST, "/api/tasks".into(), json!({"priority": "high"}), "name", "required"),
        (
            rep,
            Method::POST,
            "/api/tasks".into(),
            json!({"name": "T", "priority": "critical"}),
            "priority",
            "invalid_value",
        ),
        (
            rep,
            Method::POST,
            "/api/tasks".into(),
            json!({"name": "T", "dueDate": "2030-13-45"}),
            "dueDate",
            "invalid_value",
        ),
        (rep, Method::POST, "/api/tasks".into(), json!({"name": "T", "dueDate": 20300115}), "dueDate", "invalid_type"),
        (
            rep,
            Method::POST,
            "/api/tasks".into(),
            json!({"name": "T", "related": {"type": "lead", "id": ann}}),
            "related.type",
            "invalid_value",
        ),
        (rep, Method::PATCH, task.clone(), json!({"status": "finished"}), "status", "invalid_value"),
        (rep, Method::PATCH, task.clone(), json!({"dueDate": "2030-13-45"}), "dueDate", "invalid_value"),
        (rep, Method::PATCH, task.clone(), json!({"name": false}), "name", "invalid_type"),
        // Interactions.
        (rep, Method::POST, "/api/interactions".into(), json!({"kind": "call"}), "contactId", "required"),
        (
            rep,
            Method::POST,
            "/api/interactions".into(),
            json!({"contactId": ann, "kind": "fax"}),
            "kind",
            "invalid_value",
        ),
        (
            rep,
            Method::POST,
            "/api/interactions".into(),
            json!({"contactId": ann, "kind": "call", "occurredAt": "2030-13-45"}),
            "occurredAt",
            "invalid_value",
        ),
        (rep, Method::PATCH, interaction.clone(), json!({"occurredAt": "yesterday"}), "occurredAt", "invalid_value"),
        (rep, Method::PATCH, interaction.clone(), json!({"subject": 7}), "subject", "invalid_type"),
        // Teams.
        (admin, Method::POST, "/api/teams".into(), json!({"description": "x"}), "name", "required"),
        (admin, Method::PATCH, team.clone(), json!({"name": 1}), "name", "invalid_type"),
        // Saved reports.
        (
            rep,
            Method::POST,
            "/api/reports/saved".into(),
            json!({"standard": "r1_pipeline_by_stage"}),
            "name",
            "required",
        ),
        (
            rep,
            Method::POST,
            "/api/reports/saved".into(),
            json!({"name": "R", "standard": "r2_forecast_by_month", "parameters": {"asOf": "2030-13-45"}}),
            "parameters.asOf",
            "invalid_value",
        ),
        (
            rep,
            Method::POST,
            "/api/reports/saved".into(),
            json!({"name": "R", "standard": "r1_pipeline_by_stage", "chart": {"type": "pie", "x": "stage", "y": ["deals"]}}),
            "chart.type",
            "invalid_value",
        ),
        (rep, Method::PATCH, report.clone(), json!({"name": 3}), "name", "invalid_type"),
        // Users, their settings, the lifecycle, registration.
        (admin, Method::POST, "/api/users".into(), json!({"email": "x@example.com"}), "username", "required"),
        (
            admin,
            Method::POST,
            "/api/users".into(),
            json!({"username": "x", "email": "x@example.com", "role": "root"}),
            "role",
            "invalid_value",
        ),
        (admin, Method::PATCH, user.clone(), json!({"role": "root"}), "role", "invalid_value"),
        (admin, Method::PATCH, user.clone(), json!({"username": 5}), "username", "invalid_type"),
        (admin, Method::PATCH, user.clone(), json!({"password": 5}), "password", "invalid_type"),
        (admin, Method::PATCH, user.clone(), json!({"settings": {"language": 5}}), "settings.language", "invalid_type"),
        (admin, Method::PUT, settings.clone(), json!({"language": ["fr"]}), "language", "invalid_type"),
        (admin, Method::PUT, settings.clone(), json!({"colour": "red"}), "colour", "unknown_field"),
        (
            admin,
            Method::PATCH,
            settings.clone(),
            json!({"displayOptions": {"pageSize": "many"}}),
            "displayOptions.pageSize",
            "invalid_type",
        ),
        (admin, Method::POST, suspend.clone(), json!({"until": "2030-13-45"}), "until", "invalid_value"),
        (admin, Method::POST, suspend.clone(), json!({"until": true}), "until", "invalid_type"),
        (
            "",
            Method::POST,
            "/api/auth/register".into(),
            json!({"email": "x@example.com", "password": "p"}),
            "username",
            "required",
        ),
        ("", Method::POST, "/api/auth/login".into(), json!({"username": "x"}), "password", "required"),
        ("", Method::POST, "/api/auth/verify-email".into(), json!({"token": 5}), "token", "invalid_type"),
        ("", Method::POST, "/api/auth/password/reset".into(), json!({"token": "t"}), "password", "required"),
        (
            rep,
            Method::POST,
            "/api/auth/password/change".into(),
            json!({"currentPassword": "x"}),
            "newPassword",
            "required",
        ),
        (rep, Method::POST, format!("{task}/assign"), json!({"assignedUser": 5}), "assignedUser", "invalid_type"),
        (rep, Method::PUT, format!("{report}/sharing"), json!({"users": "everyone"}), "users", "invalid_type"),
        (rep, Method::POST, "/api/contacts/search".into(), json!({"limit": "ten"}), "limit", "invalid_type"),
    ];
    let mut failures = Vec::new();
    for (who, method, path, body, field, code) in table {
        let token = (!who.is_empty()).then_some(who);
        let a = app.call(method.clone(), &path, token, Some(body.clone())).await;
        let errors = field_errors(&a);
        let named = errors.iter().any(|(f, c)| f == field && c == code);
        if a.status != StatusCode::BAD_REQUEST || a.body["code"] != "validation_failed" || !named {
            failures.push(format!("{method} {path} {body}: want 400 {field}/{code}, got {} {}", a.status, a.body));
        }
    }
    assert!(failures.is_empty(), "{} bodies not answered field by field:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn all_bad_fields_of_a_request_come_at_once() {
    let w = world().await;
    let body = json!({
        "amount": 12.5,
        "stage": "won",
        "expectedCloseDate": "2030-13-45",
        "products": [{"name": "a", "quantity": "x", "unitPrice": 1, "colour": "red"}],
        "hacked": true
    });
    let a = w.app.call(Method::POST, "/api/deals", Some(&w.rep), Some(body)).await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation_failed");
    let mut got = field_errors(&a);
    got.sort();
    let want: Vec<(String, String)> = [
        ("amount", "invalid_type"),
        ("expectedCloseDate", "invalid_value"),
        ("hacked", "unknown_field"),
        ("name", "required"),
        ("products.0.colour", "unknown_field"),
        ("products.0.quantity", "invalid_type"),
        ("stage", "invalid_value"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want, "{}", a.body);
    // Messages speak JSON, not Rust.
    let amount = a.body["errors"].as_array().unwrap().iter().find(|e| e["field"] == "amount").unwrap();
    assert_eq!(amount["message"], "expected an integer, got floating point 12.5");
    // Nothing was stored.
    let list = w.app.call(Method::GET, "/api/deals", Some(&w.rep), None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_profile_update_names_the_members_the_client_sent() {
    let w = world().await;
    let me = format!("/api/users/{}", w.rep_id);
    // The new password is `password` in the body: its errors say so.
    let weak = w
        .app
        .call(Method::PATCH, &me, Some(&w.rep), Some(json!({"password": "abc", "currentPassword": PASSWORD})))
        .await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_errors(&weak).iter().all(|(f, _)| f == "password"), "{}", weak.body);
    assert!(!field_errors(&weak).is_empty());
    // Bad members of the profile and of the password come in one answer.
    let bad = w
        .app
        .call(
            Method::PATCH,
            &me,
            Some(&w.rep),
            Some(json!({"password": 5, "profilePicture": "me.png", "username": []})),
        )
        .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");
    let mut got = field_errors(&bad);
    got.sort();
    let want: Vec<(String, String)> =
        [("password", "invalid_type"), ("profilePicture", "invalid_value"), ("username", "invalid_type")]
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect();
    assert_eq!(got, want, "{}", bad.body);
}

#[tokio::test]
async fn query_parameters_are_named_too() {
    let w = world().await;
    let bad = w.app.call(Method::GET, "/api/contacts?colour=red", Some(&w.rep), None).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(field_errors(&bad), [("colour".to_string(), "unknown_field".to_string())]);
    let limit = w.app.call(Method::GET, "/api/contacts?limit=0", Some(&w.rep), None).await;
    assert_eq!(field_errors(&limit), [("limit".to_string(), "out_of_range".to_string())], "{}", limit.body);
    let filter = w.app.call(Method::GET, "/api/contacts?filter=shoeSize%5Beq%5D:3", Some(&w.rep), None).await;
    assert_eq!(filter.status, StatusCode::BAD_REQUEST, "{}", filter.body);
    assert!(!field_errors(&filter).is_empty(), "{}", filter.body);
    let format =
        w.app.call(Method::GET, "/api/reports/standard/r1_pipeline_by_stage?format=doc", Some(&w.rep), None).await;
    assert_eq!(field_errors(&format), [("format".to_string(), "invalid_value".to_string())], "{}", format.body);
    let stale = w
        .app
        .with_headers(
            Method::PATCH,
            &format!("/api/contacts/{}", w.ids.contact),
            &w.rep,
            &[("if-match", "soon")],
            json!({}),
        )
        .await;
    assert_eq!(field_errors(&stale), [("If-Match".to_string(), "invalid_value".to_string())], "{}", stale.body);
}

#[tokio::test]
async fn a_due_date_may_be_a_date_read_in_the_users_time_zone() {
    let w = world().await;
    let app = &w.app;
    // UTC by default: the end of that day.
    let t = app
        .call(Method::POST, "/api/tasks", Some(&w.rep), Some(json!({"name": "Call back", "dueDate": "2030-01-15"})))
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    assert_eq!(t.body["dueDate"], "2030-01-15T23:59:59.999Z");
    // In Paris, the end of the Paris day; answered in UTC.
    let s = app
        .call(
            Method::PUT,
            &format!("/api/users/{}/settings", w.rep_id),
            Some(&w.rep),
            Some(json!({"timezone": "Europe/Paris"})),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let path = format!("/api/tasks/{}", t.body["id"].as_str().unwrap());
    let p = app.call(Method::PATCH, &path, Some(&w.rep), Some(json!({"dueDate": "2030-07-01"}))).await;
    assert_eq!(p.body["dueDate"], "2030-07-01T21:59:59.999Z", "{}", p.body);
    // A time is taken as it is, whatever its offset.
    let p = app.call(Method::PATCH, &path, Some(&w.rep), Some(json!({"dueDate": "2030-07-01T09:00:00+02:00"}))).await;
    assert_eq!(p.body["dueDate"], "2030-07-01T07:00:00Z", "{}", p.body);
    // A deal's close date takes a time too: its day where the user is.
    let d = app
        .call(
            Method::POST,
            "/api/deals",
            Some(&w.rep),
            Some(json!({"name": "Late", "expectedCloseDate": "2030-03-31T23:30:00Z"})),
        )
        .await;
    assert_eq!(d.body["expectedCloseDate"], "2030-04-01", "{}", d.body);
    // An interaction on a day starts with that day; a suspension until a day ends when it starts.
    let i = app
        .call(
            Method::POST,
            "/api/interactions",
            Some(&w.rep),
            Some(json!({"contactId": w.ids.contact, "kind": "call", "occurredAt": "2026-01-10"})),
        )
        .await;
    assert_eq!(i.body["occurredAt"], "2026-01-09T23:00:00Z", "{}", i.body);
    let s = app
        .call(
            Method::POST,
            &format!("/api/users/{}/suspend", w.rep_id),
            Some(&w.admin),
            Some(json!({"until": "2030-01-15"})),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["suspendedUntil"], "2030-01-15T00:00:00Z");
}

#[tokio::test]
async fn a_version_conflict_carries_the_record_as_it_is_now() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/api/contacts/{}", w.ids.contact);
    let moved = app.call(Method::PATCH, &path, Some(&w.admin), Some(json!({"jobTitle": "CTO"}))).await;
    assert_eq!(moved.body["version"], 2);
    let stale =
        app.with_headers(Method::PATCH, &path, &w.rep, &[("if-match", "\"1\"")], json!({"jobTitle": "CEO"})).await;
    assert_problem(&stale, StatusCode::CONFLICT, "version_conflict");
    assert_eq!(stale.body["currentVersion"], 2);
    assert_eq!(stale.body["current"]["jobTitle"], "CTO", "{}", stale.body);
    assert_eq!(stale.body["current"]["id"], w.ids.contact);
    let gone = app.with_headers(Method::DELETE, &path, &w.rep, &[("if-match", "\"1\"")], json!({})).await;
    assert_eq!(gone.body["current"]["version"], 2, "{}", gone.body);
    // Users too, without their secrets.
    let user = format!("/api/users/{}", w.rep_id);
    let u =
        app.with_headers(Method::PATCH, &user, &w.admin, &[("if-match", "\"99\"")], json!({"username": "rep2"})).await;
    assert_problem(&u, StatusCode::CONFLICT, "version_conflict");
    assert_eq!(u.body["current"]["username"], "rep", "{}", u.body);
    assert!(u.body["current"].get("passwordHash").is_none());
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(f) = file {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: image/png").as_bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn a_browser_form_uploads_an_avatar() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/api/users/{}/avatar", w.rep_id);
    let ctype = "multipart/form-data; boundary=XyZ";
    let body = form("XyZ", &[("caption", None, b"me"), ("file", Some("me.png"), &png())]);
    let (status, _, bytes) = app.raw(Method::PUT, &path, Some(&w.rep), ctype, body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let user: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(user["profilePicture"], format!("/api/users/{}/avatar", w.rep_id));
    let (status, headers, _) = app.raw(Method::GET, &path, Some(&w.rep), "application/json", vec![]).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "image/png"));
    // The same checks as a raw body: not an image, no file at all.
    let (status, _, bytes) = app
        .raw(Method::PUT, &path, Some(&w.rep), ctype, form("XyZ", &[("file", Some("x.png"), b"not an image")]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(&bytes));
    let (status, _, bytes) =
        app.raw(Method::PUT, &path, Some(&w.rep), ctype, form("XyZ", &[("caption", None, b"me")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let problem: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(problem["errors"][0]["field"], "file", "{problem}");
    // A raw image body still works.
    let (status, _, _) = app.raw(Method::PUT, &path, Some(&w.rep), "image/png", png()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_erased_user_stays_erased() {
    let w = world().await;
    let app = &w.app;
    let user = format!("/api/users/{}", w.rep_id);
    let erased = app.call(Method::POST, &format!("{user}/erase"), Some(&w.admin), None).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    let listed = || async {
        let all = app.call(Method::GET, "/api/users?includeDeleted=true&limit=200", Some(&w.admin), None).await;
        all.body["data"].as_array().unwrap().iter().find(|u| u["id"] == w.rep_id.as_str()).cloned().unwrap()
    };
    let before = listed().await;
    assert_eq!(before["status"], "erased");
    let restore = app.call(Method::POST, &format!("{user}/restore"), Some(&w.admin), None).await;
    assert_problem(&restore, StatusCode::CONFLICT, "conflict");
    assert_eq!(listed().await, before, "restore changed nothing");
    assert_problem(&app.call(Method::GET, &user, Some(&w.admin), None).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_same_problem_gets_the_same_status_and_logs_stay_private() {
    let w = world().await;
    let app = &w.app;
    // An unknown member is 400 everywhere, settings included.
    let settings = format!("/api/users/{}/settings", w.rep_id);
    for (path, method) in
        [(settings.as_str(), Method::PUT), ("/api/contacts", Method::POST), ("/api/teams", Method::POST)]
    {
        let a = app.call(method, path, Some(&w.admin), Some(json!({"name": "X", "colour": "red"}))).await;
        assert_problem(&a, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(field_errors(&a).contains(&("colour".to_string(), "unknown_field".to_string())), "{path}: {}", a.body);
    }
    // Activity logs: your own, or everyone's for an admin; another's is out of reach.
    let rep_logs = format!("/api/users/{}/logs", w.rep_id);
    assert_eq!(app.call(Method::GET, &rep_logs, Some(&w.rep), None).await.status, StatusCode::OK);
    let by_admin = app.call(Method::GET, &rep_logs, Some(&w.admin), None).await;
    assert_eq!(by_admin.status, StatusCode::OK);
    assert!(!by_admin.body["data"].as_array().unwrap().is_empty());
    let admin_id =
        app.call(Method::GET, "/api/auth/me", Some(&w.admin), None).await.body["id"].as_str().unwrap().to_string();
    let admin_logs = format!("/api/users/{admin_id}/logs");
    assert_problem(&app.call(Method::GET, &admin_logs, Some(&w.rep), None).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(&app.call(Method::GET, &rep_logs, Some(&w.manager), None).await, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn the_reference_and_the_problem_pages_are_served() {
    let w = world().await;
    let app = &w.app;
    let (status, headers, _) = app.raw(Method::GET, "/api/docs", None, "text/html", vec![]).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/api/docs/");
    let (status, headers, html) = app.raw(Method::GET, "/api/docs/", None, "text/html", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && csp.contains("script-src 'self'"), "{csp}");
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "everything comes from the binary: {html}");
    let (status, _, init) = app.raw(Method::GET, "/api/docs/swagger-initializer.js", None, "text/html", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(init).unwrap().contains("/api/openapi.json"));
    let (status, _, js) = app.raw(Method::GET, "/api/docs/swagger-ui-bundle.js", None, "text/html", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.len() > 100_000);

    // Every problem `type` an answer carries resolves to a page.
    let bad = app.call(Method::POST, "/api/contacts", Some(&w.rep), Some(json!({}))).await;
    let (status, headers, page) =
        app.raw(Method::GET, bad.body["type"].as_str().unwrap(), None, "text/html", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(String::from_utf8(page).unwrap().contains("errors[]"));
    for code in crm_http::routes::docs::PROBLEM_TYPES.iter().map(|p| p.code) {
        let (status, _, _) = app.raw(Method::GET, &format!("/problems/{code}"), None, "text/html", vec![]).await;
        assert_eq!(status, StatusCode::OK, "{code}");
    }
    assert_eq!(app.call(Method::GET, "/problems/nonsense", None, None).await.status, StatusCode::NOT_FOUND);
}
