//! The one write path. [`crate::SqlStore`]'s `apply` hands its changeset to a writer
//! (a task on PostgreSQL, a thread on SQLite: `crate::lite_writer`); the writer takes
//! every changeset waiting at that moment (up to [`MAX_GROUP`]) and commits them in one
//! transaction: first plainly, and if one fails (a version conflict, a duplicate email),
//! again with each in its own savepoint, so the failure stays with its caller while the
//! others commit. Many callers writing at once thus share one commit (group commit)
//! instead of queueing for the write lock one by one, and the audit chain stays in
//! commit order. [`run_group`] and [`Tx`] are the part both writers share.

use async_trait::async_trait;
use crm_core::audit::{AuditHead, NewAuditEvent};
use crm_core::schema::{EntityKind, Row};
use crm_core::{Changeset, Error, Result, Value, Write};
use sea_query::Values;
#[cfg(feature = "mysql")]
use sqlx::mysql::MySqlPool;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;
#[cfg(feature = "mysql")]
use sqlx::MySql;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use sqlx::{Row as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::statements;
use crate::values::Dialect;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::{map_err, unavailable, values};

/// The most changesets one transaction commits.
pub(crate) const MAX_GROUP: usize = 128;

/// The most record writes and audit events a group may hold for the optimistic pass of
/// [`commit_group`] (which copies the group first).
const OPTIMISTIC_MAX_WRITES: usize = 512;

/// The most writes a lone changeset may hold for the optimistic pass: all it saves is
/// reading the head (one statement), which copying a larger changeset costs more than
/// (an import's batch of 500 rows spent 6 % of the SQLite writer's time on the copy).
const OPTIMISTIC_MAX_LONE_WRITES: usize = 32;

/// A changeset waiting for the writer, and where its outcome goes.
pub(crate) struct Job {
    pub(crate) changes: Changeset,
    pub(crate) done: oneshot::Sender<Result<()>>,
}

/// The connections the writer commits on.
#[derive(Clone)]
pub(crate) enum WritePool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "mysql")]
    MySql(MySqlPool),
}

impl WritePool {
    /// Refreshes the planner statistics. On SQLite, other connections load statistics
    /// with the schema, so a dummy table's create and drop (each a schema change) make
    /// the reader pool reload them.
    pub(crate) async fn analyze(&self) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            WritePool::Sqlite(p) => {
                sqlx::raw_sql("ANALYZE; CREATE TABLE crm_stats_epoch (x INTEGER); DROP TABLE crm_stats_epoch;")
                    .execute(p)
                    .await
                    .map(|_| ())
            }
            #[cfg(feature = "postgres")]
            WritePool::Postgres(p) => sqlx::query("ANALYZE").execute(p).await.map(|_| ()),
            // MariaDB's `ANALYZE TABLE` names its tables.
            #[cfg(feature = "mysql")]
            WritePool::MySql(p) => {
                let tables: Vec<String> = EntityKind::ALL.iter().map(|k| format!("`{}`", k.table())).collect();
                sqlx::raw_sql(&format!("ANALYZE TABLE {}", tables.join(", "))).execute(p).await.map(|_| ())
            }
        }
        .map_err(|e| Error::internal("refreshing planner statistics", e))
    }
}

/// Defines `$spawn`, which starts a server database's writer (PostgreSQL, MariaDB) on
/// the current Tokio runtime (SQLite's runs on a thread of its own,
/// `crate::lite_writer`), and `$commit`, which commits one group on it.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! server_writer {
    ($spawn:ident, $commit:ident, $pool:ty) => {
        pub(crate) fn $spawn(pool: $pool) -> mpsc::Sender<Job> {
            let (tx, mut rx) = mpsc::channel::<Job>(1024);
            tokio::spawn(async move {
                let mut optimistic = true;
                while let Some(first) = rx.recv().await {
                    let (changes, replies) = gather(first, &mut rx);
                    let outcomes = $commit(&pool, changes, optimistic).await;
                    // After a group where a changeset failed, the next one takes its
                    // savepoints at once: failures come in runs (a burst of conflicting edits).
                    optimistic = outcomes.iter().all(|o| o.is_ok());
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        // A caller that stopped waiting no longer needs the answer.
                        let _ = reply.send(outcome);
                    }
                }
            });
            tx
        }

        /// Commits a group, returning each changeset's outcome.
        ///
        /// A group of several changesets is first tried `optimistic`ally: all in one
        /// transaction with no savepoints, the statements of each changeset and nothing
        /// else. If one of them fails (a version conflict, a duplicate email), that
        /// transaction is rolled back and the group runs again with a savepoint around
        /// each changeset, so the failure stays with its caller and the others commit.
        /// Every group reads the audit head under its row lock: writers in other
        /// processes interleave there, and one sealing after a remembered head while
        /// another holds the lock would deadlock on the sequence's unique index.
        async fn $commit(pool: &$pool, changes: Vec<Changeset>, optimistic: bool) -> Vec<Result<()>> {
            let n = changes.len();
            let commit_err = |e| map_err(EntityKind::AuditEvent, e);
            if optimistic && optimistic_fits(&changes, false) {
                if let Ok(mut tx) = pool.begin().await {
                    let (out, head) = run_group(&mut tx, changes.clone(), false, None).await;
                    if out.iter().all(|o| o.is_ok()) {
                        return finish(out, head, tx.commit().await.map_err(commit_err)).0;
                    }
                    let _ = tx.rollback().await;
                }
            }
            let mut tx = match pool.begin().await {
                Ok(tx) => tx,
                Err(e) => return all_fail(&unavailable(e), n),
            };
            let (out, head) = run_group(&mut tx, changes, true, None).await;
            // Nothing to commit when every changeset failed (or the transaction was lost).
            if out.iter().all(|o| o.is_err()) {
                let _ = tx.rollback().await;
                return out;
            }
            finish(out, head, tx.commit().await.map_err(commit_err)).0
        }
    };
}

#[cfg(feature = "postgres")]
server_writer!(spawn_postgres, commit_postgres, PgPool);
#[cfg(feature = "mysql")]
server_writer!(spawn_mysql, commit_mysql, MySqlPool);

/// The group a writer commits next: `first` and every changeset waiting behind it, up to
/// [`MAX_GROUP`]; and where each outcome goes.
pub(crate) fn gather(first: Job, rx: &mut mpsc::Receiver<Job>) -> (Vec<Changeset>, Vec<oneshot::Sender<Result<()>>>) {
    let mut jobs = vec![first];
    while jobs.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    jobs.into_iter().map(|j| (j.changes, j.done)).unzip()
}

/// Is the optimistic pass worth trying? It saves savepoints (several changesets) or the
/// head's read (a remembered head), and keeps a copy of the group for the second pass:
/// worth it for the small changesets of concurrent callers, not for one bulk changeset
/// of thousands of rows (that one reads the head, a single statement among thousands).
pub(crate) fn optimistic_fits(changes: &[Changeset], remembered_head: bool) -> bool {
    let size: usize = changes.iter().map(|c| c.writes.len() + c.audit.len()).sum();
    match changes.len() {
        0 | 1 => remembered_head && size <= OPTIMISTIC_MAX_LONE_WRITES,
        _ => size <= OPTIMISTIC_MAX_WRITES,
    }
}

/// A failed commit fails every changeset of the group.
pub(crate) fn finish(
    out: Vec<Result<()>>,
    seq: Option<AuditHead>,
    commit: Result<()>,
) -> (Vec<Result<()>>, Option<AuditHead>) {
    match commit {
        Ok(()) => (out, seq),
        Err(e) => {
            let total = out.len();
            (fail_all(out, &e, total), None)
        }
    }
}

/// One failure (of a begin or a commit) for every changeset of a group.
pub(crate) fn all_fail(e: &Error, n: usize) -> Vec<Result<()>> {
    (0..n).map(|_| Err(copy(e))).collect()
}

/// The same error again (errors carry their source and are not `Clone`).
fn copy(e: &Error) -> Error {
    match e {
        Error::Conflict { message, field } => Error::Conflict { message: message.clone(), field: field.clone() },
        Error::Internal { message, source: Some(source) } => Error::internal_msg(format!("{message}: {source}")),
        Error::Internal { message, source: None } => Error::internal_msg(message.clone()),
        other => Error::internal_msg(other.to_string()),
    }
}

/// Applies each changeset of a group; with more than one and `savepoints`, each in its
/// own savepoint (without, it stops at the first failure: the caller rolls back).
///
/// The audit events are sealed last, all of the group's at once: the record writes of
/// every changeset run first, then the audit head is read (on PostgreSQL and MariaDB
/// under its row lock), the events of the changesets that succeeded are chained in the
/// group's order and inserted together, and the head is written back: three statements
/// per group. The head row's lock, which every writer in every process takes, is thus
/// held for those statements and the commit only, not for the group's record writes
/// (`benches/replicas.rs` measures what that buys with several processes). A changeset
/// that moves the head itself (a copy adopting its source's chain end) or checks a kind
/// is empty under the lock has the events before it sealed first, so the chain keeps
/// the group's order.
///
/// `start` is the head as this writer last committed it (`None`: read the row). The
/// head row is then updated only if it still holds the head the group started from.
pub(crate) async fn run_group(
    tx: &mut dyn Tx,
    changes: Vec<Changeset>,
    savepoints: bool,
    start: Option<AuditHead>,
) -> (Vec<Result<()>>, Option<AuditHead>) {
    let savepoints = savepoints && changes.len() > 1;
    let total = changes.len();
    let mut out = Vec::with_capacity(total);
    // The sequence number the group started from, and the head as the changesets applied
    // so far left it, and whether it moved.
    let mut from: Option<i64> = start.as_ref().map(|h| h.seq);
    let mut head: Option<AuditHead> = start;
    let mut moved = false;
    // The events of the changesets applied so far, waiting to be sealed.
    let mut events: Vec<NewAuditEvent> = Vec::new();
    for cs in changes {
        if !events.is_empty()
            && cs.writes.iter().any(|w| matches!(w, Write::AdoptAuditHead { .. } | Write::AssertEmpty { .. }))
        {
            match seal(tx, &mut head, &mut from, &mut events).await {
                Ok(()) => moved = true,
                Err(e) => return (fail_all(out, &e, total), None),
            }
        }
        if savepoints {
            if let Err(e) = tx.run("SAVEPOINT crm_changeset").await {
                out.push(Err(e));
                continue;
            }
        }
        let outcome = match apply_in(tx, cs, head.clone()).await {
            Ok(applied) => {
                if savepoints {
                    if let Err(e) = tx.run("RELEASE SAVEPOINT crm_changeset").await {
                        out.push(Err(e));
                        continue;
                    }
                }
                from = from.or(applied.read);
                moved |= applied.adopted;
                if applied.head.is_some() {
                    head = applied.head;
                }
                events.extend(applied.events);
                Ok(())
            }
            Err(e) => {
                if !savepoints {
                    // The transaction is spoilt (PostgreSQL refuses every statement after
                    // an error): the caller rolls it back.
                    out.push(Err(e));
                    return (out, None);
                }
                // A failed rollback to the savepoint means the transaction is gone: the
                // connection dropped, or InnoDB rolled the whole transaction back (a
                // deadlock) and would run what follows outside any transaction. Nothing of
                // the group commits then; the caller rolls back.
                if let Err(lost) = tx.run("ROLLBACK TO SAVEPOINT crm_changeset").await {
                    out.push(Err(e));
                    let gone = Error::internal_msg(format!("the group's transaction was lost: {lost}"));
                    return (fail_all(out, &gone, total), None);
                }
                let _ = tx.run("RELEASE SAVEPOINT crm_changeset").await;
                Err(e)
            }
        };
        out.push(outcome);
    }
    if !events.is_empty() {
        match seal(tx, &mut head, &mut from, &mut events).await {
            Ok(()) => moved = true,
            Err(e) => return (fail_all(out, &e, total), None),
        }
    }
    let set = match (head, from) {
        (Some(h), Some(from)) if moved => match tx.set_head(&h, from).await {
            Ok(true) => Ok(Some(h)),
            Ok(false) => Err(Error::internal_msg("the audit chain moved under this writer's cached head")),
            Err(e) => Err(e),
        },
        _ => Ok(None),
    };
    match set {
        Ok(head) => (out, head),
        // Nothing of the group may commit without its head.
        Err(e) => (fail_all(out, &e, total), None),
    }
}

/// Every changeset of a group of `total` fails with `e`: those with an outcome already
/// and those not reached (nothing of the group may commit).
fn fail_all(out: Vec<Result<()>>, e: &Error, total: usize) -> Vec<Result<()>> {
    let n = out.len();
    out.into_iter()
        .map(|r| r.and_then(|()| Err(copy(e))))
        .chain(std::iter::repeat_with(|| Err(copy(e))).take(total - n))
        .collect()
}

/// Seals `events` after `head` (reading and locking the head row first if the group has
/// not yet: `from` then records where the group started) and inserts them.
async fn seal(
    tx: &mut dyn Tx,
    head: &mut Option<AuditHead>,
    from: &mut Option<i64>,
    events: &mut Vec<NewAuditEvent>,
) -> Result<()> {
    let mut at = match head.take() {
        Some(h) => h,
        None => {
            let h = tx.lock_head().await?;
            from.get_or_insert(h.seq);
            h
        }
    };
    let mut rows = Vec::with_capacity(events.len());
    for ev in events.drain(..) {
        let (sealed, next) = NewAuditEvent::seal(ev, &at);
        rows.push(sealed.into_row());
        at = next;
    }
    insert_rows(tx, EntityKind::AuditEvent, rows).await?;
    *head = Some(at);
    Ok(())
}

/// What one changeset's writes did (see [`apply_in`]).
struct Applied {
    /// The head after it, when it read or moved it.
    head: Option<AuditHead>,
    /// Did it move the head (adopting a copied chain's end)?
    adopted: bool,
    /// The sequence number it read from the head row, if it read it.
    read: Option<i64>,
    /// Its audit events, to be sealed with the group's.
    events: Vec<NewAuditEvent>,
}

/// What `apply` needs from a transaction, for either dialect.
#[async_trait]
pub(crate) trait Tx: Send {
    fn dialect(&self) -> Dialect;
    async fn exec(&mut self, kind: EntityKind, q: (String, Values)) -> Result<u64>;
    /// The first column of the first row, an integer, if there is a row.
    async fn fetch_int(&mut self, kind: EntityKind, q: (String, Values)) -> Result<Option<i64>>;
    async fn lock_head(&mut self) -> Result<AuditHead>;
    /// Moves the head to `head` if it still ends at `from`; did it?
    async fn set_head(&mut self, head: &AuditHead, from: i64) -> Result<bool>;
    /// Runs a fixed statement (the savepoints of a group).
    async fn run(&mut self, sql: &'static str) -> Result<()>;
    /// Inserts rows of one kind, no more than [`statements::insert_batch_rows`], in one
    /// statement.
    async fn insert(&mut self, kind: EntityKind, rows: Vec<Row>) -> Result<()> {
        let q = statements::insert(kind, rows, self.dialect())?;
        self.exec(kind, q).await.map(|_| ())
    }
}

/// Implements [`Tx`] for one dialect's transactions: they differ only in how parameters
/// are bound and in how the audit head row is locked.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! impl_tx {
    ($db:ty, $dialect:expr, $args:path, $lock_head:literal, $set_head:literal, $bulk_insert:path) => {
        #[async_trait]
        impl Tx for Transaction<'static, $db> {
            fn dialect(&self) -> Dialect {
                $dialect
            }
            async fn run(&mut self, sql: &'static str) -> Result<()> {
                sqlx::query(sql).execute(&mut **self).await.map(|_| ()).map_err(unavailable)
            }
            async fn exec(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<u64> {
                let args = $args(vals)?;
                let done = sqlx::query_with(&sql, args).execute(&mut **self).await;
                done.map(|r| r.rows_affected()).map_err(|e| map_err(kind, e))
            }
            async fn fetch_int(&mut self, kind: EntityKind, (sql, vals): (String, Values)) -> Result<Option<i64>> {
                let args = $args(vals)?;
                let row =
                    sqlx::query_with(&sql, args).fetch_optional(&mut **self).await.map_err(|e| map_err(kind, e))?;
                row.map(|r| r.try_get::<i64, _>(0)).transpose().map_err(|e| map_err(kind, e))
            }
            async fn lock_head(&mut self) -> Result<AuditHead> {
                let (seq, hash) = sqlx::query_as($lock_head)
                    .fetch_one(&mut **self)
                    .await
                    .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
                Ok(AuditHead { seq, hash })
            }
            async fn set_head(&mut self, head: &AuditHead, from: i64) -> Result<bool> {
                sqlx::query($set_head)
                    .bind(head.seq)
                    .bind(&head.hash)
                    .bind(from)
                    .execute(&mut **self)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err(|e| map_err(EntityKind::AuditEvent, e))
            }
            async fn insert(&mut self, kind: EntityKind, rows: Vec<Row>) -> Result<()> {
                if $bulk_insert(self, kind, &rows).await? {
                    return Ok(());
                }
                let q = statements::insert(kind, rows, $dialect)?;
                self.exec(kind, q).await.map(|_| ())
            }
        }
    };
}

#[cfg(feature = "postgres")]
impl_tx!(
    Postgres,
    Dialect::Postgres,
    values::pg_args,
    "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3",
    copy_rows
);

/// Inserts many rows with `COPY` (see [`crate::copy_in`]); false, having sent nothing,
/// when the rows are too few or do not fit `COPY`'s binary form.
#[cfg(feature = "postgres")]
async fn copy_rows(tx: &mut Transaction<'static, Postgres>, kind: EntityKind, rows: &[Row]) -> Result<bool> {
    if rows.len() < crate::copy_in::MIN_ROWS {
        return Ok(false);
    }
    let Some(data) = crate::copy_in::encode(kind, rows) else { return Ok(false) };
    let mut copy = tx.copy_in_raw(&crate::copy_in::statement(kind)).await.map_err(|e| map_err(kind, e))?;
    copy.send(data).await.map_err(|e| map_err(kind, e))?;
    copy.finish().await.map_err(|e| map_err(kind, e))?;
    Ok(true)
}

/// MariaDB has no binary bulk load over its protocol: the multi-row `INSERT` it is.
#[cfg(feature = "mysql")]
async fn never_bulk(_: &mut Transaction<'static, MySql>, _: EntityKind, _: &[Row]) -> Result<bool> {
    Ok(false)
}

// sqlx's MariaDB connections count the rows an `UPDATE` matched (not only those it
// changed), as `set_head` and the version check need. Text in a binary collation comes
// as bytes: the hash is read as characters.
#[cfg(feature = "mysql")]
impl_tx!(
    MySql,
    Dialect::MySql,
    values::mysql_args,
    "SELECT seq, CAST(hash AS CHAR) FROM audit_head WHERE id = 1 FOR UPDATE",
    "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ?",
    never_bulk
);

/// Inserts rows of one kind in as few statements as the parameter limits allow.
async fn insert_rows(tx: &mut dyn Tx, kind: EntityKind, rows: Vec<Row>) -> Result<()> {
    let per_statement = statements::insert_batch_rows(kind);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(per_statement).collect();
        tx.insert(kind, chunk).await?;
    }
    Ok(())
}

/// The record writes of one changeset, the same for every dialect. `head` is the audit
/// head as the group's earlier changesets left it (`None`: not read yet in this
/// transaction). Its audit events come back unsealed: [`run_group`] seals the group's
/// together.
async fn apply_in(tx: &mut dyn Tx, cs: Changeset, head: Option<AuditHead>) -> Result<Applied> {
    let d = tx.dialect();
    let Changeset { writes, audit } = cs;
    let mut head = head;
    // The sequence number this changeset read from the head row, and whether it moved
    // the head (by adopting a copied chain's end).
    let (mut read, mut adopted) = (None, false);
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
                let n = tx.exec(kind, statements::update(kind, row, expected_version, d)).await?;
                if n == 0 {
                    return Err(match tx.fetch_int(kind, statements::current_version(kind, &id, d)).await? {
                        Some(current) => Error::VersionConflict { current },
                        None => Error::NotFound { entity: kind.name() },
                    });
                }
            }
            Write::Purge { kind, column, id } => {
                tx.exec(kind, statements::purge(kind, column, id, d)?).await?;
            }
            Write::ClearReference { kind, column, id, at } => {
                tx.exec(kind, statements::clear_reference(kind, column, id, at, d)?).await?;
            }
            Write::PurgeExpired { kind, column, before } => {
                tx.exec(kind, statements::purge_expired(kind, column, before, d)?).await?;
            }
            Write::Reassign { kind, column, from, to, at } => {
                tx.exec(kind, statements::reassign(kind, column, from, to, at, d)?).await?;
            }
            Write::AdoptAuditHead { head: to } => {
                let current = match head.take() {
                    Some(h) => h,
                    None => {
                        let h = tx.lock_head().await?;
                        read = read.or(Some(h.seq));
                        h
                    }
                };
                if current.seq != 0 && current != to {
                    return Err(Error::Conflict {
                        message: format!("the audit chain here ends at event {} already", current.seq),
                        field: None,
                    });
                }
                head = Some(to);
                adopted = true;
            }
            Write::AssertEmpty { kind } => {
                // The head lock orders this check with every other writer, in any process.
                tx.lock_head().await?;
                if tx.fetch_int(kind, statements::any_row(kind, d)).await?.is_some() {
                    return Err(Error::Conflict {
                        message: format!("{} records exist already", kind.name()),
                        field: None,
                    });
                }
            }
        }
    }
    if let Some((k, rows)) = pending.take() {
        insert_rows(tx, k, rows).await?;
    }
    Ok(Applied { head, adopted, read, events: audit })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction whose `fail_at`-th record write fails, and whose rollback to a
    /// savepoint fails too when `lost` (InnoDB after a deadlock: the whole transaction is
    /// gone).
    struct Flaky {
        writes: usize,
        fail_at: usize,
        lost: bool,
        /// What the group did, in order: `exec <table>`, `lock`, `set <seq>`.
        log: Vec<String>,
    }

    #[async_trait]
    impl Tx for Flaky {
        fn dialect(&self) -> Dialect {
            Dialect::MySql
        }
        async fn exec(&mut self, kind: EntityKind, _: (String, Values)) -> Result<u64> {
            self.log.push(format!("exec {}", kind.table()));
            self.writes += 1;
            if self.writes == self.fail_at {
                return Err(Error::internal_msg("Deadlock found when trying to get lock"));
            }
            Ok(1)
        }
        async fn fetch_int(&mut self, _: EntityKind, _: (String, Values)) -> Result<Option<i64>> {
            Ok(None)
        }
        async fn lock_head(&mut self) -> Result<AuditHead> {
            self.log.push("lock".into());
            Ok(AuditHead { seq: 0, hash: String::new() })
        }
        async fn set_head(&mut self, head: &AuditHead, _: i64) -> Result<bool> {
            self.log.push(format!("set {}", head.seq));
            Ok(true)
        }
        async fn run(&mut self, sql: &'static str) -> Result<()> {
            if self.lost && sql.starts_with("ROLLBACK TO") {
                return Err(Error::internal_msg("SAVEPOINT crm_changeset does not exist"));
            }
            Ok(())
        }
    }

    fn purge() -> Changeset {
        Changeset {
            writes: vec![Write::Purge { kind: EntityKind::Contact, column: "id", id: uuid::Uuid::nil() }],
            audit: Vec::new(),
        }
    }

    /// A purge with one audit event.
    fn audited_purge() -> Changeset {
        let mut cs = purge();
        cs.audit.push(NewAuditEvent {
            id: uuid::Uuid::now_v7(),
            at: chrono::Utc::now(),
            actor_id: None,
            actor_role: None,
            action: "contact.purged".into(),
            entity_type: "contact".into(),
            entity_id: None,
            changes: serde_json::json!({}),
            request: serde_json::json!({}),
            key: None,
        });
        cs
    }

    /// Runs a group of `changes` whose second record write fails: each one's outcome,
    /// and what the transaction saw.
    fn run(changes: Vec<Changeset>, lost: bool) -> (Vec<bool>, Vec<String>) {
        let mut tx = Flaky { writes: 0, fail_at: 2, lost, log: Vec::new() };
        let outcome = {
            let run = run_group(&mut tx, changes, true, None);
            let mut run = std::pin::pin!(run);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            loop {
                if let std::task::Poll::Ready((out, _)) = std::future::Future::poll(run.as_mut(), &mut cx) {
                    break out.iter().map(Result::is_ok).collect();
                }
            }
        };
        (outcome, tx.log)
    }

    fn group(lost: bool) -> Vec<bool> {
        run(vec![purge(), purge(), purge()], lost).0
    }

    /// The head row (locked by every writer of every process) is taken once per group,
    /// after all of its record writes, and the events of the changesets that succeeded
    /// go in one statement.
    #[test]
    fn a_group_seals_its_events_after_its_record_writes() {
        let (out, log) = run(vec![audited_purge(), audited_purge(), audited_purge()], false);
        assert_eq!(out, [true, false, true]);
        assert_eq!(log, ["exec contacts", "exec contacts", "exec contacts", "lock", "exec audit_events", "set 2"]);
    }

    /// A failure rolled back to its savepoint stays with its changeset; a failure whose
    /// savepoint is gone with the transaction fails the whole group, so nothing runs on
    /// outside a transaction and nothing is reported done that was rolled back.
    #[test]
    fn a_lost_transaction_fails_the_whole_group() {
        assert_eq!(group(false), [true, false, true]);
        assert_eq!(group(true), [false, false, false]);
    }
}
