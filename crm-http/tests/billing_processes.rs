//! Recurring billing through real `crm-server` processes: a server killed (`kill -9`)
//! while it catches up on three years of weekly periods, then restarted, leaves one
//! invoice per period with gapless numbers; two processes billing the same
//! subscriptions at once on one PostgreSQL database do the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

mod processes;
use processes::{bin, call, cli, free_port, Proc};

const PASSWORD: &str = "correct horse battery staple";

/// `crm-server` (`serve`, or `worker` when `port` is `None`) on `db`, the scheduler
/// looking every second.
fn start(dir: &Path, db: &str, name: &str, port: Option<u16>) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir);
    match port {
        Some(p) => cmd.args(["--bind", &format!("127.0.0.1:{p}")]),
        None => cmd.arg("worker"),
    };
    let p = Proc(
        cmd.env("CRM_DATABASE_URL", db)
            .env("CRM_BILLING_INTERVAL", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start crm-server"),
    );
    if let Some(port) = port {
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            assert!(t.elapsed() < Duration::from_secs(30), "{name} did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    p
}

fn login(base: &str) -> String {
    let (s, b) =
        call("POST", &format!("{base}/api/auth/login"), None, Some(json!({"username": "admin", "password": PASSWORD})));
    assert_eq!(s, 200, "{b}");
    b["accessToken"].as_str().unwrap().to_string()
}

/// A company with a weekly subscription that started about three years ago.
fn subscription(base: &str, token: &str, name: &str) -> (String, usize) {
    let (s, co) = call("POST", &format!("{base}/api/companies"), Some(token), Some(json!({"name": name})));
    assert_eq!(s, 201, "{co}");
    let start = (chrono::Utc::now() - chrono::Duration::weeks(156)).date_naive();
    let weeks = ((chrono::Utc::now().date_naive() - start).num_days() / 7 + 1) as usize;
    let (s, sub) = call(
        "POST",
        &format!("{base}/api/subscriptions"),
        Some(token),
        Some(
            json!({"name": format!("{name} support"), "companyId": co["id"], "frequency": "weekly", "startDate": start,
            "lines": [{"name": "Support week", "unitPrice": 12500, "taxPercent": 20}]}),
        ),
    );
    assert_eq!(s, 201, "{sub}");
    (sub["id"].as_str().unwrap().to_string(), weeks)
}

/// The invoices of a subscription: (period start, number).
fn billed(base: &str, token: &str, sub: &str) -> Vec<(String, String)> {
    let (s, list) = call("GET", &format!("{base}/api/invoices?limit=1000"), Some(token), None);
    assert_eq!(s, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["subscriptionId"] == sub)
        .map(|i| (i["periodStart"].as_str().unwrap().to_string(), i["number"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each period once; the numbers 1..n of the year's series with no gap among them.
fn assert_once_each(list: &[(String, String)], periods: usize) {
    let starts: BTreeSet<&str> = list.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(list.len(), periods, "one invoice per period");
    assert_eq!(starts.len(), periods, "no period twice");
    assert_gapless(list);
}

/// No number twice, and the numbers of each year run 1..n.
fn assert_gapless(list: &[(String, String)]) {
    let numbers: BTreeSet<&str> = list.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(numbers.len(), list.len(), "no number twice");
    let mut by_year: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for n in &numbers {
        let mut parts = n.split('-');
        let (_, year, seq) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        by_year.entry(year).or_default().push(seq.parse().unwrap());
    }
    for (year, mut seqs) in by_year {
        seqs.sort();
        assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>(), "a gap in {year}'s numbers");
    }
}

#[test]
fn a_killed_billing_server_bills_each_period_once_after_restart() {
    let dir = std::env::temp_dir().join(format!("crm-billing-kill-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    cli(&dir, &db, &["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start(&dir, &db, "first", Some(port));
    let token = login(&base);
    let (sub, periods) = subscription(&base, &token, "Kill Corp");
    // Killed mid catch-up: some periods billed, not all.
    wait_for("the first invoices", || billed(&base, &token, &sub).len() >= 5);
    drop(server); // SIGKILL: kill -9
    let _again = start(&dir, &db, "second", Some(port));
    let token = login(&base);
    let so_far = billed(&base, &token, &sub).len();
    assert!(so_far < periods, "the kill came mid catch-up ({so_far} of {periods} billed)");
    wait_for("every period", || billed(&base, &token, &sub).len() >= periods);
    std::thread::sleep(Duration::from_millis(1500));
    assert_once_each(&billed(&base, &token, &sub), periods);
    eprintln!("killed after {so_far} of {periods} periods; after the restart: {periods} invoices, each period once");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_processes_on_postgres_bill_each_period_once() {
    let url =
        std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // A database of its own.
    let name = format!("crm_billing_{}", uuid::Uuid::now_v7().simple());
    let made = Command::new("psql").args([url.as_str(), "-qc", &format!("CREATE DATABASE {name}")]).output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(!ci, "PostgreSQL is not reachable at {url}: {other:?}");
            eprintln!("skipping: PostgreSQL is not reachable at {url}");
            return;
        }
    }
    let db = match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("a database URL: {url}"),
    };
    let dir = std::env::temp_dir().join(format!("crm-billing-two-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    cli(&dir, &db, &["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = start(&dir, &db, "server", Some(port));
    let _worker = start(&dir, &db, "worker", None);
    let token = login(&base);
    let subs: Vec<(String, usize)> = (0..3).map(|i| subscription(&base, &token, &format!("Pair {i}"))).collect();
    for (sub, periods) in &subs {
        wait_for("every period", || billed(&base, &token, sub).len() >= *periods);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut all = Vec::new();
    for (sub, periods) in &subs {
        let list = billed(&base, &token, sub);
        let starts: BTreeSet<&str> = list.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!((list.len(), starts.len()), (*periods, *periods), "one invoice per period");
        all.extend(list);
    }
    assert_gapless(&all);
    drop(_server);
    drop(_worker);
    let _ = Command::new("psql").args([url.as_str(), "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")]).output();
    let _ = std::fs::remove_dir_all(&dir);
}
