//! Campaign throughput: a 100,000-recipient campaign through `CampaignSender` into an
//! SMTP sink (aiosmtpd's `Sink` handler on 127.0.0.1, which takes each message and drops
//! it), on SQLite and PostgreSQL. Measured: the audience freeze, the send (messages per
//! minute, from the first claim to the last outcome written) and the process's peak RSS
//! during the send; beside them the anchor, listmonk's ~40,000 messages a minute per
//! instance reported in the field.
//!
//! `cargo bench -p crm-benches --bench campaign` (figures printed and written to
//! `target/crm-bench/campaign.txt`). `CRM_BENCH_RECIPIENTS` sets the audience (100000),
//! `CRM_BENCH_BACKENDS` the stores (`sqlite,postgres`), `CRM_BENCH_PYTHON` a Python with
//! aiosmtpd (default: `python3`, then `~/.cache/crm-rs/venv/bin/python`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::campaign::{CampaignConfig, CampaignInput, CampaignSender, SegmentInput, TemplateInput};
use crm_core::mail::{SmtpConfig, SmtpMailer, SmtpSecurity};
use crm_core::service::NewContact;
use crm_core::{Crm, Store};

const LISTMONK_PER_MINUTE: f64 = 40_000.0;

struct Sink(Child, u16);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    if let Ok(p) = std::env::var("CRM_BENCH_PYTHON") {
        return p;
    }
    let ok = |p: &str| Command::new(p).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if ok("python3") {
        return "python3".into();
    }
    let venv = format!("{}/.cache/crm-rs/venv/bin/python", std::env::var("HOME").unwrap_or_default());
    assert!(ok(&venv), "no Python with aiosmtpd: run scripts/test once, or set CRM_BENCH_PYTHON");
    venv
}

fn sink() -> Sink {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(python())
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Sink"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Sink(child, port)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn crm(store: Arc<dyn Store>) -> Crm {
    crm_benches::bench_crm(store, crm_core::CrmConfig::default())
}

async fn run(backend: &str, store: Arc<dyn Store>, n: usize, port: u16) -> Vec<String> {
    let crm = crm(store);
    let admin = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("admin").actor();
    let seeding = Instant::now();
    let inputs: Vec<NewContact> = (0..n)
        .map(|i| NewContact {
            name: format!("Reader{i} Bench"),
            email: Some(format!("reader{i}@bench.example")),
            ..Default::default()
        })
        .collect();
    for chunk in inputs.chunks(crm_core::service::MAX_BATCH) {
        crm.contacts().create_many(&admin, chunk.to_vec()).await.expect("contacts");
    }
    let seeded = seeding.elapsed();
    let svc = crm.campaigns();
    let mjml = "<mjml><mj-body><mj-section><mj-column><mj-text font-size=\"20px\">Hello {{ contact.first_name }}</mj-text>\
<mj-text>Spring is here: 20% off every plan this month.</mj-text><mj-button href=\"https://example.com/spring\">See the offer</mj-button>\
</mj-column></mj-section></mj-body></mjml>";
    let t = svc
        .create_template(
            &admin,
            TemplateInput {
                name: Some("Bench".into()),
                subject: Some("Hi {{ contact.first_name }}".into()),
                mjml: Some(mjml.into()),
                ..Default::default()
            },
        )
        .await
        .expect("template");
    let s = svc
        .create_segment(
            &admin,
            SegmentInput { name: Some("All".into()), filter: Some(String::new()), ..Default::default() },
        )
        .await
        .expect("segment");
    let mailer = Arc::new(
        SmtpMailer::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::Plain,
            credentials: None,
            timeout: Duration::from_secs(30),
        })
        .expect("mailer"),
    );
    let mut out = vec![format!("{backend:<9} seeded {n} contacts in {:.1} s", seeded.as_secs_f64())];
    for (label, batch, concurrency) in
        [("defaults (batch 20, 4 in flight)", 20usize, 4usize), ("batch 100, 16 in flight", 100, 16)]
    {
        let c = svc
            .create(
                &admin,
                CampaignInput {
                    name: Some(label.into()),
                    template_id: Some(t.id),
                    segment_ids: Some(vec![s.id]),
                    ..Default::default()
                },
            )
            .await
            .expect("campaign");
        svc.schedule(&admin, c.id, None).await.expect("schedule");
        let mut config = CampaignConfig::new("https://crm.bench.example", "News <news@bench.example>".parse().unwrap());
        config.per_second = 0.0;
        config.batch = batch;
        config.concurrency = concurrency;
        config.footer = "Bench Ltd, 1 Bench Street".into();
        let sender = CampaignSender::new(crm.clone(), mailer.clone(), config);
        reset_peak();
        let start = Instant::now();
        let report = sender.run_once().await.expect("send");
        let wall = start.elapsed();
        let per_min = report.sent as f64 / wall.as_secs_f64() * 60.0;
        out.push(format!(
            "{backend:<9} {label}: {} sent in {:.1} s (audience freeze included) = {:.0}/min ({:.2}× listmonk's {:.0}/min); peak RSS {:.0} MiB",
            report.sent,
            wall.as_secs_f64(),
            per_min,
            per_min / LISTMONK_PER_MINUTE,
            LISTMONK_PER_MINUTE,
            peak_rss_mib()
        ));
        assert_eq!(report.sent, n, "every recipient once");
    }
    out
}

fn main() {
    let n: usize = std::env::var("CRM_BENCH_RECIPIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let backends = std::env::var("CRM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let sink = sink();
    let mut lines = vec![format!(
        "campaign bench: {} cores, {n} recipients, aiosmtpd Sink on 127.0.0.1:{}",
        std::thread::available_parallelism().map(|c| c.get()).unwrap_or(0),
        sink.1
    )];
    rt.block_on(async {
        for backend in backends.split(',').map(str::trim) {
            let store = crm_benches::bench_store(backend, "campaign").await;
            for l in run(backend, store, n, sink.1).await {
                println!("{l}");
                lines.push(l);
            }
        }
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/crm-bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("campaign.txt"), lines.join("\n") + "\n");
}
