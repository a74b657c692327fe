//! Growing past one machine, as an operator does it: `crm-server copy`, `backup` and
//! `restore`, and a SQLite database refusing a second server. A demo CRM with a
//! file, a deleted contact and sessions carried SQLite → PostgreSQL → MongoDB → SQLite,
//! every row of every kind and every file equal at the end, the audit chain verified at
//! each step, a server on the last copy serving the file; a copy killed (`kill -9`) and
//! resumed without a duplicate; a backup archive restored into an empty database.
//!
//! PostgreSQL and MongoDB are the servers the conformance suite uses
//! (`CRM_TEST_POSTGRES_URL`, `CRM_TEST_MONGO_URL`); with `CI=true` an unreachable one fails.

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
    let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
    let p = Proc(
        Command::new(bin())
            .current_dir(dir)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--no-worker"])
            .env("CRM_DATABASE_URL", db)
            .env("CRM_FILES_DIR", files)
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
fn a_crm_goes_from_sqlite_to_postgres_to_mongodb_to_sqlite_whole() {
    let Some((pg, pg_name)) = postgres_database("copy") else { return };
    let mongo = mongo_database("copy");
    let dir = std::env::temp_dir().join(format!("crm-copy-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let attachment = seeded(&dir, "300");
    let (a, c) = (format!("sqlite://{}/a.db", dir.display()), format!("sqlite://{}/c.db", dir.display()));

    let said = ok(&dir, &a, "files-a", &["copy", "--to", &pg, "--files-to", "files-b"]);
    assert!(said.contains("the audit chain verifies"), "{said}");
    assert!(said.contains("secrets are in crm-secrets.json"), "{said}");
    let said = ok(&dir, &pg, "files-b", &["copy", "--to", &mongo, "--files-to", "files-c"]);
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
