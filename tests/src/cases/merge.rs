//! Duplicate contacts and their merge, and its undo.

use chrono::Duration;
use crm_core::bulk::{DuplicateReason, MergeRequest};
use crm_core::campaign::ConsentInput;
use crm_core::model::campaign::ConsentStatus;
use crm_core::model::campaign::{CampaignRecipient, RecipientState};
use crm_core::model::task::{Related, RelatedType};
use crm_core::schema::to_row;
use crm_core::service::*;
use crm_core::store::{Changeset, Write};
use crm_core::*;
use uuid::Uuid;

use super::{assert_code, fields, q};
use crate::{Harness, TestBackend};

async fn contact(h: &Harness, input: NewContact) -> Contact {
    h.crm.contacts().create(&h.admin, input).await.expect("create contact")
}

/// A campaign recipient row of `contact` (the campaign itself does not matter here).
async fn recipient(h: &Harness, contact: &Contact) -> Uuid {
    let id = Uuid::now_v7();
    let r = CampaignRecipient {
        id,
        campaign_id: Uuid::now_v7(),
        contact_id: contact.id.as_uuid(),
        email: contact.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default(),
        state: RecipientState::Sent,
        attempts: 1,
        sent_at: Some(h.crm.now()),
        error: None,
        opened_at: None,
        opens: 0,
        clicked_at: None,
        clicks: 0,
        bounced_at: None,
        bounce: None,
        unsubscribed_at: None,
        complained_at: None,
        version: 1,
    };
    let w = Write::Insert { kind: EntityKind::CampaignRecipient, row: to_row(&r).expect("row") };
    h.crm.store().apply(Changeset { writes: vec![w], audit: vec![] }).await.expect("insert recipient");
    id
}

async fn recipient_contact(h: &Harness, id: Uuid) -> Uuid {
    h.crm.store().get_as::<CampaignRecipient>(id).await.expect("read").expect("recipient").contact_id
}

/// Duplicates are found by email (case, +tags and Gmail dots aside), phone, name and
/// company, name and email domain, within the caller's scope. A merge takes the chosen
/// fields, fills and combines the rest, relinks deals, tasks, interactions and campaign
/// history, keeps a withdrawn consent, soft-deletes the others and is audited; its undo
/// brings everything back except what was changed since; bad requests name the field.
pub async fn merges_relink_everything_and_undo_restores_it(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let team = h.team("Far away").await;
    let rep = h.user("farrep", Role::User, Some(team)).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), domain: Some("acme.com".into()), ..Default::default() })
        .await
        .expect("company");
    let zoe = contact(
        &h,
        NewContact {
            name: "Zoé Dupont".into(),
            email: Some("zoe.dupont@acme.com".into()),
            phone_number: Some("+33 1 23 45 67 89".into()),
            company_id: Some(acme.id),
            tags: vec!["vip".into()],
            address: serde_json::from_value(serde_json::json!({"city": "Lyon"})).expect("address"),
            ..Default::default()
        },
    )
    .await;
    let zoe2 = contact(
        &h,
        NewContact {
            name: "DUPONT, Zoe".into(),
            email: Some("Zoe.Dupont+crm@acme.com".into()),
            job_title: Some("CTO".into()),
            company_id: Some(acme.id),
            tags: vec!["b2b".into(), "vip".into()],
            lifecycle_stage: Some(LifecycleStage::Customer),
            address: serde_json::from_value(serde_json::json!({"city": "Paris", "country": "FR"})).expect("address"),
            ..Default::default()
        },
    )
    .await;
    let zoe3 = contact(
        &h,
        NewContact {
            name: "Z. D.".into(),
            email: Some("zd@other.example".into()),
            phone_number: Some("+33123456789".into()),
            ..Default::default()
        },
    )
    .await;
    let bob =
        contact(&h, NewContact { name: "Bob Martin".into(), company_id: Some(acme.id), ..Default::default() }).await;
    let gmail_a = contact(
        &h,
        NewContact { name: "Ann Lee".into(), email: Some("ann.lee@gmail.com".into()), ..Default::default() },
    )
    .await;
    let gmail_b = contact(
        &h,
        NewContact { name: "Ann Lee".into(), email: Some("annlee+x@gmail.com".into()), ..Default::default() },
    )
    .await;

    // Duplicates, surest first, with their reasons.
    let found = h.crm.contact_duplicates(&h.admin, zoe.id, 10).await.expect("duplicates");
    let ids: Vec<ContactId> = found.iter().map(|c| c.contact.id).collect();
    assert_eq!(ids, vec![zoe2.id, zoe3.id], "{found:?}");
    assert_eq!(
        found[0].reasons,
        vec![DuplicateReason::Email, DuplicateReason::NameCompany, DuplicateReason::NameDomain]
    );
    assert_eq!(found[1].reasons, vec![DuplicateReason::Phone]);
    assert!(found[0].score > found[1].score);
    assert!(!ids.contains(&bob.id));
    let ann = h.crm.contact_duplicates(&h.admin, gmail_a.id, 10).await.expect("duplicates");
    assert_eq!(ann.iter().map(|c| c.contact.id).collect::<Vec<_>>(), vec![gmail_b.id]);
    assert_eq!(ann[0].reasons, vec![DuplicateReason::Email], "a Gmail address is no company's domain");
    let e = assert_code(h.crm.contact_duplicates(&h.admin, zoe.id, 0).await, "validation_failed");
    assert_eq!(fields(&e), vec!["limit"]);
    // Outside the caller's scope, the contact is not there.
    assert_code(h.crm.contact_duplicates(&rep, zoe.id, 10).await, "not_found");

    // What refers to the contacts merged.
    let deals = h.crm.deals();
    let both = deals
        .create(&h.admin, NewDeal { name: "Both".into(), contact_ids: vec![zoe.id, zoe2.id], ..Default::default() })
        .await
        .expect("deal");
    let theirs = deals
        .create(&h.admin, NewDeal { name: "Theirs".into(), contact_ids: vec![zoe2.id, bob.id], ..Default::default() })
        .await
        .expect("deal");
    let task = h
        .crm
        .tasks()
        .create(
            &h.admin,
            NewTask {
                name: "Call back".into(),
                related: Some(Related { kind: RelatedType::Contact, id: zoe3.id.as_uuid() }),
                ..Default::default()
            },
        )
        .await
        .expect("task");
    let call = h
        .crm
        .interactions()
        .log(
            &h.admin,
            NewInteraction {
                contact_id: zoe2.id,
                kind: InteractionKind::Call,
                occurred_at: None,
                deal_id: None,
                subject: None,
                body: None,
            },
        )
        .await
        .expect("interaction");
    let sent = recipient(&h, &zoe2).await;
    h.crm
        .campaigns()
        .set_consent(
            &h.admin,
            zoe3.id.as_uuid(),
            ConsentInput { status: ConsentStatus::Unsubscribed, source: Some("unsubscribe-link".into()) },
        )
        .await
        .expect("consent");

    // Bad requests name the field; nothing is written.
    let bad = |merge_ids: Vec<ContactId>, fields: &[(&str, ContactId)]| MergeRequest {
        merge_ids,
        fields: fields.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        version: None,
    };
    let e = assert_code(
        h.crm
            .merge_contacts(&h.admin, zoe.id, bad(vec![zoe2.id], &[("password", zoe2.id), ("jobTitle", bob.id)]))
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["fields.jobTitle", "fields.password"]);
    let e = assert_code(
        h.crm.merge_contacts(&h.admin, zoe.id, bad(vec![zoe.id, ContactId(Uuid::now_v7())], &[])).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["mergeIds.0", "mergeIds.1"]);
    let e = assert_code(h.crm.merge_contacts(&h.admin, zoe.id, bad(vec![], &[])).await, "validation_failed");
    assert_eq!(fields(&e), vec!["mergeIds"]);
    assert_code(h.crm.merge_contacts(&rep, zoe.id, bad(vec![zoe2.id], &[])).await, "not_found");
    let stale = MergeRequest { version: Some(zoe.meta.version + 5), ..bad(vec![zoe2.id], &[]) };
    assert_code(h.crm.merge_contacts(&h.admin, zoe.id, stale).await, "version_conflict");

    // The merge.
    let request = MergeRequest {
        merge_ids: vec![zoe2.id, zoe3.id],
        fields: [("email".to_string(), zoe2.id), ("name".to_string(), zoe.id)].into_iter().collect(),
        version: Some(zoe.meta.version),
    };
    let done = h.crm.merge_contacts(&h.admin, zoe.id, request).await.expect("merge");
    let s = &done.contact;
    assert_eq!(s.id, zoe.id);
    assert_eq!(s.name, "Zoé Dupont");
    assert_eq!(s.email.as_ref().map(|e| e.as_str()), zoe2.email.as_ref().map(|e| e.as_str()), "the chosen email");
    assert_eq!(s.phone_number, zoe.phone_number, "the survivor's own value");
    assert_eq!(s.job_title.as_deref(), Some("CTO"), "an empty field filled");
    assert_eq!(s.tags, vec!["vip".to_string(), "b2b".to_string()], "tags combined");
    assert_eq!(s.lifecycle_stage, LifecycleStage::Customer, "the furthest stage");
    assert_eq!(s.converted_at, zoe2.converted_at);
    assert_eq!(s.address.get("city"), Some(&serde_json::json!("Lyon")));
    assert_eq!(s.address.get("country"), Some(&serde_json::json!("FR")), "objects combined key by key");
    assert_eq!(done.merge.merged_ids, vec![zoe2.id.as_uuid(), zoe3.id.as_uuid()]);
    assert_eq!(done.merge.sources.get("email"), Some(&serde_json::json!(zoe2.id)));
    assert_eq!(done.merge.relinked_counts.get("deals"), Some(&serde_json::json!(2)));
    assert_eq!(done.merge.relinked_counts.get("interactions"), Some(&serde_json::json!(1)));
    assert_eq!(done.merge.relinked_counts.get("tasks"), Some(&serde_json::json!(1)));
    assert_eq!(done.merge.relinked_counts.get("campaign_recipients"), Some(&serde_json::json!(1)));
    for gone in [zoe2.id, zoe3.id] {
        assert_code(h.crm.contacts().get(&h.admin, gone).await, "not_found");
    }
    let contacts_of = |d: &Deal| d.contact_ids.clone();
    assert_eq!(contacts_of(&deals.get(&h.admin, both.id).await.expect("deal")), vec![zoe.id], "no contact twice");
    assert_eq!(contacts_of(&deals.get(&h.admin, theirs.id).await.expect("deal")), vec![zoe.id, bob.id]);
    let t = h.crm.tasks().get(&h.admin, task.id).await.expect("task");
    assert_eq!(t.related.map(|r| r.id), Some(zoe.id.as_uuid()));
    assert_eq!(h.crm.interactions().get(&h.admin, call.id).await.expect("call").contact_id, zoe.id);
    assert_eq!(recipient_contact(&h, sent).await, zoe.id.as_uuid(), "campaign history follows");
    let consent = h.crm.campaigns().consent(&h.admin, zoe.id.as_uuid()).await.expect("consent");
    assert_eq!(consent.status, ConsentStatus::Unsubscribed, "a withdrawal stands");
    // The survivor's own page lists the merge; the audit log has it.
    let merges = h.crm.contact_merges(&h.admin, zoe.id).await.expect("merges");
    assert_eq!(merges.iter().map(|m| m.id).collect::<Vec<_>>(), vec![done.merge.id]);
    let log =
        h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:contact.merged")).await.expect("audit");
    assert_eq!(log.data.len(), 1);
    assert_eq!(log.data[0].changes["merge"]["mergedIds"], serde_json::json!([zoe2.id, zoe3.id]));
    let deleted =
        h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:contact.deleted")).await.expect("audit");
    assert_eq!(deleted.data.len(), 2, "each merged contact's deletion is audited");
    // Merged contacts cannot be merged again.
    let e = assert_code(h.crm.merge_contacts(&h.admin, bob.id, bad(vec![zoe2.id], &[])).await, "validation_failed");
    assert_eq!(fields(&e), vec!["mergeIds.0"]);

    // A later change to a field the merge set, and a deal changed since.
    let s = h
        .crm
        .contacts()
        .update(&h.admin, zoe.id, ContactPatch { job_title: Some(Some("CEO".into())), ..Default::default() })
        .await
        .expect("update");
    assert_eq!(s.job_title.as_deref(), Some("CEO"));
    deals
        .update(&h.admin, theirs.id, DealPatch { contact_ids: Some(vec![zoe.id]), ..Default::default() })
        .await
        .expect("deal update");

    // Undo.
    assert_code(h.crm.undo_contact_merge(&rep, done.merge.id).await, "not_found");
    h.clock.advance(Duration::days(29));
    let back = h.crm.undo_contact_merge(&h.admin, done.merge.id).await.expect("undo");
    assert_eq!(back.email, zoe.email, "the survivor's email is its own again");
    assert_eq!(back.job_title.as_deref(), Some("CEO"), "a value changed since the merge stays");
    assert_eq!(back.tags, vec!["vip".to_string()]);
    assert_eq!(back.lifecycle_stage, LifecycleStage::Lead);
    assert_eq!(back.address.get("country"), None);
    for c in [&zoe2, &zoe3] {
        let again = h.crm.contacts().get(&h.admin, c.id).await.expect("back");
        assert_eq!(again.email, c.email);
        assert_eq!(again.name, c.name);
    }
    assert_eq!(contacts_of(&deals.get(&h.admin, both.id).await.expect("deal")), vec![zoe.id, zoe2.id]);
    assert_eq!(
        contacts_of(&deals.get(&h.admin, theirs.id).await.expect("deal")),
        vec![zoe2.id],
        "what the merge put in goes, what it took comes back"
    );
    let t = h.crm.tasks().get(&h.admin, task.id).await.expect("task");
    assert_eq!(t.related.map(|r| r.id), Some(zoe3.id.as_uuid()));
    assert_eq!(h.crm.interactions().get(&h.admin, call.id).await.expect("call").contact_id, zoe2.id);
    assert_eq!(recipient_contact(&h, sent).await, zoe2.id.as_uuid());
    let consent = h.crm.campaigns().consent(&h.admin, zoe.id.as_uuid()).await.expect("consent");
    assert_eq!(consent.status, ConsentStatus::Unknown, "the consent the merge gave is gone");
    let again = h.crm.contact_merge(&h.admin, done.merge.id).await.expect("merge");
    assert!(again.undone_at.is_some());
    let e = assert_code(h.crm.undo_contact_merge(&h.admin, done.merge.id).await, "conflict");
    assert!(e.to_string().contains("undone already"), "{e}");

    // Older than 30 days: no undo.
    let late = h.crm.merge_contacts(&h.admin, zoe.id, bad(vec![zoe3.id], &[])).await.expect("merge again");
    h.clock.advance(Duration::days(31));
    let e = assert_code(h.crm.undo_contact_merge(&h.admin, late.merge.id).await, "conflict");
    assert!(e.to_string().contains("30 days"), "{e}");
}

/// Files attached to a contact, a company, a deal and a task: the type found from the
/// bytes, the name cleaned, listed on the record, read within the record's scope (another
/// team's user gets not found), hidden while the record is soft-deleted, moved by a
/// merge, removed with their bytes, and purged with their record.
pub async fn attachments_follow_their_record(b: &dyn TestBackend) {
    use crm_core::bulk::attachments::MAX_ATTACHMENT_BYTES;
    let h = Harness::new(b).await;
    let team = h.team("Elsewhere").await;
    let other = h.user("elsewhere", Role::User, Some(team)).await;
    let pdf = bytes::Bytes::from_static(b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n");
    let ann = contact(&h, NewContact { name: "Ann Lee".into(), ..Default::default() }).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() })
        .await
        .expect("company");
    let deal =
        h.crm.deals().create(&h.admin, NewDeal { name: "Big".into(), ..Default::default() }).await.expect("deal");
    let task =
        h.crm.tasks().create(&h.admin, NewTask { name: "Sign".into(), ..Default::default() }).await.expect("task");
    let parents = [
        (EntityKind::Contact, ann.id.as_uuid()),
        (EntityKind::Company, acme.id.as_uuid()),
        (EntityKind::Deal, deal.id.as_uuid()),
        (EntityKind::Task, task.id.as_uuid()),
    ];
    for (kind, id) in parents {
        let a = h.crm.add_attachment(&h.admin, kind, id, "../../Contrat signé.txt", pdf.clone()).await.expect("attach");
        assert_eq!(a.content_type, "application/pdf", "from the bytes, not the name");
        assert_eq!(a.file_name, "Contrat signé.txt");
        assert_eq!(a.size, pdf.len() as i64);
        assert_eq!(a.parent_type, kind.name());
        let (got, bytes) = h.crm.attachment_content(&h.admin, a.id).await.expect("download");
        assert_eq!(got, a);
        assert_eq!(bytes, pdf);
        let listed = h.crm.attachments(&h.admin, kind, id).await.expect("list");
        assert_eq!(listed, vec![a.clone()]);
        // Another team's user sees neither the record's files nor the file.
        assert_code(h.crm.attachments(&other, kind, id).await, "not_found");
        assert_code(h.crm.attachment(&other, a.id).await, "not_found");
        assert_code(h.crm.attachment_content(&other, a.id).await, "not_found");
        assert_code(h.crm.add_attachment(&other, kind, id, "x.pdf", pdf.clone()).await, "not_found");
    }
    let csv = h
        .crm
        .add_attachment(&h.admin, EntityKind::Contact, ann.id.as_uuid(), "notes.csv", "a;b\n1;2\n".into())
        .await
        .expect("csv");
    assert_eq!(csv.content_type, "text/csv");
    let e = assert_code(
        h.crm
            .add_attachment(
                &h.admin,
                EntityKind::Contact,
                ann.id.as_uuid(),
                "report.pdf",
                b"MZ\x90\0\x03\0\0\0".to_vec().into(),
            )
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["file"]);
    let e = assert_code(
        h.crm
            .add_attachment(
                &h.admin,
                EntityKind::Contact,
                ann.id.as_uuid(),
                "big.txt",
                vec![b'a'; MAX_ATTACHMENT_BYTES + 1].into(),
            )
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["file"]);
    let log = h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:attachment.created")).await;
    assert_eq!(log.expect("audit").data.len(), 5);

    // Hidden while the record is soft-deleted, back when it is restored.
    let files = h.crm.attachments(&h.admin, EntityKind::Contact, ann.id.as_uuid()).await.expect("list");
    assert_eq!(files.iter().map(|a| a.id).collect::<Vec<_>>()[1], csv.id);
    let pdf_id = files[0].id;
    h.crm.contacts().delete(&h.admin, ann.id, None).await.expect("delete");
    assert_code(h.crm.attachment(&h.admin, files[0].id).await, "not_found");
    h.crm.contacts().restore(&h.admin, ann.id).await.expect("restore");
    h.crm.attachment(&h.admin, files[0].id).await.expect("back");

    // Removed one by one, bytes too.
    h.crm.delete_attachment(&h.admin, csv.id).await.expect("remove");
    assert_code(h.crm.attachment(&h.admin, csv.id).await, "not_found");
    assert_eq!(h.crm.blobs().get(&csv.blob_key()).await.expect("blob"), None);

    // A merge moves the files; a purge removes them, bytes too.
    let twin = contact(&h, NewContact { name: "Ann Lee".into(), ..Default::default() }).await;
    let theirs =
        h.crm.add_attachment(&h.admin, EntityKind::Contact, twin.id.as_uuid(), "photo.png", png()).await.expect("png");
    assert_eq!(theirs.content_type, "image/png");
    let req = MergeRequest { merge_ids: vec![twin.id], ..Default::default() };
    h.crm.merge_contacts(&h.admin, ann.id, req).await.expect("merge");
    let files = h.crm.attachments(&h.admin, EntityKind::Contact, ann.id.as_uuid()).await.expect("list");
    assert_eq!(files.iter().map(|a| a.id).collect::<Vec<_>>(), vec![pdf_id, theirs.id]);
    h.crm.contacts().delete(&h.admin, ann.id, None).await.expect("delete");
    h.crm.contacts().purge(&h.admin, ann.id).await.expect("purge");
    for a in &files {
        assert_eq!(h.crm.store().get_as::<crm_core::model::attachment::Attachment>(a.id).await.expect("read"), None);
        assert_eq!(h.crm.blobs().get(&a.blob_key()).await.expect("blob"), None, "the bytes go too");
    }
}

/// The smallest PNG: one transparent pixel.
fn png() -> bytes::Bytes {
    let mut out = Vec::new();
    image::DynamicImage::new_rgba8(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out.into()
}
