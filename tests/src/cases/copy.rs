//! Carrying a whole CRM between stores (`crm_core::copy`): into the backend under test
//! from a SQLite CRM, resumed after a partial copy, its chain adopted and verified; and
//! out of it again, row for row.

use crm_core::audit::{verify_chain, ChainStatus};
use crm_core::copy::{copy_store, CopyOptions};
use crm_core::service::*;
use crm_core::*;

use super::assert_code;
use crate::{test_audit_keys, Harness, TestBackend};

/// Every row of every kind, each kind's in id order.
async fn rows(store: &dyn Store) -> Vec<(EntityKind, Vec<Vec<Value>>)> {
    let mut all = Vec::new();
    for kind in EntityKind::ALL {
        let columns: Vec<usize> = (0..kind.columns().len()).collect();
        let mut got = store.scan_columns(kind, None, true, &columns).await.expect("scan");
        got.sort_by_key(|r| match &r[0] {
            Value::Uuid(u) => *u,
            other => panic!("{}: an id {other:?}", kind.table()),
        });
        all.push((kind, got));
    }
    all
}

/// A SQLite CRM copied into the backend under test after a run that stopped early,
/// then out of it into another SQLite store: the same rows everywhere, the chain whole.
pub async fn copy_carries_the_whole_crm_and_resumes(b: &dyn TestBackend) {
    let source = crate::backends::sqlite().await;
    let h = Harness::new(source.as_ref()).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), domain: Some("acme.io".into()), ..Default::default() })
        .await
        .expect("company");
    let mut ids = Vec::new();
    for i in 0..30 {
        let c = h
            .crm
            .contacts()
            .create(
                &h.admin,
                NewContact {
                    name: format!("Person {i}"),
                    email: Some(format!("p{i}@acme.io")),
                    company_id: Some(acme.id),
                    ..Default::default()
                },
            )
            .await
            .expect("contact");
        ids.push(c.id);
    }
    h.crm.contacts().delete(&h.admin, ids[3], None).await.expect("delete");
    let from = source.store();
    let head = from.audit_head().await.expect("head");
    let want = rows(from.as_ref()).await;
    let total: usize = want.iter().map(|(_, r)| r.len()).sum();

    // An earlier run that stopped after a few contacts: the target holds them, its chain
    // is still empty.
    let to = b.store();
    let contacts = &want.iter().find(|(k, _)| *k == EntityKind::Contact).expect("contacts").1;
    let first: Vec<Write> =
        contacts.iter().take(5).map(|r| Write::Insert { kind: EntityKind::Contact, row: r.clone() }).collect();
    to.apply(Changeset { writes: first, audit: vec![] }).await.expect("a partial copy");
    let noop = |_| {};
    let e =
        assert_code(copy_store(from.as_ref(), to.as_ref(), CopyOptions::default(), &noop).await, "validation_failed");
    assert_eq!(e.field_errors()[0].field, "to");
    let resumed = CopyOptions { resume: true, batch: 7 };
    let report = copy_store(from.as_ref(), to.as_ref(), resumed, &noop).await.expect("resumed copy");
    assert_eq!((report.rows() as usize, report.copied() as usize), (total, total - 5));
    assert_eq!(report.audit_head, head);
    assert_eq!(to.audit_head().await.expect("head"), head, "the chain's end adopted");
    assert_eq!(rows(to.as_ref()).await, want, "every row, as stored");
    let chain = verify_chain(to.as_ref(), &test_audit_keys()).await.expect("verify");
    assert_eq!(chain, ChainStatus::Intact { events: u64::try_from(head.seq).expect("seq"), unkeyed: 0 });
    // Running it again changes nothing; another chain's end is refused.
    let again = copy_store(from.as_ref(), to.as_ref(), resumed, &noop).await.expect("again");
    assert_eq!(again.copied(), 0);
    let other = AuditHead { seq: head.seq + 1, hash: "test:00".into() };
    let adopt = Changeset { writes: vec![Write::AdoptAuditHead { head: other }], audit: vec![] };
    assert_code(to.apply(adopt).await, "conflict");

    // And out of the backend under test, into an empty store.
    let out = crate::backends::sqlite().await;
    copy_store(to.as_ref(), out.store().as_ref(), CopyOptions { resume: false, batch: 1_000 }, &noop)
        .await
        .expect("copy out");
    assert_eq!(rows(out.store().as_ref()).await, want);
    // The copy is a CRM: its engine reads and writes on top of the copied chain.
    let next = Harness::on_copy(b).await;
    let listed = next.crm.contacts().list(&next.admin, ListQuery::new().limit(100)).await.expect("list");
    assert_eq!(listed.data.len(), 29, "the live contacts");
    next.crm.contacts().delete(&next.admin, ids[4], None).await.expect("a write on the copy");
    let chain = verify_chain(to.as_ref(), &test_audit_keys()).await.expect("verify");
    assert!(matches!(chain, ChainStatus::Intact { events, .. } if events == u64::try_from(head.seq).expect("seq") + 1));
    source.cleanup().await;
    out.cleanup().await;
}
