//! The analytics snapshot of the store: what it holds, whose scope, and its cache.

use std::sync::Arc;

use chrono::Duration;
use crm_core::analytics::polars::prelude::*;
use crm_core::analytics::{Params, REPORTS};
use crm_core::service::*;
use crm_core::*;

use super::assert_code;
use crate::{Harness, TestBackend};

fn touch(contact_id: ContactId, kind: InteractionKind) -> NewInteraction {
    NewInteraction { contact_id, kind, occurred_at: None, deal_id: None, subject: None, body: None }
}

fn texts(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    let c = df.column(column).expect("column");
    (0..df.height())
        .map(|i| match c.get(i).expect("value") {
            AnyValue::Null => None,
            v => Some(v.str_value().to_string()),
        })
        .collect()
}

fn ints(df: &DataFrame, column: &str) -> Vec<Option<i64>> {
    let c = df.column(column).expect("column");
    (0..df.height()).map(|i| c.get(i).expect("value").extract::<i64>()).collect()
}

/// The snapshot holds the live records as the analytics tables, within the caller's read
/// scope (a plain user's reports cover what they own), and is read again only after a
/// change.
pub async fn analytics_snapshot_follows_scope_and_changes(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("Sales").await;
    let ann = h.user("ann", Role::User, Some(team)).await;
    let bob = h.user("bob", Role::User, Some(team)).await;
    let acme = h
        .crm
        .companies()
        .create(
            &h.admin,
            NewCompany {
                name: "Acme".into(),
                size: Some(120),
                industry: Some("Tech".into()),
                owner_id: Some(ann.user_id),
                ..Default::default()
            },
        )
        .await
        .expect("company");
    let ann_contact = h
        .crm
        .contacts()
        .create(
            &ann,
            NewContact {
                name: "Ann Lee Smith".into(),
                lead_source: Some("web".into()),
                company_id: Some(acme.id),
                ..Default::default()
            },
        )
        .await
        .expect("contact");
    let gone =
        h.crm.contacts().create(&ann, NewContact { name: "Gone".into(), ..Default::default() }).await.expect("c");
    h.crm.contacts().delete(&ann, gone.id, None).await.expect("delete");
    let bob_contact =
        h.crm.contacts().create(&bob, NewContact { name: "Bob".into(), ..Default::default() }).await.expect("contact");
    let deal = |name: &str, amount: i64| NewDeal {
        name: name.into(),
        amount: Some(amount),
        company_id: Some(acme.id),
        contact_ids: vec![ann_contact.id],
        ..Default::default()
    };
    let won = h.crm.deals().create(&ann, deal("Won", 5_000)).await.expect("deal");
    h.clock.advance(Duration::days(2));
    h.crm.deals().move_to(&ann, won.id, DealStage::Qualification).await.expect("move");
    h.clock.advance(Duration::days(3));
    h.crm.deals().move_to(&ann, won.id, DealStage::ClosedWon).await.expect("move");
    let bobs = h
        .crm
        .deals()
        .create(&bob, NewDeal { contact_ids: vec![], company_id: None, ..deal("Bob's", 700) })
        .await
        .expect("deal");
    h.crm.deals().move_to(&bob, bobs.id, DealStage::Proposal).await.expect("move");
    h.crm.interactions().log(&ann, touch(ann_contact.id, InteractionKind::Call)).await.expect("interaction");
    h.crm.interactions().log(&bob, touch(bob_contact.id, InteractionKind::Email)).await.expect("interaction");

    let all = h.crm.analytics_tables(&h.admin).await.expect("snapshot");
    let names: Vec<&str> = all.0.keys().map(String::as_str).collect();
    assert_eq!(names, ["companies", "contacts", "deal_stage_history", "deals", "interactions", "tasks"]);
    let contacts = &all.0["contacts"];
    // The deleted contact is not there; names split into first and last.
    assert_eq!(texts(contacts, "first_name"), [Some("Ann".into()), Some("Bob".into())]);
    assert_eq!(texts(contacts, "last_name"), [Some("Lee Smith".into()), None]);
    assert_eq!(texts(contacts, "company_id"), [Some(acme.id.to_string()), None]);
    assert_eq!(texts(&all.0["companies"], "size_bucket"), [Some("51-200".into())]);
    let deals = &all.0["deals"];
    assert_eq!(texts(deals, "pipeline_stage"), [Some("closed_won".into()), Some("proposal".into())]);
    assert_eq!(ints(deals, "amount_cents"), [Some(5_000), Some(700)]);
    assert_eq!(texts(deals, "contact_id"), [Some(ann_contact.id.to_string()), None]);
    assert_eq!(deals.column("created_at").expect("c").dtype(), &DataType::Datetime(TimeUnit::Microseconds, None));
    // Creation and two moves for one deal, creation and a move for the other.
    assert_eq!(all.0["deal_stage_history"].height(), 5);
    assert_eq!(all.0["interactions"].height(), 2);

    // Every standard report runs on the snapshot; R1 shows Bob's open deal.
    for name in REPORTS {
        h.crm.standard_report(&h.admin, name, &Params::default()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let r1 = h.crm.standard_report(&h.admin, "r1_pipeline_by_stage", &Params::default()).await.expect("r1");
    assert_eq!(texts(&r1, "stage"), [Some("proposal".into())]);
    assert_eq!(ints(&r1, "weighted_amount"), [Some(280)]);
    let r3 = h.crm.standard_report(&h.admin, "r3_win_rate_by_owner", &Params::default()).await.expect("r3");
    assert_eq!(texts(&r3, "owner_id"), [Some(ann.user_id.to_string())]);
    assert_code(h.crm.standard_report(&h.admin, "r0", &Params::default()).await, "validation_failed");

    // Ann sees her own records only, and only her deal's history.
    let mine = h.crm.analytics_tables(&ann).await.expect("snapshot");
    assert_eq!(mine.0["contacts"].height(), 1);
    assert_eq!(texts(&mine.0["deals"], "name"), [Some("Won".into())]);
    assert_eq!(mine.0["deal_stage_history"].height(), 3);
    assert_eq!(mine.0["interactions"].height(), 1);
    let r1 = h.crm.standard_report(&ann, "r1_pipeline_by_stage", &Params::default()).await.expect("r1");
    assert_eq!(r1.height(), 0, "Bob's open deal is not in Ann's pipeline");

    // Unchanged store: the same snapshot. A change: read again.
    let again = h.crm.analytics_tables(&h.admin).await.expect("snapshot");
    assert!(Arc::ptr_eq(&all, &again), "an unchanged store is not read again");
    h.crm.contacts().create(&bob, NewContact { name: "Cy".into(), ..Default::default() }).await.expect("contact");
    let after = h.crm.analytics_tables(&h.admin).await.expect("snapshot");
    assert!(!Arc::ptr_eq(&all, &after));
    assert_eq!(after.0["contacts"].height(), 3);
    assert_eq!(h.crm.analytics_tables(&ann).await.expect("snapshot").0["contacts"].height(), 1);
}

/// More rows than one batch: the snapshot pages through them all, in id order.
pub async fn analytics_snapshot_reads_every_batch(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let rows: Vec<NewContact> =
        (0..10_050).map(|i| NewContact { name: format!("C{i:05}"), ..Default::default() }).collect();
    for chunk in rows.chunks(1_000) {
        h.crm.contacts().create_many(&h.admin, chunk.to_vec()).await.expect("import");
    }
    let t = h.crm.analytics_tables(&h.admin).await.expect("snapshot");
    let contacts = &t.0["contacts"];
    assert_eq!(contacts.height(), 10_050);
    let ids = texts(contacts, "id");
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 10_050, "no row read twice");
}

/// `Store::list_columns` answers the rows `list` answers, with only the asked columns in
/// the asked order (each backend's own projection, or the default picking from rows).
pub async fn store_lists_chosen_columns(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    for (i, stage) in [LifecycleStage::Lead, LifecycleStage::Customer, LifecycleStage::Lead].into_iter().enumerate() {
        let c = NewContact {
            name: format!("Person {i}"),
            lifecycle_stage: Some(stage),
            lead_source: (i > 0).then(|| "web".to_string()),
            ..Default::default()
        };
        h.crm.contacts().create(&h.admin, c).await.expect("contact");
    }
    let kind = EntityKind::Contact;
    let pos = |name: &str| kind.columns().iter().position(|c| c.name == name).expect("column");
    let picked = [pos("lead_source"), 0, pos("name"), pos("created_at"), pos("name")];
    let query = query::StoreQuery {
        filter: Some(query::Filter::eq(kind, "lifecycleStage", Value::Text("lead".into())).expect("filter")),
        sort: vec![query::id_key(kind, query::Direction::Asc)],
        limit: 10,
        include_deleted: false,
    };
    let whole = h.crm.store().list(kind, &query).await.expect("list");
    let some = h.crm.store().list_columns(kind, &query, &picked).await.expect("list_columns");
    assert_eq!(whole.len(), 2);
    assert_eq!(some.len(), 2);
    for (w, s) in whole.iter().zip(&some) {
        let expected: Vec<Value> = picked.iter().map(|&i| w[i].clone()).collect();
        assert_eq!(s, &expected);
    }
    assert_eq!(some[0][0], Value::Null, "the first lead has no source");
    assert_eq!(some[1][0], Value::Text("web".into()));
}

/// `Store::scan_columns` (each backend's bulk read: binary `COPY`, a direct SQLite
/// statement, batches) answers what paging `list` answers: the same rows in id order,
/// every column type exact, deleted rows only when asked, filters applied (scopes,
/// list membership, case-insensitive patterns).
pub async fn store_scans_in_bulk(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ann = h.user("ann", Role::User, None).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), size: Some(7), ..Default::default() })
        .await
        .expect("company");
    let mut contacts = Vec::new();
    for (i, who) in [&h.admin, &ann, &h.admin, &ann, &h.admin].into_iter().enumerate() {
        let c = NewContact { name: format!("Person {i} Ünï \"q\" 'x'; \\ 🚀 --"), ..Default::default() };
        contacts.push(h.crm.contacts().create(who, c).await.expect("contact"));
    }
    for (i, who) in [&h.admin, &ann, &ann].into_iter().enumerate() {
        let d = NewDeal {
            name: format!("Deal {i}"),
            amount: (i != 1).then_some(1_000 * i as i64 + 1),
            company_id: (i == 0).then_some(acme.id),
            contact_ids: match i {
                0 => vec![contacts[0].id, contacts[4].id],
                1 => vec![contacts[1].id, contacts[3].id],
                _ => vec![contacts[3].id],
            },
            expected_close_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 1 + i as u32).map(Into::into),
            ..Default::default()
        };
        let deal = h.crm.deals().create(who, d).await.expect("deal");
        h.clock.advance(Duration::milliseconds(1_234));
        h.crm.deals().move_to(who, deal.id, DealStage::Qualification).await.expect("move");
    }
    h.crm.contacts().delete(&h.admin, contacts[2].id, None).await.expect("delete");
    // An escape inlined into a statement would turn the control character 0x1A into `z`.
    let sub = NewContact { name: "Sub azb".into(), ..Default::default() };
    h.crm.contacts().create(&h.admin, sub).await.expect("contact");
    let store = h.crm.store();
    for kind in [EntityKind::Contact, EntityKind::Deal, EntityKind::DealStageChange, EntityKind::Company] {
        let all: Vec<usize> = (0..kind.columns().len()).collect();
        let contact_of_deal = Value::Uuid(contacts[3].id.as_uuid());
        let filters = [
            None,
            Some(query::Filter::eq(kind, "ownerId", Value::Uuid(ann.user_id.as_uuid())).ok()).flatten(),
            (kind == EntityKind::Deal)
                .then(|| query::Filter::eq(kind, "contactIds", contact_of_deal.clone()).expect("filter")),
            (kind == EntityKind::Contact).then(|| super::q(kind, "name[ilike]:\"person 1%\"").filter).flatten(),
            // Quotes, a backslash and a comment marker stay data in the inline COPY statement.
            (kind == EntityKind::Contact)
                .then(|| query::Filter::eq(kind, "name", Value::Text(contacts[3].name.clone())).expect("filter")),
            // Text is bound, never inlined: a control character is compared as itself.
            (kind == EntityKind::Contact)
                .then(|| query::Filter::eq(kind, "name", Value::Text("Sub a\u{1a}b".into())).expect("filter")),
        ];
        for filter in filters.iter().filter(|f| f.is_some()).chain([&None]) {
            for include_deleted in [false, true] {
                let query = query::StoreQuery {
                    filter: filter.clone(),
                    sort: vec![query::id_key(kind, query::Direction::Asc)],
                    limit: 1_000,
                    include_deleted,
                };
                let listed = store.list(kind, &query).await.expect("list");
                let scanned = store.scan_columns(kind, filter.as_ref(), include_deleted, &all).await.expect("scan");
                assert_eq!(scanned, listed, "{kind:?} {filter:?} deleted: {include_deleted}");
                let picked = [all.len() - 1, 0];
                let some = store.scan_columns(kind, filter.as_ref(), include_deleted, &picked).await.expect("scan");
                let expected: Vec<Vec<Value>> =
                    listed.iter().map(|r| vec![r[all.len() - 1].clone(), r[0].clone()]).collect();
                assert_eq!(some, expected);
            }
        }
    }
    let contacts_scanned = store.scan_columns(EntityKind::Contact, None, true, &[0]).await.expect("scan");
    assert_eq!(contacts_scanned.len(), 6);
    let sub = query::Filter::eq(EntityKind::Contact, "name", Value::Text("Sub a\u{1a}b".into())).expect("filter");
    assert_eq!(
        store.scan_columns(EntityKind::Contact, Some(&sub), false, &[0]).await.expect("scan"),
        Vec::<Vec<Value>>::new()
    );
    let ilike = super::q(EntityKind::Contact, "name[ilike]:\"person 1%\"").filter;
    assert_eq!(store.scan_columns(EntityKind::Contact, ilike.as_ref(), false, &[0]).await.expect("scan").len(), 1);
    let exact = query::Filter::eq(EntityKind::Contact, "name", Value::Text(contacts[3].name.clone())).expect("filter");
    let found = store.scan_columns(EntityKind::Contact, Some(&exact), false, &[0]).await.expect("scan");
    assert_eq!(found, [vec![Value::Uuid(contacts[3].id.as_uuid())]]);
}

/// One write of a random sequence (indices pick among the records made so far).
#[derive(Debug, Clone)]
enum Op {
    NewCompany { owner: usize, size: Option<i64> },
    NewContact { owner: usize, company: Option<usize> },
    ManyContacts { owner: usize, n: usize },
    EditContact { which: usize, company: Option<usize>, owner: Option<usize> },
    NewDeal { owner: usize, company: Option<usize>, contact: Option<usize>, amount: Option<i64> },
    MoveDeal { which: usize, stage: usize },
    EditDeal { which: usize, amount: Option<i64>, owner: Option<usize> },
    Log { by: usize, contact: usize, deal: Option<usize> },
    NewTask { owner: usize, assignee: Option<usize> },
    CompleteTask { which: usize },
    Delete { table: usize, which: usize },
    Restore { table: usize, which: usize },
    Purge { table: usize, which: usize },
    Later { days: i64 },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let i = || 0..64usize;
    let amount = || proptest::option::of(0..1_000_000i64);
    prop_oneof![
        1 => (0..3usize, proptest::option::of(1..5_000i64)).prop_map(|(owner, size)| Op::NewCompany { owner, size }),
        1 => (0..3usize, proptest::option::of(i())).prop_map(|(owner, company)| Op::NewContact { owner, company }),
        1 => (0..3usize, 1..40usize).prop_map(|(owner, n)| Op::ManyContacts { owner, n }),
        1 => (i(), proptest::option::of(i()), proptest::option::of(0..3usize))
            .prop_map(|(which, company, owner)| Op::EditContact { which, company, owner }),
        3 => (0..3usize, proptest::option::of(i()), proptest::option::of(i()), amount())
            .prop_map(|(owner, company, contact, amount)| Op::NewDeal { owner, company, contact, amount }),
        3 => (i(), 0..6usize).prop_map(|(which, stage)| Op::MoveDeal { which, stage }),
        2 => (i(), amount(), proptest::option::of(0..3usize))
            .prop_map(|(which, amount, owner)| Op::EditDeal { which, amount, owner }),
        2 => (0..3usize, i(), proptest::option::of(i())).prop_map(|(by, contact, deal)| Op::Log { by, contact, deal }),
        1 => (0..3usize, proptest::option::of(0..3usize)).prop_map(|(owner, assignee)| Op::NewTask { owner, assignee }),
        1 => i().prop_map(|which| Op::CompleteTask { which }),
        2 => (0..5usize, i()).prop_map(|(table, which)| Op::Delete { table, which }),
        1 => (0..5usize, i()).prop_map(|(table, which)| Op::Restore { table, which }),
        1 => (0..4usize, i()).prop_map(|(table, which)| Op::Purge { table, which }),
        1 => (1..40i64).prop_map(|days| Op::Later { days }),
    ]
}

/// The records a sequence has made, by table (companies, contacts, deals, interactions, tasks).
#[derive(Default)]
struct Made([Vec<uuid::Uuid>; 5]);

impl Made {
    fn pick(&self, table: usize, i: usize) -> Option<uuid::Uuid> {
        let t = &self.0[table];
        (!t.is_empty()).then(|| t[i % t.len()])
    }
}

/// Runs one write; a refused one (a record purged, a stage it cannot move to) is part of
/// the sequence too: it must change nothing.
async fn run_op(h: &Harness, people: &[Actor], made: &mut Made, op: &Op) -> Result<()> {
    let admin = &h.admin;
    let user = |i: usize| people[i % people.len()].user_id;
    let stages = DealStage::ALL;
    match op.clone() {
        Op::NewCompany { owner, size } => {
            let name = format!("Co {}", made.0[0].len());
            let input = NewCompany { name, size, owner_id: Some(user(owner)), ..Default::default() };
            made.0[0].push(h.crm.companies().create(admin, input).await?.id.as_uuid());
        }
        Op::NewContact { owner, company } => {
            let company_id = company.and_then(|c| made.pick(0, c)).map(CompanyId);
            let input = NewContact { name: format!("Pat Doe {}", made.0[1].len()), company_id, ..Default::default() };
            made.0[1].push(h.crm.contacts().create(&people[owner % people.len()], input).await?.id.as_uuid());
        }
        Op::ManyContacts { owner, n } => {
            let inputs = (0..n).map(|i| NewContact { name: format!("Bulk {i}"), ..Default::default() }).collect();
            for c in h.crm.contacts().create_many(&people[owner % people.len()], inputs).await? {
                made.0[1].push(c.id.as_uuid());
            }
        }
        Op::EditContact { which, company, owner } => {
            let Some(id) = made.pick(1, which) else { return Ok(()) };
            let patch = ContactPatch {
                company_id: Some(company.and_then(|c| made.pick(0, c)).map(CompanyId)),
                owner_id: owner.map(user),
                ..Default::default()
            };
            h.crm.contacts().update(admin, ContactId(id), patch).await?;
        }
        Op::NewDeal { owner, company, contact, amount } => {
            let input = NewDeal {
                name: format!("Deal {}", made.0[2].len()),
                amount,
                company_id: company.and_then(|c| made.pick(0, c)).map(CompanyId),
                contact_ids: contact.and_then(|c| made.pick(1, c)).map(ContactId).into_iter().collect(),
                owner_id: Some(user(owner)),
                ..Default::default()
            };
            made.0[2].push(h.crm.deals().create(admin, input).await?.id.as_uuid());
        }
        Op::MoveDeal { which, stage } => {
            let Some(id) = made.pick(2, which) else { return Ok(()) };
            h.crm.deals().move_to(admin, DealId(id), stages[stage % stages.len()]).await?;
        }
        Op::EditDeal { which, amount, owner } => {
            let Some(id) = made.pick(2, which) else { return Ok(()) };
            let patch = DealPatch { amount: Some(amount), owner_id: owner.map(user), ..Default::default() };
            h.crm.deals().update(admin, DealId(id), patch).await?;
        }
        Op::Log { by, contact, deal } => {
            let Some(contact) = made.pick(1, contact) else { return Ok(()) };
            let input = NewInteraction {
                deal_id: deal.and_then(|d| made.pick(2, d)).map(DealId),
                ..touch(ContactId(contact), InteractionKind::Meeting)
            };
            made.0[3].push(h.crm.interactions().log(&people[by % people.len()], input).await?.id.as_uuid());
        }
        Op::NewTask { owner, assignee } => {
            let input = NewTask {
                name: format!("Task {}", made.0[4].len()),
                owner_id: Some(user(owner)),
                assigned_user: assignee.map(user),
                ..Default::default()
            };
            made.0[4].push(h.crm.tasks().create(admin, input).await?.id.as_uuid());
        }
        Op::CompleteTask { which } => {
            let Some(id) = made.pick(4, which) else { return Ok(()) };
            h.crm.tasks().complete(admin, TaskId(id)).await?;
        }
        Op::Delete { table, which } => {
            let Some(id) = made.pick(table, which) else { return Ok(()) };
            match table {
                0 => h.crm.companies().delete(admin, CompanyId(id), None).await.map(|_| ())?,
                1 => h.crm.contacts().delete(admin, ContactId(id), None).await.map(|_| ())?,
                2 => h.crm.deals().delete(admin, DealId(id), None).await.map(|_| ())?,
                3 => h.crm.interactions().delete(admin, InteractionId(id), None).await.map(|_| ())?,
                _ => h.crm.tasks().delete(admin, TaskId(id), None).await.map(|_| ())?,
            }
        }
        Op::Restore { table, which } => {
            let Some(id) = made.pick(table, which) else { return Ok(()) };
            match table {
                0 => h.crm.companies().restore(admin, CompanyId(id)).await.map(|_| ())?,
                1 => h.crm.contacts().restore(admin, ContactId(id)).await.map(|_| ())?,
                2 => h.crm.deals().restore(admin, DealId(id)).await.map(|_| ())?,
                3 => h.crm.interactions().restore(admin, InteractionId(id)).await.map(|_| ())?,
                _ => h.crm.tasks().restore(admin, TaskId(id)).await.map(|_| ())?,
            }
        }
        Op::Purge { table, which } => {
            // Interactions are purged with their contact.
            let table = [0, 1, 2, 4][table % 4];
            let Some(id) = made.pick(table, which) else { return Ok(()) };
            match table {
                0 => h.crm.companies().purge(admin, CompanyId(id)).await?,
                1 => h.crm.contacts().purge(admin, ContactId(id)).await?,
                2 => h.crm.deals().purge(admin, DealId(id)).await?,
                _ => h.crm.tasks().purge(admin, TaskId(id)).await?,
            }
        }
        Op::Later { days } => h.clock.advance(Duration::days(days)),
    }
    Ok(())
}

/// After any sequence of writes, a snapshot brought up to date from the audit log holds
/// exactly what a full read of the store holds, row for row and in the same order, for a
/// caller who sees everything, a manager who sees a team and a user who sees their own.
pub async fn analytics_refresh_equals_a_full_reload(b: &dyn TestBackend) {
    use proptest::strategy::{Strategy, ValueTree};
    let h = Harness::new(b).await;
    let team = h.team("Sales").await;
    let ann = h.user("ann", Role::User, Some(team)).await;
    let mia = h.user("mia", Role::Manager, Some(team)).await;
    let bob = h.user("bob", Role::User, None).await;
    let people = [ann.clone(), bob.clone(), mia.clone()];
    let readers = [("admin", h.admin.clone()), ("manager", mia), ("user", ann)];
    let mut made = Made::default();
    // Drawn before the first await: proptest's strategies stay on this thread.
    let rounds: Vec<Vec<Op>> = {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let sequence = proptest::collection::vec(op(), 12..24);
        (0..6).map(|_| sequence.new_tree(&mut runner).expect("a sequence").current()).collect()
    };
    let mut done: Vec<Op> = Vec::new();
    for (round, ops) in rounds.into_iter().enumerate() {
        for op in ops {
            let outcome = run_op(&h, &people, &mut made, &op).await;
            done.push(op);
            // Refused writes are part of the property too; other errors are not expected.
            if let Err(e) = outcome {
                assert!(
                    matches!(
                        e,
                        Error::NotFound { .. } | Error::Validation(_) | Error::Forbidden(_) | Error::Conflict { .. }
                    ),
                    "{e} after {done:?}"
                );
            }
            if !done.len().is_multiple_of(3) {
                continue;
            }
            let full = Crm::new(b.store());
            for (who, actor) in &readers {
                let kept = h.crm.analytics_tables(actor).await.expect("refreshed snapshot");
                let read = full.analytics_tables(actor).await.expect("full snapshot");
                for (name, df) in &read.0 {
                    let mine = &kept.0[name];
                    assert!(
                        mine.equals_missing(df),
                        "round {round}, {who}: table {name} differs from a full read\n\
                         refreshed: {mine}\nfull: {df}\nafter {done:?}"
                    );
                }
            }
        }
    }
    let stats = h.crm.analytics_snapshot_stats();
    assert!(stats.refreshes > 3 * 10, "most snapshots were refreshed, not read again: {stats:?}");
    assert!(stats.loads >= 3, "each reader's first snapshot is a full read: {stats:?}");
}
