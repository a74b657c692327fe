//! Imports through real `crm-server` processes: `crm-server import` killed (`kill -9`)
//! in the middle of a file, then `crm-server import --resume`, imports every row exactly
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crm_core::model::import::{ImportJob, ImportStatus};
use crm_core::query::{id_key, Direction, StoreQuery};
use crm_core::{EntityKind, StoreExt};

mod processes;
use processes::{bin, cli, Proc};

const ROWS: usize = 30_000;

async fn jobs(store: &dyn crm_core::Store) -> Vec<ImportJob> {
    let q = StoreQuery {
        filter: None,
        sort: vec![id_key(EntityKind::ImportJob, Direction::Asc)],
        limit: 10,
        include_deleted: false,
    };
    store.list_as::<ImportJob>(&q).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_resumes_after_its_last_batch_without_duplicates() {
    let dir = std::env::temp_dir().join(format!("crm-import-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("crm.db").display());
    cli(
        &dir,
        &db,
        &[
            "create-admin",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
            "--password",
            "correct horse battery staple",
        ],
    );
    let mut csv = String::from("Name,Email,City\n");
    for i in 0..ROWS {
        csv.push_str(&format!("Person {i},p{i}@example.com,City {}\n", i % 97));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();

    let store = crm_storage::open(&db).await.unwrap().store();
    let log = std::fs::File::create(dir.join("import.log")).unwrap();
    let import = Proc(
        Command::new(bin())
            .current_dir(&dir)
            .args(["import", "people.csv", "--kind", "contacts"])
            .env("CRM_DATABASE_URL", &db)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Killed once a batch or two are in.
    let t = Instant::now();
    let job = loop {
        if let Some(j) = jobs(store.as_ref()).await.pop().filter(|j| j.rows_done >= 500) {
            break j;
        }
        let log = std::fs::read_to_string(dir.join("import.log")).unwrap_or_default();
        assert!(t.elapsed() < Duration::from_secs(120), "no batch committed: {log}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(import);
    let killed = store.get_as::<ImportJob>(job.id).await.unwrap().unwrap();
    assert_eq!(killed.status, ImportStatus::Running, "killed mid-file");
    assert!(killed.rows_done < ROWS as i64, "the import finished before it was killed");
    let committed = store.count(EntityKind::Contact, None, false).await.unwrap();
    assert_eq!(committed as i64, killed.rows_done, "records and progress commit together");

    let id = job.id.to_string();
    cli(&dir, &db, &["import", "--resume", &id, "--results", "results.csv"]);
    let done = store.get_as::<ImportJob>(job.id).await.unwrap().unwrap();
    assert_eq!(done.status, ImportStatus::Completed);
    assert_eq!((done.created, done.failed, done.rows_done), (ROWS as i64, 0, ROWS as i64));
    assert_eq!(done.attempts, 2);
    assert_eq!(store.count(EntityKind::Contact, None, false).await.unwrap(), ROWS as u64, "every row once");
    let results = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(results.lines().count(), ROWS + 1, "a header and one line per row");
    let _ = std::fs::remove_dir_all(&dir);
}
