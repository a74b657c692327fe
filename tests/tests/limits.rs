//! Resource limits of the stores that the conformance suite cannot reach through the
//! engine's API: a statement stops at its time limit and says so, on PostgreSQL and on
//! SQLite (writer, readers and the bulk-read path).

use std::time::Duration;

use crm_core::query::{Cmp, Filter, Pattern, Predicate, StoreQuery};
use crm_core::schema::EntityKind;
use crm_core::{Error, Store};
use crm_storage_sql::{SqlOptions, SqlStore};

#[tokio::test]
async fn a_postgres_statement_stops_at_its_time_limit() {
    let url = crm_tests::backends::postgres_url();
    let schema = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
    let opts = SqlOptions {
        pg_schema: Some(schema.clone()),
        statement_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let store = SqlStore::connect_with(&url, opts)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} cannot be reached ({e})"));
    let slow = store.execute_unchecked("SELECT pg_sleep(5)").await;
    assert!(matches!(slow, Err(Error::Timeout(_))), "{slow:?}");
    // Quick ones are not bothered, and migrations ran without the limit.
    assert!(store.execute_unchecked("SELECT pg_sleep(0.01)").await.is_ok());
    store.close().await;
    SqlStore::drop_pg_schema(&url, &schema).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Counting to a billion: minutes of work for SQLite.
const SLOW_SQLITE: &str =
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000) SELECT count(*) FROM n";

/// Writes `rows` teams into a SQLite store with one statement (no engine, no audit).
async fn insert_teams(store: &SqlStore, rows: u64) {
    let inserted = store
        .execute_unchecked(&format!(
            "INSERT INTO teams (id, name, search_text, version, created_at, updated_at) \
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows}) \
             SELECT randomblob(16), 'team ' || x, 'team ' || x, 1, 0, 0 FROM n"
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inserted, rows);
}

#[tokio::test]
async fn a_sqlite_statement_stops_at_its_time_limit() {
    let file = std::env::temp_dir().join(format!("crm-limits-{}.db", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}", file.display());
    let limited = |ms| SqlOptions { statement_timeout: Some(Duration::from_millis(ms)), ..Default::default() };
    let store = SqlStore::connect_with(&url, limited(3_000)).await.unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    let slow = tokio::time::timeout(Duration::from_secs(60), store.execute_unchecked(SLOW_SQLITE)).await;
    assert!(matches!(slow, Ok(Err(Error::Timeout(_)))), "{slow:?} after {:?}", started.elapsed());
    // The writer goes on with the next statement, unbothered.
    let rows = 50_000;
    insert_teams(&store, rows).await;

    // A store on the same file that allows a millisecond: its reads of 50,000 rows stop,
    // by the bulk-read path and by a reader connection (a pattern match over every row).
    let hasty = SqlStore::connect_with(&url, limited(1)).await.unwrap_or_else(|e| panic!("{e}"));
    let scan = hasty.scan_columns(EntityKind::Team, None, false, &[0, 1]).await;
    assert!(matches!(scan, Err(Error::Timeout(_))), "bulk read: {:?}", scan.map(|r| r.len()));
    let name = EntityKind::Team.require_column("name").unwrap_or_else(|e| panic!("{e}"));
    let nowhere = StoreQuery {
        filter: Some(Filter::Cmp(Cmp { column: name, pred: Predicate::ILike(Pattern::parse("%nowhere%")) })),
        ..StoreQuery::all(EntityKind::Team, 10)
    };
    let list = hasty.list(EntityKind::Team, &nowhere).await;
    assert!(matches!(list, Err(Error::Timeout(_))), "list: {:?}", list.map(|r| r.len()));
    hasty.close().await;
    // Within the limit, the same reads answer.
    let all = store.scan_columns(EntityKind::Team, None, false, &[0, 1]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len() as u64, rows);
    assert!(store.list(EntityKind::Team, &nowhere).await.unwrap_or_else(|e| panic!("{e}")).is_empty());
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

/// A target that takes its time over every write (a remote, busy database).
struct Slow(SqlStore);

#[async_trait::async_trait]
impl Store for Slow {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn get(&self, kind: EntityKind, id: uuid::Uuid) -> crm_core::Result<Option<crm_core::schema::Row>> {
        self.0.get(kind, id).await
    }
    async fn list(&self, kind: EntityKind, query: &StoreQuery) -> crm_core::Result<Vec<crm_core::schema::Row>> {
        self.0.list(kind, query).await
    }
    async fn count(&self, kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> crm_core::Result<u64> {
        self.0.count(kind, filter, include_deleted).await
    }
    async fn apply(&self, changes: crm_core::Changeset) -> crm_core::Result<()> {
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.0.apply(changes).await
    }
    async fn audit_head(&self) -> crm_core::Result<crm_core::audit::AuditHead> {
        self.0.audit_head().await
    }
    async fn ping(&self) -> crm_core::Result<()> {
        self.0.ping().await
    }
    async fn live_schema(&self) -> crm_core::Result<crm_core::schema_check::LiveSchema> {
        self.0.live_schema().await
    }
}

/// A copy reads a page at a time: however long the target takes to write a kind, no
/// statement on the source outlives its time limit. (It read each kind with one
/// streaming statement, which a million deals going to PostgreSQL outlasted.)
#[tokio::test]
async fn a_copy_slower_than_the_sources_statement_limit_finishes() {
    let dir = std::env::temp_dir().join(format!("crm-limits-copy-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.join(name).display());
    let rows = 20_000;
    let source = SqlStore::connect(&url("from.db")).await.unwrap_or_else(|e| panic!("{e}"));
    insert_teams(&source, rows).await;
    source.close().await;
    // Every statement on the source may take 300 ms; writing the teams takes 40
    // transactions of 40 ms and more.
    let limited = SqlOptions { statement_timeout: Some(Duration::from_millis(300)), ..Default::default() };
    let source = SqlStore::connect_with(&url("from.db"), limited).await.unwrap_or_else(|e| panic!("{e}"));
    let target = Slow(SqlStore::connect(&url("to.db")).await.unwrap_or_else(|e| panic!("{e}")));
    let options = crm_core::copy::CopyOptions { resume: false, batch: 500 };
    let report = crm_core::copy::copy_store(&source, &target, options, &|_| {}).await;
    let report = report.unwrap_or_else(|e| panic!("the copy stopped: {e:?}"));
    assert_eq!(report.copied(), rows);
    assert_eq!(target.count(EntityKind::Team, None, true).await.unwrap_or_else(|e| panic!("{e}")), rows);
    source.close().await;
    target.0.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// SecantusDB, the test server, does not enforce `maxTimeMS`; what can be checked is that
/// every read that may run long sends it, with the store's limit.
#[tokio::test]
async fn mongo_reads_carry_their_time_limit() {
    use crm_storage_mongo::mongodb::event::command::CommandEvent;
    use crm_storage_mongo::mongodb::event::EventHandler;
    use crm_storage_mongo::mongodb::options::ClientOptions;
    use crm_storage_mongo::{MongoStore, MAX_TIME};
    use std::sync::{Arc, Mutex};

    let url = crm_tests::backends::mongo_url();
    /// The commands sent, each with its `maxTimeMS`.
    type Sent = Arc<Mutex<Vec<(String, Option<i64>)>>>;
    let sent: Sent = Arc::default();
    let mut options = ClientOptions::parse(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let log = sent.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(s) = event {
            let limit = s.command.get("maxTimeMS").and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)));
            log.lock().unwrap_or_else(|e| e.into_inner()).push((s.command_name, limit));
        }
    }));
    let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
    let store = MongoStore::connect_with(options, &name)
        .await
        .unwrap_or_else(|e| panic!("the MongoDB-compatible server at {url} cannot be reached ({e})"));
    let name_col = EntityKind::Team.require_column("name").unwrap_or_else(|e| panic!("{e}"));
    let filter = Filter::Cmp(Cmp { column: name_col, pred: Predicate::ILike(Pattern::parse("%x%")) });
    let query = StoreQuery { filter: Some(filter.clone()), ..StoreQuery::all(EntityKind::Team, 10) };
    let expected = i64::try_from(MAX_TIME.as_millis()).unwrap_or(i64::MAX);
    let reads: [(&str, &str); 3] = [("list", "find"), ("count", "aggregate"), ("scan", "find")];
    for (read, command) in reads {
        sent.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let answer = match read {
            "list" => store.list(EntityKind::Team, &query).await.map(|r| r.len() as u64),
            "count" => store.count(EntityKind::Team, Some(&filter), false).await,
            _ => store.scan_columns(EntityKind::Team, Some(&filter), false, &[0, 1]).await.map(|r| r.len() as u64),
        };
        assert_eq!(answer.unwrap_or_else(|e| panic!("{read}: {e}")), 0);
        let log = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let ours: Vec<_> = log.iter().filter(|(c, _)| c == command).collect();
        assert!(!ours.is_empty(), "{read} sent no {command}: {log:?}");
        for (c, limit) in ours {
            assert_eq!(*limit, Some(expected), "{read} sent {c} without maxTimeMS {expected}: {log:?}");
        }
    }
    let _ = store.drop_database().await;
}
