//! Write throughput through the services with several processes on one PostgreSQL, as
//! several `crm-server` replicas write: `CRM_BENCH_PROCESSES` (`1,2,4`) processes, each
//! with 16 writers creating contacts (`Crm::contacts().create`: policy, validation, the
//! contact, its audit event and its outbox event) for `CRM_BENCH_SECONDS` (20) seconds,
//! all starting at one instant. Beside the rate, the parent samples PostgreSQL's
//! `pg_stat_activity` every 20 ms: how many of the store's backends are busy, and how
//! many of those wait on a lock held by another transaction — in this load, the audit
//! chain's head row, which every commit from every process takes — so the figures say
//! whether the head row caps the rate. At the end the chain is verified whole.
//!
//! `cargo bench -p crm-benches --bench replicas` (figures printed and written to
//! `target/crm-bench/replicas.txt`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_core::{Actor, Role, Store, UserId};
use crm_storage_sql::{SqlOptions, SqlStore};

/// Writers per process, as the load asks.
const WRITERS: usize = 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn store(schema: &str) -> Arc<dyn Store> {
    let opts = SqlOptions { pg_schema: Some(schema.to_string()), ..Default::default() };
    Arc::new(SqlStore::connect_with(&crm_tests::backends::postgres_url(), opts).await.expect("postgres"))
}

/// One process's share: waits for `start` (ms since the epoch), then writes with
/// [`WRITERS`] tasks for `seconds`; prints `done <created> <failed>`.
async fn child(schema: &str, admin: UserId, start: u64, seconds: u64, index: usize) {
    let crm = crm_benches::bench_crm(store(schema).await, crm_core::CrmConfig::default());
    let actor = Actor::new(admin, Role::Admin, None);
    // Warm the pool and the statement caches outside the measured time.
    crm.contacts()
        .create(&actor, crm_benches::contact_input(index * 100_000_000 + 99_999_999, None, None))
        .await
        .expect("first write");
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let (created, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (crm, actor, created, failed) = (crm.clone(), actor.clone(), created.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = index * 100_000_000 + w * 1_000_000;
            while tokio::time::Instant::now() < end {
                match crm.contacts().create(&actor, crm_benches::contact_input(i, None, None)).await {
                    Ok(_) => created.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("replicas: process {index} writer {w}: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    println!("done {} {}", created.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
}

/// What the sampler saw: samples, busy backends summed over them, lock waiters summed.
#[derive(Default)]
struct Waits {
    samples: u64,
    busy: u64,
    locked: u64,
}

/// Samples `pg_stat_activity` every 20 ms until `stop` is set.
async fn sample(stop: Arc<std::sync::atomic::AtomicBool>) -> Waits {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&crm_tests::backends::postgres_url())
        .await
        .expect("postgres");
    let mut w = Waits::default();
    while !stop.load(Ordering::Relaxed) {
        let (busy, locked): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state <> 'idle'), \
                    count(*) FILTER (WHERE state <> 'idle' AND wait_event_type = 'Lock') \
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity");
        w.samples += 1;
        w.busy += busy as u64;
        w.locked += locked as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w
}

/// The machine's CPU counters (`/proc/stat`'s first line): (busy, total) jiffies.
fn cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// One run with `n` processes: writes/s, and the sampler's figures.
async fn run(n: usize, seconds: u64) -> String {
    let schema = format!("bench_replicas_{}_{n}", std::process::id());
    let st = store(&schema).await;
    let crm = crm_benches::bench_crm(st.clone(), crm_core::CrmConfig::default());
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin");
    let start = now_ms() + 4_000;
    let exe = std::env::current_exe().expect("exe");
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(&exe)
                .args(["--child", &schema, &admin.id.0.to_string(), &start.to_string(), &seconds.to_string()])
                .arg(i.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("child")
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn(sample(stop.clone()));
    let cpu_before = cpu();
    let outputs = tokio::task::spawn_blocking(move || {
        children.into_iter().map(|c| c.wait_with_output().expect("child output")).collect::<Vec<_>>()
    })
    .await
    .expect("children");
    let cpu_after = cpu();
    stop.store(true, Ordering::Relaxed);
    let cpu_busy = 100.0 * (cpu_after.0 - cpu_before.0) as f64 / (cpu_after.1 - cpu_before.1).max(1) as f64;
    let waits = sampler.await.expect("sampler");
    let (mut created, mut failed, mut per) = (0u64, 0u64, Vec::new());
    for out in outputs {
        assert!(out.status.success(), "a writer process failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("done ")).expect("done line");
        let mut parts = line.split_whitespace().skip(1).map(|p| p.parse::<u64>().expect("count"));
        let (c, f) = (parts.next().expect("created"), parts.next().expect("failed"));
        created += c;
        failed += f;
        per.push(format!("{:.0}", c as f64 / seconds as f64));
    }
    let status = crm.verify_audit_chain().await.expect("verify");
    let busy = waits.busy as f64 / waits.samples.max(1) as f64;
    let locked = waits.locked as f64 / waits.samples.max(1) as f64;
    drop(crm);
    drop(st);
    crm_storage_sql::SqlStore::drop_pg_schema(&crm_tests::backends::postgres_url(), &schema).await.expect("drop");
    format!(
        "{n} process(es) x {WRITERS} writers: {:>7.0} contacts/s (per process {}), {failed} failed; \
         busy backends {busy:.1} on average, {locked:.1} of them waiting on a lock ({:.0} %); CPU {cpu_busy:.0} % busy; chain {status:?}",
        created as f64 / seconds as f64,
        per.join(" + "),
        if busy > 0.0 { 100.0 * locked / busy } else { 0.0 },
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if args.get(1).map(String::as_str) == Some("--child") {
        let admin: UserId = args[3].parse().expect("admin id");
        let (start, seconds, index) =
            (args[4].parse().expect("start"), args[5].parse().expect("seconds"), args[6].parse().expect("index"));
        rt.block_on(child(&args[2], admin, start, seconds, index));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is not used.
    let seconds: u64 = env_or("CRM_BENCH_SECONDS", 20);
    let counts: Vec<usize> = std::env::var("CRM_BENCH_PROCESSES")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|n| n.trim().parse().expect("CRM_BENCH_PROCESSES: numbers"))
        .collect();
    let mut lines = vec![format!(
        "replicas: {} cores, PostgreSQL, {seconds} s per run, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        chrono::Utc::now().date_naive()
    )];
    for n in counts {
        let line = rt.block_on(run(n, seconds));
        println!("{line}");
        lines.push(line);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    std::fs::create_dir_all(&dir).expect("target/crm-bench");
    std::fs::write(dir.join("replicas.txt"), lines.join("\n") + "\n").expect("replicas.txt");
}
