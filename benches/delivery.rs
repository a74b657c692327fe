//! Delivery throughput and delay: webhook deliveries to a local receiver on 127.0.0.1,
//! signed, through `DeliveryEngine` (dispatch, claim, POST, outcome) on SQLite and
//! PostgreSQL.
//! - throughput: N contacts created, then 1 or 2 engines (workers) deliver their
//!   `contact.created` events; events/s from the first claim to the last answer;
//! - delay from commit to delivery: an engine running as `crm-server` runs it (a pass
//!   every second when idle, at once again after a full batch) while contacts are created
//!   one at a time, 10 a second; p50/p99 from the create's return to the receiver's hit.
//!
//! `cargo bench -p crm-benches --bench delivery` (figures printed and written to
//! `target/crm-bench/delivery.txt`; `CRM_BENCH_EVENTS` sets N, default 2000).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::delivery::ssrf::Guard;
use crm_core::delivery::webhook::{HttpConfig, WebhookChannel};
use crm_core::delivery::DeliveryEngine;
use crm_core::service::{NewContact, WebhookInput};
use crm_core::{Crm, CrmConfig, Store};
use crm_storage_sql::SqlStore;
use crm_tests::receiver::Receiver;

fn crm(store: Arc<dyn Store>) -> Crm {
    let config = CrmConfig { outgoing: Guard::allowing(vec!["127.0.0.1/32".parse().unwrap()]), ..Default::default() };
    crm_benches::bench_crm(store, config)
}

fn engine(crm: &Crm) -> DeliveryEngine {
    DeliveryEngine::new(crm.clone()).channel(Arc::new(WebhookChannel::new(HttpConfig::default())))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(backend: &str, store: Arc<dyn Store>, n: usize) -> Vec<String> {
    let crm = crm(store);
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin").actor();
    let rx = Receiver::start().await;
    let hook =
        WebhookInput { url: Some(rx.url("/hook")), events: Some(vec!["contact.created".into()]), ..Default::default() };
    crm.webhooks().create(&admin, hook).await.expect("subscribe");
    let mut out = Vec::new();
    // The account emails of the admin and anything queued before: out of the way.
    engine(&crm).run_once().await.expect("warm-up");
    for workers in [1usize, 2] {
        let before = rx.count();
        let inputs: Vec<NewContact> =
            (0..n).map(|i| NewContact { name: format!("W{workers} C{i}"), ..Default::default() }).collect();
        for chunk in inputs.chunks(crm_core::service::MAX_BATCH) {
            crm.contacts().create_many(&admin, chunk.to_vec()).await.expect("contacts");
        }
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (eng, target) = (engine(&crm), before + n);
            let rx_count = rx.count_handle();
            set.spawn(async move {
                while rx_count() < target {
                    let r = eng.run_once().await.expect("pass");
                    if r.dispatched == 0 && r.sent == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        let wall = start.elapsed();
        let got = rx.count() - before;
        out.push(format!(
            "{backend:<9} {workers} worker(s): {got} events in {:.2} s = {:.0} events/s",
            wall.as_secs_f64(),
            got as f64 / wall.as_secs_f64()
        ));
    }
    // Commit to delivery, with the engine as crm-server runs it.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let eng = engine(&crm);
    let running = tokio::spawn(eng.run(Duration::from_secs(1), async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let mut committed: HashMap<String, Instant> = HashMap::new();
    let before = rx.count();
    let samples = 100;
    for i in 0..samples {
        let c = crm
            .contacts()
            .create(&admin, NewContact { name: format!("Delay {i}"), ..Default::default() })
            .await
            .expect("contact");
        committed.insert(c.id.to_string(), Instant::now());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while rx.count() < before + samples {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let _ = running.await;
    let mut delays: Vec<Duration> = rx.received()[before..]
        .iter()
        .filter_map(|r| {
            let id = r.json()["data"]["id"].as_str()?.to_string();
            committed.get(&id).map(|t| r.at.saturating_duration_since(*t))
        })
        .collect();
    delays.sort();
    out.push(format!(
        "{backend:<9} commit to delivery (idle pass every 1 s): p50 {:.0} ms, p99 {:.0} ms (n={})",
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.len()
    ));
    out
}

fn main() {
    let n: usize = std::env::var("CRM_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut lines = vec![format!(
        "delivery bench: {} cores, {n} webhook events per run, a local receiver",
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0)
    )];
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("crm-bench-delivery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
        let sqlite = Arc::new(SqlStore::connect(&url).await.expect("sqlite"));
        lines.extend(run("sqlite", sqlite.clone(), n).await);
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);

        let base = crm_tests::backends::postgres_url();
        let schema = format!("bench_delivery_{}", std::process::id());
        let opts = crm_storage_sql::SqlOptions { pg_schema: Some(schema.clone()), ..Default::default() };
        let pg = Arc::new(SqlStore::connect_with(&base, opts).await.expect("postgres"));
        lines.extend(run("postgres", pg.clone(), n).await);
        pg.close().await;
        SqlStore::drop_pg_schema(&base, &schema).await.expect("drop schema");
    });
    let text = lines.join("\n");
    println!("{text}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("delivery.txt"), format!("{text}\n"));
    }
}
