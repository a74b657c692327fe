//! Validation, references, uniqueness, versions, atomicity, audit and outbox.

use std::sync::Arc;

use chrono::Duration;
use crm_core::audit::{AuditEvent, ChainStatus};
use crm_core::outbox::OutboxEvent;
use crm_core::query::StoreQuery;
use crm_core::service::*;
use crm_core::*;
use serde_json::json;

use super::{assert_code, fields, q};
use crate::{Harness, TestBackend};

async fn counts(store: &dyn Store) -> (u64, u64, u64) {
    (
        store.count(EntityKind::Contact, None, true).await.expect("count"),
        store.count(EntityKind::AuditEvent, None, true).await.expect("count"),
        store.count(EntityKind::OutboxEvent, None, true).await.expect("count"),
    )
}

/// One answer names every bad field.
pub async fn validation_reports_every_field(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let e = assert_code(
        h.crm
            .contacts()
            .create(
                &h.admin,
                NewContact {
                    name: "   ".into(),
                    email: Some("not-an-email".into()),
                    phone_number: Some("12".into()),
                    job_title: Some("x".repeat(201)),
                    company_id: Some(CompanyId(uuid::Uuid::now_v7())),
                    tags: vec!["t".repeat(51)],
                    ..Default::default()
                },
            )
            .await,
        "validation_failed",
    );
    let mut f = fields(&e);
    f.sort();
    assert_eq!(f, vec!["companyId", "email", "jobTitle", "name", "phoneNumber", "tags"]);
    let e = assert_code(
        h.crm
            .deals()
            .create(
                &h.admin,
                NewDeal {
                    name: "D".into(),
                    probability: Some(120),
                    amount: Some(-5),
                    products: vec![NewLineItem {
                        name: "".into(),
                        quantity: Some(0),
                        unit_price: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
            .await,
        "validation_failed",
    );
    let mut f = fields(&e);
    f.sort();
    assert_eq!(f, vec!["amount", "probability", "products.0.name", "products.0.quantity", "products.0.unitPrice"]);
}

/// A rejected input writes no record, no audit event and no outbox event.
pub async fn rejected_input_writes_nothing(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    let before = counts(store.as_ref()).await;
    assert_code(
        h.crm.contacts().create(&h.admin, NewContact { name: "".into(), ..Default::default() }).await,
        "validation_failed",
    );
    let c =
        h.crm.contacts().create(&h.admin, NewContact { name: "ok".into(), ..Default::default() }).await.expect("ok");
    let mid = counts(store.as_ref()).await;
    assert_eq!(mid, (before.0 + 1, before.1 + 1, before.2 + 1));
    assert_code(
        h.crm
            .contacts()
            .update(
                &h.admin,
                c.id,
                ContactPatch { email: Some(Some("bad".into())), name: Some("new".into()), ..Default::default() },
            )
            .await,
        "validation_failed",
    );
    assert_eq!(counts(store.as_ref()).await, mid);
    assert_eq!(h.crm.contacts().get(&h.admin, c.id).await.expect("get").name, "ok");
}

/// A batch import writes every contact with its own events, or nothing; its errors name
/// the item and the field.
pub async fn contact_import_is_all_or_nothing(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    let acme =
        h.crm.companies().create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() }).await.expect("co");
    let before = counts(store.as_ref()).await;
    let item = |name: &str, email: Option<&str>| NewContact {
        name: name.into(),
        email: email.map(str::to_string),
        company_id: Some(acme.id),
        ..Default::default()
    };
    let e = assert_code(
        h.crm
            .contacts()
            .create_many(
                &h.admin,
                vec![
                    item("Ann", Some("ann@acme.com")),
                    item("", Some("bad")),
                    item("Ann again", Some("ANN@acme.com")),
                    NewContact { company_id: Some(CompanyId(uuid::Uuid::now_v7())), ..item("Ghost", None) },
                ],
            )
            .await,
        "validation_failed",
    );
    let mut named = fields(&e);
    named.sort();
    assert_eq!(named, vec!["1.email", "1.name", "2.email", "3.companyId"]);
    assert_eq!(counts(store.as_ref()).await, before, "a rejected batch writes nothing");
    let batch: Vec<NewContact> = (0..250).map(|i| item(&format!("P{i:03}"), Some(&format!("p{i}@acme.com")))).collect();
    let made = h.crm.contacts().create_many(&h.admin, batch).await.expect("import");
    assert_eq!(made.len(), 250);
    assert_eq!(counts(store.as_ref()).await, (before.0 + 250, before.1 + 250, before.2 + 250));
    let page =
        h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "name[startsWith]:P").count(true)).await.expect("list");
    assert_eq!(page.total_count, Some(250));
    assert!(matches!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { .. }));
    // A collision with a stored contact fails the whole batch.
    assert_code(
        h.crm
            .contacts()
            .create_many(&h.admin, vec![item("New", Some("new@acme.com")), item("Dup", Some("p7@acme.com"))])
            .await,
        "conflict",
    );
    assert_eq!(counts(store.as_ref()).await.0, before.0 + 250);
    // The same where the batch is large enough for PostgreSQL's `COPY` (the collision is
    // its 61st row): the conflict names the field, and nothing is written.
    let email = |i: usize| if i == 60 { "p7@acme.com".to_string() } else { format!("q{i}@acme.com") };
    let big: Vec<NewContact> = (0..100).map(|i| item(&format!("Q{i:03}"), Some(&email(i)))).collect();
    let e = assert_code(h.crm.contacts().create_many(&h.admin, big).await, "conflict");
    assert!(matches!(&e, Error::Conflict { field: Some(f), .. } if f == "email"), "{e:?}");
    assert_eq!(counts(store.as_ref()).await, (before.0 + 250, before.1 + 250, before.2 + 250));
    let too_many: Vec<NewContact> = (0..=service::MAX_BATCH).map(|i| item(&format!("x{i}"), None)).collect();
    assert_code(h.crm.contacts().create_many(&h.admin, too_many).await, "validation_failed");
}

/// References must name live records the caller can read.
pub async fn references_must_be_live_and_visible(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let user = h.user("usr1", Role::User, None).await;
    let acme =
        h.crm.companies().create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() }).await.expect("c");
    let e = assert_code(
        h.crm
            .contacts()
            .create(&user, NewContact { name: "x".into(), company_id: Some(acme.id), ..Default::default() })
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["companyId"]);
    h.crm.companies().delete(&h.admin, acme.id, None).await.expect("delete");
    let e = assert_code(
        h.crm
            .contacts()
            .create(&h.admin, NewContact { name: "x".into(), company_id: Some(acme.id), ..Default::default() })
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["companyId"]);
    let e = assert_code(
        h.crm
            .tasks()
            .create(
                &h.admin,
                NewTask { name: "t".into(), assigned_user: Some(UserId(uuid::Uuid::now_v7())), ..Default::default() },
            )
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["assignedUser"]);
    let e = assert_code(
        h.crm
            .deals()
            .create(
                &h.admin,
                NewDeal { name: "d".into(), contact_ids: vec![ContactId(uuid::Uuid::now_v7())], ..Default::default() },
            )
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["contactIds.0"]);
}

/// Contact emails are unique among live contacts; deleting frees the address; restoring
/// onto a taken address is a conflict.
pub async fn contact_email_unique_among_live(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.contacts();
    let a = s
        .create(&h.admin, NewContact { name: "A".into(), email: Some("dup@x.io".into()), ..Default::default() })
        .await
        .expect("a");
    let e = assert_code(
        s.create(&h.admin, NewContact { name: "B".into(), email: Some("DUP@x.io".into()), ..Default::default() }).await,
        "conflict",
    );
    assert!(matches!(&e, Error::Conflict { field: Some(f), .. } if f == "email"), "{e:?}");
    s.delete(&h.admin, a.id, None).await.expect("delete");
    let b2 = s
        .create(&h.admin, NewContact { name: "B".into(), email: Some("dup@x.io".into()), ..Default::default() })
        .await
        .expect("b");
    assert_code(s.restore(&h.admin, a.id).await, "conflict");
    let c = s.create(&h.admin, NewContact { name: "C".into(), ..Default::default() }).await.expect("c");
    assert_code(
        s.update(&h.admin, c.id, ContactPatch { email: Some(Some("dup@x.io".into())), ..Default::default() }).await,
        "conflict",
    );
    assert_eq!(s.get(&h.admin, b2.id).await.expect("b").email.map(String::from).as_deref(), Some("dup@x.io"));
}

/// Company domains are unique among live companies.
pub async fn company_domain_unique(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.companies();
    s.create(&h.admin, NewCompany { name: "A".into(), domain: Some("acme.com".into()), ..Default::default() })
        .await
        .expect("a");
    let e = assert_code(
        s.create(
            &h.admin,
            NewCompany { name: "B".into(), domain: Some("https://ACME.com".into()), ..Default::default() },
        )
        .await,
        "conflict",
    );
    assert!(matches!(&e, Error::Conflict { field: Some(f), .. } if f == "domain"), "{e:?}");
}

/// Usernames and user emails are unique.
pub async fn username_and_user_email_unique(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let e = assert_code(
        h.crm
            .users()
            .create(
                &h.admin,
                NewUser {
                    username: "ADMIN".into(),
                    email: "other@example.com".into(),
                    role: None,
                    team_id: None,
                    password: None,
                },
            )
            .await,
        "conflict",
    );
    assert!(matches!(&e, Error::Conflict { field: Some(f), .. } if f == "username"), "{e:?}");
    let e = assert_code(
        h.crm
            .users()
            .create(
                &h.admin,
                NewUser {
                    username: "other".into(),
                    email: "Admin@Example.com".into(),
                    role: None,
                    team_id: None,
                    password: None,
                },
            )
            .await,
        "conflict",
    );
    assert!(matches!(&e, Error::Conflict { field: Some(f), .. } if f == "email"), "{e:?}");
}

/// An update or delete naming an old version is refused with the current one.
pub async fn stale_version_is_a_conflict(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.deals();
    let d = s.create(&h.admin, NewDeal { name: "D".into(), ..Default::default() }).await.expect("d");
    s.update(&h.admin, d.id, DealPatch { version: Some(1), name: Some("D2".into()), ..Default::default() })
        .await
        .expect("v1");
    let e = assert_code(
        s.update(&h.admin, d.id, DealPatch { version: Some(1), name: Some("D3".into()), ..Default::default() }).await,
        "version_conflict",
    );
    assert!(matches!(e, Error::VersionConflict { current: 2 }));
    assert_code(s.delete(&h.admin, d.id, Some(1)).await, "version_conflict");
    // The store itself refuses a stale write even when the service's check passed.
    let store = b.store();
    let stale = crm_core::schema::to_row(&d).expect("row");
    let r = store
        .apply(Changeset {
            writes: vec![Write::Update { kind: EntityKind::Deal, row: stale, expected_version: 1 }],
            audit: vec![],
        })
        .await;
    assert!(matches!(r, Err(Error::VersionConflict { current: 2 })), "{r:?}");
    assert_eq!(s.get(&h.admin, d.id).await.expect("get").name, "D2");
}

/// Many writers at once, half of them doomed (a duplicate email): each failure is its
/// caller's alone, writes nothing, and leaves the others' writes and the chain whole.
pub async fn concurrent_failures_stay_with_their_caller(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    h.crm
        .contacts()
        .create(&h.admin, NewContact { name: "Taken".into(), email: Some("taken@x.io".into()), ..Default::default() })
        .await
        .expect("c");
    let before = counts(store.as_ref()).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (crm, admin) = (h.crm.clone(), h.admin.clone());
        tasks.push(tokio::spawn(async move {
            let email = if i % 2 == 0 { "taken@x.io".to_string() } else { format!("free{i}@x.io") };
            crm.contacts()
                .create(&admin, NewContact { name: format!("W{i}"), email: Some(email), ..Default::default() })
                .await
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            Ok(c) => {
                ok += 1;
                assert!(c.email.is_some_and(|e| e.as_str().starts_with("free")));
            }
            Err(Error::Conflict { field, .. }) => {
                conflicts += 1;
                assert_eq!(field.as_deref(), Some("email"));
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((ok, conflicts), (20, 20));
    assert_eq!(counts(store.as_ref()).await, (before.0 + 20, before.1 + 20, before.2 + 20));
    assert!(matches!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { .. }));
}

/// Two stores on one database (two processes, each with its own writer, which remembers
/// where it left the audit chain) writing in turns and at once: every write lands and the
/// chain stays one unbroken sequence.
pub async fn two_writers_keep_one_chain(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let other =
        Crm::builder(b.second_store().await).clock(h.clock.clone()).audit_keys(crate::test_audit_keys()).build();
    let (first, second) = (h.crm.clone(), other.clone());
    let make = |crm: Crm, admin: Actor, name: String| async move {
        crm.contacts().create(&admin, NewContact { name, ..Default::default() }).await
    };
    // In turns: each writer's remembered head is out of date at every second write.
    for i in 0..6 {
        let crm = if i % 3 == 0 { second.clone() } else { first.clone() };
        make(crm, h.admin.clone(), format!("Turn {i}")).await.expect("a write in turns");
    }
    // At once, many callers on each.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let crm = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.push(tokio::spawn(make(crm, h.admin.clone(), format!("Both {i}"))));
    }
    for t in tasks {
        t.await.expect("join").expect("a write at once");
    }
    let all = h.crm.contacts().list(&h.admin, ListQuery::new().limit(100)).await.expect("list");
    assert_eq!(all.data.len(), 30);
    match h.crm.verify_audit_chain().await.expect("verify") {
        ChainStatus::Intact { events, .. } => assert!(events >= 30, "{events} events"),
        broken => panic!("the chain broke under two writers: {broken:?}"),
    }
    assert!(matches!(other.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { .. }));
}

/// 20 writers adding one tag each, retrying on conflicts: every tag lands.
pub async fn no_lost_update_under_20_writers(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let c =
        h.crm.contacts().create(&h.admin, NewContact { name: "Hot".into(), ..Default::default() }).await.expect("c");
    let crm = Arc::new(h.crm.clone());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let crm = crm.clone();
        let admin = h.admin.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let cur = crm.contacts().get(&admin, c.id).await.expect("get");
                let mut tags = cur.tags.clone();
                tags.push(format!("w{i}"));
                let patch = ContactPatch { tags: Some(tags), version: Some(cur.meta.version), ..Default::default() };
                match crm.contacts().update(&admin, c.id, patch).await {
                    Ok(_) => return conflicts,
                    Err(Error::VersionConflict { .. }) => conflicts += 1,
                    Err(e) => panic!("writer {i}: {e}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("join");
    }
    let end = h.crm.contacts().get(&h.admin, c.id).await.expect("get");
    assert_eq!(end.tags.len(), 20, "lost updates: {:?}", end.tags);
    assert_eq!(end.meta.version, 21);
    let updates = h
        .crm
        .audit()
        .for_record::<Contact>(&h.admin, c.id.as_uuid(), ListQuery::new().limit(100))
        .await
        .expect("audit");
    assert_eq!(updates.data.len(), 21, "one audit event per successful write");
    let _ = conflicts;
}

/// A write that fails in the store (here a unique violation) leaves no audit or outbox row.
pub async fn failed_write_leaves_no_audit_or_outbox(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    h.crm
        .contacts()
        .create(&h.admin, NewContact { name: "A".into(), email: Some("a@x.io".into()), ..Default::default() })
        .await
        .expect("a");
    let before = counts(store.as_ref()).await;
    let head = store.audit_head().await.expect("head");
    assert_code(
        h.crm
            .contacts()
            .create(&h.admin, NewContact { name: "B".into(), email: Some("a@x.io".into()), ..Default::default() })
            .await,
        "conflict",
    );
    assert_eq!(counts(store.as_ref()).await, before);
    assert_eq!(store.audit_head().await.expect("head"), head);
    // A changeset whose last write fails rolls back its first writes too.
    let c = h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list").data.remove(0);
    let mut changed = c.clone();
    changed.name = "changed".into();
    changed.meta.version = 2;
    let r = store
        .apply(Changeset {
            writes: vec![
                Write::Update {
                    kind: EntityKind::Contact,
                    row: crm_core::schema::to_row(&changed).expect("row"),
                    expected_version: 1,
                },
                Write::Update {
                    kind: EntityKind::Contact,
                    row: crm_core::schema::to_row(&changed).expect("row"),
                    expected_version: 1,
                },
            ],
            audit: vec![],
        })
        .await;
    assert_code(r, "version_conflict");
    assert_eq!(h.crm.contacts().get(&h.admin, c.id).await.expect("get").name, "A");
    assert!(matches!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { .. }));
}

/// Every mutation writes one audit event with actor, action, entity and field diffs.
pub async fn every_mutation_is_audited_with_a_diff(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let meta =
        RequestMeta { request_id: Some("req-1".into()), ip: Some("10.0.0.7".into()), user_agent: Some("curl".into()) };
    let admin = h.admin.clone().with_meta(meta.clone());
    let c = h.crm.contacts().create(&admin, NewContact { name: "Ann".into(), ..Default::default() }).await.expect("c");
    h.crm
        .contacts()
        .update(&admin, c.id, ContactPatch { name: Some("Anne".into()), ..Default::default() })
        .await
        .expect("u");
    h.crm.contacts().delete(&admin, c.id, None).await.expect("d");
    h.crm.contacts().restore(&admin, c.id).await.expect("r");
    let page = h.crm.audit().for_record::<Contact>(&h.admin, c.id.as_uuid(), ListQuery::new()).await.expect("audit");
    let actions: Vec<&str> = page.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["contact.restored", "contact.deleted", "contact.updated", "contact.created"]);
    let upd: &AuditEvent = &page.data[2];
    assert_eq!(upd.actor_id, Some(h.admin.user_id));
    assert_eq!(upd.actor_role.as_deref(), Some("admin"));
    assert_eq!(upd.entity_type, "contact");
    assert_eq!(upd.changes, json!({"name": {"before": "Ann", "after": "Anne"}}));
    assert_eq!(upd.request, json!({"requestId": "req-1", "ip": "10.0.0.7", "userAgent": "curl"}));
    assert!(page.data[1].changes.get("deletedAt").is_some());
}

/// Domain events are outbox rows: created, stage changes, assignments.
pub async fn domain_events_reach_the_outbox(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let bob = h.user("bob", Role::User, None).await;
    let d = h
        .crm
        .deals()
        .create(&h.admin, NewDeal { name: "D".into(), amount: Some(500), ..Default::default() })
        .await
        .expect("d");
    h.crm.deals().move_to(&h.admin, d.id, DealStage::Qualification).await.expect("move");
    let t = h.crm.tasks().create(&h.admin, NewTask { name: "T".into(), ..Default::default() }).await.expect("t");
    h.crm.tasks().assign(&h.admin, t.id, bob.user_id).await.expect("assign");
    let patch = DealPatch { amount: Some(Some(700)), ..Default::default() };
    h.crm.deals().update(&h.admin, d.id, patch).await.expect("amount");
    let store = b.store();
    let rows: Vec<OutboxEvent> = store.list_as(&StoreQuery::all(EntityKind::OutboxEvent, 100)).await.expect("outbox");
    let topics: Vec<&str> = rows.iter().map(|e| e.topic.as_str()).collect();
    for want in ["deal.created", "deal.updated", "deal.stage_changed", "task.created", "task.assigned"] {
        assert!(topics.contains(&want), "missing {want} in {topics:?}");
    }
    let moved = rows.iter().find(|e| e.topic == "deal.stage_changed").expect("stage event");
    assert_eq!(moved.payload["from"], json!("prospecting"));
    assert_eq!(moved.payload["to"], json!("qualification"));
    let assigned = rows.iter().find(|e| e.topic == "task.assigned").expect("assign event");
    assert_eq!(assigned.payload["assignedUser"], json!(bob.user_id));
    assert!(rows.iter().all(|e| e.delivered_at.is_none() && e.attempts == 0));

    // A record change's event names its audit event and the changed fields; the values
    // are in the audit event alone, and read back from it for delivery.
    let at = rows.iter().rposition(|e| e.topic == "deal.updated").expect("update event");
    let updated = &rows[at];
    assert_eq!(updated.payload.get("changes"), None, "values in the outbox: {}", updated.payload);
    assert_eq!(updated.payload["changed"], json!(["amount"]), "{}", updated.payload);
    let audit_id = updated.audit_id().expect("names its audit event");
    let audit: AuditEvent = store.get_as(audit_id).await.expect("get").expect("the audit event");
    assert_eq!((audit.action.as_str(), audit.entity_id), ("deal.updated", Some(d.id.as_uuid())));
    assert_eq!(audit.changes, json!({"amount": {"before": 500, "after": 700}}));
    let full = crm_core::outbox::with_changes(store.as_ref(), &rows).await.expect("with changes");
    assert_eq!(full.len(), rows.len());
    assert_eq!(full[at].payload["changes"], audit.changes);
    assert_eq!(full[at].payload["changed"], json!(["amount"]));
    let created = full.iter().find(|e| e.topic == "deal.created").expect("created event");
    assert_eq!(created.payload["changes"]["name"]["after"], json!("D"));
    // Events that carry their own values are as they were.
    let i = rows.iter().position(|e| e.topic == "deal.stage_changed").expect("stage event");
    assert_eq!(full[i], rows[i]);
}

/// The chain verifies; an edited event is found.
pub async fn audit_chain_verifies_and_finds_an_edit(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    for i in 0..5 {
        h.crm.contacts().create(&h.admin, NewContact { name: format!("C{i}"), ..Default::default() }).await.expect("c");
    }
    assert_eq!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { events: 6, unkeyed: 0 });
    b.tamper_audit_event(3).await;
    match h.crm.verify_audit_chain().await.expect("verify") {
        ChainStatus::Broken { seq, reason } => {
            assert_eq!(seq, 3);
            assert!(reason.contains("altered"), "{reason}");
        }
        other => panic!("tampering not found: {other:?}"),
    }
}

/// A keyed chain: a writer without the key (an engine with none, or another key) is
/// found where it wrote; a verifier without the key cannot vouch for the chain; a
/// previous key still verifies after rotation.
pub async fn audit_chain_needs_its_key(b: &dyn TestBackend) {
    use crm_core::audit::{AuditKey, AuditKeys};
    let h = Harness::new(b).await;
    let company = |n: &str| NewCompany { name: n.into(), ..Default::default() };
    h.crm.companies().create(&h.admin, company("Keyed")).await.expect("c");
    assert_eq!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { events: 2, unkeyed: 0 });
    let engine = |keys: AuditKeys| Crm::builder(b.store()).clock(h.clock.clone()).audit_keys(keys).build();

    // A verifier that lacks the key names it.
    let other = AuditKey::with_id("other", &[8; 32]).expect("key");
    match engine(AuditKeys::new(other.clone())).verify_audit_chain().await.expect("verify") {
        ChainStatus::Broken { seq: 1, reason } => assert!(reason.contains("test"), "{reason}"),
        s => panic!("verified without the key: {s:?}"),
    }
    // Rotation: the new key seals, the old one still verifies.
    let rotated = AuditKeys::new(other.clone()).with_previous(AuditKey::with_id("test", &[3; 32]).expect("key"));
    let after = engine(rotated.clone());
    after.companies().create(&h.admin, company("Rotated")).await.expect("c");
    assert_eq!(after.verify_audit_chain().await.expect("verify"), ChainStatus::Intact { events: 3, unkeyed: 0 });
    let mut third: Vec<crm_core::audit::AuditEvent> =
        b.store().list_as(&StoreQuery::all(EntityKind::AuditEvent, 10)).await.expect("log");
    third.sort_by_key(|e| e.seq);
    let kids: Vec<Option<&str>> = third.iter().map(|e| e.kid()).collect();
    assert_eq!(kids, [Some("test"), Some("test"), Some("other")]);

    // Someone who can write to the store but holds no key: plain hashes after keyed ones.
    engine(AuditKeys::none()).companies().create(&h.admin, company("Forged")).await.expect("c");
    match after.verify_audit_chain().await.expect("verify") {
        ChainStatus::Broken { seq: 4, reason } => assert!(reason.contains("without the key"), "{reason}"),
        s => panic!("an unkeyed event passed: {s:?}"),
    }
}

/// A removed event, in the middle or at the end, is found.
pub async fn audit_chain_finds_a_removed_event(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    for i in 0..4 {
        h.crm
            .companies()
            .create(&h.admin, NewCompany { name: format!("C{i}"), ..Default::default() })
            .await
            .expect("c");
    }
    b.delete_audit_event(5).await;
    assert!(matches!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Broken { seq: 5, .. }));
    b.delete_audit_event(2).await;
    assert!(matches!(h.crm.verify_audit_chain().await.expect("verify"), ChainStatus::Broken { seq: 2, .. }));
}

/// The log lists by record and by actor, newest first, with paging.
pub async fn audit_lists_by_record_and_actor(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let bob = h.user("bob", Role::User, None).await;
    let c = h.crm.contacts().create(&bob, NewContact { name: "B".into(), ..Default::default() }).await.expect("c");
    for i in 0..3 {
        h.crm
            .contacts()
            .update(&bob, c.id, ContactPatch { name: Some(format!("B{i}")), ..Default::default() })
            .await
            .expect("u");
    }
    h.crm.contacts().create(&h.admin, NewContact { name: "A".into(), ..Default::default() }).await.expect("a");
    let mine = h.crm.audit().for_user(&bob, bob.user_id, ListQuery::new().limit(2)).await.expect("own log");
    assert_eq!(mine.data.len(), 2);
    assert!(mine.page_info.has_next_page);
    let rest = h
        .crm
        .audit()
        .for_user(
            &bob,
            bob.user_id,
            ListQuery::new().limit(2).after(mine.page_info.end_cursor.clone().expect("cursor")),
        )
        .await
        .expect("page 2");
    assert_eq!(rest.data.len(), 2);
    assert!(mine.data[0].seq > mine.data[1].seq && mine.data[1].seq > rest.data[0].seq);
    // Bob cannot read the admin's log: his scope limits him to his own events, and another
    // user's log is out of sight (not an empty page).
    let theirs = h.crm.audit().for_user(&bob, h.admin.user_id, ListQuery::new()).await;
    assert!(matches!(theirs, Err(Error::NotFound { .. })), "{theirs:?}");
    let all = h.crm.audit().for_user(&h.admin, bob.user_id, ListQuery::new().count(true)).await.expect("admin");
    assert_eq!(all.total_count, Some(4));
    let hist = h
        .crm
        .audit()
        .for_record::<Contact>(&bob, c.id.as_uuid(), q(EntityKind::AuditEvent, "action[eq]:\"contact.updated\""))
        .await
        .expect("history");
    assert_eq!(hist.data.len(), 3);
}

/// Stage changes append history, set probability and closedAt.
pub async fn deal_stages_history_and_probability(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.deals();
    let d = s.create(&h.admin, NewDeal { name: "D".into(), ..Default::default() }).await.expect("d");
    h.clock.advance(Duration::days(1));
    let d = s.move_to(&h.admin, d.id, DealStage::Proposal).await.expect("proposal");
    assert_eq!(d.probability, 40);
    assert_eq!(d.stage_changed_at, h.clock.now());
    let d = s
        .update(
            &h.admin,
            d.id,
            DealPatch { stage: Some(DealStage::Negotiation), probability: Some(75), ..Default::default() },
        )
        .await
        .expect("neg");
    assert_eq!(d.probability, 75);
    h.clock.advance(Duration::days(1));
    let d = s.move_to(&h.admin, d.id, DealStage::ClosedWon).await.expect("won");
    assert_eq!((d.probability, d.closed_at), (100, Some(h.clock.now())));
    let d = s.move_to(&h.admin, d.id, DealStage::Negotiation).await.expect("reopen");
    assert_eq!((d.probability, d.closed_at), (60, None));
    let hist = s.history(&h.admin, d.id).await.expect("history");
    let steps: Vec<(Option<DealStage>, DealStage)> = hist.iter().map(|c| (c.from_stage, c.to_stage)).collect();
    assert_eq!(
        steps,
        vec![
            (None, DealStage::Prospecting),
            (Some(DealStage::Prospecting), DealStage::Proposal),
            (Some(DealStage::Proposal), DealStage::Negotiation),
            (Some(DealStage::Negotiation), DealStage::ClosedWon),
            (Some(DealStage::ClosedWon), DealStage::Negotiation),
        ]
    );
    assert_eq!(s.pipeline().len(), 6);
}

/// Assigning notifies; completing sets completedAt; assignees may work their tasks.
pub async fn task_assign_and_complete(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let bob = h.user("bob", Role::User, None).await;
    let t = h.crm.tasks().create(&h.admin, NewTask { name: "Demo".into(), ..Default::default() }).await.expect("t");
    assert_code(h.crm.tasks().get(&bob, t.id).await, "not_found");
    let t = h.crm.tasks().assign(&h.admin, t.id, bob.user_id).await.expect("assign");
    assert_eq!(t.assigned_user, Some(bob.user_id));
    // One `task.assigned` event, the one naming the task and its assignee.
    let outbox: Vec<OutboxEvent> =
        h.crm.store().list_as(&StoreQuery::all(EntityKind::OutboxEvent, 100)).await.expect("outbox");
    let assigned: Vec<_> = outbox.iter().filter(|e| e.topic == "task.assigned").collect();
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0].payload["assignedUser"], json!(bob.user_id));
    assert_eq!(assigned[0].payload["name"], "Demo");
    assert_eq!(h.crm.tasks().get(&bob, t.id).await.expect("assignee reads").id, t.id);
    let done = h.crm.tasks().complete(&bob, t.id).await.expect("complete");
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!(done.completed_at, Some(h.clock.now()));
    let mine = h.crm.tasks().list(&bob, ListQuery::new()).await.expect("list");
    assert_eq!(mine.data.len(), 1);
    assert_code(h.crm.tasks().assign(&h.admin, t.id, UserId(uuid::Uuid::now_v7())).await, "validation_failed");
}

/// Quotes, wildcards, backslashes, RTL text and emoji come back as written and match
/// as literals.
pub async fn awkward_strings_round_trip(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let names = ["O'Brien \"Bob\"", "100% _real_ \\ deal", "محمد العلي", "Zoë 🚀✨ 中文", "a*b?[c]", "' OR 1=1 --"];
    for n in names {
        let c = h
            .crm
            .contacts()
            .create(&h.admin, NewContact { name: n.into(), tags: vec![n.into()], ..Default::default() })
            .await
            .expect("create");
        let got = h.crm.contacts().get(&h.admin, c.id).await.expect("get");
        assert_eq!(got.name, n);
        let filter = format!("name[eq]:\"{}\"", n.replace('\\', "\\\\").replace('"', "\\\""));
        let found = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, &filter)).await.expect("filter");
        assert_eq!(found.data.len(), 1, "{n}");
        let by_tag = h
            .crm
            .contacts()
            .list(&h.admin, q(EntityKind::Contact, &filter.replacen("name[eq]", "tags[eq]", 1)))
            .await
            .expect("tag");
        assert_eq!(by_tag.data.len(), 1, "tag {n}");
    }
    // `%` and `_` inside a like pattern, escaped, are literals.
    let lit =
        h.crm.contacts().list(&h.admin, q(EntityKind::Contact, r#"name[like]:"100\\% \\_real%""#)).await.expect("like");
    assert_eq!(lit.data.len(), 1);
    let glob = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, r#"name[like]:"a*b%""#)).await.expect("like");
    assert_eq!(glob.data.len(), 1);
    let search = h.crm.contacts().list(&h.admin, ListQuery::new().search("100%")).await.expect("search");
    assert_eq!(search.data.len(), 1);
}

/// NUL and other control characters are refused in text fields.
pub async fn control_characters_are_rejected(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let e = assert_code(
        h.crm
            .contacts()
            .create(
                &h.admin,
                NewContact { name: "a\0b".into(), job_title: Some("x\u{7}".into()), ..Default::default() },
            )
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["name", "jobTitle"]);
    let ok = h
        .crm
        .deals()
        .create(&h.admin, NewDeal { name: "d".into(), notes: Some("line 1\nline 2\ttab".into()), ..Default::default() })
        .await
        .expect("multiline");
    assert_eq!(ok.notes.as_deref(), Some("line 1\nline 2\ttab"));
    assert!(ListQuery::new().filter_str(EntityKind::Contact, "name[eq]:\"a\0b\"").is_err());
}

/// The change counter (audit head) moves on every change, not on reads.
pub async fn change_counter_moves_on_every_change(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    let c0 = store.change_counter().await.expect("counter");
    let c = h.crm.contacts().create(&h.admin, NewContact { name: "A".into(), ..Default::default() }).await.expect("c");
    h.crm.contacts().get(&h.admin, c.id).await.expect("get");
    h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list");
    let c1 = store.change_counter().await.expect("counter");
    assert_eq!(c1, c0 + 1);
    h.crm
        .contacts()
        .update(&h.admin, c.id, ContactPatch { name: Some("B".into()), ..Default::default() })
        .await
        .expect("u");
    assert_eq!(store.change_counter().await.expect("counter"), c1 + 1);
}

/// Free-form objects refuse `$`-prefixed and dotted keys, so no backend ever reads them
/// as operators or paths.
pub async fn free_form_objects_reject_operator_keys(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let mut bad = serde_json::Map::new();
    bad.insert("$where".into(), json!("1"));
    bad.insert("a.b".into(), json!({"$ne": null}));
    let e = assert_code(
        h.crm
            .contacts()
            .create(&h.admin, NewContact { name: "x".into(), custom_fields: bad, ..Default::default() })
            .await,
        "validation_failed",
    );
    let mut f = fields(&e);
    f.sort();
    assert_eq!(f, vec!["customFields.$ne", "customFields.$where", "customFields.a.b"]);
    let mut good = serde_json::Map::new();
    good.insert("note".into(), json!(r#"{"$ne": null}"#));
    h.crm
        .contacts()
        .create(&h.admin, NewContact { name: "y".into(), custom_fields: good, ..Default::default() })
        .await
        .expect("string values are data");
}

/// Operator objects, `$`- and dotted keys, regex and SQL metacharacters given as data —
/// in string fields, filter values, patterns and search text — stay data on every backend:
/// stored and read back as given, matched literally, never widening a query.
pub async fn injection_attempts_stay_data(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let hostile = [
        r#"{"$ne": null}"#,
        "$where",
        "$gt",
        "a.b",
        "$regex",
        ".*",
        "^",
        "(?i)A",
        "'; DROP TABLE contacts; --",
        "\" OR 1=1 --",
        "%",
        "_",
        "\\",
        "[a-z]+",
    ];
    let mut ids = Vec::new();
    for (i, s) in hostile.iter().enumerate() {
        let c = h
            .crm
            .contacts()
            .create(
                &h.admin,
                NewContact {
                    name: format!("n{i} {s}"),
                    job_title: Some((*s).to_string()),
                    lead_source: Some((*s).to_string()),
                    tags: vec![(*s).to_string(), format!("t{i}")],
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{s:?} is storable text: {e}"));
        assert_eq!(c.job_title.as_deref(), Some(*s));
        assert_eq!(c.tags[0], *s);
        ids.push(c.id);
    }
    // A plain record that any widened query would drag in.
    h.crm
        .contacts()
        .create(
            &h.admin,
            NewContact { name: "Plain Person".into(), job_title: Some("Engineer".into()), ..Default::default() },
        )
        .await
        .expect("plain");
    let n = |page: Page<Contact>| page.data.into_iter().map(|c| c.id).collect::<Vec<_>>();
    for (i, s) in hostile.iter().enumerate() {
        let quoted = crm_core::query::quote(s);
        for filter in [
            format!("jobTitle[eq]:{quoted}"),
            format!("leadSource[in]:[{quoted},\"none\"]"),
            format!("tags[eq]:{quoted}"),
            format!("jobTitle[startsWith]:{quoted}"),
        ] {
            let got = n(h.crm.contacts().list(&h.admin, q(EntityKind::Contact, &filter)).await.expect(&filter));
            assert_eq!(got, vec![ids[i]], "{filter} matches exactly the record holding it");
        }
        // As a like pattern the wildcards `%` and `_` are wildcards; everything else is literal.
        let literal: String =
            s.chars().flat_map(|c| if "%_\\".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
        let filter = format!("jobTitle[ilike]:{}", crm_core::query::quote(&literal));
        let got = n(h.crm.contacts().list(&h.admin, q(EntityKind::Contact, &filter)).await.expect(&filter));
        assert_eq!(got, vec![ids[i]], "{filter} (escaped) matches exactly the record holding it");
        // Free-text search finds the text literally: never everything.
        let found =
            n(h.crm.contacts().list(&h.admin, ListQuery::new().search(format!("n{i} {s}"))).await.expect("search"));
        assert!(found.contains(&ids[i]), "search {s:?} finds its record");
        assert!(found.len() < hostile.len(), "search {s:?} matched {} records", found.len());
    }
    // A pattern of regex metacharacters matches literally: `.*` is not "anything".
    let got = n(h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "jobTitle[like]:\".*\"")).await.expect("like"));
    assert_eq!(got, vec![ids[5]]);
    // Operator objects where text is expected are refused before anything runs.
    for body in [
        json!({"name": {"$ne": null}}),
        json!({"name": "x", "email": {"$gt": ""}}),
        json!({"name": "x", "tags": [{"$where": "1"}]}),
        json!({"name": "x", "$where": "1"}),
    ] {
        assert!(serde_json::from_value::<NewContact>(body.clone()).is_err(), "{body} is not a contact");
    }
    let total = h.crm.contacts().list(&h.admin, ListQuery::new().count(true)).await.expect("count").total_count;
    assert_eq!(total, Some(hostile.len() as u64 + 1), "nothing was added or lost");
}
