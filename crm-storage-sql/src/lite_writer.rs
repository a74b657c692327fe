//! SQLite's writer on a thread of its own, with a rusqlite connection to the same file
//! (the SQLite library sqlx links).
//!
//! sqlx's SQLite driver hands every statement to a worker thread and back; a changeset
//! is five or six statements, so a write spent most of its time in thread wake-ups. This
//! writer runs whole groups on its own thread, statement after statement, with the same
//! group commit as [`crate::writer`] (its `run_group`, through [`Tx`]).

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crm_core::audit::AuditHead;
use crm_core::schema::{EntityKind, Row};
use crm_core::{Changeset, Error, Result, Value};
use rusqlite::{Connection, OpenFlags};
use sea_query::Values;
use tokio::sync::mpsc;

use crate::statements;
use crate::values::Dialect;
use crate::writer::{self, Job, Tx};

/// Opens the writing connection and starts the writer thread; see [`crate::writer::spawn`].
pub(crate) fn spawn(
    path: &Path,
    busy_timeout: Duration,
    limit: Arc<AtomicU64>,
    next_analyze: i64,
) -> Result<mpsc::Sender<Job>> {
    let conn = open(path, busy_timeout).map_err(|e| lite_err(EntityKind::AuditEvent, e))?;
    let (tx, rx) = mpsc::channel(1024);
    std::thread::Builder::new()
        .name("crm-sqlite-writer".into())
        .spawn(move || run(conn, rx, limit, next_analyze))
        .map_err(|e| Error::internal("starting the SQLite writer", e))?;
    Ok(tx)
}

fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // As the sqlx connections are opened (`open_sqlite`); the page cache is the writer's,
    // which touches every index of a table.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = memory; PRAGMA cache_size = -65536;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>, limit: Arc<AtomicU64>, mut next_analyze: i64) {
    let mut optimistic = true;
    // SQLite admits one writer at a time from `BEGIN IMMEDIATE`: the head this writer's
    // last commit left can be sealed after without reading the head row.
    let mut cached: Option<AuditHead> = None;
    while let Some(first) = rx.blocking_recv() {
        let (changes, replies) = writer::gather(first, &mut rx);
        let deadline = crate::deadline(&limit);
        match deadline {
            // `true` interrupts (rusqlite's sense).
            Some(d) => conn.progress_handler(10_000, Some(move || std::time::Instant::now() >= d)),
            None => conn.progress_handler(10_000, None::<fn() -> bool>),
        }
        let (outcomes, head) = commit_group(&mut conn, changes, optimistic, cached.take());
        optimistic = outcomes.iter().all(|o| o.is_ok());
        let seq = head.as_ref().map(|h| h.seq);
        cached = head;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A caller that stopped waiting no longer needs the answer.
            let _ = reply.send(outcome);
        }
        if let Some(seq) = seq {
            if seq >= next_analyze {
                next_analyze = seq.saturating_mul(2);
                // Statistics only steer plans; a failure here costs speed, not data. The
                // dummy table's create and drop (schema changes) make the readers reload them.
                conn.progress_handler(10_000, None::<fn() -> bool>);
                let _ = conn
                    .execute_batch("ANALYZE; CREATE TABLE crm_stats_epoch (x INTEGER); DROP TABLE crm_stats_epoch;");
            }
        }
    }
}

/// [`crate::writer`]'s `commit_group` on this connection: an optimistic pass without
/// savepoints (after the remembered head), then, if a changeset failed, the group again
/// with a savepoint each, reading the head.
fn commit_group(
    conn: &mut Connection,
    changes: Vec<Changeset>,
    optimistic: bool,
    cached: Option<AuditHead>,
) -> (Vec<Result<()>>, Option<AuditHead>) {
    let n = changes.len();
    if optimistic && writer::optimistic_fits(&changes, cached.is_some()) {
        if let Ok(mut tx) = LiteTx::begin(conn) {
            let (out, head) = now(writer::run_group(&mut tx, changes.clone(), false, cached));
            if out.iter().all(|o| o.is_ok()) {
                return writer::finish(out, head, tx.end("COMMIT"));
            }
            let _ = tx.end("ROLLBACK");
        }
    }
    let mut tx = match LiteTx::begin(conn) {
        Ok(tx) => tx,
        Err(e) => return (writer::all_fail(&e, n), None),
    };
    let (out, head) = now(writer::run_group(&mut tx, changes, true, None));
    // Nothing to commit when every changeset failed (or the transaction was lost).
    if out.iter().all(|o| o.is_err()) {
        let _ = tx.end("ROLLBACK");
        return (out, None);
    }
    writer::finish(out, head, tx.end("COMMIT"))
}

/// Runs a future whose every step completes at once (this writer's statements block the
/// thread instead of waiting).
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        // Not reached: no step of `run_group` on a `LiteTx` waits.
        std::thread::yield_now();
    }
}

/// An open transaction on the writing connection.
struct LiteTx<'c> {
    conn: &'c mut Connection,
}

impl<'c> LiteTx<'c> {
    fn begin(conn: &'c mut Connection) -> Result<Self> {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| lite_err(EntityKind::AuditEvent, e))?;
        Ok(LiteTx { conn })
    }

    /// `COMMIT` or `ROLLBACK`.
    fn end(self, how: &str) -> Result<()> {
        let done = self.conn.execute_batch(how).map_err(|e| lite_err(EntityKind::AuditEvent, e));
        if done.is_err() && !self.conn.is_autocommit() {
            // A failed commit leaves the transaction open; nothing of it may stay.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        done
    }

    fn params(vals: Values) -> Result<Vec<rusqlite::types::Value>> {
        vals.0.into_iter().map(crate::scan::sqlite_param).collect()
    }
}

#[async_trait]
impl Tx for LiteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn exec(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<u64> {
        let params = Self::params(vals)?;
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| lite_err(kind, e))?;
        let n = st.execute(rusqlite::params_from_iter(params)).map_err(|e| lite_err(kind, e))?;
        Ok(n as u64)
    }

    async fn fetch_int(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        let params = Self::params(vals)?;
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| lite_err(kind, e))?;
        st.query_row(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
            .optional()
            .map_err(|e| lite_err(kind, e))
    }

    async fn lock_head(&mut self) -> Result<AuditHead> {
        // `BEGIN IMMEDIATE` holds the write lock already.
        let mut st = self
            .conn
            .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
            .map_err(|e| lite_err(EntityKind::AuditEvent, e))?;
        st.query_row([], |r| Ok(AuditHead { seq: r.get(0)?, hash: r.get(1)? }))
            .map_err(|e| lite_err(EntityKind::AuditEvent, e))
    }

    async fn set_head(&mut self, head: &AuditHead, from: i64) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1 AND seq = ?3")
            .map_err(|e| lite_err(EntityKind::AuditEvent, e))?;
        let n = st
            .execute(rusqlite::params![head.seq, head.hash, from])
            .map_err(|e| lite_err(EntityKind::AuditEvent, e))?;
        Ok(n == 1)
    }

    async fn run(&mut self, sql: &'static str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| lite_err(EntityKind::AuditEvent, e))
    }

    /// Binds each value straight from the row (the other statements go through
    /// sea-query's values and rusqlite's, two copies of every text that an import's
    /// batches of 500 rows spent a fifth of the writer's time on).
    async fn insert(&mut self, kind: EntityKind, rows: Vec<Row>) -> Result<()> {
        let sql = statements::insert_sql(kind, rows.len(), Dialect::Sqlite);
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| lite_err(kind, e))?;
        let mut at = 1;
        for row in &rows {
            statements::check_row(kind, row)?;
            for v in row {
                bind(&mut st, at, v).map_err(|e| lite_err(kind, e))?;
                at += 1;
            }
        }
        st.raw_execute().map_err(|e| lite_err(kind, e))?;
        Ok(())
    }
}

/// Binds a value as `crate::values::into_sq` and `crate::scan::sqlite_param` store it
/// in SQLite: ids as 16-byte blobs, timestamps as microseconds, dates and JSON as text.
fn bind(st: &mut rusqlite::CachedStatement<'_>, at: usize, v: &Value) -> rusqlite::Result<()> {
    match v {
        Value::Null => st.raw_bind_parameter(at, rusqlite::types::Null),
        Value::Uuid(u) => st.raw_bind_parameter(at, &u.as_bytes()[..]),
        Value::Text(s) => st.raw_bind_parameter(at, s.as_str()),
        Value::Int(i) => st.raw_bind_parameter(at, i),
        Value::Bool(b) => st.raw_bind_parameter(at, i64::from(*b)),
        Value::Timestamp(t) => st.raw_bind_parameter(at, t.timestamp_micros()),
        Value::Date(d) => st.raw_bind_parameter(at, d.format("%Y-%m-%d").to_string()),
        Value::Json(j) => {
            let text = serde_json::to_string(j).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            st.raw_bind_parameter(at, text)
        }
    }
}

/// Maps a rusqlite error as [`crate::map_err`] maps sqlx's: a unique violation is a
/// conflict naming the field ("UNIQUE constraint failed: contacts.email"), an interrupted
/// statement a timeout.
fn lite_err(kind: EntityKind, e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if matches!(f.extended_code, ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) {
            let column = msg.as_deref().and_then(|m| m.rsplit_once('.')).map(|(_, c)| c.trim().to_string());
            return kind.unique_violation(column.as_deref());
        }
        match f.code {
            rusqlite::ErrorCode::OperationInterrupted => {
                return Error::Timeout("a statement ran past its time limit".into());
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                return Error::internal("the database is unavailable", e);
            }
            _ => {}
        }
    }
    Error::internal(format!("{} query failed", kind.name()), e)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use crm_core::schema::ColumnType;
    use rusqlite::types::Value as Stored;

    use super::*;
    use crate::scan::sqlite_param;
    use crate::values::into_sq;

    /// What `bind` hands SQLite for `v`, read back through `SELECT ?1`.
    fn bound(conn: &Connection, v: &Value) -> rusqlite::Result<Stored> {
        let mut st = conn.prepare_cached("SELECT ?1")?;
        bind(&mut st, 1, v)?;
        let mut rows = st.raw_query();
        let value = match rows.next()? {
            Some(row) => row.get(0)?,
            None => Stored::Null,
        };
        Ok(value)
    }

    /// The import's direct binds and the statements' sea-query values (`into_sq`, then
    /// `sqlite_param`) are two statements of one encoding; a row stored by one must read
    /// back like a row stored by the other.
    #[test]
    fn direct_binds_store_what_sea_query_values_store() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let conn = Connection::open_in_memory()?;
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 7, 30, 15).single().ok_or("a time")?
            + chrono::Duration::milliseconds(250);
        let cases = [
            (Value::Null, ColumnType::Text),
            (Value::Null, ColumnType::Uuid),
            (Value::Uuid(id), ColumnType::Uuid),
            (Value::Text("Zoë \"quoted\"\n".into()), ColumnType::Text),
            (Value::Int(-42), ColumnType::Int),
            (Value::Bool(true), ColumnType::Bool),
            (Value::Bool(false), ColumnType::Bool),
            (Value::Timestamp(at), ColumnType::Timestamp),
            (Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).ok_or("a date")?), ColumnType::Date),
            (Value::Json(serde_json::json!({"b": [1, "two"], "a": null})), ColumnType::Json),
            (Value::Json(serde_json::json!([id.to_string()])), ColumnType::UuidList),
        ];
        for (v, ty) in cases {
            let through_sea_query = sqlite_param(into_sq(v.clone(), ty, Dialect::Sqlite))?;
            assert_eq!(bound(&conn, &v)?, through_sea_query, "{v:?} as {ty:?}");
        }
        Ok(())
    }
}
