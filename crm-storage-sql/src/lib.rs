//! # crm-storage-sql
//!
//! The SQLite and PostgreSQL [`Store`] of crm-rs, on sqlx. One implementation serves both
//! dialects: crm-core describes every table's typed columns, this crate translates those
//! descriptions, typed filters and changesets into SQL built with sea-query (no user
//! string is ever spliced into SQL) and binds every value as a parameter.
//!
//! - **SQLite**: a file in WAL mode with a busy timeout; reads use a pool, writes one
//!   connection with `BEGIN IMMEDIATE`, so writers queue instead of failing.
//! - **PostgreSQL**: a pool; `apply` locks the audit head row, so changesets commit in
//!   audit-chain order.
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

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use crm_core::audit::{AuditHead, NewAuditEvent};
use crm_core::query::{Filter, StoreQuery};
use crm_core::schema::{to_row, EntityKind, Row};
use crm_core::{Changeset, Error, Result, Store, Value, Write};
use sea_query::Values;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Row as _, Sqlite, Transaction};
use uuid::Uuid;

mod build;
mod values;

pub use values::Dialect;

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Pool size (PostgreSQL; SQLite reader pool).
    pub max_connections: u32,
    /// PostgreSQL only: a schema to create if missing and to work in (tests use one per case).
    pub pg_schema: Option<String>,
    /// How long to wait for a connection or a lock.
    pub busy_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        Self { max_connections: 10, pg_schema: None, busy_timeout: Duration::from_secs(10) }
    }
}

enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// A SQLite or PostgreSQL store.
pub struct SqlStore {
    backend: Backend,
    /// SQLite: the audit sequence (the change count) at which planner statistics are
    /// next refreshed; it doubles each time, so the cost stays a small share of writes.
    next_analyze: AtomicI64,
}

/// The fewest changes before SQLite's first statistics refresh.
const FIRST_ANALYZE: i64 = 1_000;

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("dialect", &self.dialect()).finish()
    }
}

fn unavailable(e: sqlx::Error) -> Error {
    Error::internal("the database is unavailable", e)
}

fn migrator(d: Dialect) -> Migrator {
    let sql = match d {
        Dialect::Sqlite => include_str!("../migrations/sqlite/0001_initial.sql"),
        Dialect::Postgres => include_str!("../migrations/postgres/0001_initial.sql"),
    };
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("initial"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl SqlStore {
    /// Connects to `sqlite://path` (created if missing), `sqlite::memory:` is not supported
    /// (readers and the writer need one shared file), or `postgres://…`, and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// Connects with options, and migrates.
    pub async fn connect_with(url: &str, opts: SqlOptions) -> Result<Self> {
        let store = if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(Error::invalid(
                    "databaseUrl",
                    "invalid_value",
                    "in-memory SQLite is not supported; use a file",
                ));
            }
            let base = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::invalid("databaseUrl", "invalid_value", format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(opts.busy_timeout)
                .foreign_keys(true);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(opts.busy_timeout * 3)
                .connect_with(base.clone())
                .await
                .map_err(unavailable)?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.busy_timeout)
                .connect_with(base.read_only(true))
                .await
                .map_err(unavailable)?;
            SqlStore { backend: Backend::Sqlite { read, write }, next_analyze: AtomicI64::new(FIRST_ANALYZE) }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut pg = PgConnectOptions::from_str(url)
                .map_err(|e| Error::invalid("databaseUrl", "invalid_value", format!("bad PostgreSQL URL: {e}")))?;
            if let Some(schema) = &opts.pg_schema {
                if schema.is_empty()
                    || !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(Error::invalid("pgSchema", "invalid_value", "schema names use a-z, 0-9 and _"));
                }
                let admin =
                    PgPoolOptions::new().max_connections(1).connect_with(pg.clone()).await.map_err(unavailable)?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&admin)
                    .await
                    .map_err(unavailable)?;
                admin.close().await;
                pg = pg.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.busy_timeout)
                .connect_with(pg)
                .await
                .map_err(unavailable)?;
            SqlStore { backend: Backend::Postgres(pool), next_analyze: AtomicI64::new(i64::MAX) }
        } else {
            return Err(Error::invalid(
                "databaseUrl",
                "invalid_value",
                "the database URL must start with sqlite:// or postgres://",
            ));
        };
        store.migrate().await?;
        if store.dialect() == Dialect::Sqlite {
            // Good plans need statistics (a filter on a few-valued column against a
            // sort index, say); an existing database gets them at open.
            let seq = store.audit_head().await?.seq;
            if seq > 0 {
                store.analyze().await?;
            }
            store.next_analyze.store((seq * 2).max(FIRST_ANALYZE), Ordering::Relaxed);
        }
        Ok(store)
    }

    /// Refreshes the query planner's statistics (`ANALYZE`). SQLite stores do this on
    /// their own at open and whenever the number of changes has doubled; on PostgreSQL
    /// autovacuum does it. Call it after a bulk load to get good plans at once.
    pub async fn analyze(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { write, .. } => sqlx::query("ANALYZE").execute(write).await.map(|_| ()),
            Backend::Postgres(pool) => sqlx::query("ANALYZE").execute(pool).await.map(|_| ()),
        }
        .map_err(|e| Error::internal("refreshing planner statistics", e))
    }

    /// Refreshes SQLite's statistics once the change count `seq` reaches the next mark.
    async fn maybe_analyze(&self, seq: i64) -> Result<()> {
        let due = self.next_analyze.load(Ordering::Relaxed);
        if seq < due || self.next_analyze.compare_exchange(due, seq * 2, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return Ok(());
        }
        self.analyze().await
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies the embedded migrations not yet applied (connect does this).
    pub async fn migrate(&self) -> Result<()> {
        let m = migrator(self.dialect());
        let r = match &self.backend {
            Backend::Sqlite { write, .. } => m.run(write).await,
            Backend::Postgres(pool) => m.run(pool).await,
        };
        r.map_err(|e| Error::internal("migrating the database", e))
    }

    /// Closes the pools.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Runs a statement outside every rule of crm-core: for maintenance and for tests
    /// that simulate tampering. Never pass it user input.
    pub async fn execute_unchecked(&self, sql: &str) -> Result<u64> {
        let r = match &self.backend {
            Backend::Sqlite { write, .. } => sqlx::query(sql).execute(write).await.map(|r| r.rows_affected()),
            Backend::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
        };
        r.map_err(|e| Error::internal("running a statement", e))
    }

    /// Drops a PostgreSQL schema (tests clean up after themselves with it).
    pub async fn drop_pg_schema(url: &str, schema: &str) -> Result<()> {
        if !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::invalid("pgSchema", "invalid_value", "schema names use a-z, 0-9 and _"));
        }
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

/// Maps a driver error by kind. Unique violations become conflicts naming the field.
fn map_err(kind: EntityKind, e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            // PostgreSQL names the index; SQLite says "UNIQUE constraint failed: table.column".
            let field = db
                .constraint()
                .and_then(|c| kind.unique_field(c))
                .or_else(|| db.message().rsplit_once('.').and_then(|(_, column)| kind.unique_field(column.trim())));
            let message = match field {
                Some(f) => format!("another {} already has this {f}", kind.name()),
                None => format!("this {} collides with another", kind.name()),
            };
            return Error::Conflict { message, field: field.map(str::to_string) };
        }
    }
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => unavailable(e),
        other => Error::internal(format!("{} query failed", kind.name()), other),
    }
}

/// What `apply` needs from a transaction, for either dialect.
#[async_trait]
trait Tx: Send {
    fn dialect(&self) -> Dialect;
    async fn exec(&mut self, kind: EntityKind, q: (String, Values)) -> Result<u64>;
    async fn fetch_version(&mut self, kind: EntityKind, q: (String, Values)) -> Result<Option<i64>>;
    async fn lock_head(&mut self) -> Result<AuditHead>;
    async fn set_head(&mut self, head: &AuditHead) -> Result<()>;
}

#[async_trait]
impl Tx for Transaction<'static, Postgres> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn exec(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<u64> {
        let args = values::pg_args(vals)?;
        sqlx::query_with(&sql, args).execute(&mut **self).await.map(|r| r.rows_affected()).map_err(|e| map_err(kind, e))
    }
    async fn fetch_version(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<Option<i64>> {
        let args = values::pg_args(vals)?;
        let row = sqlx::query_with(&sql, args).fetch_optional(&mut **self).await.map_err(|e| map_err(kind, e))?;
        row.map(|r| r.try_get::<i64, _>(0)).transpose().map_err(|e| map_err(kind, e))
    }
    async fn lock_head(&mut self) -> Result<AuditHead> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **self)
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(AuditHead {
            seq: row.try_get(0).map_err(|e| map_err(EntityKind::AuditEvent, e))?,
            hash: row.try_get(1).map_err(|e| map_err(EntityKind::AuditEvent, e))?,
        })
    }
    async fn set_head(&mut self, head: &AuditHead) -> Result<()> {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(head.seq)
            .bind(&head.hash)
            .execute(&mut **self)
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(())
    }
}

#[async_trait]
impl Tx for Transaction<'static, Sqlite> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn exec(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<u64> {
        let args = values::sqlite_args(vals)?;
        sqlx::query_with(&sql, args).execute(&mut **self).await.map(|r| r.rows_affected()).map_err(|e| map_err(kind, e))
    }
    async fn fetch_version(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<Option<i64>> {
        let args = values::sqlite_args(vals)?;
        let row = sqlx::query_with(&sql, args).fetch_optional(&mut **self).await.map_err(|e| map_err(kind, e))?;
        row.map(|r| r.try_get::<i64, _>(0)).transpose().map_err(|e| map_err(kind, e))
    }
    async fn lock_head(&mut self) -> Result<AuditHead> {
        // BEGIN IMMEDIATE already holds the write lock.
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut **self)
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(AuditHead {
            seq: row.try_get(0).map_err(|e| map_err(EntityKind::AuditEvent, e))?,
            hash: row.try_get(1).map_err(|e| map_err(EntityKind::AuditEvent, e))?,
        })
    }
    async fn set_head(&mut self, head: &AuditHead) -> Result<()> {
        sqlx::query("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
            .bind(head.seq)
            .bind(&head.hash)
            .execute(&mut **self)
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(())
    }
}

/// Inserts rows of one kind in as few statements as the parameter limits allow.
async fn insert_rows(tx: &mut dyn Tx, kind: EntityKind, rows: Vec<Row>) -> Result<()> {
    let per_statement = build::insert_batch_rows(kind);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(per_statement).collect();
        let q = build::insert(kind, chunk, tx.dialect())?;
        tx.exec(kind, q).await?;
    }
    Ok(())
}

/// The body of `apply`, the same for both dialects. Returns the new end of the audit
/// chain, when the changeset moved it.
async fn apply_in(tx: &mut dyn Tx, cs: Changeset) -> Result<Option<i64>> {
    let d = tx.dialect();
    let Changeset { writes, audit } = cs;
    let mut moved = None;
    if !audit.is_empty() {
        let mut head = tx.lock_head().await?;
        let mut rows = Vec::with_capacity(audit.len());
        for ev in audit {
            let (sealed, next) = NewAuditEvent::seal(ev, &head);
            rows.push(to_row(&sealed)?);
            head = next;
        }
        insert_rows(tx, EntityKind::AuditEvent, rows).await?;
        tx.set_head(&head).await?;
        moved = Some(head.seq);
    }
    let mut pending: Option<(EntityKind, Vec<Row>)> = None;
    for w in writes {
        // Consecutive inserts of one kind go out as multi-row statements.
        if let Write::Insert { kind, row } = w {
            match &mut pending {
                Some((k, rows)) if *k == kind => rows.push(row),
                _ => {
                    if let Some((k, rows)) = pending.take() {
                        insert_rows(tx, k, rows).await?;
                    }
                    pending = Some((kind, vec![row]));
                }
            }
            continue;
        }
        if let Some((k, rows)) = pending.take() {
            insert_rows(tx, k, rows).await?;
        }
        match w {
            Write::Insert { .. } => {}
            Write::Update { kind, row, expected_version } => {
                let id = row.first().cloned().unwrap_or(Value::Null);
                let n = tx.exec(kind, build::update(kind, &row, expected_version, d)).await?;
                if n == 0 {
                    return Err(match tx.fetch_version(kind, build::current_version(kind, &id, d)).await? {
                        Some(current) => Error::VersionConflict { current },
                        None => Error::NotFound { entity: kind.name() },
                    });
                }
            }
            Write::Purge { kind, column, id } => {
                tx.exec(kind, build::purge(kind, column, id, d)?).await?;
            }
            Write::ClearReference { kind, column, id, at } => {
                tx.exec(kind, build::clear_reference(kind, column, id, at, d)?).await?;
            }
        }
    }
    if let Some((k, rows)) = pending.take() {
        insert_rows(tx, k, rows).await?;
    }
    Ok(moved)
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn get(&self, kind: EntityKind, id: Uuid) -> Result<Option<Row>> {
        let q = build::get(kind, id, self.dialect());
        self.fetch(kind, q).await.map(|mut rows| rows.pop())
    }

    async fn list(&self, kind: EntityKind, query: &StoreQuery) -> Result<Vec<Row>> {
        let q = build::list(kind, query, self.dialect());
        self.fetch(kind, q).await
    }

    async fn count(&self, kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> Result<u64> {
        let (sql, vals) = build::count(kind, filter, include_deleted, self.dialect());
        let n: i64 = match &self.backend {
            Backend::Sqlite { read, .. } => sqlx::query_scalar_with(&sql, values::sqlite_args(vals)?)
                .fetch_one(read)
                .await
                .map_err(|e| map_err(kind, e))?,
            Backend::Postgres(pool) => sqlx::query_scalar_with(&sql, values::pg_args(vals)?)
                .fetch_one(pool)
                .await
                .map_err(|e| map_err(kind, e))?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn apply(&self, changes: Changeset) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                let mut tx = write.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
                let seq = apply_in(&mut tx, changes).await?;
                tx.commit().await.map_err(unavailable)?;
                match seq {
                    Some(seq) => self.maybe_analyze(seq).await,
                    None => Ok(()),
                }
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(unavailable)?;
                apply_in(&mut tx, changes).await?;
                tx.commit().await.map_err(|e| map_err(EntityKind::AuditEvent, e))
            }
        }
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        let sql = "SELECT seq, hash FROM audit_head WHERE id = 1";
        let (seq, hash): (i64, String) = match &self.backend {
            Backend::Sqlite { read, .. } => sqlx::query_as(sql).fetch_one(read).await,
            Backend::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        }
        .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(AuditHead { seq, hash })
    }

    async fn ping(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(|_| ()),
            Backend::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
        .map_err(unavailable)
    }
}

impl SqlStore {
    async fn fetch(&self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<Vec<Row>> {
        let cols = kind.columns();
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let rows = sqlx::query_with(&sql, values::sqlite_args(vals)?)
                    .fetch_all(read)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::sqlite_row(r, cols)).collect()
            }
            Backend::Postgres(pool) => {
                let rows = sqlx::query_with(&sql, values::pg_args(vals)?)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| map_err(kind, e))?;
                rows.iter().map(|r| values::pg_row(r, cols)).collect()
            }
        }
    }
}
