//! The analytics engine from Rust (no Python in the way):
//!
//! - `reports/<name>`: each standard report on the scale-1 tables that
//!   `benches/analytics/generate.py` writes (`CRM_ANALYTICS_DATA`, default
//!   `target/analytics-data`; skipped, saying how to make them, when absent);
//! - `snapshot/<backend>`: a cold store snapshot (`Crm::analytics_tables` on a fresh `Crm`,
//!   so nothing is cached) of a CRM seeded with crm-server's demo data
//!   (`CRM_BENCH_CONTACTS` contacts, default 20,000, a tenth as many companies, half as
//!   many deals), on SQLite and PostgreSQL (`CRM_BENCH_BACKENDS=sqlite,postgres`);
//! - `freshness/<backend>/…`: on the same CRM, `r1_pipeline_by_stage` on a warm snapshot
//!   (`warm`), right after one deal update (`after_update`: the snapshot brought up to
//!   date from the audit log; the update itself is not timed), and on a snapshot read
//!   whole (`full_reload`: a new engine, as every report after a write did before).
//!
//! `cargo bench -p crm-benches --bench analytics`; figures in `benches/README.md`.

#![allow(clippy::expect_used)] // a benchmark that cannot run its set-up should stop loudly

use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use crm_core::analytics::{self, Params};
use crm_core::{Actor, Crm, Role, UserId};
use crm_tests::TestBackend;

fn reports(c: &mut Criterion) {
    // cargo runs benches in the package's folder: the default is the workspace's target/.
    let dir = std::env::var("CRM_ANALYTICS_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/analytics-data").to_string());
    let Ok(tables) = analytics::read_parquet(std::path::Path::new(&dir)) else {
        println!("no analytics tables in {dir}: python benches/analytics/generate.py --scale 1 --out {dir}");
        return;
    };
    let mut g = c.benchmark_group("reports");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(2));
    for &name in analytics::REPORTS {
        g.bench_function(name, |b| {
            b.iter(|| analytics::report(name, &tables, &Params::default()).expect("report"));
        });
    }
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let contacts: usize = std::env::var("CRM_BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let chosen = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_string());
    for name in ["sqlite", "postgres"] {
        if !chosen.split(',').any(|c| c.trim() == name) {
            continue;
        }
        let backend: Box<dyn TestBackend> = rt.block_on(async {
            match name {
                "sqlite" => crm_tests::backends::sqlite().await as Box<dyn TestBackend>,
                _ => crm_tests::backends::postgres().await,
            }
        });
        let crm = Crm::new(backend.store());
        let size = crm_http::demo::DemoSize { companies: contacts / 10, contacts, deals: contacts / 2 };
        let started = std::time::Instant::now();
        let admin = rt.block_on(async {
            let admin = crm
                .users()
                .bootstrap_admin_with_password("admin", "admin@demo.example", crm_http::demo::DEMO_PASSWORD)
                .await
                .expect("admin");
            crm_http::demo::seed(&crm, &admin.actor(), size, &|_, _, _| {}).await.expect("seed");
            admin.actor()
        });
        rt.block_on(backend.after_bulk_load());
        let system = Actor::new(UserId(uuid::Uuid::nil()), Role::Admin, None);
        println!("{name}: seeded in {:.1} s", started.elapsed().as_secs_f64());
        // The memory a cold snapshot load takes at its peak, beside the frames' own size.
        let base = crm_benches::peak_rss_reset();
        let tables = rt.block_on(Crm::new(backend.store()).analytics_tables(&system)).expect("snapshot");
        let peak = crm_benches::peak_rss().saturating_sub(base);
        let rows: usize = tables.0.values().map(|df| df.height()).sum();
        let frames: usize = tables.0.values().map(crm_core::analytics::frame_bytes).sum();
        println!(
            "{name}: the snapshot holds {rows} rows in {:.1} MB of frames; its load peaked {:.1} MB over the process's \
             resident set before it ({:.2}x the frames)",
            frames as f64 / 1e6,
            peak as f64 / 1e6,
            peak as f64 / frames.max(1) as f64
        );
        drop(tables);
        let mut g = c.benchmark_group("snapshot");
        g.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Elements(rows as u64));
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                // A new engine on the same store: its snapshot cache is empty.
                Crm::new(backend.store()).analytics_tables(&system).await.expect("snapshot")
            });
        });
        g.finish();
        freshness(c, &rt, &crm, backend.as_ref(), name, &admin);
    }
}

/// R1 on a warm snapshot, right after one write, and on a snapshot read whole.
fn freshness(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    crm: &Crm,
    backend: &dyn TestBackend,
    name: &str,
    system: &Actor,
) {
    const R1: &str = "r1_pipeline_by_stage";
    let deals = rt
        .block_on(crm.deals().list(system, crm_core::query::ListQuery { limit: Some(100), ..Default::default() }))
        .expect("deals")
        .data;
    let mut g = c.benchmark_group(format!("freshness/{name}"));
    g.sample_size(20).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(2));
    rt.block_on(crm.standard_report(system, R1, &Params::default())).expect("r1");
    g.bench_function("warm", |b| {
        b.to_async(rt).iter(|| async { crm.standard_report(system, R1, &Params::default()).await.expect("r1") });
    });
    let mut n = 0usize;
    g.bench_function("after_update", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let deal = &deals[n % deals.len()];
                let patch = crm_core::service::DealPatch { amount: Some(Some(1_000 + n as i64)), ..Default::default() };
                rt.block_on(crm.deals().update(system, deal.id, patch)).expect("update");
                let started = std::time::Instant::now();
                rt.block_on(crm.standard_report(system, R1, &Params::default())).expect("r1");
                spent += started.elapsed();
            }
            spent
        });
    });
    g.bench_function("full_reload", |b| {
        b.to_async(rt).iter(|| async {
            Crm::new(backend.store()).standard_report(system, R1, &Params::default()).await.expect("r1")
        });
    });
    g.finish();
    let stats = crm.analytics_snapshot_stats();
    println!("{name}: snapshots read whole {}, brought up to date {}", stats.loads, stats.refreshes);
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    reports(&mut c);
    snapshot(&mut c);
}

criterion_main!(benches);
