//! `crm-server copy` at scale: the scale-1 analytics data (`benches/analytics/generate.py
//! --scale 1`: 50,000 companies, 500,000 contacts, 1,000,000 deals, ~3.6M stage-history
//! rows, 5,000,000 interactions, 500,000 tasks) loaded into a SQLite CRM (`scale1.rs`),
//! then carried to PostgreSQL with [`crm_core::copy::copy_store`] (what `crm-server copy
//! --from --to` runs) and timed: rows/s, per kind and in all, and the copy's batch size
//! beside it.
//!
//! ```sh
//! python benches/analytics/generate.py --scale 1 --out target/analytics-data
//! cargo bench -p crm-benches --bench copy      # figures printed and written to target/crm-bench/copy.txt
//! ```
//! The loaded source stays in `target/crm-bench/copy-source.db` for the next run (delete
//! it, or `copy-source.rows`, to load again).
//! `CRM_BENCH_DATA` names another folder of the parquet files; `CRM_BENCH_COPY_BATCH` the
//! copy's rows per transaction (1,000, `crm-server copy`'s default).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use crm_benches::scale1::{self, LOAD_BATCH};
use crm_core::copy::{copy_store, CopyOptions};
use crm_core::schema::EntityKind;
use crm_core::Store;
use crm_storage_sql::{SqlOptions, SqlStore};

fn main() {
    let batch: usize = std::env::var("CRM_BENCH_COPY_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // The loaded source is kept for the next run (loading takes minutes; the copy is
    // what is measured).
    let work = scale1::root().join("target/crm-bench");
    let schema = format!("bench_copy_{}", std::process::id());
    let lines = rt.block_on(async {
        let loaded = scale1::source(&work, &scale1::data_dir()).await;
        let (db, rows) = (loaded.db.clone(), loaded.rows);
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let source: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("sqlite"));
        let opts = SqlOptions { pg_schema: Some(schema.clone()), ..Default::default() };
        let target: Arc<dyn Store> =
            Arc::new(SqlStore::connect_with(&crm_tests::backends::postgres_url(), opts).await.expect("postgres"));
        // When each kind's last transaction landed: a kind's time runs from the one before.
        let last = std::sync::Mutex::new(Vec::<(EntityKind, Instant)>::new());
        let started = Instant::now();
        let noted = |p: crm_core::copy::CopyProgress| {
            let mut last = last.lock().unwrap();
            match last.last_mut() {
                Some((k, at)) if *k == p.kind => *at = Instant::now(),
                _ => last.push((p.kind, Instant::now())),
            }
        };
        let report = copy_store(source.as_ref(), target.as_ref(), CopyOptions { resume: false, batch }, &noted)
            .await
            .expect("copy");
        let copy_secs = started.elapsed().as_secs_f64();
        let last = last.into_inner().unwrap();
        assert_eq!(report.rows(), rows, "every row reaches the target");
        let mut lines = vec![
            format!(
                "copy: {} cores, scale-1 analytics data, SQLite -> PostgreSQL, {batch} rows a transaction, {}",
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                Utc::now().date_naive()
            ),
            match loaded.load_secs {
                Some(secs) => format!("load into SQLite (Store::apply, {LOAD_BATCH} a transaction): {rows} rows in {secs:.1} s, {:.0} rows/s", rows as f64 / secs),
                None => format!("source: {rows} rows loaded by an earlier run ({})", db.display()),
            },
            format!("copy SQLite -> PostgreSQL: {} rows in {copy_secs:.1} s, {:.0} rows/s", report.rows(), report.rows() as f64 / copy_secs),
        ];
        let mut since = started;
        for (kind, at) in last {
            let rows = report.kinds.iter().find(|k| k.kind == kind).map_or(0, |k| k.rows);
            let secs = (at - since).as_secs_f64();
            lines.push(format!("  {:<20} {rows:>10} rows {secs:>7.1} s {:>9.0} rows/s", kind.table(), rows as f64 / secs));
            since = at;
        }
        drop(target);
        SqlStore::drop_pg_schema(&crm_tests::backends::postgres_url(), &schema).await.expect("drop schema");
        lines
    });
    for l in &lines {
        println!("{l}");
    }
    std::fs::write(work.join("copy.txt"), lines.join("\n") + "\n").expect("copy.txt");
}
