//! Fresh dashboards at scale (issue 20, item 5): the scale-1 analytics data (1,000,000
//! deals, 10.6M rows in the six tables; `scale1.rs`) held in a store, and
//! `r1_pipeline_by_stage` through `Crm::standard_report` as a dashboard runs it:
//!
//! - **cold**: the first snapshot of the process, read whole, with its peak resident set
//!   beside the frames' own size;
//! - **warm**: the report again on the unchanged CRM (the cached snapshot);
//! - **after an amount change**: one deal's amount updated through the services (not
//!   timed), then the report (timed): the snapshot brought up to date from the audit log;
//! - **after a stage change**: the same with a stage move, which also adds a stage-history
//!   row;
//! - **full reload**: the report on a new engine over the same store, so the snapshot is
//!   read whole: what every report after a write cost before item 5.
//!
//! ```sh
//! python benches/analytics/generate.py --scale 1 --out target/analytics-data
//! cargo bench -p crm-benches --bench freshness                       # SQLite
//! CRM_BENCH_BACKENDS=sqlite,postgres cargo bench -p crm-benches --bench freshness
//! ```
//! `CRM_BENCH_CACHE_MB=512` bounds the snapshot cache as it was before the bound was a
//! setting. Figures are printed and written to `target/crm-bench/freshness.txt`. SQLite
//! runs on a copy of the kept scale-1 CRM (`target/crm-bench/copy-source.db`, loaded on
//! the first run: minutes); PostgreSQL on a schema of its own that the CRM is copied into
//! first.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_benches::scale1;
use crm_core::analytics::Params;
use crm_core::copy::{copy_store, CopyOptions};
use crm_core::service::DealPatch;
use crm_core::{Actor, Crm, CrmConfig, DealStage, Store};
use crm_storage_sql::{SqlOptions, SqlStore};

const R1: &str = "r1_pipeline_by_stage";
/// Timed runs of each measure (full reloads: a third as many).
const RUNS: usize = 12;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn r1(crm: &Crm, actor: &Actor) -> Duration {
    let started = Instant::now();
    crm.standard_report(actor, R1, &Params::default()).await.expect("r1");
    started.elapsed()
}

/// The figures of one store.
async fn measure(store: Arc<dyn Store>, name: &str) -> Vec<String> {
    // `CRM_BENCH_CACHE_MB`: the snapshot cache's bound (512: what it was before it was a
    // setting); absent, the default.
    let bound =
        std::env::var("CRM_BENCH_CACHE_MB").ok().map(|mb| mb.parse::<usize>().expect("CRM_BENCH_CACHE_MB") << 20);
    let config = CrmConfig { analytics_cache_bytes: bound, ..Default::default() };
    let crm = Crm::builder(store.clone()).config(config).build();
    let admin = crm.users().bootstrap_admin("admin", "admin@bench.example").await.expect("admin").actor();
    let mut lines = vec![format!(
        "{name}: snapshot cache bound {} MiB",
        crm.config().analytics_cache_bytes.unwrap_or_else(crm_core::analytics::default_cache_bytes) >> 20
    )];

    // Cold: the first snapshot of the process, and the memory its load peaked at.
    let base = crm_benches::peak_rss_reset();
    let anon = crm_benches::proc_status("RssAnon:");
    let started = Instant::now();
    let tables = crm.analytics_tables(&admin).await.expect("snapshot");
    let cold = started.elapsed();
    let peak = crm_benches::peak_rss().saturating_sub(base);
    // What stays resident while the snapshot is held, beside the peak.
    let held = crm_benches::proc_status("RssAnon:").saturating_sub(anon);
    let rows: usize = tables.0.values().map(|df| df.height()).sum();
    let frames: usize = tables.0.values().map(crm_core::analytics::frame_bytes).sum();
    let estimate: usize = tables.0.values().map(|df| df.estimated_size()).sum();
    drop(tables);
    lines.push(format!(
        "{name}: cold snapshot: {rows} rows in {:.2} s ({:.0} rows/s); frames {:.0} MB (polars' estimate, which leaves text views out: {:.0} MB); the load peaked {:.0} MB \
         over the resident set before it ({:.2}x the frames); {:.0} MB of anonymous memory stay resident after it",
        cold.as_secs_f64(),
        rows as f64 / cold.as_secs_f64(),
        frames as f64 / 1e6,
        estimate as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / frames.max(1) as f64,
        held as f64 / 1e6
    ));

    // Warm.
    r1(&crm, &admin).await;
    let mut warm = Vec::new();
    for _ in 0..RUNS {
        warm.push(r1(&crm, &admin).await);
    }
    let warm = median(warm);

    // After one write each.
    let deals = crm
        .deals()
        .list(&admin, crm_core::query::ListQuery { limit: Some(100), ..Default::default() })
        .await
        .expect("deals")
        .data;
    let (mut amount, mut stage) = (Vec::new(), Vec::new());
    for (n, deal) in deals.iter().take(2 * RUNS).enumerate() {
        let patch = if n % 2 == 0 {
            DealPatch { amount: Some(Some(1_000 + n as i64)), ..Default::default() }
        } else {
            let to = if deal.stage == DealStage::Negotiation { DealStage::Proposal } else { DealStage::Negotiation };
            DealPatch { stage: Some(to), ..Default::default() }
        };
        crm.deals().update(&admin, deal.id, patch).await.expect("update");
        let took = r1(&crm, &admin).await;
        if n % 2 == 0 {
            amount.push(took)
        } else {
            stage.push(took)
        }
    }
    let slowest = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    let (amount_max, stage_max) = (slowest(&amount), slowest(&stage));
    let (amount, stage) = (median(amount), median(stage));

    // Full reloads: a new engine each.
    let mut full = Vec::new();
    for _ in 0..RUNS.div_ceil(3) {
        full.push(r1(&Crm::new(store.clone()), &admin).await);
    }
    let full = median(full);
    let stats = crm.analytics_snapshot_stats();
    lines.push(format!("{name}: R1 warm (cached snapshot): {:.1} ms", ms(warm)));
    lines.push(format!(
        "{name}: R1 after one deal's amount changed: {:.1} ms = {:.2}x warm (target <= 3x); slowest of {RUNS} {:.1} ms",
        ms(amount),
        ms(amount) / ms(warm),
        ms(amount_max)
    ));
    lines.push(format!(
        "{name}: R1 after one deal's stage moved: {:.1} ms = {:.2}x warm; slowest of {RUNS} {:.1} ms",
        ms(stage),
        ms(stage) / ms(warm),
        ms(stage_max)
    ));
    lines.push(format!(
        "{name}: R1 on a snapshot read whole (a new engine): {:.1} ms = {:.1}x the amount change (target >= 10x)",
        ms(full),
        ms(full) / ms(amount)
    ));
    lines.push(format!(
        "{name}: snapshots of the measured engine: read whole {}, brought up to date {}, from the cache {}",
        stats.loads, stats.refreshes, stats.hits
    ));
    lines
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let work = scale1::root().join("target/crm-bench");
    let chosen = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite".to_string());
    let mut lines = vec![format!(
        "freshness: {} cores, scale-1 analytics data in a store, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        chrono::Utc::now().date_naive()
    )];
    rt.block_on(async {
        let source = scale1::source(&work, &scale1::data_dir()).await;
        if let Some(secs) = source.load_secs {
            lines.push(format!("loaded {} rows into SQLite in {secs:.1} s", source.rows));
        }
        for name in chosen.split(',').map(str::trim) {
            match name {
                "sqlite" => {
                    // A copy of the kept CRM: the updates must not reach the kept one.
                    let db = work.join("freshness.db");
                    for (from, to) in [("", ""), ("-wal", "-wal")] {
                        let (from, to) = (format!("{}{from}", source.db.display()), format!("{}{to}", db.display()));
                        let _ = std::fs::remove_file(&to);
                        if std::path::Path::new(&from).exists() {
                            std::fs::copy(&from, &to).expect("copy of the kept CRM");
                        }
                    }
                    let _ = std::fs::remove_file(format!("{}-shm", db.display()));
                    let store: Arc<dyn Store> = Arc::new(
                        SqlStore::connect(&format!("sqlite://{}?mode=rw", db.display())).await.expect("sqlite"),
                    );
                    lines.extend(measure(store, name).await);
                }
                "postgres" => {
                    let url = crm_tests::backends::postgres_url();
                    let schema = format!("bench_fresh_{}", std::process::id());
                    let opts = SqlOptions { pg_schema: Some(schema.clone()), ..Default::default() };
                    let store: Arc<dyn Store> = Arc::new(SqlStore::connect_with(&url, opts).await.expect("postgres"));
                    let kept =
                        SqlStore::connect(&format!("sqlite://{}?mode=rw", source.db.display())).await.expect("sqlite");
                    let started = Instant::now();
                    copy_store(&kept, store.as_ref(), CopyOptions { resume: false, batch: 5_000 }, &|_| {})
                        .await
                        .expect("copy into PostgreSQL");
                    kept.close().await;
                    println!("postgres: copied in {:.0} s", started.elapsed().as_secs_f64());
                    sqlx::query("ANALYZE").execute(&sqlx::PgPool::connect(&url).await.expect("pg")).await.ok();
                    lines.extend(measure(store, name).await);
                    SqlStore::drop_pg_schema(&url, &schema).await.expect("drop schema");
                }
                other => panic!("CRM_BENCH_BACKENDS: no backend {other} in this bench (sqlite, postgres)"),
            }
        }
    });
    for l in &lines {
        println!("{l}");
    }
    std::fs::write(work.join("freshness.txt"), lines.join("\n") + "\n").expect("freshness.txt");
}
