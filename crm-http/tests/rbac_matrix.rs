//! The RBAC matrix over HTTP: routes × {anonymous, user, a user of the same team, a user
//! of another team, the team's manager, an admin}. The expected table is written out
//! here from the standard policy (API.md: out of scope is 404, in scope but not allowed
//! is 403, no token is 401); any answer outside it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Who {
    Anon,
    User,
    Peer,
    Outsider,
    Manager,
    Admin,
}

const ALL: [Who; 6] = [Who::Anon, Who::User, Who::Peer, Who::Outsider, Who::Manager, Who::Admin];

struct World {
    app: App,
    tokens: Vec<(String, String)>,
    user_id: String,
    team_a: String,
}

impl World {
    fn token(&self, who: Who) -> Option<String> {
        let name = match who {
            Who::Anon => return None,
            Who::User => "user",
            Who::Peer => "peer",
            Who::Outsider => "outsider",
            Who::Manager => "manager",
            Who::Admin => "admin",
        };
        self.tokens.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone())
    }

    fn admin(&self) -> String {
        self.token(Who::Admin).unwrap()
    }

    async fn make(&self, as_who: Who, path: &str, body: Value) -> String {
        let a = self.app.call(Method::POST, path, self.token(as_who).as_deref(), Some(body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{path}: {}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }
}

async fn world() -> World {
    let app = app().await;
    app.crm.users().bootstrap_admin_with_password("admin", "admin@example.com", PASSWORD).await.unwrap();
    let admin = app.token("admin", PASSWORD).await;
    let mk_team = |name: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let t = app.call(Method::POST, "/api/teams", Some(&admin), Some(json!({"name": name}))).await;
            t.body["id"].as_str().unwrap().to_string()
        }
    };
    let (team_a, team_b) = (mk_team("A").await, mk_team("B").await);
    let mut tokens = vec![("admin".to_string(), admin.clone())];
    let mut user_id = String::new();
    for (name, role, team) in [
        ("user", "user", &team_a),
        ("peer", "user", &team_a),
        ("outsider", "user", &team_b),
        ("manager", "manager", &team_a),
    ] {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "role": role, "teamId": team});
        let u = app.call(Method::POST, "/api/users", Some(&admin), Some(body)).await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
        if name == "user" {
            user_id = u.body["id"].as_str().unwrap().to_string();
        }
        tokens.push((name.to_string(), app.token(name, PASSWORD).await));
    }
    World { app, tokens, user_id, team_a }
}

/// Expected statuses in the order of [`ALL`].
type Row = [u16; 6];

#[tokio::test]
async fn every_route_answers_every_role_as_the_table_says() {
    let w = world().await;
    let mut failures: Vec<String> = Vec::new();
    let mut n = 0u32;
    let mut check = |route: &str, who: Who, want: u16, got: StatusCode, body: &Value| {
        if got.as_u16() != want {
            failures.push(format!("{route} as {who:?}: expected {want}, got {} {body}", got.as_u16()));
        }
    };

    // Routes that change nothing shared, on fixed records.
    let contact = w.make(Who::User, "/api/contacts", json!({"name": "Owned by user"})).await;
    let deal = w.make(Who::User, "/api/deals", json!({"name": "User's deal"})).await;
    let fixed: Vec<(Method, String, Option<Value>, Row)> = vec![
        (Method::GET, "/healthz".into(), None, [200, 200, 200, 200, 200, 200]),
        (Method::GET, "/api/auth/me".into(), None, [401, 200, 200, 200, 200, 200]),
        (Method::GET, "/api/contacts".into(), None, [401, 200, 200, 200, 200, 200]),
        (Method::POST, "/api/contacts/search".into(), Some(json!({})), [401, 200, 200, 200, 200, 200]),
        (Method::GET, format!("/api/contacts/{contact}"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/deals/{deal}"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/deals/{deal}/history"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/deals/{deal}/attachments"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/contacts/{contact}/attachments"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/contacts/{contact}/duplicates"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/contacts/{contact}/merges"), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, "/api/pipelines".into(), None, [401, 200, 200, 200, 200, 200]),
        (Method::GET, "/api/users".into(), None, [401, 200, 200, 200, 200, 200]),
        (Method::GET, format!("/api/users/{}", w.user_id), None, [401, 200, 404, 404, 200, 200]),
        (Method::GET, format!("/api/users/{}/settings", w.user_id), None, [401, 200, 404, 404, 403, 200]),
        // Another user's activity: out of sight is 404; a manager sees the user but not
        // their activity (403); an admin reads it.
        (Method::GET, format!("/api/users/{}/logs", w.user_id), None, [401, 200, 404, 404, 403, 200]),
        (Method::GET, format!("/api/teams/{}", w.team_a), None, [401, 200, 200, 404, 200, 200]),
        (Method::POST, "/api/teams".into(), Some(json!({"name": "T-{n}"})), [401, 403, 403, 403, 403, 201]),
    ];
    for (method, path, body, row) in &fixed {
        for (who, want) in ALL.iter().zip(row) {
            n += 1;
            let body =
                body.as_ref().map(|b| serde_json::from_str(&b.to_string().replace("{n}", &n.to_string())).unwrap());
            let a = w.app.call(method.clone(), path, w.token(*who).as_deref(), body).await;
            check(&format!("{method} {path}"), *who, *want, a.status, &a.body);
        }
    }

    // Routes that change things: a fresh record for every cell.
    for (who, want) in ALL.iter().zip([401, 201, 201, 201, 201, 201]) {
        let a = w.app.call(Method::POST, "/api/contacts", w.token(*who).as_deref(), Some(json!({"name": "New"}))).await;
        check("POST /api/contacts", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 200, 404, 404, 200, 200]) {
        let c = w.make(Who::User, "/api/contacts", json!({"name": "To change"})).await;
        let a = w
            .app
            .call(
                Method::PATCH,
                &format!("/api/contacts/{c}"),
                w.token(*who).as_deref(),
                Some(json!({"jobTitle": "x"})),
            )
            .await;
        check("PATCH /api/contacts/{id}", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 204, 404, 404, 204, 204]) {
        let c = w.make(Who::User, "/api/contacts", json!({"name": "To delete"})).await;
        let a = w.app.call(Method::DELETE, &format!("/api/contacts/{c}"), w.token(*who).as_deref(), None).await;
        check("DELETE /api/contacts/{id}", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 404, 404, 404, 200, 200]) {
        let c = w.make(Who::User, "/api/contacts", json!({"name": "To restore"})).await;
        w.app.call(Method::DELETE, &format!("/api/contacts/{c}"), Some(&w.admin()), None).await;
        let a = w.app.call(Method::POST, &format!("/api/contacts/{c}/restore"), w.token(*who).as_deref(), None).await;
        check("POST /api/contacts/{id}/restore", *who, want, a.status, &a.body);
    }
    // Files go with the record's rights: attached by whoever may change it (a JSON body is
    // a text file), removed likewise.
    for (who, want) in ALL.iter().zip([401, 201, 404, 404, 201, 201]) {
        let a = w
            .app
            .call(
                Method::POST,
                &format!("/api/deals/{deal}/attachments"),
                w.token(*who).as_deref(),
                Some(json!({"n": 1})),
            )
            .await;
        check("POST /api/deals/{id}/attachments", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 204, 404, 404, 204, 204]) {
        let f = w
            .app
            .call(Method::POST, &format!("/api/deals/{deal}/attachments"), Some(&w.admin()), Some(json!({})))
            .await;
        let id = f.body["id"].as_str().unwrap().to_string();
        let a = w.app.call(Method::DELETE, &format!("/api/attachments/{id}"), w.token(*who).as_deref(), None).await;
        check("DELETE /api/attachments/{id}", *who, want, a.status, &a.body);
        let a =
            w.app.call(Method::GET, &format!("/api/attachments/{id}/content"), w.token(*who).as_deref(), None).await;
        // Gone for those who removed it, never seen by the others.
        let gone = if matches!(who, Who::Anon) { 401 } else { 404 };
        check("GET /api/attachments/{id}/content", *who, gone, a.status, &a.body);
    }
    // A merge needs the right to change the survivor and delete the other; its undo the
    // right to restore (managers and admins).
    for (who, want) in ALL.iter().zip([401, 200, 404, 404, 200, 200]) {
        let keep = w.make(Who::User, "/api/contacts", json!({"name": "Keep"})).await;
        let fold = w.make(Who::User, "/api/contacts", json!({"name": "Fold"})).await;
        let a = w
            .app
            .call(
                Method::POST,
                &format!("/api/contacts/{keep}/merge"),
                w.token(*who).as_deref(),
                Some(json!({"mergeIds": [fold]})),
            )
            .await;
        check("POST /api/contacts/{id}/merge", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 403, 404, 404, 200, 200]) {
        let keep = w.make(Who::User, "/api/contacts", json!({"name": "Keep"})).await;
        let fold = w.make(Who::User, "/api/contacts", json!({"name": "Fold"})).await;
        let m = w
            .app
            .call(
                Method::POST,
                &format!("/api/contacts/{keep}/merge"),
                Some(&w.admin()),
                Some(json!({"mergeIds": [fold]})),
            )
            .await;
        let id = m.body["merge"]["id"].as_str().unwrap().to_string();
        let a =
            w.app.call(Method::POST, &format!("/api/contacts/merges/{id}/undo"), w.token(*who).as_deref(), None).await;
        check("POST /api/contacts/merges/{id}/undo", *who, want, a.status, &a.body);
    }
    for (i, (who, want)) in ALL.iter().zip([401, 403, 403, 403, 201, 201]).enumerate() {
        let body = json!({"username": format!("new{i}"), "email": format!("new{i}@example.com"), "teamId": w.team_a});
        let a = w.app.call(Method::POST, "/api/users", w.token(*who).as_deref(), Some(body)).await;
        check("POST /api/users (team A)", *who, want, a.status, &a.body);
    }
    for (i, (who, want)) in ALL.iter().zip([401, 403, 403, 403, 403, 200]).enumerate() {
        let body = json!({"username": format!("victim{i}"), "email": format!("victim{i}@example.com"), "password": PASSWORD, "teamId": w.team_a});
        let victim = w.make(Who::Admin, "/api/users", body).await;
        let a = w
            .app
            .call(Method::POST, &format!("/api/users/{victim}/suspend"), w.token(*who).as_deref(), Some(json!({})))
            .await;
        check("POST /api/users/{id}/suspend", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 200, 404, 404, 403, 200]) {
        let a = w
            .app
            .call(
                Method::PATCH,
                &format!("/api/users/{}", w.user_id),
                w.token(*who).as_deref(),
                Some(json!({"settings": {"language": "fr"}})),
            )
            .await;
        check("PATCH /api/users/{id}", *who, want, a.status, &a.body);
    }
    for (who, want) in ALL.iter().zip([401, 403, 403, 403, 403, 403]) {
        // Nobody raises their own role, admins included (an admin lowering theirs too).
        let (me, role) = match who {
            Who::Admin => (
                w.app.call(Method::GET, "/api/auth/me", Some(&w.admin()), None).await.body["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                "user",
            ),
            Who::Anon => (w.user_id.clone(), "admin"),
            other => (
                w.app.call(Method::GET, "/api/auth/me", w.token(*other).as_deref(), None).await.body["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                "admin",
            ),
        };
        let a = w
            .app
            .call(Method::PATCH, &format!("/api/users/{me}"), w.token(*who).as_deref(), Some(json!({"role": role})))
            .await;
        check("PATCH /api/users/{self} role", *who, want, a.status, &a.body);
    }
    assert!(failures.is_empty(), "{} of the cells differ:\n{}", failures.len(), failures.join("\n"));
}
