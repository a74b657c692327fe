//! The notification, chat channel, webhook and delivery routes in process: who may call
//! them, what they answer, and every bad input named in the client's spelling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use crm_core::delivery::DeliveryEngine;
use serde_json::{json, Value};

struct World {
    app: App,
    admin: String,
    rep: String,
    other: String,
    rep_id: String,
    team_id: String,
}

async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let team = app.call(Method::POST, "/api/teams", Some(&admin), Some(json!({"name": "North"}))).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for name in ["rep", "other"] {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "teamId": team_id});
        let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        ids.push(u.body["id"].as_str().unwrap().to_string());
    }
    let rep = app.token("rep", PASSWORD).await;
    let other = app.token("other", PASSWORD).await;
    World { app, admin, rep, other, rep_id: ids[0].clone(), team_id }
}

fn field_names(a: &Answer) -> Vec<String> {
    let mut f: Vec<String> =
        a.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect();
    f.sort();
    f
}

/// In-app notifications over HTTP: listed newest first in pages, unread filter and count,
/// one read, all read; nobody reads another's.
#[tokio::test]
async fn notifications_list_page_and_read() {
    let w = world().await;
    let app = &w.app;
    for i in 0..5 {
        let body = json!({"name": format!("Task {i}"), "assignedUser": w.rep_id});
        let t = app.call(Method::POST, "/api/tasks", Some(&w.admin), Some(body)).await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    }
    DeliveryEngine::new(app.crm.clone()).run_once().await.unwrap();
    let count = app.call(Method::GET, "/api/notifications/unread-count", Some(&w.rep), None).await;
    assert_eq!(count.status, StatusCode::OK, "{}", count.body);
    assert_eq!(count.body["count"], 5, "{}", count.body);

    let first = app.call(Method::GET, "/api/notifications?limit=3", Some(&w.rep), None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let page: Vec<&Value> = first.body["data"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 3);
    assert_eq!(page[0]["title"], "Task assigned to you: Task 4", "newest first");
    assert!(page[0]["link"].as_str().unwrap().starts_with("/tasks/"));
    assert_eq!(first.body["pageInfo"]["hasNextPage"], true);
    let cursor = first.body["pageInfo"]["endCursor"].as_str().expect("a next page").to_string();
    let second = app.call(Method::GET, &format!("/api/notifications?limit=3&after={cursor}"), Some(&w.rep), None).await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 2, "{}", second.body);
    assert_eq!(second.body["data"][1]["title"], "Task assigned to you: Task 0");

    let id = page[0]["id"].as_str().unwrap();
    let theirs = app.call(Method::POST, &format!("/api/notifications/{id}/read"), Some(&w.other), None).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");
    let read = app.call(Method::POST, &format!("/api/notifications/{id}/read"), Some(&w.rep), None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert!(read.body["readAt"].is_string());
    let unread = app.call(Method::GET, "/api/notifications?unread=true", Some(&w.rep), None).await;
    assert_eq!(unread.body["data"].as_array().unwrap().len(), 4, "{}", unread.body);
    let all = app.call(Method::POST, "/api/notifications/read-all", Some(&w.rep), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let count = app.call(Method::GET, "/api/notifications/unread-count", Some(&w.rep), None).await;
    assert_eq!(count.body["count"], 0);
    let none = app.call(Method::GET, "/api/notifications", None, None).await;
    assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// Preferences over HTTP: frequencies (and the old booleans), the digest hour, and
/// every bad value named in one answer.
#[tokio::test]
async fn preferences_take_frequencies_and_name_bad_values() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/api/users/{}/settings", w.rep_id);
    let good = json!({
        "digestHour": 7,
        "timezone": "America/New_York",
        "notificationPreferences": {"deal.won": {"email": "digest", "slack": true, "in_app": "off"}},
    });
    let ok = app.call(Method::PATCH, &path, Some(&w.rep), Some(good)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["digestHour"], 7);
    assert_eq!(
        ok.body["notificationPreferences"]["deal.won"],
        json!({"email": "digest", "slack": "immediate", "in_app": "off"})
    );
    let bad = json!({
        "digestHour": 25,
        "notificationPreferences": {"deal.won": {"in_app": "digest"}, "account.security": {"email": "off"}},
    });
    let refused = app.call(Method::PATCH, &path, Some(&w.rep), Some(bad)).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_names(&refused),
        ["digestHour", "notificationPreferences.account.security.email", "notificationPreferences.deal.won.in_app"]
    );
    let weekly = json!({"notificationPreferences": {"deal.won": {"email": "weekly"}}});
    let refused = app.call(Method::PATCH, &path, Some(&w.rep), Some(weekly)).await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(field_names(&refused), ["notificationPreferences.deal.won.email"]);
    assert!(refused.body["errors"][0]["message"].as_str().unwrap().contains("digest"), "{}", refused.body);
    let after = app.call(Method::GET, &path, Some(&w.rep), None).await;
    assert_eq!(after.body["digestHour"], 7, "a refused change changes nothing");
    let theirs = app.call(Method::PATCH, &path, Some(&w.other), Some(json!({"digestHour": 3}))).await;
    assert!(matches!(theirs.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", theirs.body);
}

/// Chat channels over HTTP: users set their own (a webhook, or a Slack bot), never
/// seeing the credential again; only admins set a team's; bad inputs name their fields.
#[tokio::test]
async fn chat_channels_by_owner_and_role() {
    let w = world().await;
    let app = &w.app;
    let mine = "/api/notifications/channels";
    let put = |p: &str, token: &str, body: Value| {
        let (p, token) = (p.to_string(), token.to_string());
        async move { app.call(Method::PUT, &p, Some(&token), Some(body)).await }
    };
    let hook = "https://hooks.slack.com/services/T000/B000/XXXX";
    let set = put(&format!("{mine}/slack"), &w.rep, json!({"url": hook})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!((set.body["via"].as_str(), set.body["host"].as_str()), (Some("webhook"), Some("hooks.slack.com")));
    assert!(!set.body.to_string().contains("XXXX"), "the URL is a credential: {}", set.body);
    let bot =
        put(&format!("{mine}/slack"), &w.rep, json!({"token": "xoxb-123-456-abc", "channel": "C0123456789"})).await;
    assert_eq!(bot.status, StatusCode::OK, "{}", bot.body);
    assert_eq!((bot.body["via"].as_str(), bot.body["channel"].as_str()), (Some("bot"), Some("C0123456789")));
    assert!(!bot.body.to_string().contains("xoxb"), "{}", bot.body);
    let teams =
        put(&format!("{mine}/teams"), &w.rep, json!({"url": "https://prod-00.westeurope.logic.azure.com/workflows/x"}))
            .await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.body);
    let list = app.call(Method::GET, mine, Some(&w.rep), None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2, "{}", list.body);
    assert_eq!(app.call(Method::GET, mine, Some(&w.other), None).await.body["data"], json!([]), "each their own");

    // Bad inputs, every field named.
    let cases = [
        ("teams", json!({"token": "xoxb-1", "channel": "C1"}), vec!["token"]),
        ("slack", json!({}), vec!["url"]),
        ("slack", json!({"token": "nope"}), vec!["channel", "token"]),
        ("slack", json!({"url": "http://10.0.0.7/hook"}), vec!["url"]),
        ("slack", json!({"url": "ftp://example.com/x"}), vec!["url"]),
    ];
    for (provider, body, fields) in cases {
        let a = put(&format!("{mine}/{provider}"), &w.rep, body.clone()).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(field_names(&a), fields, "{provider} {body}: {}", a.body);
    }
    // An unknown key is a malformed body (400), named too.
    let a = put(&format!("{mine}/slack"), &w.rep, json!({"url": hook, "colour": "red"})).await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(field_names(&a), ["colour"]);
    let pigeon = put(&format!("{mine}/pigeon"), &w.rep, json!({"url": hook})).await;
    assert!(pigeon.status.is_client_error(), "{}", pigeon.body);

    // A team's channel: admins only.
    let team = format!("/api/teams/{}/channels/slack", w.team_id);
    let a = put(&team, &w.rep, json!({"url": hook})).await;
    assert_problem(&a, StatusCode::FORBIDDEN, "forbidden");
    let a = put(&team, &w.admin, json!({"url": hook})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let gone = app.call(Method::DELETE, &format!("{mine}/slack"), Some(&w.rep), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = app.call(Method::DELETE, &format!("{mine}/slack"), Some(&w.rep), None).await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not_found");
}

/// Webhooks and the delivery queue are for admins; a subscription's secret is shown
/// when made and on asking, never in lists; bad subscriptions name their fields.
#[tokio::test]
async fn webhooks_and_deliveries_are_for_admins() {
    let w = world().await;
    let app = &w.app;
    let body = json!({"url": "https://receiver.example.com/crm", "events": ["deal.stage_changed", "contact.*"]});
    let refused = app.call(Method::POST, "/api/webhooks", Some(&w.rep), Some(body.clone())).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let made = app.call(Method::POST, "/api/webhooks", Some(&w.admin), Some(body)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(made.body["secret"].as_str().unwrap().starts_with("whsec_"), "{}", made.body);
    let list = app.call(Method::GET, "/api/webhooks", Some(&w.admin), None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(!list.body.to_string().contains("whsec_"), "no secret in lists: {}", list.body);
    let bad = json!({"url": "http://169.254.169.254/latest", "events": ["deal.exploded"]});
    let a = app.call(Method::POST, "/api/webhooks", Some(&w.admin), Some(bad)).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&a), ["events[0]", "url"], "{}", a.body);
    let types = app.call(Method::GET, "/api/webhooks/event-types", Some(&w.admin), None).await;
    assert!(types.body.to_string().contains("deal.stage_changed"), "{}", types.body);

    // An event for the subscription: queued, listed for admins, replayable.
    let c = app.call(Method::POST, "/api/contacts", Some(&w.rep), Some(json!({"name": "Ann"}))).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    DeliveryEngine::new(app.crm.clone()).dispatch_once().await.unwrap();
    let q = app.call(Method::GET, "/api/admin/deliveries?consumer=webhook", Some(&w.admin), None).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.body);
    let rows = q.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", q.body);
    assert_eq!((rows[0]["topic"].as_str(), rows[0]["state"].as_str()), (Some("contact.created"), Some("pending")));
    let id = rows[0]["id"].as_str().unwrap();
    let one = app.call(Method::GET, &format!("/api/admin/deliveries/{id}"), Some(&w.admin), None).await;
    assert_eq!(one.body["id"], id);
    let theirs = app.call(Method::GET, "/api/admin/deliveries", Some(&w.rep), None).await;
    assert_problem(&theirs, StatusCode::FORBIDDEN, "forbidden");
    let replay = app.call(Method::POST, &format!("/api/admin/deliveries/{id}/replay"), Some(&w.rep), None).await;
    assert_problem(&replay, StatusCode::FORBIDDEN, "forbidden");
}
