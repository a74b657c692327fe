//! Growing past one machine, as an operator does it: `crm-server copy`, `backup` and
//! `restore`, and a SQLite database refusing a second server. A demo CRM with a
//! file, a deleted contact and sessions carried SQLite → PostgreSQL → MariaDB → MongoDB →
//! SQLite,
//! every row of every kind and every file equal at the end, the audit chain verified at
//! each step, a server on the last copy serving the file; a copy killed (`kill -9`) and
//! resumed without a duplicate; a backup archive restored into an empty database.
//!
//! PostgreSQL, MariaDB and MongoDB are the servers the conformance suite uses
//! (`CRM_TEST_POSTGRES_URL`, `CRM_TEST_MARIADB_URL`, `CRM_TEST_MONGO_URL`); with `CI=true`
//! an unreachable one fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod processes;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crm_core::{EntityKind, Value};
use processes::{bin, call, free_port, Proc};

const PASSWORD: &str = crm_core::demo::DEMO_PASSWORD;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A database of its own on the PostgreSQL server (dropped by the caller), or `None`
/// (outside CI) when there is no server.
fn postgres_database(tag: &str) -> Option<(String, String)> {
    let url =
        std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("crm_{tag}_{}", uuid::Uuid::now_v7().simple());
    let made = Command::new("psql").args([url.as_str(), "-qc", &format!("CREATE DATABASE {name}")]).output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(!ci(), "PostgreSQL is not reachable at {url}: {other:?}");
            eprintln!("skipping: PostgreSQL is not reachable at {url}");
            return None;
        }
    }
    let (server, _) = url.rsplit_once('/').expect("a database URL");
    Some((format!("{server}/{name}"), name))
}

fn drop_postgres_database(name: &str) {
    let url =
        std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let _ = Command::new("psql").args([url.as_str(), "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")]).output();
}

/// The MariaDB server's URL.
fn mariadb_url() -> String {
    std::env::var("CRM_TEST_MARIADB_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// `statement` run by the `mariadb` client on the MariaDB server (user root, no password
/// in the URL, as on this machine and in CI).
fn mariadb_client(statement: &str) -> std::io::Result<Output> {
    let url = mariadb_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let (user, host) = rest.split_once('@').unwrap_or(("root", rest));
    let host = host.split('/').next().unwrap_or_default();
    let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
    Command::new("mariadb").args(["-h", host, "-P", port, "-u", user, "-e", statement]).output()
}

/// A database of its own on the MariaDB server (dropped by the caller), or `None`
/// (outside CI) when there is no server.
fn mariadb_database(tag: &str) -> Option<(String, String)> {
    let url = mariadb_url();
    let name = format!("crm_{tag}_{}", uuid::Uuid::now_v7().simple());
    match mariadb_client(&format!("CREATE DATABASE {name}")) {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(!ci(), "MariaDB is not reachable at {url}: {other:?}");
            eprintln!("skipping: MariaDB is not reachable at {url}");
            return None;
        }
    }
    let (server, _) = url.rsplit_once('/').expect("a database URL");
    Some((format!("{server}/{name}"), name))
}

/// A database of its own on the MongoDB server.
fn mongo_database(tag: &str) -> String {
    let base = std::env::var("CRM_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018/?directConnection=true".into());
    let name = format!("crm_{tag}_{}", uuid::Uuid::now_v7().simple());
    match base.split_once("/?") {
        Some((host, query)) => format!("{host}/{name}?{query}"),
        None => format!("{}/{name}", base.trim_end_matches('/')),
    }
}

/// `crm-server ARGS` in `dir` (files in `files`), its output.
fn run(dir: &Path, db: &str, files: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(args)
        .env("CRM_DATABASE_URL", db)
        .env("CRM_FILES_DIR", files)
        .env_remove("CRM_FILES_URL")
        .output()
        .unwrap()
}

/// [`run`], which must succeed; its standard error.
fn ok(dir: &Path, db: &str, files: &str, args: &[&str]) -> String {
    let out = run(dir, db, files, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

fn serve(dir: &Path, db: &str, files: &str, port: u16) -> Proc {
    serve_with(dir, db, files, port, &[], &[])
}

/// A server on `db` with these flags and variables, once it listens; its log is
/// `server-<port>.log`.
fn serve_with(dir: &Path, db: &str, files: &str, port: u16, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
    let p = Proc(
        Command::new(bin())
            .current_dir(dir)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("CRM_DATABASE_URL", db)
            .env("CRM_FILES_DIR", files)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = std::fs::read_to_string(dir.join(format!("server-{port}.log"))).unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not start: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn login(base: &str) -> String {
    let (status, body) = call(
        "POST",
        &format!("{base}/api/auth/login"),
        None,
        Some(serde_json::json!({"username": "admin", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{body}");
    body["accessToken"].as_str().unwrap().to_string()
}

/// Every row of every kind (deleted ones too), each kind's in id order.
async fn dump(url: &str) -> Vec<(EntityKind, Vec<Vec<Value>>)> {
    let store = crm_storage::open(url).await.unwrap();
    let mut all = Vec::new();
    for kind in EntityKind::ALL {
        let columns: Vec<usize> = (0..kind.columns().len()).collect();
        let mut rows = store.store().scan_columns(kind, None, true, &columns).await.unwrap();
        rows.sort_by_key(|r| match &r[0] {
            Value::Uuid(u) => *u,
            other => panic!("{}: an id {other:?}", kind.table()),
        });
        all.push((kind, rows));
    }
    store.close().await;
    all
}

fn assert_same(a: &[(EntityKind, Vec<Vec<Value>>)], b: &[(EntityKind, Vec<Vec<Value>>)], what: &str) {
    for ((kind, left), (_, right)) in a.iter().zip(b) {
        assert_eq!(left.len(), right.len(), "{what}: {} rows", kind.table());
        for (l, r) in left.iter().zip(right) {
            assert_eq!(l, r, "{what}: a row of {}", kind.table());
        }
    }
}

/// The files under `dir`, by path, with their bytes.
fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// A demo CRM in `dir/a.db` with files in `dir/files-a`: a PDF on a deal, a contact
/// deleted, a few sessions. Answers the attachment's id.
fn seeded(dir: &Path, contacts: &str) -> String {
    let a = format!("sqlite://{}/a.db", dir.display());
    ok(dir, &a, "files-a", &["seed-demo", "--companies", "12", "--contacts", contacts, "--deals", "40"]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = serve(dir, &a, "files-a", port);
    let token = login(&base);
    let (_, deals) = call("GET", &format!("{base}/api/deals?limit=1"), Some(&token), None);
    let deal = deals["data"][0]["id"].as_str().unwrap().to_string();
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "--data-binary", "@-", "-H", &format!("authorization: Bearer {token}")])
        .args(["-H", "content-type: application/octet-stream"])
        .arg(format!("{base}/api/deals/{deal}/attachments?fileName=Contrat%20sign%C3%A9.pdf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(PDF)?;
            c.wait_with_output()
        })
        .unwrap();
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attachment = made["id"].as_str().unwrap_or_else(|| panic!("{made}")).to_string();
    let (_, contacts) = call("GET", &format!("{base}/api/contacts?limit=1"), Some(&token), None);
    let contact = contacts["data"][0]["id"].as_str().unwrap();
    let (status, _) = call("DELETE", &format!("{base}/api/contacts/{contact}"), Some(&token), None);
    assert_eq!(status, 204);
    attachment
}

#[test]
fn a_crm_goes_from_sqlite_to_postgres_to_mariadb_to_mongodb_to_sqlite_whole() {
    let Some((pg, pg_name)) = postgres_database("copy") else { return };
    let Some((maria, maria_name)) = mariadb_database("copy") else { return };
    let mongo = mongo_database("copy");
    let dir = std::env::temp_dir().join(format!("crm-copy-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let attachment = seeded(&dir, "300");
    let (a, c) = (format!("sqlite://{}/a.db", dir.display()), format!("sqlite://{}/c.db", dir.display()));

    let said = ok(&dir, &a, "files-a", &["copy", "--to", &pg, "--files-to", "files-b"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    assert!(said.contains("secrets are in crm-secrets.json"), "{said}");
    let said = ok(&dir, &pg, "files-b", &["copy", "--to", &maria, "--files-to", "files-m"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    let said = ok(&dir, &maria, "files-m", &["copy", "--to", &mongo, "--files-to", "files-c"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    let said = ok(&dir, &mongo, "files-c", &["copy", "--to", &c, "--files-to", "files-d"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    eprintln!("{said}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first, last) = (rt.block_on(dump(&a)), rt.block_on(dump(&c)));
    assert_same(&first, &last, "a.db and its copy of a copy of a copy");
    let rows = |d: &[(EntityKind, Vec<Vec<Value>>)], k: EntityKind| d.iter().find(|(x, _)| *x == k).unwrap().1.len();
    assert!(rows(&last, EntityKind::Contact) == 300 && rows(&last, EntityKind::Attachment) == 1);
    assert!(rows(&last, EntityKind::AuditEvent) > 300 && rows(&last, EntityKind::Session) >= 1);
    let deleted_at = EntityKind::Contact.columns().iter().position(|c| c.name == "deleted_at").unwrap();
    let contacts = &last.iter().find(|(k, _)| *k == EntityKind::Contact).unwrap().1;
    assert_eq!(contacts.iter().filter(|r| !r[deleted_at].is_null()).count(), 1, "the deleted contact, still deleted");
    let files = files_in(&dir.join("files-a"));
    assert_eq!(files.len(), 1);
    assert_eq!(files, files_in(&dir.join("files-d")), "the files, byte for byte");

    // A target holding a CRM is refused, by name.
    let out = run(&dir, &a, "files-a", &["copy", "--to", &c]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("to: the target holds a CRM already"), "{err}");

    // A server on the last copy: the same admin signs in (the secrets came along), the file downloads.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = serve(&dir, &c, "files-d", port);
    let token = login(&base);
    let got = Command::new("curl")
        .args(["-sS", "-H", &format!("authorization: Bearer {token}")])
        .arg(format!("{base}/api/attachments/{attachment}/content"))
        .output()
        .unwrap();
    assert_eq!(got.stdout, PDF);
    drop(_server);
    drop_postgres_database(&pg_name);
    let _ = mariadb_client(&format!("DROP DATABASE {maria_name}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_copy_resumes_without_a_duplicate() {
    let Some((pg, pg_name)) = postgres_database("resume") else { return };
    let dir = std::env::temp_dir().join(format!("crm-copy-resume-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    seeded(&dir, "2000");
    let a = format!("sqlite://{}/a.db", dir.display());
    let count = |table: &str| -> i64 {
        let out = Command::new("psql").args([pg.as_str(), "-tAc", &format!("SELECT count(*) FROM {table}")]).output();
        out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
    };
    let mut copying = Proc(
        Command::new(bin())
            .current_dir(&dir)
            .args(["copy", "--to", &pg, "--batch", "20"])
            .env("CRM_DATABASE_URL", &a)
            .env("CRM_FILES_DIR", "files-a")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while count("contacts") < 400 {
        assert!(copying.0.try_wait().unwrap().is_none(), "the copy ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(120), "the copy made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    copying.0.kill().unwrap(); // SIGKILL
    copying.0.wait().unwrap();
    let (so_far, head) = (count("contacts"), count("audit_head WHERE seq > 0"));
    assert!(so_far < 2000 && head == 0, "killed mid copy ({so_far} of 2,000 contacts, the chain's end not moved)");

    // Without --resume the half-made target is refused; with it, the copy ends.
    let out = run(&dir, &a, "files-a", &["copy", "--to", &pg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--resume"), "{err}");
    let said = ok(&dir, &a, "files-a", &["copy", "--to", &pg, "--resume"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    eprintln!("killed after {so_far} of 2,000 contacts; resumed: {said}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_same(&rt.block_on(dump(&a)), &rt.block_on(dump(&pg)), "a.db and its resumed copy");
    drop_postgres_database(&pg_name);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_backup_restores_into_an_empty_database() {
    let dir = std::env::temp_dir().join(format!("crm-backup-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    seeded(&dir, "200");
    let (a, r) = (format!("sqlite://{}/a.db", dir.display()), format!("sqlite://{}/r.db", dir.display()));
    let said = ok(&dir, &a, "files-a", &["backup", "--to", "crm-backup.tar.gz"]);
    assert!(said.contains("crm-backup.tar.gz written"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("crm-backup.tar.gz")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the archive is its owner's alone");
    }

    // Without the CRM's secrets nothing is restored: the chain would not verify.
    let out = run(&dir, &r, "files-r", &["restore", "crm-backup.tar.gz"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("auditKey: the audit chain is sealed with key"), "{err}");
    std::fs::remove_file(dir.join("r.db.secrets.json")).unwrap();
    std::fs::copy(dir.join("a.db.secrets.json"), dir.join("r.db.secrets.json")).unwrap();
    let _ = std::fs::remove_dir_all(dir.join("files-r"));
    let said = ok(&dir, &r, "files-r", &["restore", "crm-backup.tar.gz"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_same(&rt.block_on(dump(&a)), &rt.block_on(dump(&r)), "a.db and its restored backup");
    assert_eq!(files_in(&dir.join("files-a")), files_in(&dir.join("files-r")));

    // Not over a CRM; not from what is not a backup.
    let out = run(&dir, &r, "files-r", &["restore", "crm-backup.tar.gz"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("databaseUrl: the target holds a CRM already"));
    std::fs::write(dir.join("junk.tar"), b"not an archive at all").unwrap();
    let out = run(&dir, &r, "files-r", &["restore", "junk.tar"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("archive:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sqlite_database_takes_one_server() {
    let dir = std::env::temp_dir().join(format!("crm-one-server-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/crm.db", dir.display());
    let port = free_port();
    let first = serve(&dir, &db, "files", port);
    // A second server, or a worker, on the same file stops at once and says why.
    for args in [vec!["--bind".to_string(), format!("127.0.0.1:{}", free_port())], vec!["worker".to_string()]] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&dir, &db, "files", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started beside the first server: {err}");
        assert!(err.contains("databaseUrl: another crm-server process serves"), "{err}");
    }
    // One-off commands still run beside it.
    ok(&dir, &db, "files", &["migrate"]);
    // Once the first is gone (killed: the lock goes with the process), another may serve.
    drop(first);
    let _second = serve(&dir, &db, "files", free_port());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `curl` with headers; the status, the headers (lower-cased names) and the body.
fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-X", method, url]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", &b.to_string()]);
    }
    let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap().replace("\r\n", "\n");
    let (head, body) = out.split_once("\n\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    (status, headers, serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Two servers on one PostgreSQL, their counters in Redis, called in turn as a
/// round-robin load balancer would: the rate limit, the lockout, an idempotent replay and
/// a logout hold across both, as on one server; one of them runs the periodic sweep and
/// hands its lease back when stopped. (Scheduled work done once by two processes:
/// billing_processes and delivery_processes.)
#[test]
fn two_servers_on_postgres_behave_as_one() {
    let Some((pg, pg_name)) = postgres_database("replicas") else { return };
    let redis = std::env::var("CRM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let dir = std::env::temp_dir().join(format!("crm-replicas-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    ok(
        &dir,
        &pg,
        "files",
        &["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD],
    );
    let replica = |port: u16| {
        let args = ["--no-worker", "--auth-rate-limit", "12", "--login-rate-limit", "100"];
        let args: Vec<&str> = args.into_iter().chain(["--trusted-proxies", "127.0.0.1"]).collect();
        serve_with(&dir, &pg, "files", port, &args, &[("CRM_REDIS_URL", redis.as_str())])
    };
    let (a, b) = (free_port(), free_port());
    let (_a, _b) = (replica(a), replica(b));
    let servers = [format!("http://127.0.0.1:{a}"), format!("http://127.0.0.1:{b}")];
    let at = |i: usize| servers[i % 2].clone();
    // Each check comes from a client address of its own (through the trusted proxy), so
    // that runs sharing the Redis server do not share a window.
    let client = || format!("10.{}.{}.{}", rand_byte(), rand_byte(), rand_byte());

    // The auth routes' limit: 12 a minute from one address, counted by both servers.
    let ip = client();
    let mut statuses = Vec::new();
    for i in 0..14 {
        let body = serde_json::json!({"refreshToken": "not-a-token"});
        let (status, headers, _) =
            request("POST", &format!("{}/api/auth/refresh", at(i)), &[("x-forwarded-for", &ip)], Some(body));
        if i == 11 {
            assert_eq!(header(&headers, "ratelimit-remaining"), Some("0"), "{headers:?}");
        }
        statuses.push(status);
    }
    assert!(statuses[..12].iter().all(|s| *s != 429), "{statuses:?}");
    assert_eq!(&statuses[12..], &[429, 429], "the 13th and 14th, on either server, wait: {statuses:?}");

    // The lockout: five wrong passwords from one address, on either server, then a wait.
    let ip = client();
    let wrong = serde_json::json!({"username": "admin", "password": "not the password"});
    for i in 0..5 {
        let (status, ..) =
            request("POST", &format!("{}/api/auth/login", at(i)), &[("x-forwarded-for", &ip)], Some(wrong.clone()));
        assert_eq!(status, 401, "failure {}", i + 1);
    }
    let right = serde_json::json!({"username": "admin", "password": PASSWORD});
    let (status, ..) = request("POST", &format!("{}/api/auth/login", at(5)), &[("x-forwarded-for", &ip)], Some(right));
    assert_eq!(status, 423, "locked for this address on the other server too");

    // An idempotent create: the second server replays the first one's answer.
    let token = login(&servers[0]);
    let auth = format!("Bearer {token}");
    let key = uuid::Uuid::now_v7().to_string();
    let ann = serde_json::json!({"name": "Ann Replica", "email": "ann.replica@example.com"});
    let heads = [("authorization", auth.as_str()), ("idempotency-key", key.as_str())];
    let (first, _, made) = request("POST", &format!("{}/api/contacts", servers[0]), &heads, Some(ann.clone()));
    let (second, h2, again) = request("POST", &format!("{}/api/contacts", servers[1]), &heads, Some(ann));
    assert_eq!((first, second), (201, 201), "{made} {again}");
    assert_eq!(made["id"], again["id"]);
    assert_eq!(header(&h2, "idempotent-replayed"), Some("true"));
    let (_, _, list) =
        request("GET", &format!("{}/api/contacts?q=ann.replica", servers[1]), &[("authorization", &auth)], None);
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one contact");

    // A logout on one server ends the session on the other (its check is at most 1 s stale).
    let (me, ..) = request("GET", &format!("{}/api/auth/me", servers[1]), &[("authorization", &auth)], None);
    assert_eq!(me, 200);
    let (out, ..) = request("POST", &format!("{}/api/auth/logout", servers[1]), &[("authorization", &auth)], None);
    assert_eq!(out, 204);
    std::thread::sleep(Duration::from_millis(1_200));
    let (after, ..) = request("GET", &format!("{}/api/auth/me", servers[0]), &[("authorization", &auth)], None);
    assert_eq!(after, 401, "the first server no longer takes the token");

    // The hourly sweep runs on one of the two: each asked for its lease at start, one
    // holds it. Stopped cleanly (SIGTERM), the holder hands it back.
    let says = |port: u16| std::fs::read_to_string(dir.join(format!("server-{port}.log"))).unwrap_or_default();
    let runs = |log: &str| log.lines().any(|l| l.contains("auth.sweep") && l.contains("this process runs the job"));
    let holders: Vec<u16> = [a, b].into_iter().filter(|p| runs(&says(*p))).collect();
    assert_eq!(holders.len(), 1, "one server runs the sweep: {}\n{}", says(a), says(b));
    let (mut proc_a, mut proc_b) = (_a, _b);
    let holder = if holders[0] == a { &mut proc_a } else { &mut proc_b };
    let stopped = Command::new("kill").args(["-TERM", &holder.0.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let start = Instant::now();
    while holder.0.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = Command::new("psql")
        .args([
            pg.as_str(),
            "-tAc",
            "SELECT coalesce(holder, '(none)') FROM scheduler_leases WHERE name = 'auth.sweep'",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&held.stdout).trim(), "(none)", "the lease handed back");

    drop_postgres_database(&pg_name);
    let _ = std::fs::remove_dir_all(&dir);
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// A server with `--read-database-url`: its reports and exports read the replica (here a
/// copy of the primary on the same PostgreSQL server, a write behind it, and reached as
/// a read-only role whose statements the server logs), its lists and writes the primary.
#[test]
fn reports_and_exports_read_from_the_read_replica() {
    let Some((primary, primary_name)) = postgres_database("primary") else { return };
    let Some((replica, replica_name)) = postgres_database("replica") else { return };
    let dir = std::env::temp_dir().join(format!("crm-read-replica-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    ok(&dir, &primary, "files", &["seed-demo", "--companies", "6", "--contacts", "60", "--deals", "30"]);
    ok(&dir, &primary, "files", &["copy", "--to", &replica]);
    // The replica's reader: read-only, every statement in the server's log.
    let reader = format!("crm_reader_{}", &replica_name[replica_name.len() - 12..]);
    let psql = |db: &str, sql: &str| {
        let out = Command::new("psql").args([db, "-v", "ON_ERROR_STOP=1", "-qtAc", sql]).output().unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    psql(&replica, &format!("CREATE ROLE {reader} LOGIN"));
    psql(&replica, &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"));
    psql(&replica, &format!("ALTER ROLE {reader} SET default_transaction_read_only = on"));
    psql(&replica, &format!("ALTER ROLE {reader} SET log_statement = 'all'"));
    let (server, _) = replica.rsplit_once('/').unwrap();
    let server = server.replacen("postgres@", &format!("{reader}@"), 1);
    let read_url = format!("{server}/{replica_name}");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let read = [("CRM_READ_DATABASE_URL", read_url.as_str())];
    let _server = serve_with(&dir, &primary, "files", port, &["--no-worker"], &read);
    let token = login(&base);
    let auth = format!("Bearer {token}");
    // A write the replica has not seen: a contact and an open deal on the primary.
    let zed = serde_json::json!({"name": "Zed Lagging", "email": "zed.lagging@example.com"});
    let (status, _, _) = request("POST", &format!("{base}/api/contacts"), &[("authorization", &auth)], Some(zed));
    assert_eq!(status, 201);
    let deal =
        serde_json::json!({"name": "Lagging deal", "amount": 100_000, "currency": "EUR", "stage": "prospecting"});
    let (status, _, _) = request("POST", &format!("{base}/api/deals"), &[("authorization", &auth)], Some(deal));
    assert_eq!(status, 201);

    // The list reads the primary: Zed is there.
    let (_, _, list) = request("GET", &format!("{base}/api/contacts?q=zed.lagging"), &[("authorization", &auth)], None);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // The export reads the replica: every contact it holds, and not Zed.
    let (status, _, csv) =
        request("GET", &format!("{base}/api/contacts/export?format=csv"), &[("authorization", &auth)], None);
    let csv = csv.as_str().unwrap_or_default().to_string();
    assert_eq!(status, 200, "{csv}");
    let on_replica: usize = psql(&replica, "SELECT count(*) FROM contacts WHERE deleted_at IS NULL").parse().unwrap();
    assert_eq!(csv.lines().count() - 1, on_replica, "one line per contact of the replica");
    assert!(!csv.contains("zed.lagging@example.com"), "the replica has not seen Zed");
    // The pipeline report too: the replica's open deals, not the primary's.
    let (status, _, report) =
        request("GET", &format!("{base}/api/reports/standard/r1_pipeline_by_stage"), &[("authorization", &auth)], None);
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().or_else(|| report["data"].as_array()).expect("report rows");
    let counted: i64 = rows.iter().map(|r| r["deal_count"].as_i64().unwrap_or(0)).sum();
    let open = "SELECT count(*) FROM deals WHERE deleted_at IS NULL AND stage NOT IN ('closed_won', 'closed_lost')";
    let (on_primary, on_replica): (i64, i64) =
        (psql(&primary, open).parse().unwrap(), psql(&replica, open).parse().unwrap());
    assert_eq!((counted, on_primary), (on_replica, on_replica + 1), "the report counts the replica's open deals");
    // The export is audited on the primary.
    let exported = psql(&primary, "SELECT count(*) FROM audit_events WHERE action = 'contact.exported'");
    assert_eq!(exported, "1");

    // The PostgreSQL server's own log, where it is readable here: the reader's statements
    // are the bulk reads, and none of them writes.
    let log = std::env::var("CRM_TEST_POSTGRES_LOG").ok().map(PathBuf::from).or_else(|| {
        std::fs::read_dir("/var/log/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-main.log"))
    });
    match log.and_then(|p| std::fs::read_to_string(p).ok()) {
        Some(text) => {
            let mine: Vec<&str> = text.lines().filter(|l| l.contains(&format!("{reader}@{replica_name}"))).collect();
            // Simple queries log as `statement:`, prepared ones as `execute <name>:`.
            let statements: Vec<&&str> =
                mine.iter().filter(|l| l.contains("statement:") || l.contains("execute ")).collect();
            assert!(statements.iter().any(|l| l.contains("contacts")), "the export's reads: {mine:?}");
            assert!(statements.iter().any(|l| l.contains("deals")), "the report's reads: {mine:?}");
            let writes = ["INSERT", "UPDATE ", "DELETE ", "CREATE "];
            assert!(!statements.iter().any(|l| writes.iter().any(|w| l.contains(w))), "{statements:?}");
            eprintln!("{} statements of the reader in the PostgreSQL log, none a write", statements.len());
        }
        None => {
            // A server elsewhere (a container) keeps its log to itself; one here must show it.
            let local = Path::new("/var/log/postgresql").exists();
            assert!(!(ci() && local), "the PostgreSQL log is not readable here: set CRM_TEST_POSTGRES_LOG");
            eprintln!("the PostgreSQL log is not readable here; the routing was checked by the data only");
        }
    }
    drop(_server);
    drop_postgres_database(&primary_name);
    drop_postgres_database(&replica_name);
    let base_url =
        std::env::var("CRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let _ = Command::new("psql").args([base_url.as_str(), "-qc", &format!("DROP ROLE IF EXISTS {reader}")]).output();
    let _ = std::fs::remove_dir_all(&dir);
}
