//! The delivery engine across real `crm-server` processes: a server killed (`kill -9`)
//! while its deliveries fail and retry loses none of them after a restart; two
//! `crm-server worker` processes on one PostgreSQL, and on one MongoDB, deliver each
//! event once. The receiver is a local HTTP server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crm_tests::receiver::Receiver;

const PASSWORD: &str = "correct horse battery staple";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_crm-server")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `crm-server <args>` on a database, its log in `dir`.
fn spawn(dir: &Path, db: &str, name: &str, args: &[&str]) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Proc(
        Command::new(bin())
            .current_dir(dir)
            .args(args)
            .env("CRM_DATABASE_URL", db)
            .env("CRM_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
            .env("CRM_DELIVERY_LEASE", "2")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start crm-server"),
    )
}

fn serve(dir: &Path, db: &str, name: &str, port: u16, extra: &[&str]) -> Proc {
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec!["--bind", bind.as_str()];
    args.extend_from_slice(extra);
    let p = spawn(dir, db, name, &args);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "{name} did not start: {}", log(dir, name));
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

fn create_admin(dir: &Path, db: &str) {
    let out = Command::new(bin())
        .current_dir(dir)
        .args(["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD])
        .env("CRM_DATABASE_URL", db)
        .output()
        .unwrap();
    assert!(out.status.success(), "create-admin: {}", String::from_utf8_lossy(&out.stderr));
}

/// A JSON request with curl (the test thread stays synchronous, like the processes).
fn call(method: &str, url: &str, token: Option<&str>, body: serde_json::Value) -> serde_json::Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, url, "-H", "content-type: application/json", "-d", &body.to_string()]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{url}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Logs in, subscribes the receiver to contact events, creates `n` contacts; their ids.
fn contacts_to_deliver(base: &str, rx: &Receiver, n: usize) -> BTreeSet<String> {
    let login = call(
        "POST",
        &format!("{base}/api/auth/login"),
        None,
        serde_json::json!({"username": "admin", "password": PASSWORD}),
    );
    let token = login["accessToken"].as_str().expect("a token").to_string();
    let hook = serde_json::json!({"url": rx.url("/hook"), "events": ["contact.created"]});
    let made = call("POST", &format!("{base}/api/webhooks"), Some(&token), hook);
    assert!(made["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{made}");
    (0..n)
        .map(|i| {
            let c = call(
                "POST",
                &format!("{base}/api/contacts"),
                Some(&token),
                serde_json::json!({"name": format!("Crash {i}")}),
            );
            c["id"].as_str().expect("a contact id").to_string()
        })
        .collect()
}

/// Waits until the receiver accepted (200) a delivery of each of `ids`.
fn wait_for_all(rx: &Receiver, ids: &BTreeSet<String>, what: &str) {
    let start = Instant::now();
    loop {
        let accepted: BTreeSet<String> = rx
            .received()
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| r.json()["data"]["id"].as_str().map(str::to_string))
            .collect();
        if &accepted == ids {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: {} of {} delivered", accepted.len(), ids.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_delivery() {
    let rx = Receiver::start().await;
    // The receiver is down for a while: 503, retry after a second.
    rx.answer(&[(503, Some(1)); 25]);
    let dir = std::env::temp_dir().join(format!("crm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    create_admin(&dir, &db);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let ids = tokio::task::block_in_place(|| {
        let server = serve(&dir, &db, "first", port, &[]);
        let ids = contacts_to_deliver(&base, &rx, 10);
        // Killed (SIGKILL) while deliveries fail and wait for their retries.
        let start = Instant::now();
        while rx.received().len() < 12 {
            assert!(start.elapsed() < Duration::from_secs(30), "no retries seen: {}", log(&dir, "first"));
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(server);
        assert!(rx.received().iter().all(|r| r.status == 503), "nothing was delivered before the kill");
        let _again = serve(&dir, &db, "second", port, &[]);
        wait_for_all(&rx, &ids, "after the restart");
        ids
    });
    // Every attempt of an event carried the same key: the retries are recognisable.
    let got = rx.received();
    let mut key_of = std::collections::HashMap::new();
    for r in &got {
        let id = r.json()["data"]["id"].as_str().unwrap().to_string();
        let key = r.header("webhook-id").unwrap().to_string();
        assert_eq!(key_of.entry(id.clone()).or_insert_with(|| key.clone()), &key, "one key per event ({id})");
    }
    assert_eq!(key_of.len(), ids.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two workers beside a server that does not deliver: each event reaches the receiver
/// once.
fn two_workers_deliver_once(db: &str, rx: &Receiver, name: &str) {
    let dir = std::env::temp_dir().join(format!("crm-workers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    create_admin(&dir, db);
    let port = free_port();
    let _server = serve(&dir, db, "server", port, &["--no-worker"]);
    let ids = contacts_to_deliver(&format!("http://127.0.0.1:{port}"), rx, 40);
    let _a = spawn(&dir, db, "worker-a", &["worker"]);
    let _b = spawn(&dir, db, "worker-b", &["worker"]);
    wait_for_all(rx, &ids, name);
    std::thread::sleep(Duration::from_secs(3));
    let got = rx.received();
    let keys: HashSet<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!((got.len(), keys.len()), (40, 40), "each event once, by one of the two workers");
    for w in ["worker-a", "worker-b"] {
        assert!(log(&dir, w).contains("worker started"), "{w}: {}", log(&dir, w));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_deliver_each_event_once() {
    let url =
        std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("workers_{}", uuid::Uuid::now_v7().simple());
    let opts = crm_storage_sql::SqlOptions { pg_schema: Some(schema.clone()), ..Default::default() };
    let store = crm_storage_sql::SqlStore::connect_with(&url, opts).await.expect("PostgreSQL (CRM_TEST_POSTGRES_URL)");
    store.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let rx = Receiver::start().await;
    tokio::task::block_in_place(|| two_workers_deliver_once(&db, &rx, "postgres"));
    crm_storage_sql::SqlStore::drop_pg_schema(&url, &schema).await.expect("drop the schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_mongodb_deliver_each_event_once() {
    let base = std::env::var("CRM_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true".into());
    let name = format!("workers_{}", uuid::Uuid::now_v7().simple());
    let db = match base.split_once("/?") {
        Some((host, query)) => format!("{host}/{name}?{query}"),
        None => format!("{}/{name}", base.trim_end_matches('/')),
    };
    let rx = Receiver::start().await;
    tokio::task::block_in_place(|| two_workers_deliver_once(&db, &rx, "mongodb"));
}
