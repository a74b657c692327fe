//! Billing throughput on SQLite and PostgreSQL: issuing invoices (each a gapless number
//! from one sequence row, so issuers contend on it) with one caller and with sixteen at
//! once, and the recurring run that invoices 10,000 subscriptions' periods, each once;
//! and the layout of invoice PDFs (p50/p95 of one page and of twenty, English and
//! Arabic) and of their HTML page.
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

    if backend == "sqlite" {
        out.extend(documents(&crm, &admin, company).await);
    }

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

/// The p50 and p95 of `runs` timings, in milliseconds.
fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

/// Lays out a one-page and a twenty-page invoice, English and Arabic, many times each.
async fn documents(crm: &Crm, admin: &Actor, company: uuid::Uuid) -> Vec<String> {
    use crm_core::billing::document::{self, DocOptions};
    let mut out = Vec::new();
    // 5 lines fill one page; 500 (the most a document takes) twenty.
    for (lines_n, runs) in [(5usize, 200usize), (500, 20)] {
        let lines: Vec<LineInput> = (0..lines_n)
            .map(|i| LineInput {
                name: Some(format!("Consulting day {i}")),
                description: Some(if i % 5 == 0 {
                    "Architecture review and workshop, with the written findings and a plan for the next quarter".into()
                } else {
                    "Architecture review and workshop".into()
                }),
                quantity: Some(1 + (i as i64 % 4)),
                unit_price: Some(95_000 + i as i64),
                discount_percent: Some(serde_json::from_str(if i % 3 == 0 { "10" } else { "0" }).unwrap()),
                tax_percent: Some(serde_json::from_str(if i % 2 == 0 { "20" } else { "5.5" }).unwrap()),
                ..Default::default()
            })
            .collect();
        let input = DocumentInput {
            company_id: Some(company),
            currency: Some("EUR".into()),
            lines: Some(lines),
            ..Default::default()
        };
        let id = crm.billing().create_invoice(admin, input).await.expect("draft").invoice.id;
        crm.billing().issue_invoice(admin, id, IssueInput::default()).await.expect("issue");
        for lang in ["en", "ar"] {
            let opts = DocOptions { lang: Some(lang.into()), ..Default::default() };
            let data = crm.billing().invoice_document(admin, id, opts).await.expect("document");
            let cold = Instant::now();
            let first = document::pdf(&data).expect("pdf");
            let cold = cold.elapsed().as_secs_f64() * 1000.0;
            let pages = lopdf_pages(&first);
            // Every run lays out another document (each line and the number differ), so
            // typst's memoised layout of the last one does not flatter the figure.
            let variants: Vec<_> = (0..runs)
                .map(|r| {
                    let mut d = data.clone();
                    d.number = Some(format!("INV-2026-{r:06}"));
                    for l in &mut d.lines {
                        l.name = format!("{} · {r}", l.name);
                    }
                    d
                })
                .collect();
            let mut ms = Vec::with_capacity(runs);
            for d in &variants {
                let t = Instant::now();
                let pdf = document::pdf(d).expect("pdf");
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(pdf.len() > 1000);
            }
            let (p50, p95) = percentiles(ms);
            out.push(format!(
                "sqlite    invoice PDF, {lines_n} lines = {pages} page(s), {lang}: p50 {p50:.1} ms, p95 {p95:.1} ms over {runs} runs (first {cold:.0} ms), {} KiB",
                first.len() / 1024
            ));
            let mut ms = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                document::html(&data).expect("html");
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, p95) = percentiles(ms);
            out.push(format!("sqlite    invoice HTML, {lines_n} lines, {lang}: p50 {p50:.2} ms, p95 {p95:.2} ms"));
        }
    }
    out
}

/// The page count of a PDF.
fn lopdf_pages(pdf: &[u8]) -> usize {
    lopdf::Document::load_mem(pdf).expect("a PDF").get_pages().len()
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
