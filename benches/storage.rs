//! Storage hot paths on a seeded contact base (100,000 by default, `CRM_BENCH_ROWS`),
//! on SQLite, PostgreSQL (`CRM_TEST_POSTGRES_URL`, default the local server), MariaDB
//! (`CRM_TEST_MARIADB_URL`, default the local server) and MongoDB (`CRM_TEST_MONGO_URL`,
//! default SecantusDB on 127.0.0.1:27018; `CRM_BENCH_BACKENDS=sqlite,mariadb` picks some),
//! through the public services (policy, validation, audit and outbox included):
//!
//! - `get_by_id`: one contact;
//! - `list_page_50`: a page of 50 customers, newest first, as the admin;
//! - `list_page_50_by_name`: a page of 50 customers sorted by name, as the admin;
//! - `list_page_50_as_user`: a page of 50 of a rep's own leads, newest first;
//! - `insert_single`: one contact per call (one transaction with its audit and outbox rows);
//! - `insert_single_16_callers`: the same from 16 concurrent callers (throughput);
//! - `insert_batch_1000`: `create_many` of 1,000 contacts (one transaction);
//! - `store_insert_batch_1000`: 1,000 contact rows through `Store::apply` alone (no
//!   validation, audit or outbox): the storage layer's own ceiling.
//!
//! `cargo bench -p crm-benches --bench storage`; figures in `benches/README.md`.
//! `CRM_BENCH_KEEP=1` keeps the seeded databases for a look at the query plans.

#![allow(clippy::expect_used)] // a benchmark that cannot run its set-up should stop loudly

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use crm_benches::{bench_rows, contact_input, seed};
use crm_core::schema::to_row;
use crm_core::{Changeset, ContactId, Crm, Email, EntityKind, ListQuery, Write};
use crm_tests::TestBackend;

fn storage(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let rows = bench_rows();
    let chosen = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres,mariadb,mongo".to_string());
    for name in ["sqlite", "postgres", "mariadb", "mongo"] {
        if !chosen.split(',').any(|c| c.trim() == name) {
            continue;
        }
        let backend: Box<dyn TestBackend> = rt.block_on(async {
            match name {
                "sqlite" => crm_tests::backends::sqlite().await as Box<dyn TestBackend>,
                "postgres" => crm_tests::backends::postgres().await,
                "mariadb" => crm_tests::backends::mariadb().await,
                _ => crm_tests::backends::mongo().await,
            }
        });
        let crm = Crm::new(backend.store());
        let started = std::time::Instant::now();
        let seeded = rt.block_on(seed(&crm, rows)).expect("seed");
        // A live PostgreSQL's autovacuum analyses a grown table within a minute; a bench
        // that measures right after a bulk load asks for it.
        rt.block_on(backend.after_bulk_load());
        let secs = started.elapsed().as_secs_f64();
        println!("{name}: seeded {rows} contacts in {secs:.1} s ({:.0} contacts/s)", rows as f64 / secs);

        let mut g = c.benchmark_group(name);
        g.sample_size(30).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));

        let next = AtomicUsize::new(0);
        g.bench_function("get_by_id", |b| {
            b.to_async(&rt).iter(|| async {
                let i = next.fetch_add(7919, Ordering::Relaxed) % seeded.contacts.len();
                crm.contacts().get(&seeded.admin, seeded.contacts[i]).await.expect("get")
            })
        });

        for (bench, sort) in [("list_page_50", "createdAt[desc]"), ("list_page_50_by_name", "name[asc]")] {
            let customers = ListQuery::new()
                .filter_str(EntityKind::Contact, "lifecycleStage[eq]:customer")
                .and_then(|q| q.sort_str(EntityKind::Contact, sort))
                .expect("query")
                .limit(50);
            g.bench_function(bench, |b| {
                b.to_async(&rt).iter(|| async {
                    let page = crm.contacts().list(&seeded.admin, customers.clone()).await.expect("list");
                    assert_eq!(page.data.len(), 50);
                    page
                })
            });
        }

        let own_leads =
            ListQuery::new().filter_str(EntityKind::Contact, "lifecycleStage[in]:[lead,mql]").expect("query").limit(50);
        g.bench_function("list_page_50_as_user", |b| {
            b.to_async(&rt).iter(|| async {
                let page = crm.contacts().list(&seeded.rep, own_leads.clone()).await.expect("list");
                assert!(!page.data.is_empty());
                page
            })
        });

        let serial = AtomicUsize::new(10_000_000);
        g.throughput(Throughput::Elements(1));
        g.bench_function("insert_single", |b| {
            b.to_async(&rt).iter(|| async {
                let n = serial.fetch_add(1, Ordering::Relaxed);
                crm.contacts().create(&seeded.admin, contact_input(n, None, None)).await.expect("insert")
            })
        });

        // The same single inserts from 16 callers at once (an HTTP server's load).
        let serial = std::sync::Arc::new(serial);
        g.bench_function("insert_single_16_callers", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (crm, admin, serial) = (crm.clone(), seeded.admin.clone(), serial.clone());
                async move {
                    let started = std::time::Instant::now();
                    let mut callers = tokio::task::JoinSet::new();
                    for c in 0..16u64 {
                        let (crm, admin, serial) = (crm.clone(), admin.clone(), serial.clone());
                        callers.spawn(async move {
                            for _ in 0..(iters / 16 + u64::from(c < iters % 16)) {
                                let n = serial.fetch_add(1, Ordering::Relaxed);
                                crm.contacts().create(&admin, contact_input(n, None, None)).await.expect("insert");
                            }
                        });
                    }
                    while let Some(done) = callers.join_next().await {
                        done.expect("caller");
                    }
                    started.elapsed()
                }
            })
        });

        g.throughput(Throughput::Elements(1_000));
        g.sample_size(10).measurement_time(Duration::from_secs(10));
        g.bench_with_input(BenchmarkId::new("insert_batch", 1_000), &1_000usize, |b, &size| {
            b.to_async(&rt).iter(|| async {
                let start = serial.fetch_add(size, Ordering::Relaxed);
                let batch = (start..start + size).map(|n| contact_input(n, None, None)).collect();
                crm.contacts().create_many(&seeded.admin, batch).await.expect("batch")
            })
        });
        // The storage layer alone: 1,000 contact rows in one `Store::apply`, without the
        // services' validation, audit and outbox (the ceiling the services work under).
        let template = rt.block_on(crm.contacts().get(&seeded.admin, seeded.contacts[0])).expect("template");
        let store = backend.store();
        g.bench_with_input(BenchmarkId::new("store_insert_batch", 1_000), &1_000usize, |b, &size| {
            b.to_async(&rt).iter(|| async {
                let start = serial.fetch_add(size, Ordering::Relaxed);
                let mut cs = Changeset::default();
                for n in start..start + size {
                    let mut c = template.clone();
                    c.id = ContactId(uuid::Uuid::now_v7());
                    c.name = format!("Row {n}");
                    c.email = Some(Email::parse(&format!("row{n}@example.org")).expect("email"));
                    cs.writes.push(Write::Insert { kind: EntityKind::Contact, row: to_row(&c).expect("row") });
                }
                store.apply(cs).await.expect("apply")
            })
        });
        g.finish();
        if std::env::var_os("CRM_BENCH_KEEP").is_some() {
            println!("{name}: kept the data in {}", backend.location());
        } else {
            rt.block_on(backend.cleanup());
        }
    }
}

mod harness {
    #![allow(missing_docs)] // criterion_group! makes an undocumented public fn
    criterion::criterion_group!(benches, super::storage);
}

criterion_main!(harness::benches);
