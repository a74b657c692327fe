//! Create, read, update, delete, restore and purge of every entity.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use crm_core::audit::AuditEvent;
use crm_core::outbox::OutboxEvent;
use crm_core::schema::{from_row, to_row, Persist};
use crm_core::service::*;
use crm_core::*;
use serde_json::json;
use uuid::Uuid;

use super::{assert_code, q};
use crate::{Harness, TestBackend};

async fn insert_raw<T: Persist>(store: &dyn Store, item: &T) {
    let row = to_row(item).expect("to_row");
    store.apply(Changeset { writes: vec![Write::Insert { kind: T::KIND, row }], audit: vec![] }).await.expect("insert");
}

async fn get_raw<T: Persist>(store: &dyn Store, id: Uuid) -> T {
    from_row(store.get(T::KIND, id).await.expect("get").expect("row exists")).expect("from_row")
}

/// The database holds what crm-core declares: every column (name, position, type,
/// nullability) and every index (key, uniqueness, rows covered); dropping an index or a
/// column behind crm-core's back is named by the check.
pub async fn schema_agrees_with_the_declaration(b: &dyn TestBackend) {
    let store = b.store();
    let diff = crm_core::schema_check::differences(&store.live_schema().await.expect("live schema"));
    assert!(diff.is_empty(), "the {} schema differs from the declaration:\n{}", store.backend(), diff.join("\n"));

    b.drop_index("contacts", "contacts_name_idx").await;
    let diff = crm_core::schema_check::differences(&store.live_schema().await.expect("live schema"));
    assert_eq!(diff, vec!["contacts: index contacts_name_idx missing".to_string()]);
    if b.drop_column("contacts", "job_title").await {
        let diff = crm_core::schema_check::differences(&store.live_schema().await.expect("live schema"));
        assert!(diff.contains(&"contacts.job_title: column missing".to_string()), "{diff:?}");
    }
}

/// Every column of every kind, filled with non-default values, comes back exactly.
pub async fn schema_round_trips_every_kind(b: &dyn TestBackend) {
    let store = b.store();
    let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).single().expect("ts") + Duration::milliseconds(891);
    let uid = UserId(Uuid::now_v7());
    let meta = RecordMeta {
        version: 3,
        created_at: at,
        updated_at: at + Duration::days(1),
        created_by: Some(uid),
        updated_by: Some(uid),
        deleted_at: Some(at + Duration::days(2)),
        deleted_by: Some(uid),
    };
    let team = Team {
        id: TeamId(Uuid::now_v7()),
        name: "Équipe 🚀".into(),
        description: Some("d".into()),
        manager_id: Some(uid),
        meta: meta.clone(),
    };
    let mut settings = serde_json::Map::new();
    settings.insert("language".into(), json!("fr"));
    let user = User {
        id: uid,
        username: "ann".into(),
        email: Email::parse("ann@example.com").expect("email"),
        password_hash: Some("$argon2id$v=19$x".into()),
        role: Role::Manager,
        team_id: Some(team.id),
        status: UserStatus::Suspended,
        email_verified_at: Some(at),
        suspended_until: Some(at + Duration::hours(5)),
        suspension_reason: Some("why".into()),
        last_login_at: Some(at),
        failed_logins: 4,
        locked_until: Some(at),
        session_epoch: 7,
        profile_picture: Some("avatars/x.webp".into()),
        settings: settings.clone(),
        meta: meta.clone(),
    };
    let company = Company {
        id: CompanyId(Uuid::now_v7()),
        name: "Acme".into(),
        domain: Some(Domain::parse("acme.com").expect("domain")),
        industry: Some("Software".into()),
        size: Some(120),
        country: Some("FR".into()),
        contact_details: crm_core::model::company::ContactDetails {
            email: Some(Email::parse("hi@acme.com").expect("email")),
            phone_number: Some(Phone::parse("+33142685300", None).expect("phone")),
            website: Some("https://acme.com".into()),
            address: Some(settings.clone()),
        },
        owner_id: uid,
        team_id: Some(team.id),
        custom_fields: settings.clone(),
        meta: meta.clone(),
    };
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        name: "Ann Lee".into(),
        email: Some(Email::parse("ann.lee@acme.com").expect("email")),
        phone_number: Some(Phone::parse("+14155552671", None).expect("phone")),
        job_title: Some("CTO".into()),
        company_id: Some(company.id),
        owner_id: uid,
        team_id: Some(team.id),
        lead_source: Some("web".into()),
        lifecycle_stage: LifecycleStage::Customer,
        converted_at: Some(at),
        tags: vec!["vip".into(), "beta".into()],
        preferences: settings.clone(),
        social: settings.clone(),
        address: settings.clone(),
        custom_fields: settings.clone(),
        meta: meta.clone(),
    };
    let deal = Deal {
        id: DealId(Uuid::now_v7()),
        name: "Big one".into(),
        description: Some("multi\nline".into()),
        amount: Some(1_234_567),
        currency: Currency::parse("EUR").expect("cur"),
        stage: DealStage::Negotiation,
        probability: 55,
        expected_close_date: NaiveDate::from_ymd_opt(2026, 12, 31),
        closed_at: Some(at),
        stage_changed_at: at,
        contact_ids: vec![contact.id],
        company_id: Some(company.id),
        owner_id: uid,
        team_id: Some(team.id),
        products: vec![LineItem {
            product_id: None,
            name: "Seat".into(),
            quantity: 3,
            unit_price: 1000,
            discount_percent: Percent::from_f64(12.5).expect("pct"),
            tax_percent: Percent::from_f64(20.0).expect("pct"),
            total: 3150,
        }],
        notes: Some("n".into()),
        lost_reason: Some("price".into()),
        meta: meta.clone(),
    };
    let change = DealStageChange {
        id: Uuid::now_v7(),
        deal_id: deal.id,
        from_stage: Some(DealStage::Proposal),
        to_stage: DealStage::Negotiation,
        changed_at: at,
        changed_by: Some(uid),
    };
    let task = Task {
        id: TaskId(Uuid::now_v7()),
        name: "Call".into(),
        description: Some("about it".into()),
        due_date: Some(at),
        priority: TaskPriority::Urgent,
        status: TaskStatus::InProgress,
        assigned_user: Some(uid),
        related: Some(Related { kind: RelatedType::Deal, id: deal.id.as_uuid() }),
        completed_at: Some(at),
        owner_id: uid,
        team_id: Some(team.id),
        meta: meta.clone(),
    };
    let interaction = Interaction {
        id: InteractionId(Uuid::now_v7()),
        contact_id: contact.id,
        deal_id: Some(deal.id),
        kind: InteractionKind::Meeting,
        occurred_at: at,
        subject: Some("Kick-off".into()),
        body: Some("notes".into()),
        owner_id: uid,
        team_id: Some(team.id),
        meta: meta.clone(),
    };
    let report = SavedReport {
        id: SavedReportId(Uuid::now_v7()),
        name: "Forecast ✓".into(),
        description: Some("for the board".into()),
        standard: Some("r2_forecast_by_month".into()),
        parameters: StandardParams {
            as_of: Some(at),
            forecast_end: NaiveDate::from_ymd_opt(2027, 1, 1),
            engagement_start: Some(at - Duration::days(30)),
        },
        spec: Some(json!({"source": "deals", "aggregates": [{"fn": "count"}]})),
        cards: Some(vec![DashboardCard { report: "r1_pipeline_by_stage".into(), width: 2 }]),
        chart: Some(ChartSpec { kind: ChartKind::Line, x: "month".into(), y: vec!["deal_count".into()], title: None }),
        shared_with: Sharing { users: vec![uid], teams: vec![team.id], roles: vec![Role::Manager, Role::User] },
        owner_id: uid,
        team_id: Some(team.id),
        meta: meta.clone(),
    };
    let outbox = OutboxEvent {
        id: Uuid::now_v7(),
        topic: "contact.created".into(),
        entity_type: "contact".into(),
        entity_id: Some(contact.id.as_uuid()),
        payload: json!({"a": [1, 2, {"b": null}]}),
        created_at: at,
        available_at: at,
        attempts: 2,
        delivered_at: Some(at),
        last_error: Some("smtp down".into()),
        version: 4,
    };
    insert_raw(store.as_ref(), &team).await;
    insert_raw(store.as_ref(), &user).await;
    insert_raw(store.as_ref(), &company).await;
    insert_raw(store.as_ref(), &contact).await;
    insert_raw(store.as_ref(), &deal).await;
    insert_raw(store.as_ref(), &change).await;
    insert_raw(store.as_ref(), &task).await;
    insert_raw(store.as_ref(), &interaction).await;
    insert_raw(store.as_ref(), &outbox).await;
    insert_raw(store.as_ref(), &report).await;
    assert_eq!(get_raw::<Team>(store.as_ref(), team.id.as_uuid()).await, team);
    assert_eq!(get_raw::<User>(store.as_ref(), user.id.as_uuid()).await, user);
    assert_eq!(get_raw::<Company>(store.as_ref(), company.id.as_uuid()).await, company);
    assert_eq!(get_raw::<Contact>(store.as_ref(), contact.id.as_uuid()).await, contact);
    assert_eq!(get_raw::<Deal>(store.as_ref(), deal.id.as_uuid()).await, deal);
    assert_eq!(get_raw::<DealStageChange>(store.as_ref(), change.id).await, change);
    assert_eq!(get_raw::<Task>(store.as_ref(), task.id.as_uuid()).await, task);
    assert_eq!(get_raw::<Interaction>(store.as_ref(), interaction.id.as_uuid()).await, interaction);
    assert_eq!(get_raw::<OutboxEvent>(store.as_ref(), outbox.id).await, outbox);
    assert_eq!(get_raw::<SavedReport>(store.as_ref(), report.id.as_uuid()).await, report);
    // Audit events round-trip through apply, which seals them.
    let head = store.audit_head().await.expect("head");
    let rows = store
        .list(EntityKind::AuditEvent, &crm_core::query::StoreQuery::all(EntityKind::AuditEvent, 10))
        .await
        .expect("list");
    assert_eq!(rows.len() as i64, head.seq);
    assert!(store.get(EntityKind::Contact, Uuid::now_v7()).await.expect("get").is_none());
    let _: Vec<AuditEvent> = rows.into_iter().map(|r| from_row(r).expect("audit row")).collect();
}

/// Contacts: create with every field, get, update, list, delete.
pub async fn contact_crud(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let c = h.crm.contacts();
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() })
        .await
        .expect("company");
    let mut prefs = serde_json::Map::new();
    prefs.insert("newsletter".into(), json!(true));
    let ann = c
        .create(
            &h.admin,
            NewContact {
                name: "  Ann Lee ".into(),
                email: Some("Ann.Lee@Example.com".into()),
                phone_number: Some("+1 415 555 2671".into()),
                job_title: Some("CTO".into()),
                company_id: Some(acme.id),
                lead_source: Some("web".into()),
                lifecycle_stage: Some(LifecycleStage::Mql),
                tags: vec!["vip".into(), "vip".into(), " beta ".into()],
                preferences: prefs.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(ann.name, "Ann Lee");
    assert_eq!(ann.email.as_ref().map(|e| e.as_str()), Some("ann.lee@example.com"));
    assert_eq!(ann.phone_number.as_ref().map(|p| p.as_str()), Some("+14155552671"));
    assert_eq!(ann.tags, vec!["vip", "beta"]);
    assert_eq!(ann.owner_id, h.admin.user_id);
    assert_eq!(ann.meta.version, 1);
    let got = c.get(&h.admin, ann.id).await.expect("get");
    assert_eq!(got, ann);
    h.clock.advance(Duration::minutes(1));
    let upd = c
        .update(
            &h.admin,
            ann.id,
            ContactPatch {
                job_title: Some(Some("CEO".into())),
                lifecycle_stage: Some(LifecycleStage::Customer),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(upd.job_title.as_deref(), Some("CEO"));
    assert_eq!(upd.meta.version, 2);
    assert_eq!(upd.converted_at, Some(h.clock.now()));
    assert_eq!(upd.meta.updated_at, h.clock.now());
    assert_eq!(upd.preferences, prefs);
    assert_eq!(c.get(&h.admin, ann.id).await.expect("get"), upd);
    let page = c.list(&h.admin, ListQuery::new()).await.expect("list");
    assert_eq!(page.data, vec![upd.clone()]);
    c.delete(&h.admin, ann.id, Some(2)).await.expect("delete");
    assert_code(c.get(&h.admin, ann.id).await, "not_found");
    assert!(c.list(&h.admin, ListQuery::new()).await.expect("list").data.is_empty());
}

/// Companies: domain normalised, country checked, update and delete.
pub async fn company_crud(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.companies();
    let acme = s
        .create(
            &h.admin,
            NewCompany {
                name: "Acme".into(),
                domain: Some("https://www.ACME.com/about".into()),
                industry: Some("Software".into()),
                size: Some(250),
                country: Some("fr".into()),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(acme.domain.as_ref().map(|d| d.as_str()), Some("acme.com"));
    assert_eq!(acme.country.as_deref(), Some("FR"));
    assert_eq!(acme.size_bucket(), "201-1000");
    let upd =
        s.update(&h.admin, acme.id, CompanyPatch { size: Some(None), ..Default::default() }).await.expect("update");
    assert_eq!(upd.size, None);
    assert_eq!(s.get(&h.admin, acme.id).await.expect("get"), upd);
    s.delete(&h.admin, acme.id, None).await.expect("delete");
    assert_code(s.get(&h.admin, acme.id).await, "not_found");
}

/// Deals: line items priced in minor units, amount from the items, currency checked.
pub async fn deal_crud_with_line_items(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let d = h.crm.deals();
    let deal = d
        .create(
            &h.admin,
            NewDeal {
                name: "Licences".into(),
                currency: Some("eur".into()),
                products: vec![
                    NewLineItem {
                        name: "Seat".into(),
                        quantity: Some(3),
                        unit_price: 1999,
                        discount_percent: Percent::from_f64(10.0).expect("p"),
                        tax_percent: Percent::from_f64(20.0).expect("p"),
                        ..Default::default()
                    },
                    NewLineItem { name: "Setup".into(), quantity: None, unit_price: 50000, ..Default::default() },
                ],
                expected_close_date: NaiveDate::from_ymd_opt(2026, 6, 30).map(Into::into),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    // 3 × 19.99 = 59.97; −10% = 53.97 (5997 − 599.7 → 600 rounded) = 5397; +20% = 6476.4 → 6476.
    assert_eq!(deal.products[0].total, 6476);
    assert_eq!(deal.products[1].total, 50000);
    assert_eq!(deal.amount, Some(56476));
    assert_eq!(deal.currency.code(), "EUR");
    assert_eq!(deal.stage, DealStage::Prospecting);
    assert_eq!(deal.probability, 10);
    assert_eq!(d.get(&h.admin, deal.id).await.expect("get"), deal);
    let upd = d
        .update(&h.admin, deal.id, DealPatch { amount: Some(Some(70000)), ..Default::default() })
        .await
        .expect("update");
    assert_eq!(upd.amount, Some(70000));
    let e = assert_code(
        d.create(&h.admin, NewDeal { name: "x".into(), currency: Some("ZZZ".into()), ..Default::default() }).await,
        "validation_failed",
    );
    assert_eq!(super::fields(&e), vec!["currency"]);
    d.delete(&h.admin, deal.id, None).await.expect("delete");
    assert_code(d.get(&h.admin, deal.id).await, "not_found");
}

/// Tasks: defaults, related record, due date, status changes.
pub async fn task_crud(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let deal = h.crm.deals().create(&h.admin, NewDeal { name: "D".into(), ..Default::default() }).await.expect("deal");
    let t = h
        .crm
        .tasks()
        .create(
            &h.admin,
            NewTask {
                name: "Send proposal".into(),
                due_date: Some((h.clock.now() + Duration::days(2)).into()),
                related: Some(Related { kind: RelatedType::Deal, id: deal.id.as_uuid() }),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(t.priority, TaskPriority::Medium);
    assert_eq!(t.status, TaskStatus::Open);
    let upd = h
        .crm
        .tasks()
        .update(&h.admin, t.id, TaskPatch { status: Some(TaskStatus::Done), ..Default::default() })
        .await
        .expect("update");
    assert_eq!(upd.completed_at, Some(h.clock.now()));
    let reopened = h
        .crm
        .tasks()
        .update(&h.admin, t.id, TaskPatch { status: Some(TaskStatus::Open), ..Default::default() })
        .await
        .expect("reopen");
    assert_eq!(reopened.completed_at, None);
    let found =
        h.crm.tasks().list(&h.admin, q(EntityKind::Task, &format!("related.id[eq]:{}", deal.id))).await.expect("list");
    assert_eq!(found.data.len(), 1);
    let e = assert_code(
        h.crm
            .tasks()
            .create(
                &h.admin,
                NewTask {
                    name: "x".into(),
                    related: Some(Related { kind: RelatedType::Contact, id: deal.id.as_uuid() }),
                    ..Default::default()
                },
            )
            .await,
        "validation_failed",
    );
    assert_eq!(super::fields(&e), vec!["related.id"]);
}

/// Interactions: logged on a contact, listed per contact, future times refused.
pub async fn interaction_crud(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = h
        .crm
        .contacts()
        .create(&h.admin, NewContact { name: "Ann".into(), ..Default::default() })
        .await
        .expect("contact");
    let s = h.crm.interactions();
    for kind in [InteractionKind::Call, InteractionKind::Email, InteractionKind::Note] {
        s.log(
            &h.admin,
            NewInteraction {
                contact_id: ann.id,
                kind,
                occurred_at: None,
                deal_id: None,
                subject: Some(format!("{kind}")),
                body: None,
            },
        )
        .await
        .expect("log");
    }
    let page = s
        .list(&h.admin, q(EntityKind::Interaction, &format!("contactId[eq]:{},kind[neq]:note", ann.id)))
        .await
        .expect("list");
    assert_eq!(page.data.len(), 2);
    let e = assert_code(
        s.log(
            &h.admin,
            NewInteraction {
                contact_id: ann.id,
                kind: InteractionKind::Call,
                occurred_at: Some((h.clock.now() + Duration::days(3)).into()),
                deal_id: None,
                subject: None,
                body: None,
            },
        )
        .await,
        "validation_failed",
    );
    assert_eq!(super::fields(&e), vec!["occurredAt"]);
    let first = &page.data[0];
    let upd = s
        .update(&h.admin, first.id, InteractionPatch { body: Some(Some("went well".into())), ..Default::default() })
        .await
        .expect("update");
    assert_eq!(upd.body.as_deref(), Some("went well"));
}

/// Teams and users: create, update, deactivate, restore.
pub async fn team_and_user_crud(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("Sales").await;
    let bob = h
        .crm
        .users()
        .create(
            &h.admin,
            NewUser {
                username: "Bob.Smith".into(),
                email: "BOB@example.com".into(),
                role: None,
                team_id: Some(team),
                password: None,
            },
        )
        .await
        .expect("user");
    assert_eq!(bob.username, "bob.smith");
    assert_eq!(bob.email.as_str(), "bob@example.com");
    assert_eq!(bob.role, Role::User);
    let moved = h
        .crm
        .users()
        .update(&h.admin, bob.id, UserPatch { team_id: Some(None), ..Default::default() })
        .await
        .expect("update");
    assert_eq!(moved.team_id, None);
    let off = h.crm.users().deactivate(&h.admin, bob.id, None).await.expect("deactivate");
    assert_eq!(off.status, UserStatus::Deactivated);
    assert_code(h.crm.users().get(&h.admin, bob.id).await, "not_found");
    let back = h.crm.users().restore(&h.admin, bob.id).await.expect("restore");
    assert_eq!(back.status, UserStatus::Active);
    let t = h
        .crm
        .teams()
        .update(&h.admin, team, TeamPatch { description: Some(Some("EMEA".into())), ..Default::default() })
        .await
        .expect("team");
    assert_eq!(t.description.as_deref(), Some("EMEA"));
    assert_code(h.crm.users().bootstrap_admin("again", "again@example.com").await, "conflict");
}

/// A patch changes what it names; `null` clears; absent keeps.
pub async fn patch_null_clears_and_absent_keeps(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let c = h
        .crm
        .contacts()
        .create(
            &h.admin,
            NewContact {
                name: "Ann".into(),
                email: Some("ann@x.io".into()),
                job_title: Some("CTO".into()),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    let patch: ContactPatch = serde_json::from_value(json!({"email": null, "leadSource": "fair"})).expect("patch json");
    let u = h.crm.contacts().update(&h.admin, c.id, patch).await.expect("update");
    assert_eq!(u.email, None);
    assert_eq!(u.job_title.as_deref(), Some("CTO"));
    assert_eq!(u.lead_source.as_deref(), Some("fair"));
    assert!(
        serde_json::from_value::<ContactPatch>(json!({"version": 1, "role": "admin"})).is_err(),
        "unknown fields are refused"
    );
    // A patch that changes nothing writes nothing.
    let same = h
        .crm
        .contacts()
        .update(&h.admin, c.id, ContactPatch { job_title: Some(Some("CTO".into())), ..Default::default() })
        .await
        .expect("noop");
    assert_eq!(same.meta.version, u.meta.version);
}

/// Soft delete hides a record from get and list; restore brings it back.
pub async fn soft_delete_hides_and_restore_returns(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let s = h.crm.contacts();
    let a = s.create(&h.admin, NewContact { name: "A".into(), ..Default::default() }).await.expect("a");
    let gone = s.delete(&h.admin, a.id, None).await.expect("delete");
    assert_eq!(gone.meta.deleted_at, Some(h.clock.now()));
    assert_eq!(gone.meta.deleted_by, Some(h.admin.user_id));
    assert_code(s.get(&h.admin, a.id).await, "not_found");
    assert_code(
        s.update(&h.admin, a.id, ContactPatch { name: Some("B".into()), ..Default::default() }).await,
        "not_found",
    );
    let with = s.list(&h.admin, ListQuery::new().include_deleted(true)).await.expect("list");
    assert_eq!(with.data.len(), 1);
    let back = s.restore(&h.admin, a.id).await.expect("restore");
    assert_eq!(back.meta.deleted_at, None);
    assert_eq!(back.meta.version, 3);
    assert_eq!(s.get(&h.admin, a.id).await.expect("get"), back);
}

/// Only roles with the restore right see deleted records.
pub async fn include_deleted_needs_manager(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("T").await;
    let user = h.user("usr1", Role::User, Some(team)).await;
    let manager = h.user("mgr1", Role::Manager, Some(team)).await;
    let c = h.crm.contacts().create(&user, NewContact { name: "Mine".into(), ..Default::default() }).await.expect("c");
    h.crm.contacts().delete(&user, c.id, None).await.expect("delete own");
    assert_code(h.crm.contacts().list(&user, ListQuery::new().include_deleted(true)).await, "forbidden");
    assert_code(h.crm.contacts().restore(&user, c.id).await, "not_found");
    let seen = h.crm.contacts().list(&manager, ListQuery::new().include_deleted(true)).await.expect("manager list");
    assert_eq!(seen.data.len(), 1);
    h.crm.contacts().restore(&manager, c.id).await.expect("manager restores");
}

/// Purge removes a record and its children for good; only admins purge.
pub async fn purge_removes_for_good_with_children(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let manager = h.user("mgr1", Role::Manager, None).await;
    let deal = h.crm.deals().create(&h.admin, NewDeal { name: "D".into(), ..Default::default() }).await.expect("deal");
    h.crm.deals().move_to(&h.admin, deal.id, DealStage::Proposal).await.expect("move");
    let c = h.crm.contacts().create(&h.admin, NewContact { name: "C".into(), ..Default::default() }).await.expect("c");
    h.crm
        .interactions()
        .log(
            &h.admin,
            NewInteraction {
                contact_id: c.id,
                kind: InteractionKind::Call,
                occurred_at: None,
                deal_id: None,
                subject: None,
                body: None,
            },
        )
        .await
        .expect("log");
    assert_code(h.crm.deals().purge(&manager, deal.id).await, "not_found");
    h.crm.deals().purge(&h.admin, deal.id).await.expect("purge");
    h.crm.contacts().purge(&h.admin, c.id).await.expect("purge");
    let store = b.store();
    assert!(store.get(EntityKind::Deal, deal.id.as_uuid()).await.expect("get").is_none());
    assert!(store.get(EntityKind::Contact, c.id.as_uuid()).await.expect("get").is_none());
    assert_eq!(store.count(EntityKind::DealStageChange, None, true).await.expect("count"), 0);
    assert_eq!(store.count(EntityKind::Interaction, None, true).await.expect("count"), 0);
    assert_code(h.crm.deals().restore(&h.admin, deal.id).await, "not_found");
    let purged =
        h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:\"deal.purged\"")).await.expect("audit");
    assert_eq!(purged.data.len(), 1);
}

/// Purging a company clears the references contacts and deals held.
pub async fn purge_company_clears_references(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() })
        .await
        .expect("company");
    let c = h
        .crm
        .contacts()
        .create(&h.admin, NewContact { name: "C".into(), company_id: Some(acme.id), ..Default::default() })
        .await
        .expect("c");
    let d = h
        .crm
        .deals()
        .create(&h.admin, NewDeal { name: "D".into(), company_id: Some(acme.id), ..Default::default() })
        .await
        .expect("d");
    h.crm.companies().purge(&h.admin, acme.id).await.expect("purge");
    let c2 = h.crm.contacts().get(&h.admin, c.id).await.expect("c");
    assert_eq!(c2.company_id, None);
    assert_eq!(c2.meta.version, c.meta.version + 1);
    assert_eq!(h.crm.deals().get(&h.admin, d.id).await.expect("d").company_id, None);
    // The contact can still be updated with its new version.
    h.crm
        .contacts()
        .update(
            &h.admin,
            c.id,
            ContactPatch { version: Some(c2.meta.version), name: Some("C2".into()), ..Default::default() },
        )
        .await
        .expect("update");
}

/// A deal's stage history is strictly ordered in time even when its stage changes
/// several times within one millisecond (here: a clock that stands still).
pub async fn deal_history_is_strictly_ordered(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let d = h.crm.deals();
    let deal = d.create(&h.admin, NewDeal { name: "Fast".into(), ..Default::default() }).await.expect("create");
    for stage in [DealStage::Qualification, DealStage::Proposal, DealStage::Prospecting, DealStage::ClosedWon] {
        d.move_to(&h.admin, deal.id, stage).await.expect("move");
    }
    let history = d.history(&h.admin, deal.id).await.expect("history");
    assert_eq!(history.len(), 5);
    for pair in history.windows(2) {
        assert_eq!(pair[1].changed_at - pair[0].changed_at, chrono::Duration::milliseconds(1), "{history:?}");
    }
    let now = d.get(&h.admin, deal.id).await.expect("get");
    let last = history.last().expect("entries").changed_at;
    assert_eq!((now.stage_changed_at, now.closed_at), (last, Some(last)));
}

/// crm-core's idempotency service on every store: the first request runs, the same one
/// replays its kept answer, another request under the key (or the same one while the
/// first runs) is a conflict naming the key, a forgotten answer frees the key, and keys
/// are per scope and expire.
pub async fn idempotency_keys_run_once_and_replay(b: &dyn TestBackend) {
    use crm_core::service::idempotency::{Begun, KeptAnswer};
    let h = Harness::new(b).await;
    let idem = h.crm.idempotency();
    let req: [&[u8]; 2] = [b"POST /api/contacts", b"{\"name\":\"A\"}"];
    let Begun::Run(ticket) = idem.begin("u1", "k", &req).await.unwrap() else { panic!("a first request runs") };
    let running = idem.begin("u1", "k", &req).await.unwrap_err();
    assert_eq!(running.code(), "conflict", "{running}");
    let answer = KeptAnswer {
        status: 201,
        body: "{\"id\":1}".into(),
        content_type: Some("application/json".into()),
        location: Some("/x".into()),
    };
    assert!(idem.keep(ticket, answer.clone()).await.unwrap());
    match idem.begin("u1", "k", &req).await.unwrap() {
        Begun::Replay(a) => assert_eq!(a, answer),
        Begun::Run(_) => panic!("the same request replays"),
    }
    let other = idem.begin("u1", "k", &[b"POST /api/contacts", b"{\"name\":\"B\"}"]).await.unwrap_err();
    assert_eq!(crate::cases::fields(&other), Vec::<String>::new(), "a conflict, not a validation error");
    assert_eq!(other.code(), "conflict");
    // Another caller's "k" is another key; a forgotten answer frees the key.
    let Begun::Run(theirs) = idem.begin("u2", "k", &req).await.unwrap() else { panic!("another scope runs") };
    idem.forget(theirs).await.unwrap();
    assert!(matches!(idem.begin("u2", "k", &req).await.unwrap(), Begun::Run(_)));
    // A day later the key is free again.
    h.clock.advance(Duration::hours(25));
    assert!(matches!(idem.begin("u1", "k", &[b"other"]).await.unwrap(), Begun::Run(_)));
    assert_eq!(idem.begin("u1", "", &req).await.unwrap_err().code(), "validation_failed");
}
