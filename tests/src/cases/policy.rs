//! The policy as the services enforce it, on real data.

use crm_core::service::*;
use crm_core::*;

use super::{assert_code, names, q};
use crate::{Harness, TestBackend};

/// A user lists, reads and changes only what they own or are assigned.
pub async fn users_see_only_their_own_records(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("T").await;
    let ann = h.user("ann", Role::User, Some(team)).await;
    let bob = h.user("bob", Role::User, Some(team)).await;
    let a = h.crm.contacts().create(&ann, NewContact { name: "Ann's".into(), ..Default::default() }).await.expect("a");
    h.crm.contacts().create(&bob, NewContact { name: "Bob's".into(), ..Default::default() }).await.expect("b");
    let seen = h.crm.contacts().list(&ann, ListQuery::new().count(true)).await.expect("list");
    assert_eq!(names(&seen, |c| &c.name), vec!["Ann's"]);
    assert_eq!(seen.total_count, Some(1));
    assert_code(h.crm.contacts().get(&bob, a.id).await, "not_found");
    let all = h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("admin");
    assert_eq!(all.data.len(), 2);
    // A filter cannot widen the scope.
    let wide = h
        .crm
        .contacts()
        .list(&bob, q(EntityKind::Contact, &format!("ownerId[eq]:{}", ann.user_id)))
        .await
        .expect("list");
    assert!(wide.data.is_empty());
}

/// A manager reads and changes their team's records, not other teams'.
pub async fn managers_see_their_team(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let red = h.team("Red").await;
    let blue = h.team("Blue").await;
    let boss = h.user("boss", Role::Manager, Some(red)).await;
    let ann = h.user("ann", Role::User, Some(red)).await;
    let zed = h.user("zed", Role::User, Some(blue)).await;
    let a = h.crm.deals().create(&ann, NewDeal { name: "red deal".into(), ..Default::default() }).await.expect("a");
    let z = h.crm.deals().create(&zed, NewDeal { name: "blue deal".into(), ..Default::default() }).await.expect("z");
    let seen = h.crm.deals().list(&boss, ListQuery::new()).await.expect("list");
    assert_eq!(names(&seen, |d| &d.name), vec!["red deal"]);
    h.crm.deals().move_to(&boss, a.id, DealStage::Proposal).await.expect("manager moves team deal");
    assert_code(h.crm.deals().move_to(&boss, z.id, DealStage::Proposal).await, "not_found");
    assert_code(h.crm.deals().purge(&boss, a.id).await, "forbidden");
    // Managers give records to their team, not to other teams.
    h.crm
        .deals()
        .update(&boss, a.id, DealPatch { owner_id: Some(boss.user_id), ..Default::default() })
        .await
        .expect("reassign in team");
    assert_code(
        h.crm.deals().update(&boss, a.id, DealPatch { owner_id: Some(zed.user_id), ..Default::default() }).await,
        "forbidden",
    );
    // Managers read users (admin, boss, ann, zed), and create plain users in their own team only.
    assert_eq!(h.crm.users().list(&boss, ListQuery::new()).await.expect("users").data.len(), 4);
    h.crm
        .users()
        .create(
            &boss,
            NewUser {
                username: "newbie".into(),
                email: "n@example.com".into(),
                role: None,
                team_id: Some(red),
                password: None,
            },
        )
        .await
        .expect("create user");
    assert_code(
        h.crm
            .users()
            .create(
                &boss,
                NewUser {
                    username: "xx1".into(),
                    email: "xx1@example.com".into(),
                    role: Some(Role::Manager),
                    team_id: Some(red),
                    password: None,
                },
            )
            .await,
        "forbidden",
    );
    assert_code(
        h.crm
            .users()
            .create(
                &boss,
                NewUser {
                    username: "xx2".into(),
                    email: "xx2@example.com".into(),
                    role: None,
                    team_id: Some(blue),
                    password: None,
                },
            )
            .await,
        "forbidden",
    );
}

/// Records outside the caller's scope answer not_found for every action (no existence
/// leak); a record they may read but not change answers forbidden.
pub async fn out_of_scope_is_not_found(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = h.user("ann", Role::User, None).await;
    let c = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Admin's".into(), ..Default::default() })
        .await
        .expect("c");
    assert_code(h.crm.companies().get(&ann, c.id).await, "not_found");
    assert_code(
        h.crm.companies().update(&ann, c.id, CompanyPatch { name: Some("x".into()), ..Default::default() }).await,
        "not_found",
    );
    assert_code(h.crm.companies().delete(&ann, c.id, None).await, "not_found");
    assert_code(h.crm.companies().purge(&ann, c.id).await, "not_found");
    assert_code(h.crm.users().get(&ann, h.admin.user_id).await, "not_found");
    let me = h.crm.users().get(&ann, ann.user_id).await.expect("self");
    assert_eq!(me.id, ann.user_id);
    // Deny by default: an empty policy refuses everything.
    let locked = Crm::builder(b.store()).policy(Policy::deny_all()).build();
    assert_code(locked.contacts().list(&h.admin, ListQuery::new()).await, "forbidden");
    assert_code(
        locked.contacts().create(&h.admin, NewContact { name: "x".into(), ..Default::default() }).await,
        "forbidden",
    );
}

/// A user cannot create records owned by someone else, nor reassign theirs away.
pub async fn users_cannot_give_records_away(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = h.user("ann", Role::User, None).await;
    let bob = h.user("bob", Role::User, None).await;
    assert_code(
        h.crm
            .contacts()
            .create(&ann, NewContact { name: "x".into(), owner_id: Some(bob.user_id), ..Default::default() })
            .await,
        "forbidden",
    );
    let c = h
        .crm
        .contacts()
        .create(&ann, NewContact { name: "x".into(), owner_id: Some(ann.user_id), ..Default::default() })
        .await
        .expect("own");
    assert_code(
        h.crm.contacts().update(&ann, c.id, ContactPatch { owner_id: Some(bob.user_id), ..Default::default() }).await,
        "forbidden",
    );
    let given = h
        .crm
        .contacts()
        .update(&h.admin, c.id, ContactPatch { owner_id: Some(bob.user_id), ..Default::default() })
        .await
        .expect("admin gives");
    assert_eq!(given.owner_id, bob.user_id);
    assert_code(h.crm.contacts().get(&ann, c.id).await, "not_found");
}

/// Role and team changes need an admin, and nobody changes their own role.
pub async fn nobody_raises_their_own_role(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = h.user("ann", Role::User, None).await;
    let team = h.team("T").await;
    assert_code(
        h.crm.users().update(&ann, ann.user_id, UserPatch { role: Some(Role::Admin), ..Default::default() }).await,
        "forbidden",
    );
    assert_code(
        h.crm.users().update(&ann, ann.user_id, UserPatch { team_id: Some(Some(team)), ..Default::default() }).await,
        "forbidden",
    );
    assert_code(
        h.crm
            .users()
            .update(&h.admin, h.admin.user_id, UserPatch { role: Some(Role::User), ..Default::default() })
            .await,
        "forbidden",
    );
    let renamed = h
        .crm
        .users()
        .update(&ann, ann.user_id, UserPatch { username: Some("ann2".into()), ..Default::default() })
        .await
        .expect("self update");
    assert_eq!(renamed.role, Role::User);
    let promoted = h
        .crm
        .users()
        .update(&h.admin, ann.user_id, UserPatch { role: Some(Role::Manager), ..Default::default() })
        .await
        .expect("admin promotes");
    assert_eq!(promoted.role, Role::Manager);
    assert!(serde_json::from_value::<NewContact>(serde_json::json!({"name": "x", "version": 9})).is_err());
    let ev = h
        .crm
        .audit()
        .for_record::<User>(&h.admin, ann.user_id.as_uuid(), q(EntityKind::AuditEvent, "action[eq]:\"user.updated\""))
        .await
        .expect("audit");
    assert!(ev.data.iter().any(|e| e.changes.get("role").is_some()), "role change audited");
}

/// The first admin of an empty store is made once, however many callers race for it.
pub async fn only_one_bootstrap_admin(b: &dyn TestBackend) {
    let crm = Crm::new(b.store());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let crm = crm.clone();
        tasks.push(tokio::spawn(async move {
            crm.users().bootstrap_admin(&format!("admin{i}"), &format!("admin{i}@example.com")).await
        }));
    }
    let mut made = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(u) => {
                made += 1;
                assert_eq!(u.role, Role::Admin);
            }
            Err(e) => assert_eq!(e.code(), "conflict", "{e}"),
        }
    }
    assert_eq!(made, 1);
    assert_eq!(b.store().count(EntityKind::User, None, true).await.expect("count"), 1);
    assert_code(crm.users().bootstrap_admin("late", "late@example.com").await, "conflict");
}
