//! Billing throughput on SQLite and PostgreSQL: issuing invoices (each a gapless number
//! from one sequence row, so issuers contend on it) with one caller and with sixteen at
//! once, and the recurring run that invoices 10,000 subscriptions' periods, each once.
//!
//! `cargo bench -p crm-benches --bench billing` (figures printed and written to
//! `target/crm-bench/billing.txt`). `CRM_BENCH_INVOICES` sets the invoices issued
//! (2000), `CRM_BENCH_SUBSCRIPTIONS` the subscriptions (10000), `CRM_BENCH_BACKENDS` the
//! stores (`sqlite,postgres`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::Arc;
use std::time::Instant;

use crm_core::billing::recurring::SubscriptionInput;
use crm_core::billing::{DocumentInput, IssueInput, LineInput};
use crm_core::service::NewCompany;
use crm_core::{Actor, Crm, Store};

fn crm(store: Arc<dyn Store>) -> Crm {
    crm_benches::bench_crm(store, crm_core::CrmConfig::default())
}

fn lines() -> Vec<LineInput> {
    vec![
        LineInput {
            name: Some("Pro seat".into()),
            quantity: Some(40),
            unit_price: Some(2900),
            tax_percent: Some(serde_json::from_str("20").unwrap()),
            ..Default::default()
        },
        LineInput {
            name: Some("Onboarding".into()),
            unit_price: Some(150_000),
            discount_percent: Some(serde_json::from_str("10").unwrap()),
            tax_percent: Some(serde_json::from_str("20").unwrap()),
            ..Default::default()
        },
    ]
}

async fn drafts(crm: &Crm, admin: &Actor, company: uuid::Uuid, n: usize) -> Vec<uuid::Uuid> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let input = DocumentInput {
            company_id: Some(company),
            currency: Some("EUR".into()),
            lines: Some(lines()),
            ..Default::default()
        };
        ids.push(crm.billing().create_invoice(admin, input).await.expect("draft").invoice.id);
    }
    ids
}

async fn run(backend: &str, store: Arc<dyn Store>, invoices: usize, subscriptions: usize) -> Vec<String> {
    let crm = crm(store);
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin").actor();
    let company = crm
        .companies()
        .create(&admin, NewCompany { name: "Bench SA".into(), country: Some("FR".into()), ..Default::default() })
        .await
        .expect("company")
        .id
        .as_uuid();
    let mut out = Vec::new();

    // Issuing: one caller, then sixteen at once.
    for callers in [1usize, 16] {
        let ids = drafts(&crm, &admin, company, invoices).await;
        let start = Instant::now();
        let chunks: Vec<Vec<uuid::Uuid>> = ids.chunks(invoices.div_ceil(callers)).map(<[uuid::Uuid]>::to_vec).collect();
        let tasks: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let crm = crm.clone();
                let admin = admin.clone();
                tokio::spawn(async move {
                    for id in chunk {
                        crm.billing().issue_invoice(&admin, id, IssueInput::default()).await.expect("issue");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("issuer");
        }
        let wall = start.elapsed().as_secs_f64();
        out.push(format!(
            "{backend:<9} issue {invoices} invoices, {callers:>2} caller(s): {:.1} s = {:.0} invoices/s (each a gapless number)",
            wall,
            invoices as f64 / wall
        ));
    }

    // The recurring run: every subscription's first period, each once.
    let today = chrono::Utc::now().date_naive();
    let seeding = Instant::now();
    for i in 0..subscriptions {
        let input = SubscriptionInput {
            name: Some(format!("Plan {i}")),
            company_id: Some(company),
            lines: Some(lines()),
            start_date: Some(today),
            ..Default::default()
        };
        crm.billing().create_subscription(&admin, input).await.expect("subscription");
    }
    let seeded = seeding.elapsed().as_secs_f64();
    let start = Instant::now();
    let report = crm.billing().run_subscriptions().await.expect("run");
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(report.invoices, subscriptions, "each period once");
    out.push(format!(
        "{backend:<9} recurring run over {subscriptions} subscriptions: {} invoices issued in {:.1} s = {:.0}/s (subscriptions created in {:.1} s); a second run: {} invoices",
        report.invoices,
        wall,
        report.invoices as f64 / wall,
        seeded,
        crm.billing().run_subscriptions().await.expect("run again").invoices
    ));
    out
}

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let invoices = env("CRM_BENCH_INVOICES", 2000);
    let subscriptions = env("CRM_BENCH_SUBSCRIPTIONS", 10_000);
    let backends = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut lines = vec![format!(
        "billing bench: {} cores, {invoices} invoices per issuing run, {subscriptions} subscriptions",
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0)
    )];
    rt.block_on(async {
        for backend in backends.split(',').map(str::trim) {
            let store = crm_benches::bench_store(backend, "billing").await;
            for l in run(backend, store, invoices, subscriptions).await {
                println!("{l}");
                lines.push(l);
            }
        }
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("billing.txt"), lines.join("\n") + "\n");
}
