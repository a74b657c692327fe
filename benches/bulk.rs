//! Imports and exports at scale: a CSV of `CRM_BENCH_IMPORT_ROWS` contacts (1,000,000)
//! imported through an import job (validation, rights, audit, batches of 500) on SQLite
//! and PostgreSQL, beside PostgreSQL's own `COPY` of the same file into a bare table in
//! the same run (the physical limit) and, after the import, its `COPY` of the very rows
//! the import wrote into a second table with the contacts table's indexes (the limit for
//! that table: the server's index upkeep, no client work at all); then every contact
//! exported as CSV and as Parquet, each in a process of its own so that its peak RSS is
//! the export's.
//!
//! `cargo bench -p crm-benches --bench bulk` (figures printed and written to
//! `target/crm-bench/bulk.txt`). `CRM_BENCH_BACKENDS` names the stores (`sqlite,postgres`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::Arc;
use std::time::Instant;

use crm_core::bulk::ExportFormat;
use crm_core::{EntityKind, ListQuery, Store};

/// The file: `Name,Email,Job title,City,Tags`, one contact per row.
fn file(rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 64);
    out.push_str("Name,Email,Job title,City,Tags\n");
    for i in 0..rows {
        out.push_str(&format!(
            "Person {i},person{i}@example.com,{},City {},{}\n",
            ["Engineer", "Buyer", "Head of Sales", "CFO"][i % 4],
            i % 997,
            if i % 3 == 0 { "vip;b2b" } else { "b2b" }
        ));
    }
    out.into_bytes()
}

/// PostgreSQL's `COPY` of the file into a bare table of the same columns.
async fn copy(bytes: &[u8]) -> f64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&crm_tests::backends::postgres_url())
        .await
        .expect("postgres");
    let table = format!("bench_copy_{}", std::process::id());
    sqlx::query(&format!("CREATE TABLE {table} (name text, email text, job_title text, city text, tags text)"))
        .execute(&mut conn)
        .await
        .expect("table");
    timed_copy_in(&mut conn, &table, "csv, HEADER true", bytes).await
}

/// Sends `data` into `table` with one `COPY … FROM STDIN (FORMAT <format>)`, then drops
/// the table: the copy's seconds.
async fn timed_copy_in(conn: &mut sqlx::PgConnection, table: &str, format: &str, data: &[u8]) -> f64 {
    let start = Instant::now();
    let mut copy = conn.copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT {format})")).await.expect("copy");
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await.expect("send");
    }
    copy.finish().await.expect("finish");
    let secs = start.elapsed().as_secs_f64();
    sqlx::query(&format!("DROP TABLE {table}")).execute(&mut *conn).await.expect("drop");
    secs
}

/// PostgreSQL's binary `COPY` of the contacts the import wrote in `schema` into a new
/// table like theirs, indexes included, in one statement: seconds.
async fn copy_indexed(schema: &str) -> f64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&crm_tests::backends::postgres_url())
        .await
        .expect("postgres");
    let rows = format!("{schema}.contacts");
    let table = format!("{schema}.bench_copy_indexed");
    sqlx::query(&format!("CREATE TABLE {table} (LIKE {rows} INCLUDING ALL)")).execute(&mut conn).await.expect("table");
    let mut data = Vec::new();
    {
        use futures_util::TryStreamExt;
        let mut out = conn.copy_out_raw(&format!("COPY {rows} TO STDOUT (FORMAT binary)")).await.expect("copy out");
        while let Some(chunk) = out.try_next().await.expect("read") {
            data.extend_from_slice(&chunk);
        }
    }
    sqlx::query("CHECKPOINT").execute(&mut conn).await.expect("checkpoint");
    timed_copy_in(&mut conn, &table, "binary", &data).await
}

/// Imports the file into a fresh store: seconds, and the job's counts.
async fn import(store: Arc<dyn Store>, bytes: &[u8]) -> (f64, String) {
    let crm = crm_benches::bench_crm(store, crm_core::CrmConfig::default());
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin").actor();
    let start = Instant::now();
    let up = crm.create_import(&admin, EntityKind::Contact, "bench.csv", bytes.to_vec().into()).await.expect("upload");
    crm.start_import(&admin, up.job.id, Default::default()).await.expect("start");
    let job = crm.run_import(up.job.id, None).await.expect("run").expect("ran");
    let secs = start.elapsed().as_secs_f64();
    let counts = format!("{} created, {} failed, {} batches", job.created, job.failed, job.batches);
    (secs, counts)
}

/// The store a child process exports from: the bench's SQLite file or PostgreSQL schema.
async fn reopen(backend: &str, at: &str) -> Arc<dyn Store> {
    use crm_storage_sql::SqlStore;
    match backend {
        "sqlite" => Arc::new(SqlStore::connect(&format!("sqlite://{at}")).await.expect("sqlite")),
        _ => {
            let opts = crm_storage_sql::SqlOptions { pg_schema: Some(at.to_string()), ..Default::default() };
            Arc::new(SqlStore::connect_with(&crm_tests::backends::postgres_url(), opts).await.expect("postgres"))
        }
    }
}

/// The child: exports every contact to nowhere, prints `rows seconds peak-kB`.
fn export_child(backend: &str, at: &str, format: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let store = reopen(backend, at).await;
        let crm = crm_benches::bench_crm(store, crm_core::CrmConfig::default());
        let system = crm_core::Actor::new(crm_core::UserId(uuid::Uuid::nil()), crm_core::Role::Admin, None);
        let format = ExportFormat::parse(format).expect("format");
        let start = Instant::now();
        let export = crm.export_records(&system, EntityKind::Contact, ListQuery::new(), format).await.expect("export");
        let n = export.write_to(std::io::sink()).await.expect("written");
        let secs = start.elapsed().as_secs_f64();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        println!("{n} {secs} {hwm}");
    });
}

fn export_in_child(backend: &str, at: &str, format: &str) -> (u64, f64, u64) {
    let out = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .args(["--export-child", backend, at, format])
        .output()
        .expect("the export child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let n = parts.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("export child: {text}"));
    let secs = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let kb = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (n, secs, kb)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--export-child") {
        export_child(&args[i + 1], &args[i + 2], &args[i + 3]);
        return;
    }
    let rows: usize = std::env::var("CRM_BENCH_IMPORT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let backends = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let bytes = file(rows);
    let mut lines = vec![format!(
        "bulk bench: {} cores, {rows} contacts, a {:.1} MB CSV",
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0),
        bytes.len() as f64 / 1e6
    )];
    let mut say = |l: String| {
        println!("{l}");
        lines.push(l);
    };
    let copy_secs = rt.block_on(copy(&bytes));
    let copy_rate = rows as f64 / copy_secs;
    say(format!("postgres COPY into a bare table: {copy_secs:.2} s, {copy_rate:.0} rows/s (the physical limit)"));
    for backend in backends.split(',').map(str::trim) {
        let (secs, counts, at) = rt.block_on(async {
            let store = crm_benches::bench_store(backend, "bulk").await;
            let (secs, counts) = import(store, &bytes).await;
            let at = match backend {
                "sqlite" => std::env::temp_dir()
                    .join(format!("crm-bench-bulk-{}", std::process::id()))
                    .join("bench.db")
                    .display()
                    .to_string(),
                _ => format!("bench_bulk_{}", std::process::id()),
            };
            (secs, counts, at)
        });
        let rate = rows as f64 / secs;
        say(format!(
            "{backend}: import {rows} contacts: {secs:.1} s, {rate:.0} rows/s = {:.2}x COPY ({counts})",
            rate / copy_rate
        ));
        if backend == "postgres" {
            let secs = rt.block_on(copy_indexed(&at));
            let limit = rows as f64 / secs;
            say(format!(
                "postgres COPY of the imported rows into a table with contacts' indexes: {secs:.2} s, \
                 {limit:.0} rows/s (the import = {:.2}x)",
                rate / limit
            ));
        }
        for format in ["csv", "parquet"] {
            let (n, secs, kb) = export_in_child(backend, &at, format);
            say(format!(
                "{backend}: export {n} contacts as {format}: {secs:.1} s, {:.0} rows/s, peak RSS {:.0} MB",
                n as f64 / secs,
                kb as f64 / 1024.0
            ));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("bulk.txt"), lines.join("\n") + "\n");
}
