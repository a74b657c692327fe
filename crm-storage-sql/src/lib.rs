//! # crm-storage-sql
//!
//! The SQLite, PostgreSQL and MariaDB [`Store`] of crm-rs, on sqlx. One implementation
//! serves the three dialects: crm-core describes every table's typed columns, this crate translates those
//! descriptions, typed filters and changesets into SQL built with sea-query (no user
//! string is ever spliced into SQL) and binds every value as a parameter.
//!
//! - **SQLite**: a file in WAL mode with a busy timeout; reads use a pool, writes one
//!   connection with `BEGIN IMMEDIATE`.
//! - **PostgreSQL**: a pool; `apply` locks the audit head row after the record writes,
//!   so changesets commit in audit-chain order and hold the lock briefly.
//!
//! - **MariaDB** (10.6+; `mysql://` or `mariadb://` URLs): a pool, as PostgreSQL; text
//!   in a binary collation (`utf8mb4_nopad_bin`) so it sorts as everywhere else, and
//!   unique-among-live-rows keys on stored generated columns (MariaDB has no partial
//!   indexes). Sessions run at READ COMMITTED, as PostgreSQL does.
//!
//! - **All**: every write goes through one writer task that commits the changesets of
//!   concurrent callers together (group commit), each in its own savepoint, so one
//!   caller's conflict never fails another's write.
//!
//! Migrations are embedded per dialect and run on connect.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! let store = crm_storage_sql::SqlStore::connect("sqlite://crm.db").await?;
//! let crm = crm_core::Crm::new(std::sync::Arc::new(store));
//! # Ok(()) }
//! ```
//!
//! The per-aggregate shape of the data lives in the migrations (`migrations/<dialect>/`)
//! and in crm-core's schema tables; the code here is the same for every aggregate, so no
//! aggregate can be stored subtly differently from another.
//!
//! Features `sqlite`, `postgres` and `mysql` (all on by default) choose the drivers
//! compiled in; a URL of a dialect left out is refused by name.

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("crm-storage-sql needs at least one of its features: sqlite, postgres, mysql");

use std::borrow::Cow;
use std::str::FromStr;
#[cfg(feature = "sqlite")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(any(feature = "sqlite", feature = "mysql"))]
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "sqlite")]
use std::time::Instant;

use async_trait::async_trait;
use crm_core::audit::AuditHead;
use crm_core::query::{Filter, StoreQuery};
use crm_core::schema::{Column, EntityKind, Row};
#[cfg(feature = "mysql")]
use crm_core::Value;
use crm_core::{Changeset, Error, Result, Store};
use sea_query::Values;
use sqlx::migrate::{Migration, MigrationType, Migrator};
#[cfg(feature = "mysql")]
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

#[cfg(feature = "postgres")]
mod copy_in;
mod introspect;
#[cfg(feature = "sqlite")]
mod lite_writer;
// MariaDB reads in bulk with a bound query (`SqlStore::scan`'s last arm).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod scan;
mod statements;
mod values;
mod writer;

use tokio::sync::{mpsc, oneshot};
use writer::{Job, WritePool};

pub use values::Dialect;

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Pool size (PostgreSQL; SQLite reader pool).
    pub max_connections: u32,
    /// PostgreSQL: a schema to create if missing and to work in (tests use one per
    /// case). MariaDB: a database to create if missing and to work in.
    pub pg_schema: Option<String>,
    /// How long to wait for a connection or a lock.
    pub busy_timeout: Duration,
    /// How long one statement may run before it is stopped and the store answers
    /// [`Error::Timeout`]. PostgreSQL: the server's `statement_timeout`. MariaDB:
    /// its `max_statement_time`. SQLite: a
    /// progress handler that interrupts the statement, armed each time a connection is
    /// taken from a pool (so the limit counts from the start of a read or of a write
    /// transaction), and on the bulk-read connections. Migrations are not limited.
    pub statement_timeout: Option<Duration>,
    /// Bring the schema up to date on connect (the default). Off for a read replica,
    /// whose schema comes from its primary and which takes no writes.
    pub migrate: bool,
}

/// The default limit of one statement: a little over the HTTP request's.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(40);

impl Default for SqlOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            pg_schema: None,
            busy_timeout: Duration::from_secs(10),
            statement_timeout: Some(STATEMENT_TIMEOUT),
            migrate: true,
        }
    }
}

enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        path: std::path::PathBuf,
        /// The statement limit in milliseconds, 0 while off (during migrations).
        limit: Arc<AtomicU64>,
    },
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "mysql")]
    MySql(MySqlPool),
}

impl Backend {
    fn write_pool(&self) -> WritePool {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { write, .. } => WritePool::Sqlite(write.clone()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => WritePool::Postgres(pool.clone()),
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => WritePool::MySql(pool.clone()),
        }
    }
}

/// A SQLite, PostgreSQL or MariaDB store.
///
/// Writes go through a writer task on the Tokio runtime the store was opened on, which
/// commits the changesets of concurrent callers together (see `apply`); keep that
/// runtime alive as long as the store.
pub struct SqlStore {
    backend: Backend,
    writer: mpsc::Sender<Job>,
}

/// The fewest changes before SQLite's first statistics refresh.
#[cfg(feature = "sqlite")]
const FIRST_ANALYZE: i64 = 1_000;

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("dialect", &self.dialect()).finish()
    }
}

fn unavailable(e: sqlx::Error) -> Error {
    Error::internal("the database is unavailable", e)
}

async fn migrate(pool: &WritePool) -> Result<()> {
    let r = match pool {
        #[cfg(feature = "sqlite")]
        WritePool::Sqlite(p) => migrator(Dialect::Sqlite).run(p).await,
        #[cfg(feature = "postgres")]
        WritePool::Postgres(p) => migrator(Dialect::Postgres).run(p).await,
        #[cfg(feature = "mysql")]
        WritePool::MySql(p) => migrator(Dialect::MySql).run(p).await,
    };
    r.map_err(|e| Error::internal("migrating the database", e))
}

/// (version, name, SQLite, PostgreSQL, MariaDB): a schema change is a new entry, never an
/// edit.
/// The test `every_migration_file_is_applied` fails when a file in `migrations/` is not
/// listed here (or a listed one has another name), so none is silently skipped.
const MIGRATIONS: [(i64, &str, &str, &str, &str); 19] = [
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
        include_str!("../migrations/postgres/0001_initial.sql"),
        include_str!("../migrations/mysql/0001_initial.sql"),
    ),
    (
        2,
        "auth",
        include_str!("../migrations/sqlite/0002_auth.sql"),
        include_str!("../migrations/postgres/0002_auth.sql"),
        include_str!("../migrations/mysql/0002_auth.sql"),
    ),
    (
        3,
        "idempotency",
        include_str!("../migrations/sqlite/0003_idempotency.sql"),
        include_str!("../migrations/postgres/0003_idempotency.sql"),
        include_str!("../migrations/mysql/0003_idempotency.sql"),
    ),
    (
        4,
        "saved_reports",
        include_str!("../migrations/sqlite/0004_saved_reports.sql"),
        include_str!("../migrations/postgres/0004_saved_reports.sql"),
        include_str!("../migrations/mysql/0004_saved_reports.sql"),
    ),
    (
        5,
        "login_throttles",
        include_str!("../migrations/sqlite/0005_login_throttles.sql"),
        include_str!("../migrations/postgres/0005_login_throttles.sql"),
        include_str!("../migrations/mysql/0005_login_throttles.sql"),
    ),
    (
        6,
        "deliveries",
        include_str!("../migrations/sqlite/0006_deliveries.sql"),
        include_str!("../migrations/postgres/0006_deliveries.sql"),
        include_str!("../migrations/mysql/0006_deliveries.sql"),
    ),
    (
        7,
        "chat_channels",
        include_str!("../migrations/sqlite/0007_chat_channels.sql"),
        include_str!("../migrations/postgres/0007_chat_channels.sql"),
        include_str!("../migrations/mysql/0007_chat_channels.sql"),
    ),
    (
        8,
        "slack_bots",
        include_str!("../migrations/sqlite/0008_slack_bots.sql"),
        include_str!("../migrations/postgres/0008_slack_bots.sql"),
        include_str!("../migrations/mysql/0008_slack_bots.sql"),
    ),
    (
        9,
        "campaigns",
        include_str!("../migrations/sqlite/0009_campaigns.sql"),
        include_str!("../migrations/postgres/0009_campaigns.sql"),
        include_str!("../migrations/mysql/0009_campaigns.sql"),
    ),
    (
        10,
        "billing",
        include_str!("../migrations/sqlite/0010_billing.sql"),
        include_str!("../migrations/postgres/0010_billing.sql"),
        include_str!("../migrations/mysql/0010_billing.sql"),
    ),
    (
        11,
        "gateway_events",
        include_str!("../migrations/sqlite/0011_gateway_events.sql"),
        include_str!("../migrations/postgres/0011_gateway_events.sql"),
        include_str!("../migrations/mysql/0011_gateway_events.sql"),
    ),
    (
        12,
        "subscriptions",
        include_str!("../migrations/sqlite/0012_subscriptions.sql"),
        include_str!("../migrations/postgres/0012_subscriptions.sql"),
        include_str!("../migrations/mysql/0012_subscriptions.sql"),
    ),
    (
        13,
        "exchange_rates",
        include_str!("../migrations/sqlite/0013_exchange_rates.sql"),
        include_str!("../migrations/postgres/0013_exchange_rates.sql"),
        include_str!("../migrations/mysql/0013_exchange_rates.sql"),
    ),
    (
        14,
        "payment_profiles",
        include_str!("../migrations/sqlite/0014_payment_profiles.sql"),
        include_str!("../migrations/postgres/0014_payment_profiles.sql"),
        include_str!("../migrations/mysql/0014_payment_profiles.sql"),
    ),
    (
        15,
        "import_jobs",
        include_str!("../migrations/sqlite/0015_import_jobs.sql"),
        include_str!("../migrations/postgres/0015_import_jobs.sql"),
        include_str!("../migrations/mysql/0015_import_jobs.sql"),
    ),
    (
        16,
        "merges_attachments",
        include_str!("../migrations/sqlite/0016_merges_attachments.sql"),
        include_str!("../migrations/postgres/0016_merges_attachments.sql"),
        include_str!("../migrations/mysql/0016_merges_attachments.sql"),
    ),
    (
        17,
        "scheduler_leases",
        include_str!("../migrations/sqlite/0017_scheduler_leases.sql"),
        include_str!("../migrations/postgres/0017_scheduler_leases.sql"),
        include_str!("../migrations/mysql/0017_scheduler_leases.sql"),
    ),
    (
        18,
        "dashboards",
        include_str!("../migrations/sqlite/0018_dashboards.sql"),
        include_str!("../migrations/postgres/0018_dashboards.sql"),
        include_str!("../migrations/mysql/0018_dashboards.sql"),
    ),
    (
        19,
        "name_keys",
        include_str!("../migrations/sqlite/0019_name_keys.sql"),
        include_str!("../migrations/postgres/0019_name_keys.sql"),
        include_str!("../migrations/mysql/0019_name_keys.sql"),
    ),
];

fn migrator(d: Dialect) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, name, sqlite, postgres, mysql)| {
            let sql = match d {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
                Dialect::MySql => mysql,
            };
            Migration::new(*version, Cow::Borrowed(name), MigrationType::Simple, Cow::Borrowed(sql), false)
        })
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false }
}

impl SqlStore {
    /// Connects to `sqlite://path` (created if missing), `sqlite::memory:` is not supported
    /// (readers and the writer need one shared file), `postgres://…`, or
    /// `mysql://…`/`mariadb://…` (MariaDB), and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// Connects with options, and migrates.
    pub async fn connect_with(url: &str, opts: SqlOptions) -> Result<Self> {
        let (backend, next_analyze) = if url.starts_with("sqlite:") {
            open_sqlite(url, &opts).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (open_postgres(url, &opts).await?, i64::MAX)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            (open_mysql(url, &opts).await?, i64::MAX)
        } else {
            return Err(Error::invalid(
                "databaseUrl",
                "invalid_value",
                "the database URL must start with sqlite://, postgres:// or mysql:// (MariaDB)",
            ));
        };
        // PostgreSQL's autovacuum and InnoDB's persistent statistics keep theirs.
        #[cfg(not(feature = "sqlite"))]
        let _ = next_analyze;
        let writer = match &backend {
            // SQLite's writer is a thread of its own on a rusqlite connection.
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { path, limit, .. } => {
                lite_writer::spawn(path, opts.busy_timeout, limit.clone(), next_analyze)?
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => writer::spawn_postgres(pool.clone()),
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => writer::spawn_mysql(pool.clone()),
        };
        Ok(SqlStore { backend, writer })
    }

    /// Refreshes the query planner's statistics (`ANALYZE`). SQLite stores do this on
    /// their own at open and whenever the number of changes has doubled; on PostgreSQL
    /// autovacuum does it, on MariaDB InnoDB's automatic statistics. Call it after a bulk
    /// load to get good plans at once.
    pub async fn analyze(&self) -> Result<()> {
        self.backend.write_pool().analyze().await
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { .. } => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Backend::MySql(_) => Dialect::MySql,
        }
    }

    /// Applies the embedded migrations not yet applied (connect does this).
    pub async fn migrate(&self) -> Result<()> {
        migrate(&self.backend.write_pool()).await
    }

    /// Closes the pools.
    pub async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => pool.close().await,
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => pool.close().await,
        }
    }

    /// Runs a statement outside every rule of crm-core: for maintenance and for tests
    /// that simulate tampering. Never pass it user input.
    pub async fn execute_unchecked(&self, sql: &str) -> Result<u64> {
        let r = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { write, .. } => sqlx::query(sql).execute(write).await.map(|r| r.rows_affected()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
            // The text protocol: MariaDB prepares only some statements (no `DROP INDEX`).
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|r| r.rows_affected()),
        };
        r.map_err(|e| match statement_timeout(&e) {
            Some(t) => t,
            None => Error::internal("running a statement", e),
        })
    }

    /// Drops a PostgreSQL schema, or with a MariaDB URL a database (tests clean up after
    /// themselves with it).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub async fn drop_pg_schema(url: &str, schema: &str) -> Result<()> {
        if !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::invalid("pgSchema", "invalid_value", "schema names use a-z, 0-9 and _"));
        }
        #[cfg(feature = "mysql")]
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let pool = MySqlPoolOptions::new()
                .max_connections(1)
                .connect_with(mysql_options(url)?.database("information_schema"))
                .await
                .map_err(unavailable)?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{schema}`")).execute(&pool).await.map_err(unavailable)?;
            pool.close().await;
            return Ok(());
        }
        Self::drop_postgres_schema(url, schema).await
    }

    #[cfg(feature = "postgres")]
    async fn drop_postgres_schema(url: &str, schema: &str) -> Result<()> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| Error::internal("bad URL", e))?;
        let pool = PgPoolOptions::new().max_connections(1).connect_with(opts).await.map_err(unavailable)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        pool.close().await;
        Ok(())
    }
}

/// A SQLite file opened and migrated, with the change count of its next statistics
/// refresh.
#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str, opts: &SqlOptions) -> Result<(Backend, i64)> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(Error::invalid("databaseUrl", "invalid_value", "in-memory SQLite is not supported; use a file"));
    }
    let base = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("databaseUrl", "invalid_value", format!("bad SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(opts.busy_timeout)
        .foreign_keys(true)
        // `ilike` on SQLite: a Unicode-aware regular expression function.
        .with_regexp()
        // Savepoint journals (one per changeset of a group) stay in memory.
        .pragma("temp_store", "memory");
    let path = base.get_filename().to_path_buf();
    let limit = Arc::new(AtomicU64::new(0));
    // Page caches (negative: KiB): the writer touches every index of a table.
    let write = sqlite_pool(&limit)
        .max_connections(1)
        .acquire_timeout(opts.busy_timeout * 3)
        .connect_with(base.clone().pragma("cache_size", "-65536"))
        .await
        .map_err(unavailable)?;
    let read = sqlite_pool(&limit)
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.busy_timeout)
        .connect_with(base.read_only(true).pragma("cache_size", "-16384"))
        .await
        .map_err(unavailable)?;
    let pool = WritePool::Sqlite(write.clone());
    migrate(&pool).await?;
    // Good plans need statistics (a filter on a few-valued column against a sort index,
    // say): a growing database gets them each time its change count (the audit sequence)
    // doubles, and an open refreshes them when that count has doubled since they were
    // taken (or there are none). `ANALYZE` reads every index, seconds on a large file
    // (9.5 s for a million contacts and their audit events), so an open that always ran
    // it made every start and every command that slow.
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(&write)
        .await
        .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
    let analyzed = analyzed_changes(&write).await;
    let next = if seq > 0 && seq >= analyzed.saturating_mul(2) {
        pool.analyze().await?;
        seq.saturating_mul(2)
    } else {
        analyzed.saturating_mul(2)
    };
    if let Some(t) = opts.statement_timeout {
        // Migrations and the statistics refresh above ran without it.
        limit.store(u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1), Ordering::Relaxed);
    }
    Ok((Backend::Sqlite { read, write, path, limit }, next.max(FIRST_ANALYZE)))
}

/// The audit events a SQLite file held when its statistics were last taken (the row
/// count `ANALYZE` wrote for the audit log's sequence index); 0 when it has none.
#[cfg(feature = "sqlite")]
async fn analyzed_changes(write: &sqlx::SqlitePool) -> i64 {
    // `sqlite_stat1` exists once a first `ANALYZE` ran; its `stat` starts with the rows.
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(stat AS INTEGER) FROM sqlite_stat1 WHERE tbl = 'audit_events' AND idx = 'audit_events_seq_key'",
    )
    .fetch_optional(write)
    .await
    .ok()
    .flatten()
    .unwrap_or(0)
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &str, _: &SqlOptions) -> Result<(Backend, i64)> {
    Err(left_out("SQLite", "sqlite"))
}

/// A PostgreSQL pool on a migrated database.
#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, opts: &SqlOptions) -> Result<Backend> {
    let mut pg = PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("databaseUrl", "invalid_value", format!("bad PostgreSQL URL: {e}")))?;
    if let Some(schema) = &opts.pg_schema {
        if schema.is_empty() || !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::invalid("pgSchema", "invalid_value", "schema names use a-z, 0-9 and _"));
        }
        let admin = PgPoolOptions::new().max_connections(1).connect_with(pg.clone()).await.map_err(unavailable)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).execute(&admin).await.map_err(unavailable)?;
        admin.close().await;
        pg = pg.options([("search_path", schema.as_str())]);
    }
    // Migrations (an index over a large table) run without the limit, on a connection
    // of their own.
    if opts.migrate {
        let unlimited = PgPoolOptions::new().max_connections(1).connect_with(pg.clone()).await.map_err(unavailable)?;
        migrate(&WritePool::Postgres(unlimited.clone())).await?;
        unlimited.close().await;
    }
    if let Some(limit) = opts.statement_timeout {
        pg = pg.options([("statement_timeout", format!("{}ms", limit.as_millis()).as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.busy_timeout)
        .connect_with(pg)
        .await
        .map_err(unavailable)?;
    Ok(Backend::Postgres(pool))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str, _: &SqlOptions) -> Result<Backend> {
    Err(left_out("PostgreSQL", "postgres"))
}

#[cfg(all(feature = "mysql", not(feature = "postgres")))]
impl SqlStore {
    async fn drop_postgres_schema(_: &str, _: &str) -> Result<()> {
        Err(left_out("PostgreSQL", "postgres"))
    }
}

/// `mysql://…` options from a `mysql://` or `mariadb://` URL, in UTF-8 (`utf8mb4`). (The
/// connection's collation does not matter: a column's own, by code point, decides every
/// comparison with a parameter.)
#[cfg(feature = "mysql")]
fn mysql_options(url: &str) -> Result<MySqlConnectOptions> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => Cow::Owned(format!("mysql://{rest}")),
        None => Cow::Borrowed(url),
    };
    let opts = MySqlConnectOptions::from_str(&url)
        .map_err(|e| Error::invalid("databaseUrl", "invalid_value", format!("bad MariaDB URL: {e}")))?;
    Ok(opts.charset("utf8mb4"))
}

/// A MariaDB pool on a migrated database. Each connection runs at READ COMMITTED (as
/// PostgreSQL does: a locking read and the next plain read see the same commits) with
/// the statement limit as `max_statement_time`.
#[cfg(feature = "mysql")]
async fn open_mysql(url: &str, opts: &SqlOptions) -> Result<Backend> {
    let mut my = mysql_options(url)?;
    if let Some(db) = &opts.pg_schema {
        if db.is_empty() || !db.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::invalid("pgSchema", "invalid_value", "database names use a-z, 0-9 and _"));
        }
        let admin = MySqlPoolOptions::new()
            .max_connections(1)
            .connect_with(my.clone().database("information_schema"))
            .await
            .map_err(unavailable)?;
        sqlx::raw_sql(&format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"))
            .execute(&admin)
            .await
            .map_err(unavailable)?;
        admin.close().await;
        my = my.database(db);
    }
    if my.get_database().is_none() {
        return Err(Error::invalid(
            "databaseUrl",
            "invalid_value",
            "a MariaDB URL names its database: mysql://user@host/crm",
        ));
    }
    let unlimited = MySqlPoolOptions::new().max_connections(1).connect_with(my.clone()).await.map_err(unavailable)?;
    let version: (String,) = sqlx::query_as("SELECT VERSION()").fetch_one(&unlimited).await.map_err(unavailable)?;
    if let Err(e) = check_mariadb_version(&version.0) {
        unlimited.close().await;
        return Err(e);
    }
    if opts.migrate {
        migrate(&WritePool::MySql(unlimited.clone())).await?;
    }
    unlimited.close().await;
    // MariaDB sorts texts by their first `max_sort_length` bytes (1,024 by default):
    // 2,048 covers the longest sortable text (500 characters of up to 4 bytes). Not more:
    // a sort with a LIMIT keeps keys of this fixed size (a raw `ORDER BY name LIMIT 50`
    // over 200,000 rows took 1.2× as long at 2,048 and 2.7× at 8,192; the contacts'
    // page by name measured the same at 1,024, 2,048 and 8,192).
    let mut session = String::from("SET SESSION tx_isolation = 'READ-COMMITTED', SESSION max_sort_length = 2048");
    if let Some(limit) = opts.statement_timeout {
        session.push_str(&format!(", SESSION max_statement_time = {:.3}", limit.as_secs_f64()));
    }
    let session: Arc<str> = session.into();
    let pool = MySqlPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.busy_timeout)
        .after_connect(move |conn, _| {
            let session = session.clone();
            Box::pin(async move {
                use sqlx::Executor as _;
                conn.execute(&*session).await.map(|_| ())
            })
        })
        .connect_with(my)
        .await
        .map_err(unavailable)?;
    Ok(Backend::MySql(pool))
}

/// The store runs on MariaDB 10.6 or later: its schema has MariaDB's stored generated
/// columns and hash-keyed unique text, and sessions set `max_statement_time`, none of
/// which MySQL has. `version` is the server's `VERSION()` (`10.11.19-MariaDB-0+deb12u1`).
#[cfg(feature = "mysql")]
fn check_mariadb_version(version: &str) -> Result<()> {
    let refuse = |why: String| Err(Error::invalid("databaseUrl", "unsupported", why));
    if !version.contains("MariaDB") {
        return refuse(format!("the server is MySQL {version}; the store runs on MariaDB 10.6 or later"));
    }
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (10, 6) {
        return refuse(format!("the server is MariaDB {version}; the store runs on MariaDB 10.6 or later"));
    }
    Ok(())
}

#[cfg(not(feature = "mysql"))]
async fn open_mysql(_: &str, _: &SqlOptions) -> Result<Backend> {
    Err(left_out("MariaDB", "mysql"))
}

/// The error for a dialect this build leaves out.
#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn left_out(name: &str, feature: &str) -> Error {
    Error::invalid("databaseUrl", "unsupported", format!("this build has no {name} store (feature `{feature}` is off)"))
}

#[cfg(feature = "sqlite")]
/// SQLite pool options that arm the statement limit on each connection as it is taken.
fn sqlite_pool(limit: &Arc<AtomicU64>) -> SqlitePoolOptions {
    let limit = limit.clone();
    SqlitePoolOptions::new().before_acquire(move |conn, _| {
        let deadline = deadline(&limit);
        Box::pin(async move {
            if let Some(deadline) = deadline {
                // Every 10,000 virtual-machine steps (a few microseconds of work), the
                // handler looks at the clock; `false` interrupts the statement.
                conn.lock_handle().await?.set_progress_handler(10_000, move || Instant::now() < deadline);
            }
            Ok(true)
        })
    })
}

#[cfg(feature = "sqlite")]
/// When a statement started now must stop, if the limit is on.
fn deadline(limit: &AtomicU64) -> Option<Instant> {
    match limit.load(Ordering::Relaxed) {
        0 => None,
        ms => Instant::now().checked_add(Duration::from_millis(ms)),
    }
}

/// The columns at `positions` of a kind's column order.
fn picked(kind: EntityKind, positions: &[usize]) -> Result<Vec<Column>> {
    let all = kind.columns();
    positions
        .iter()
        .map(|&i| all.get(i).copied().ok_or_else(|| Error::internal_msg(format!("{kind:?} has no column {i}"))))
        .collect()
}

/// Maps a driver error by kind. Unique violations become conflicts naming the field.
fn map_err(kind: EntityKind, e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            // PostgreSQL names the index; MariaDB says "Duplicate entry 'x' for key
            // 'index'"; SQLite says "UNIQUE constraint failed: table.column".
            let named = db.constraint().filter(|c| kind.unique_field(c).is_some()).map(str::to_string);
            let key = db.message().rsplit_once(" for key '").map(|(_, key)| key.trim_end_matches('\'').to_string());
            // (MySQL 8 puts the table before the index.)
            let key = key.map(|k| k.rsplit('.').next().unwrap_or_default().to_string());
            let column = db.message().rsplit_once('.').map(|(_, column)| column.trim().to_string());
            return kind.unique_violation(named.or(key).or(column).as_deref());
        }
        // A serialization failure or deadlock (SQLSTATE 40001; PostgreSQL's 40P01): the
        // database rolled this transaction back so that a concurrent one could go on.
        // The caller lost a race; it may try again.
        if matches!(db.code().as_deref(), Some("40001" | "40P01")) {
            return Error::lost_race(kind.table());
        }
    }
    if let Some(t) = statement_timeout(&e) {
        return t;
    }
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => unavailable(e),
        other => Error::internal(format!("{} query failed", kind.name()), other),
    }
}

/// [`Error::Timeout`] for a statement PostgreSQL canceled (57014, here by
/// `statement_timeout`), MariaDB stopped (70100, by `max_statement_time`) or SQLite
/// interrupted (9, `SQLITE_INTERRUPT`: the progress handler of [`sqlite_pool`]).
fn statement_timeout(e: &sqlx::Error) -> Option<Error> {
    match e {
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("57014" | "70100" | "9")) => {
            Some(Error::Timeout("a statement ran past its time limit".into()))
        }
        _ => None,
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { .. } => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Backend::MySql(_) => "mariadb",
        }
    }

    async fn get(&self, kind: EntityKind, id: Uuid) -> Result<Option<Row>> {
        let q = statements::get(kind, id, self.dialect());
        self.fetch(kind, q).await.map(|mut rows| rows.pop())
    }

    async fn list(&self, kind: EntityKind, query: &StoreQuery) -> Result<Vec<Row>> {
        let q = statements::list(kind, query, self.dialect());
        self.fetch(kind, q).await
    }

    async fn list_columns(&self, kind: EntityKind, query: &StoreQuery, columns: &[usize]) -> Result<Vec<Row>> {
        let cols = picked(kind, columns)?;
        let q = statements::list_of(kind, &cols, query, self.dialect());
        self.fetch_columns(kind, &cols, q).await
    }

    async fn scan_columns(
        &self,
        kind: EntityKind,
        filter: Option<&Filter>,
        include_deleted: bool,
        columns: &[usize],
    ) -> Result<Vec<Row>> {
        self.scan(kind, filter, include_deleted, columns, None).await
    }

    async fn scan_batches(
        &self,
        kind: EntityKind,
        filter: Option<&Filter>,
        include_deleted: bool,
        columns: &[usize],
        out: crm_core::store::RowBatches,
    ) -> Result<()> {
        self.scan(kind, filter, include_deleted, columns, Some(out)).await.map(|_| ())
    }

    /// One statement: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`
    /// on PostgreSQL; on SQLite the same statement on the one writing connection; on
    /// MariaDB the lock, the update and the read, in one transaction.
    async fn claim(&self, claim: &crm_core::Claim) -> Result<Vec<Row>> {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        let kind = claim.kind;
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { write, .. } => {
                let (sql, vals) = statements::claim(claim, Dialect::Sqlite)?;
                let rows = sqlx::query_with(&sql, values::sqlite_args(vals)?)
                    .fetch_all(write)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::sqlite_row(r, kind.columns())).collect()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let (sql, vals) = statements::claim(claim, Dialect::Postgres)?;
                let rows = sqlx::query_with(&sql, values::pg_args(vals)?)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::pg_row(r, kind.columns())).collect()
            }
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => claim_mysql(pool, claim).await,
        }
    }

    async fn count(&self, kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> Result<u64> {
        let (sql, vals) = statements::count(kind, filter, include_deleted, self.dialect());
        let n: i64 = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, .. } => sqlx::query_scalar_with(&sql, values::sqlite_args(vals)?)
                .fetch_one(read)
                .await
                .map_err(|e| map_err(kind, e))?,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => sqlx::query_scalar_with(&sql, values::pg_args(vals)?)
                .fetch_one(pool)
                .await
                .map_err(|e| map_err(kind, e))?,
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => sqlx::query_scalar_with(&sql, values::mysql_args(vals)?)
                .fetch_one(pool)
                .await
                .map_err(|e| map_err(kind, e))?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Queues the changeset for the writer task, which commits it (with whatever other
    /// changesets are waiting) and answers once it is durable or has failed.
    async fn apply(&self, changes: Changeset) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (done, outcome) = oneshot::channel();
        let closed = || Error::internal_msg("the store's writer has stopped (its Tokio runtime is gone)");
        self.writer.send(Job { changes, done }).await.map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        let sql = "SELECT seq, hash FROM audit_head WHERE id = 1";
        let (seq, hash): (i64, String) = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, .. } => sqlx::query_as(sql).fetch_one(read).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => {
                sqlx::query_as("SELECT seq, CAST(hash AS CHAR) FROM audit_head WHERE id = 1").fetch_one(pool).await
            }
        }
        .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(AuditHead { seq, hash })
    }

    async fn ping(&self) -> Result<()> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(|_| ()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
        .map_err(unavailable)
    }

    async fn live_schema(&self) -> Result<crm_core::schema_check::LiveSchema> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, .. } => introspect::sqlite(read).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => introspect::postgres(pool).await,
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => introspect::mysql(pool).await,
        }
    }
}

impl SqlStore {
    /// A bulk read (`scan_columns`, or `scan_batches` with `out`): PostgreSQL's binary
    /// `COPY`, a direct SQLite statement, or one bound query where those cannot take the
    /// filter.
    async fn scan(
        &self,
        kind: EntityKind,
        filter: Option<&Filter>,
        include_deleted: bool,
        columns: &[usize],
        out: Option<crm_core::store::RowBatches>,
    ) -> Result<Vec<Row>> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) if !scan::compares_text(filter) => {
                let cols = picked(kind, columns)?;
                scan::postgres(pool, kind, &cols, filter, include_deleted, out.as_ref()).await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { path, limit, .. } if !scan::needs_regexp(filter) => {
                let cols = picked(kind, columns)?;
                let (path, filter) = (path.clone(), filter.cloned());
                let deadline = deadline(limit);
                tokio::task::spawn_blocking(move || {
                    scan::sqlite(&path, kind, &cols, filter.as_ref(), include_deleted, deadline, out)
                })
                .await
                .map_err(|e| Error::internal("a bulk read", e))?
            }
            // MariaDB, PostgreSQL with text to compare (bound, never inlined), and SQLite's
            // `ilike` (it needs the function sqlx registers on its connections): bound
            // queries, a page of rows by id at a time, so that a reader holds a page or
            // two whatever the table's size.
            #[allow(unreachable_patterns)]
            _ => crm_core::store::page_through(self, kind, filter, include_deleted, columns, out.as_ref()).await,
        }
    }

    async fn fetch(&self, kind: EntityKind, q: (String, Values)) -> Result<Vec<Row>> {
        self.fetch_columns(kind, kind.columns(), q).await
    }

    /// Runs a query whose result columns are `cols`.
    async fn fetch_columns(
        &self,
        kind: EntityKind,
        cols: &[Column],
        (sql, vals): (String, Values),
    ) -> Result<Vec<Row>> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { read, .. } => {
                let rows = sqlx::query_with(&sql, values::sqlite_args(vals)?)
                    .fetch_all(read)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::sqlite_row(r, cols)).collect()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let rows = sqlx::query_with(&sql, values::pg_args(vals)?)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::pg_row(r, cols)).collect()
            }
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => {
                let rows = sqlx::query_with(&sql, values::mysql_args(vals)?)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::mysql_row(r, cols)).collect()
            }
        }
    }
}

/// A claim on MariaDB: the ids locked (`FOR UPDATE SKIP LOCKED`), updated and read back,
/// in one transaction.
#[cfg(feature = "mysql")]
async fn claim_mysql(pool: &MySqlPool, claim: &crm_core::Claim) -> Result<Vec<Row>> {
    let kind = claim.kind;
    let d = Dialect::MySql;
    let failed = |e| map_err(kind, e);
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let (sql, vals) = statements::claim_select(claim, d);
    let found = sqlx::query_with(&sql, values::mysql_args(vals)?).fetch_all(&mut *tx).await.map_err(failed)?;
    let id = &kind.columns()[..1];
    let mut ids = Vec::with_capacity(found.len());
    for row in &found {
        if let Some(Value::Uuid(u)) = values::mysql_row(row, id)?.pop() {
            ids.push(u);
        }
    }
    if ids.is_empty() {
        tx.rollback().await.map_err(unavailable)?;
        return Ok(Vec::new());
    }
    let (sql, vals) = statements::claim_update(claim, &ids, d)?;
    sqlx::query_with(&sql, values::mysql_args(vals)?).execute(&mut *tx).await.map_err(failed)?;
    let (sql, vals) = statements::by_ids(kind, &ids, d);
    let rows = sqlx::query_with(&sql, values::mysql_args(vals)?).fetch_all(&mut *tx).await.map_err(failed)?;
    let rows = rows.iter().map(|r| values::mysql_row(r, kind.columns())).collect::<Result<Vec<_>>>()?;
    tx.commit().await.map_err(|e| map_err(kind, e))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/<dialect>/` is in [`MIGRATIONS`] under its own version
    /// and name, and holds the text applied (sqlx's `NNNN_name.sql` convention).
    #[test]
    fn every_migration_file_is_applied() {
        for (dir, pick) in [("sqlite", 0), ("postgres", 1), ("mysql", 2)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|f| f.map(|f| f.file_name().to_string_lossy().into_owned()).unwrap_or_default())
                .collect();
            files.sort();
            let listed: Vec<String> =
                MIGRATIONS.iter().map(|(version, name, ..)| format!("{version:04}_{name}.sql")).collect();
            assert_eq!(files, listed, "migrations/{dir} and MIGRATIONS disagree");
            for ((_, _, sqlite, postgres, mysql), file) in MIGRATIONS.iter().zip(&files) {
                let text = std::fs::read_to_string(path.join(file)).unwrap_or_default();
                assert_eq!(text, [*sqlite, *postgres, *mysql][pick], "{dir}/{file} is not the text applied");
            }
        }
    }

    /// An open takes SQLite's statistics again only when the change count has doubled
    /// since they were taken: a file opened again at once keeps them (an `ANALYZE` reads
    /// every index, seconds on a large file), one that has since doubled gets new ones.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn an_open_refreshes_sqlites_statistics_only_when_the_changes_doubled() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("crm-stats-at-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::internal("a test directory", e))?;
        let file = dir.join("crm.db");
        let url = format!("sqlite://{}", file.display());
        SqlStore::connect(&url).await?.close().await;
        let set = |sql: &str| -> Result<()> {
            let conn = rusqlite::Connection::open(&file).map_err(|e| Error::internal("open", e))?;
            conn.execute_batch(sql).map_err(|e| Error::internal("a statement", e))
        };
        // Statistics taken when the audit log held 10 events, and a row of our own that
        // any `ANALYZE` of the contacts takes away.
        set("ANALYZE; DELETE FROM sqlite_stat1; \
             INSERT INTO sqlite_stat1 VALUES ('audit_events', 'audit_events_seq_key', '10 1'), \
                                             ('contacts', 'crm_marker', '1 1'); \
             UPDATE audit_head SET seq = 19 WHERE id = 1;")?;
        let marked = || -> Result<bool> {
            let conn = rusqlite::Connection::open(&file).map_err(|e| Error::internal("open", e))?;
            conn.query_row("SELECT count(*) FROM sqlite_stat1 WHERE idx = 'crm_marker'", [], |r| r.get::<_, i64>(0))
                .map(|n| n == 1)
                .map_err(|e| Error::internal("the marker", e))
        };
        SqlStore::connect(&url).await?.close().await;
        assert!(marked()?, "19 changes against 10 at the statistics: kept");
        set("UPDATE audit_head SET seq = 20 WHERE id = 1;")?;
        SqlStore::connect(&url).await?.close().await;
        assert!(!marked()?, "20 changes against 10 at the statistics: taken again");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// MariaDB 10.6 and later are taken; MySQL and older MariaDB are refused by name.
    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_and_old_mariadb_are_refused() {
        assert!(check_mariadb_version("10.11.19-MariaDB-0+deb12u1").is_ok());
        assert!(check_mariadb_version("11.4.2-MariaDB").is_ok());
        assert!(check_mariadb_version("10.6.0-MariaDB-log").is_ok());
        for old in ["8.0.36", "8.4.0-0ubuntu0.24.04.1", "10.5.23-MariaDB"] {
            let Err(e) = check_mariadb_version(old) else { panic!("{old} taken") };
            assert_eq!(e.code(), "validation_failed", "{old}");
            assert_eq!(e.field_errors()[0].field, "databaseUrl", "{old}");
            assert_eq!(e.field_errors()[0].code, "unsupported", "{old}");
        }
    }
}
