//! Filters on every operator and field type, search, sort, keyset paging.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use crm_core::service::*;
use crm_core::*;

use super::{assert_code, names, q};
use crate::{Harness, TestBackend};

/// Five contacts with varied fields, created one minute apart.
async fn people(h: &Harness) -> Vec<Contact> {
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme".into(), domain: Some("acme.com".into()), ..Default::default() })
        .await
        .expect("co");
    let rows = [
        ("Ann Lee", Some("ann@acme.com"), Some("web"), LifecycleStage::Customer, vec!["vip"], Some(acme.id)),
        ("Bob Stone", Some("bob@beta.io"), Some("referral"), LifecycleStage::Lead, vec![], None),
        ("Carla Díaz", None, Some("web"), LifecycleStage::Mql, vec!["vip", "eu"], Some(acme.id)),
        ("dave low", Some("dave@acme.com"), None, LifecycleStage::Lead, vec!["eu"], None),
        ("Émile Zola", Some("emile@gamma.fr"), Some("event"), LifecycleStage::Sql, vec![], None),
    ];
    let mut out = Vec::new();
    for (name, email, src, stage, tags, company) in rows {
        h.clock.advance(Duration::minutes(1));
        out.push(
            h.crm
                .contacts()
                .create(
                    &h.admin,
                    NewContact {
                        name: name.into(),
                        email: email.map(str::to_string),
                        lead_source: src.map(str::to_string),
                        lifecycle_stage: Some(stage),
                        tags: tags.into_iter().map(str::to_string).collect(),
                        company_id: company,
                        ..Default::default()
                    },
                )
                .await
                .expect("contact"),
        );
    }
    out
}

async fn names_for(h: &Harness, filter: &str) -> Vec<String> {
    let mut n =
        names(&h.crm.contacts().list(&h.admin, q(EntityKind::Contact, filter)).await.expect(filter), |c| &c.name);
    n.sort();
    n
}

async fn deal_names(h: &Harness, filter: &str) -> Vec<String> {
    let mut n = names(&h.crm.deals().list(&h.admin, q(EntityKind::Deal, filter)).await.expect(filter), |d| &d.name);
    n.sort();
    n
}

async fn search_names(h: &Harness, text: &str) -> Vec<String> {
    let mut n = names(&h.crm.contacts().list(&h.admin, ListQuery::new().search(text)).await.expect(text), |c| &c.name);
    n.sort();
    n
}

async fn sorted_names(h: &Harness, sort: &str) -> Vec<String> {
    let query = ListQuery::new().sort_str(EntityKind::Contact, sort).expect("sort");
    names(&h.crm.contacts().list(&h.admin, query).await.expect(sort), |c| &c.name)
}

/// eq, neq (NULL counts as not equal), in.
pub async fn filter_eq_neq_in(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_eq!(names_for(&h, "lifecycleStage[eq]:lead").await, vec!["Bob Stone", "dave low"]);
    assert_eq!(names_for(&h, "leadSource[neq]:web").await, vec!["Bob Stone", "dave low", "Émile Zola"]);
    assert_eq!(names_for(&h, "lifecycleStage[in]:[customer,sql]").await, vec!["Ann Lee", "Émile Zola"]);
    assert_eq!(names_for(&h, "email[eq]:ANN@ACME.COM").await, vec!["Ann Lee"]);
    assert!(names_for(&h, "name[eq]:\"ann lee\"").await.is_empty(), "eq is exact");
}

/// gt gte lt lte on timestamps, integers and dates.
pub async fn filter_ordering_operators(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ps = people(&h).await;
    let third = crm_core::schema::format_ts(&ps[2].meta.created_at);
    assert_eq!(names_for(&h, &format!("createdAt[gt]:\"{third}\"")).await, vec!["dave low", "Émile Zola"]);
    assert_eq!(names_for(&h, &format!("createdAt[gte]:\"{third}\"")).await.len(), 3);
    assert_eq!(names_for(&h, &format!("createdAt[lt]:\"{third}\"")).await, vec!["Ann Lee", "Bob Stone"]);
    assert_eq!(names_for(&h, &format!("createdAt[lte]:\"{third}\"")).await.len(), 3);
    assert_eq!(names_for(&h, "name[gte]:C,name[lt]:E").await, vec!["Carla Díaz"], "text compares by bytes");
    let d = h.crm.deals();
    for (n, amount, close) in [("small", 100, 1), ("mid", 5_000, 15), ("big", 90_000, 28)] {
        d.create(
            &h.admin,
            NewDeal {
                name: n.into(),
                amount: Some(amount),
                expected_close_date: NaiveDate::from_ymd_opt(2026, 2, close).map(Into::into),
                ..Default::default()
            },
        )
        .await
        .expect("deal");
    }
    d.create(&h.admin, NewDeal { name: "none".into(), ..Default::default() }).await.expect("deal");
    assert_eq!(deal_names(&h, "amount[gt]:100").await, vec!["big", "mid"]);
    assert_eq!(deal_names(&h, "amount[lte]:5000").await, vec!["mid", "small"]);
    assert_eq!(deal_names(&h, "expectedCloseDate[gte]:2026-02-15").await, vec!["big", "mid"]);
    assert_eq!(deal_names(&h, "expectedCloseDate[lt]:2026-02-15").await, vec!["small"]);
    assert_eq!(deal_names(&h, "probability[eq]:10,amount[is]:null").await, vec!["none"]);
}

/// startsWith (case-sensitive), like (case-sensitive), ilike (case-insensitive).
pub async fn filter_text_patterns(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_eq!(names_for(&h, "name[startsWith]:\"Ann\"").await, vec!["Ann Lee"]);
    assert!(names_for(&h, "name[startsWith]:ann").await.is_empty());
    assert_eq!(names_for(&h, "email[startsWith]:DAVE").await, vec!["dave low"], "emails are lower-case");
    assert_eq!(names_for(&h, "email[like]:\"%@acme.com\"").await, vec!["Ann Lee", "dave low"]);
    assert_eq!(names_for(&h, "name[like]:\"_ob %\"").await, vec!["Bob Stone"]);
    assert!(names_for(&h, "name[like]:\"%LEE\"").await.is_empty(), "like is case-sensitive");
    assert_eq!(names_for(&h, "name[ilike]:\"%LEE\"").await, vec!["Ann Lee"]);
    assert_eq!(names_for(&h, "name[ilike]:\"DAVE%\"").await, vec!["dave low"]);
    assert_eq!(names_for(&h, "name[startsWith]:\"É\"").await, vec!["Émile Zola"]);
    assert_eq!(names_for(&h, "name[ilike]:\"émile%\"").await, vec!["Émile Zola"], "ilike folds all of Unicode");
    assert_eq!(names_for(&h, "name[ilike]:\"CARLA DÍAZ\"").await, vec!["Carla Díaz"]);
    assert!(names_for(&h, "email[ilike]:\"%@acmeXcom\"").await.is_empty(), "pattern text is literal");
    assert!(names_for(&h, "name[ilike]:\"%(.*)%\"").await.is_empty(), "regex syntax is literal");
    assert_eq!(names_for(&h, "name[like]:\"%o%o%\"").await, vec!["Bob Stone"]);
    assert_eq!(names_for(&h, "name[like]:\"B%o%%n_\"").await, vec!["Bob Stone"]);
    assert!(names_for(&h, "name[like]:\"%o%o%o%\"").await.is_empty());
    // A text that almost matches a pattern of many wildcards: a backtracking matcher
    // would try every placing of every piece (this one never ended on MongoDB).
    let long = "a".repeat(150);
    let c = NewContact { name: long.clone(), ..Default::default() };
    h.crm.contacts().create(&h.admin, c).await.expect("contact");
    let many = format!("name[like]:\"{}b\"", "%a".repeat(12));
    assert!(names_for(&h, &many).await.is_empty());
    let many = format!("name[ilike]:\"{}%\"", "%A".repeat(12));
    assert_eq!(names_for(&h, &many).await, vec![long]);
}

/// is:null and is:notnull.
pub async fn filter_null_tests(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_eq!(names_for(&h, "email[is]:null").await, vec!["Carla Díaz"]);
    assert_eq!(names_for(&h, "leadSource[is]:null").await, vec!["dave low"]);
    assert_eq!(names_for(&h, "companyId[is]:notnull").await, vec!["Ann Lee", "Carla Díaz"]);
    assert_eq!(names_for(&h, "convertedAt[is]:notnull").await, vec!["Ann Lee"]);
    assert_eq!(names_for(&h, "tags[is]:null").await, vec!["Bob Stone", "Émile Zola"], "an empty list is null");
}

/// UUID references and list membership.
pub async fn filter_references_and_lists(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let ps = people(&h).await;
    let acme = ps[0].company_id.expect("company");
    assert_eq!(names_for(&h, &format!("companyId[eq]:{acme}")).await, vec!["Ann Lee", "Carla Díaz"]);
    assert_eq!(names_for(&h, &format!("ownerId[in]:[{},{}]", h.admin.user_id, uuid::Uuid::now_v7())).await.len(), 5);
    assert_eq!(names_for(&h, "tags[eq]:vip").await, vec!["Ann Lee", "Carla Díaz"]);
    assert_eq!(names_for(&h, "tags[neq]:vip").await, vec!["Bob Stone", "dave low", "Émile Zola"]);
    assert_eq!(names_for(&h, "tags[in]:[eu,nope]").await, vec!["Carla Díaz", "dave low"]);
    let d = h
        .crm
        .deals()
        .create(
            &h.admin,
            NewDeal { name: "With Ann".into(), contact_ids: vec![ps[0].id, ps[1].id], ..Default::default() },
        )
        .await
        .expect("deal");
    h.crm
        .deals()
        .create(&h.admin, NewDeal { name: "Other".into(), contact_ids: vec![ps[2].id], ..Default::default() })
        .await
        .expect("deal");
    let found = h
        .crm
        .deals()
        .list(&h.admin, q(EntityKind::Deal, &format!("contactIds[eq]:{}", ps[1].id)))
        .await
        .expect("deals");
    assert_eq!(found.data.iter().map(|x| x.id).collect::<Vec<_>>(), vec![d.id]);
}

/// and / or / not nest.
pub async fn filter_boolean_nesting(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_eq!(
        names_for(&h, "or(lifecycleStage[eq]:customer,and(leadSource[eq]:web,tags[eq]:eu))").await,
        vec!["Ann Lee", "Carla Díaz"]
    );
    assert_eq!(
        names_for(&h, "not(leadSource[is]:null),not(or(leadSource[eq]:web,leadSource[eq]:event))").await,
        vec!["Bob Stone"]
    );
    assert_eq!(
        names_for(&h, r#"and(lifecycleStage[in]:[lead,customer],createdAt[gte]:"2026-01-01T00:00:00Z",or(email[ilike]:"%@acme.com",companyId[is]:null))"#).await,
        vec!["Ann Lee", "Bob Stone", "dave low"]
    );
}

/// An unknown field, operator or value is a validation error naming it; no query runs.
pub async fn filter_rejects_unknown_fields_and_operators(b: &dyn TestBackend) {
    let _h = Harness::new(b).await;
    for (f, needle) in [
        ("password[eq]:x", "'password'"),
        ("name[regex]:x", "'regex'"),
        ("lifecycleStage[eq]:whale", "whale"),
        ("createdAt[gt]:soon", "soon"),
        ("preferences[eq]:{}", "preferences"),
        ("name[eq]:\"open", "not closed"),
        ("tags[gt]:a", "gt"),
    ] {
        let raw = RawListParams { filter: Some(f), ..Default::default() };
        let e = assert_code(ListQuery::parse(EntityKind::Contact, &raw), "validation_failed");
        assert!(e.to_string().contains(needle), "{f}: {e}");
    }
    let raw = RawListParams { sort: Some("nope[asc]"), limit: Some("abc"), ..Default::default() };
    let e = assert_code(ListQuery::parse(EntityKind::Contact, &raw), "validation_failed");
    assert_eq!(super::fields(&e), vec!["sort", "limit"]);
}

/// q matches name, email, phone and domain, case-insensitively and inside words.
pub async fn search_matches_name_email_phone_domain(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    h.crm
        .contacts()
        .create(
            &h.admin,
            NewContact {
                name: "Phone Person".into(),
                phone_number: Some("+44 20 7946 0958".into()),
                ..Default::default()
            },
        )
        .await
        .expect("p");
    assert_eq!(search_names(&h, "LEE").await, vec!["Ann Lee"]);
    assert_eq!(search_names(&h, "acme.com").await, vec!["Ann Lee", "dave low"]);
    assert_eq!(search_names(&h, "émile").await, vec!["Émile Zola"], "unicode case-insensitive");
    assert_eq!(search_names(&h, "79460958").await, vec!["Phone Person"]);
    assert_eq!(search_names(&h, "o").await.len(), 5);
    let companies = h.crm.companies().list(&h.admin, ListQuery::new().search("ACME.C")).await.expect("companies");
    assert_eq!(companies.data.len(), 1);
}

/// Several sort keys, with NULL as the smallest value and the id as the last tie-break.
pub async fn sort_by_several_fields_with_nulls(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_eq!(
        sorted_names(&h, "leadSource[asc],name[desc]").await,
        vec!["dave low", "Émile Zola", "Bob Stone", "Carla Díaz", "Ann Lee"]
    );
    assert_eq!(
        sorted_names(&h, "leadSource[desc],name[asc]").await,
        vec!["Ann Lee", "Carla Díaz", "Bob Stone", "Émile Zola", "dave low"]
    );
    assert_eq!(
        sorted_names(&h, "name").await,
        vec!["Ann Lee", "Bob Stone", "Carla Díaz", "dave low", "Émile Zola"],
        "byte order"
    );
    assert_eq!(
        sorted_names(&h, "-createdAt").await,
        vec!["Émile Zola", "dave low", "Carla Díaz", "Bob Stone", "Ann Lee"]
    );
    let default = names(&h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list"), |c| &c.name);
    assert_eq!(default[0], "Émile Zola", "newest first by default");
}

/// Long texts sort by every character: three subjects alike for their first 1,200 bytes
/// (400 three-byte characters) come in the order of their last one, either way (MariaDB
/// compares only the first 1,024 bytes of a text by default, and answered these in id
/// order).
pub async fn long_texts_sort_by_every_character(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let people = people(&h).await;
    let stem = "漢".repeat(400);
    for last in ["z", "b", "m"] {
        let input = NewInteraction {
            contact_id: people[0].id,
            kind: InteractionKind::Note,
            occurred_at: None,
            deal_id: None,
            subject: Some(format!("{stem}{last}")),
            body: None,
        };
        h.crm.interactions().log(&h.admin, input).await.expect("interaction");
    }
    for (sort, want) in [("subject", ["b", "m", "z"]), ("-subject", ["z", "m", "b"])] {
        let query = ListQuery::new().sort_str(EntityKind::Interaction, sort).expect("sort");
        let page = h.crm.interactions().list(&h.admin, query).await.expect(sort);
        let got: Vec<String> = page
            .data
            .iter()
            .map(|i| i.subject.as_deref().unwrap_or_default().trim_start_matches('漢').to_string())
            .collect();
        assert_eq!(got, want, "sorted by {sort}");
    }
}

/// 1,000+ rows paged by cursor while other rows are inserted: no row twice, no row missed.
pub async fn cursor_paging_1000_rows_with_concurrent_inserts(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let store = b.store();
    // Load 1,100 contacts in batches straight through the store (the services are
    // exercised elsewhere; here the subject is paging).
    let now = h.clock.now();
    let mut ids = Vec::new();
    for batch in 0..11 {
        let mut writes = Vec::new();
        for i in 0..100 {
            let n = batch * 100 + i;
            let c = Contact {
                id: ContactId(uuid::Uuid::now_v7()),
                name: format!("P{:04}", (n * 7919) % 1100),
                email: None,
                phone_number: None,
                job_title: None,
                company_id: None,
                owner_id: h.admin.user_id,
                team_id: None,
                lead_source: if n % 3 == 0 { None } else { Some(format!("s{}", n % 5)) },
                lifecycle_stage: LifecycleStage::Lead,
                converted_at: None,
                tags: vec![],
                preferences: Default::default(),
                social: Default::default(),
                address: Default::default(),
                custom_fields: Default::default(),
                meta: RecordMeta::new(now + Duration::milliseconds((n % 50) as i64), Some(h.admin.user_id)),
            };
            ids.push(c.id);
            writes.push(Write::Insert { kind: EntityKind::Contact, row: crm_core::schema::to_row(&c).expect("row") });
        }
        store.apply(Changeset { writes, audit: vec![] }).await.expect("batch");
    }
    let original: HashSet<ContactId> = ids.into_iter().collect();
    let writer = {
        let crm = Arc::new(h.crm.clone());
        let admin = h.admin.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                crm.contacts()
                    .create(&admin, NewContact { name: format!("New{i}"), ..Default::default() })
                    .await
                    .expect("insert");
                tokio::task::yield_now().await;
            }
        })
    };
    for sort in ["createdAt[desc]", "name[asc]", "leadSource[asc],createdAt[desc]", "leadSource[desc],name[desc]"] {
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = ListQuery::new().limit(97).sort_str(EntityKind::Contact, sort).expect("sort");
            if let Some(c) = &after {
                query = query.after(c.clone());
            }
            let page = h.crm.contacts().list(&h.admin, query).await.expect("page");
            pages += 1;
            for c in &page.data {
                assert!(seen.insert(c.id), "{sort}: {} seen twice", c.name);
            }
            if !page.page_info.has_next_page {
                break;
            }
            after = page.page_info.end_cursor.clone();
            assert!(pages < 100, "paging does not end");
        }
        let missing = original.difference(&seen).count();
        assert_eq!(missing, 0, "{sort}: {missing} rows missed");
    }
    writer.await.expect("writer");
}

/// Records made less than a millisecond apart (a clock finer than the store) page
/// without loss: times are kept to the millisecond everywhere, ties go by id.
pub async fn sub_millisecond_times_page_whole(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    for i in 0..60 {
        h.clock.advance(Duration::microseconds(170));
        h.crm
            .contacts()
            .create(&h.admin, NewContact { name: format!("T{i:02}"), ..Default::default() })
            .await
            .expect("c");
    }
    let all = h.crm.contacts().list(&h.admin, ListQuery::new().limit(100)).await.expect("all");
    assert_eq!(all.data.len(), 60);
    assert!(all.data.iter().all(|c| c.meta.created_at.timestamp_subsec_micros() % 1000 == 0), "kept to the ms");
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = ListQuery::new().limit(7);
        if let Some(a) = after.take() {
            q = q.after(a);
        }
        let page = h.crm.contacts().list(&h.admin, q).await.expect("page");
        paged.extend(page.data.iter().map(|c| c.id));
        if !page.page_info.has_next_page {
            break;
        }
        after = page.page_info.end_cursor;
    }
    assert_eq!(paged, all.data.iter().map(|c| c.id).collect::<Vec<_>>());
}

/// Descending over a nullable key: NULLs come last and paging crosses into them.
pub async fn cursor_paging_descending_nullable_sort(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    for i in 0..9 {
        let amount = if i % 3 == 0 { None } else { Some(i * 100) };
        h.crm
            .deals()
            .create(&h.admin, NewDeal { name: format!("D{i}"), amount, ..Default::default() })
            .await
            .expect("deal");
    }
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = ListQuery::new().limit(2).sort_str(EntityKind::Deal, "amount[desc]").expect("sort");
        if let Some(c) = &after {
            query = query.after(c.clone());
        }
        let page = h.crm.deals().list(&h.admin, query).await.expect("page");
        got.extend(page.data.iter().map(|d| d.amount));
        if !page.page_info.has_next_page {
            break;
        }
        after = page.page_info.end_cursor.clone();
    }
    assert_eq!(got, vec![Some(800), Some(700), Some(500), Some(400), Some(200), Some(100), None, None, None]);
}

/// A cursor made for one sort is refused for another; garbage is refused.
pub async fn cursor_from_another_sort_is_rejected(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    let page = h.crm.contacts().list(&h.admin, ListQuery::new().limit(2)).await.expect("page");
    let cursor = page.page_info.end_cursor.expect("cursor");
    let e = assert_code(
        h.crm
            .contacts()
            .list(&h.admin, ListQuery::new().limit(2).after(cursor).sort_str(EntityKind::Contact, "name").expect("s"))
            .await,
        "validation_failed",
    );
    assert_eq!(super::fields(&e), vec!["after"]);
    assert_code(h.crm.contacts().list(&h.admin, ListQuery::new().after("not a cursor")).await, "validation_failed");
}

/// limit is 1..=200 (default 50); count=true adds the total.
pub async fn limit_bounds_and_total_count(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    people(&h).await;
    assert_code(h.crm.contacts().list(&h.admin, ListQuery::new().limit(0)).await, "validation_failed");
    assert_code(h.crm.contacts().list(&h.admin, ListQuery::new().limit(201)).await, "validation_failed");
    let p = h.crm.contacts().list(&h.admin, ListQuery::new().limit(2).count(true)).await.expect("p");
    assert_eq!((p.data.len(), p.total_count, p.page_info.has_next_page), (2, Some(5), true));
    let f = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "tags[eq]:vip").count(true)).await.expect("f");
    assert_eq!(f.total_count, Some(2));
    let all = h.crm.contacts().list(&h.admin, ListQuery::new().limit(200)).await.expect("all");
    assert_eq!((all.data.len(), all.page_info.has_next_page, all.total_count), (5, false, None));
}
