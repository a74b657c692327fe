//! # crm-storage-mongo
//!
//! The MongoDB backend of crm-rs, on the official `mongodb` driver: one collection per
//! kind of record (`users`, `contacts`, `companies`, `deals`, `tasks`, …, the names of
//! the SQL tables), fields named as the SQL columns, the id as `_id`.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! let store = crm_storage_mongo::MongoStore::connect("mongodb://127.0.0.1:27017/crm").await?;
//! let crm = crm_core::Crm::builder(Arc::new(store)).build();
//! # Ok(()) }
//! ```
//!
//! - **Types**: see [`bson_map`]: UUIDs as binary subtype 4, timestamps as BSON dates,
//!   money as Int64 minor units, NULL as a missing field; free JSON keys escaped.
//! - **Writes**: every [`Changeset`] is one multi-document transaction (record writes,
//!   audit events, outbox events and the audit head), retried on
//!   `TransientTransactionError` and committed again on `UnknownTransactionCommitResult`.
//!   Updates are conditional on the expected `version`. Changesets of one process are
//!   applied one at a time (the audit head is one document every changeset writes, so
//!   running them side by side only makes them conflict and retry); several processes
//!   are ordered by the transactions' write conflicts on that document.
//! - **Indexes**, created on connect (idempotent), generated from crm-core's declaration
//!   of each kind (the same names and keys as the SQL migrations; see [`indexes`] for
//!   how partial and unique indexes translate).
//! - **Search** has no text index: the `search_text` field (lower-cased by crm-core) is
//!   matched with an escaped, anchored regular expression.
//! - **Servers**: MongoDB 4.4+ as a replica set (transactions need one; Atlas is one) and
//!   SecantusDB (tested here). Nothing used is specific to either: no text indexes, no
//!   `$where`, no `mapReduce`, no server-side JavaScript.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crm_core::audit::{AuditHead, NewAuditEvent};
use crm_core::query::{Direction, Filter, StoreQuery};
use crm_core::schema::{EntityKind, Row, Value};
use crm_core::{Changeset, Error, Result, Store, Write};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use tokio::sync::Mutex;
use uuid::Uuid;

pub mod bson_map;
pub mod indexes;

/// The driver, for callers that reach the database directly.
pub use mongodb;

use bson_map::{from_doc, key, to_doc, uuid, LIVE};

/// The collection holding the end of the audit chain (one document, `_id: 1`).
const HEAD: &str = "audit_head";
/// How long a changeset keeps retrying transient transaction errors.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// The MongoDB store.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    /// Orders this process's changesets (see the crate docs).
    writer: Arc<Mutex<()>>,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore").field("database", &self.db.name()).finish()
    }
}

fn unavailable(e: mongodb::error::Error) -> Error {
    Error::internal("the database is unavailable", e)
}

/// How long a read may run on the server (`maxTimeMS`) before it gives up and the store
/// answers [`Error::Timeout`]: a little over the HTTP request's limit.
pub const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(40);

/// Did another transaction write the document first (`WriteConflict`, code 112)? The
/// server aborted this one so that the other could go on: the caller lost a race and may
/// try again, as with PostgreSQL's and MariaDB's serialization failures.
fn write_conflict(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Command(c) => c.code == 112,
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 112,
        _ => false,
    }
}

/// A driver error as crm-core's: duplicate keys become conflicts naming the field, a
/// write conflict a conflict to try again.
fn map_err(kind: EntityKind, e: mongodb::error::Error) -> Error {
    let text = e.to_string();
    if text.contains("E11000") || text.contains("duplicate key") {
        // "… duplicate key error collection: db.users index: users_email_key dup key: …"
        let index = text.rsplit_once(" index: ").and_then(|(_, rest)| rest.split_whitespace().next());
        return kind.unique_violation(index.map(|i| i.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')));
    }
    // 50: MaxTimeMSExpired.
    if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 50) {
        return Error::Timeout(format!("a {} query ran past its time limit", kind.name()));
    }
    if write_conflict(&e) {
        return Error::lost_race(kind.table());
    }
    if e.contains_label(TRANSIENT_TRANSACTION_ERROR) || matches!(*e.kind, mongodb::error::ErrorKind::Io(_)) {
        return unavailable(e);
    }
    Error::internal(format!("{} query failed", kind.name()), e)
}

impl MongoStore {
    /// Connects to `mongodb://…/<database>` (database `crm` when the URL names none) and
    /// creates the collections' indexes and the audit head when missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = mongodb::options::ClientOptions::parse(url)
            .await
            .map_err(|e| Error::invalid("database_url", "invalid_format", format!("not a MongoDB URL: {e}")))?;
        let name = options.default_database.clone().unwrap_or_else(|| "crm".to_string());
        Self::connect_to(url, &name).await
    }

    /// The same with the database named here.
    pub async fn connect_to(url: &str, database: &str) -> Result<Self> {
        let options = mongodb::options::ClientOptions::parse(url)
            .await
            .map_err(|e| Error::invalid("database_url", "invalid_format", format!("not a MongoDB URL: {e}")))?;
        Self::connect_with(options, database).await
    }

    /// The same with the driver's options built by the caller: a pool size, TLS
    /// settings, or monitors of the commands the store sends
    /// (`ClientOptions::command_event_handler`).
    pub async fn connect_with(options: mongodb::options::ClientOptions, database: &str) -> Result<Self> {
        let client = Client::with_options(options).map_err(unavailable)?;
        let store = Self { db: client.database(database), client, writer: Arc::new(Mutex::new(())) };
        store.ping().await?;
        store.prepare().await?;
        Ok(store)
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Drops the whole database (tests).
    pub async fn drop_database(&self) -> Result<()> {
        self.db.drop().await.map_err(unavailable)
    }

    fn coll(&self, kind: EntityKind) -> Collection<Document> {
        self.db.collection(kind.table())
    }

    /// Indexes and the audit head, idempotently. The indexes are crm-core's declarations
    /// ([`indexes`]); an index named like ours (`<collection>_…`) that is no longer
    /// declared is dropped, so an upgraded database holds what a new one does.
    async fn prepare(&self) -> Result<()> {
        for kind in EntityKind::ALL {
            let coll = self.coll(kind);
            let existing = indexes::live(&self.db, kind).await?;
            if existing.is_none() && kind.indexes().is_empty() {
                // A kind with no index besides `_id` gets its collection all the same.
                match self.db.create_collection(kind.table()).await {
                    Ok(()) => {}
                    // Made meanwhile by another process (NamespaceExists).
                    Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 48) => {}
                    Err(e) => return Err(map_err(kind, e)),
                }
            }
            if let Some(live) = existing {
                let prefix = format!("{}_", kind.table());
                for stale in live.indexes {
                    let declared = kind.indexes().iter().any(|i| i.name == stale.name);
                    if !declared && stale.name.starts_with(&prefix) {
                        coll.drop_index(&stale.name).await.map_err(|e| map_err(kind, e))?;
                    }
                }
            }
            let models: Vec<IndexModel> = kind.indexes().iter().map(indexes::model).collect();
            if !models.is_empty() {
                coll.create_indexes(models).await.map_err(|e| map_err(kind, e))?;
            }
        }
        let head = self.db.collection::<Document>(HEAD);
        let genesis = AuditHead::default();
        head.update_one(doc! { "_id": 1 }, doc! { "$setOnInsert": { "seq": genesis.seq, "hash": genesis.hash } })
            .upsert(true)
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        Ok(())
    }

    /// The query document of a list or a count.
    fn query(kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> Document {
        let mut parts = Vec::new();
        if !include_deleted && kind.soft_deletes() {
            // The same as `deleted_at` absent, as an equality an index can serve.
            parts.push(doc! { LIVE: true });
        }
        if let Some(f) = filter {
            parts.push(bson_map::filter(f));
        }
        bson_map::all_of(parts)
    }

    /// Runs one changeset in a transaction, retrying transient errors.
    async fn apply_with_retries(&self, changes: &Changeset) -> Result<()> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let mut session = self.client.start_session().await.map_err(unavailable)?;
            session.start_transaction().await.map_err(unavailable)?;
            let outcome = self.apply_in(&mut session, changes).await;
            let err = match outcome {
                Ok(()) => match commit(&mut session).await {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                },
                Err(Failure::Domain(e)) => {
                    let _ = session.abort_transaction().await;
                    return Err(e);
                }
                Err(Failure::Driver(kind, e)) => {
                    let _ = session.abort_transaction().await;
                    if !e.contains_label(TRANSIENT_TRANSACTION_ERROR) {
                        return Err(map_err(kind, e));
                    }
                    e
                }
            };
            if started.elapsed() > RETRY_FOR {
                // Other writers kept winning: the same answer as one lost race.
                return Err(if write_conflict(&err) { Error::lost_race("the same records") } else { unavailable(err) });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn apply_in(&self, s: &mut ClientSession, cs: &Changeset) -> std::result::Result<(), Failure> {
        let mut pending: Option<(EntityKind, Vec<Document>)> = None;
        for w in &cs.writes {
            if let Write::Insert { kind, row } = w {
                let d = to_doc(*kind, row).map_err(Failure::Domain)?;
                match &mut pending {
                    Some((k, docs)) if k == kind => docs.push(d),
                    _ => {
                        if let Some((k, docs)) = pending.take() {
                            self.insert(s, k, docs).await?;
                        }
                        pending = Some((*kind, vec![d]));
                    }
                }
                continue;
            }
            if let Some((k, docs)) = pending.take() {
                self.insert(s, k, docs).await?;
            }
            self.write(s, w).await?;
        }
        if let Some((k, docs)) = pending.take() {
            self.insert(s, k, docs).await?;
        }
        if cs.audit.is_empty() {
            return Ok(());
        }
        let heads = self.db.collection::<Document>(HEAD);
        let found = heads
            .find_one(doc! { "_id": 1 })
            .session(&mut *s)
            .await
            .map_err(|e| Failure::Driver(EntityKind::AuditEvent, e))?;
        let mut head = head_of(found).map_err(Failure::Domain)?;
        let before = head.seq;
        let mut docs = Vec::with_capacity(cs.audit.len());
        for ev in &cs.audit {
            let (sealed, next) = NewAuditEvent::seal(ev.clone(), &head);
            docs.push(to_doc(EntityKind::AuditEvent, &sealed.into_row()).map_err(Failure::Domain)?);
            head = next;
        }
        self.insert(s, EntityKind::AuditEvent, docs).await?;
        // Conditional on the head read above: another process that moved it meanwhile
        // makes this a write conflict, and the changeset runs again on the new head.
        heads
            .update_one(doc! { "_id": 1, "seq": before }, doc! { "$set": { "seq": head.seq, "hash": &head.hash } })
            .session(&mut *s)
            .await
            .map_err(|e| Failure::Driver(EntityKind::AuditEvent, e))?;
        Ok(())
    }

    async fn insert(
        &self,
        s: &mut ClientSession,
        kind: EntityKind,
        docs: Vec<Document>,
    ) -> std::result::Result<(), Failure> {
        self.coll(kind).insert_many(docs).session(&mut *s).await.map(|_| ()).map_err(|e| Failure::Driver(kind, e))
    }

    async fn write(&self, s: &mut ClientSession, w: &Write) -> std::result::Result<(), Failure> {
        let drv = |kind: EntityKind| move |e| Failure::Driver(kind, e);
        match w {
            Write::Insert { .. } => Ok(()),
            Write::Update { kind, row, expected_version } => {
                let d = to_doc(*kind, row).map_err(Failure::Domain)?;
                let id = match row.first() {
                    Some(Value::Uuid(u)) => *u,
                    _ => return Err(Failure::Domain(Error::internal_msg("an update without an id"))),
                };
                let mut filter = doc! { "_id": uuid(id) };
                if kind.versioned() {
                    filter.insert("version", *expected_version);
                }
                let coll = self.coll(*kind);
                let done = coll.replace_one(filter, d).session(&mut *s).await.map_err(drv(*kind))?;
                if done.matched_count == 0 {
                    let current = coll.find_one(doc! { "_id": uuid(id) }).session(&mut *s).await.map_err(drv(*kind))?;
                    return Err(Failure::Domain(match current.and_then(|d| d.get_i64("version").ok()) {
                        Some(current) => Error::VersionConflict { current },
                        None => Error::NotFound { entity: kind.name() },
                    }));
                }
                Ok(())
            }
            Write::Purge { kind, column, id } => {
                let c = kind.require_column(column).map_err(Failure::Domain)?;
                self.coll(*kind).delete_many(doc! { key(c): uuid(*id) }).session(&mut *s).await.map_err(drv(*kind))?;
                Ok(())
            }
            Write::PurgeExpired { kind, column, before } => {
                let c = kind.require_column(column).map_err(Failure::Domain)?;
                let before = mongodb::bson::DateTime::from_millis(before.timestamp_millis());
                self.coll(*kind)
                    .delete_many(doc! { key(c): { "$lt": before } })
                    .session(&mut *s)
                    .await
                    .map_err(drv(*kind))?;
                Ok(())
            }
            Write::ClearReference { kind, column, id, at } => self.set_where(s, *kind, column, *id, None, *at).await,
            Write::Reassign { kind, column, from, to, at } => {
                self.set_where(s, *kind, column, *from, Some(*to), *at).await
            }
            Write::AdoptAuditHead { head } => {
                // Conditional on the chain here being empty or ending at `head` already;
                // writing the head orders this with every other writer.
                let empty = AuditHead::default();
                let done = self
                    .db
                    .collection::<Document>(HEAD)
                    .update_one(
                        doc! { "_id": 1, "$or": [
                            { "seq": empty.seq, "hash": &empty.hash },
                            { "seq": head.seq, "hash": &head.hash },
                        ] },
                        doc! { "$set": { "seq": head.seq, "hash": &head.hash } },
                    )
                    .session(&mut *s)
                    .await
                    .map_err(drv(EntityKind::AuditEvent))?;
                if done.matched_count == 0 {
                    return Err(Failure::Domain(Error::Conflict {
                        message: "the audit chain here holds other events already".into(),
                        field: None,
                    }));
                }
                Ok(())
            }
            Write::AssertEmpty { kind } => {
                // Writing the head orders this check with every other writer, in any process.
                self.db
                    .collection::<Document>(HEAD)
                    .update_one(doc! { "_id": 1 }, doc! { "$inc": { "checks": 1_i64 } })
                    .session(&mut *s)
                    .await
                    .map_err(drv(EntityKind::AuditEvent))?;
                let any = self.coll(*kind).find_one(Document::new()).session(&mut *s).await.map_err(drv(*kind))?;
                if any.is_some() {
                    return Err(Failure::Domain(Error::Conflict {
                        message: format!("{} records exist already", kind.name()),
                        field: None,
                    }));
                }
                Ok(())
            }
        }
    }

    /// `column = to` (or absent), `version + 1`, `updated_at = at` where `column = from`.
    async fn set_where(
        &self,
        s: &mut ClientSession,
        kind: EntityKind,
        column: &str,
        from: Uuid,
        to: Option<Uuid>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> std::result::Result<(), Failure> {
        let c = kind.require_column(column).map_err(Failure::Domain)?;
        let field = key(c);
        let mut update = Document::new();
        let mut set = Document::new();
        match to {
            Some(to) => {
                set.insert(field, uuid(to));
            }
            None => {
                update.insert("$unset", doc! { field: "" });
            }
        }
        if kind.column("updated_at").is_some() {
            set.insert("updated_at", mongodb::bson::DateTime::from_millis(at.timestamp_millis()));
        }
        if !set.is_empty() {
            update.insert("$set", set);
        }
        if kind.versioned() {
            update.insert("$inc", doc! { "version": 1_i64 });
        }
        self.coll(kind)
            .update_many(doc! { field: uuid(from) }, update)
            .session(&mut *s)
            .await
            .map(|_| ())
            .map_err(|e| Failure::Driver(kind, e))
    }
}

/// The audit head as its document holds it.
fn head_of(found: Option<Document>) -> Result<AuditHead> {
    let d = found.ok_or_else(|| Error::internal_msg("the audit head is missing"))?;
    Ok(AuditHead {
        seq: d.get_i64("seq").map_err(|e| Error::internal("audit head", e))?,
        hash: d.get_str("hash").map_err(|e| Error::internal("audit head", e))?.to_string(),
    })
}

/// Why a changeset's transaction stopped: a rule of the domain (answered as is) or the
/// driver (retried when transient).
enum Failure {
    Domain(Error),
    Driver(EntityKind, mongodb::error::Error),
}

async fn commit(s: &mut ClientSession) -> std::result::Result<(), mongodb::error::Error> {
    loop {
        match s.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn get(&self, kind: EntityKind, id: Uuid) -> Result<Option<Row>> {
        let found = self.coll(kind).find_one(doc! { "_id": uuid(id) }).await.map_err(|e| map_err(kind, e))?;
        found.map(|d| from_doc(kind, d)).transpose()
    }

    async fn list(&self, kind: EntityKind, query: &StoreQuery) -> Result<Vec<Row>> {
        let mut sort = Document::new();
        for k in &query.sort {
            sort.insert(key(k.column), if k.direction == Direction::Asc { 1 } else { -1 });
        }
        let filter = Self::query(kind, query.filter.as_ref(), query.include_deleted);
        let cursor = self
            .coll(kind)
            .find(filter)
            .sort(sort)
            .limit(i64::from(query.limit))
            .max_time(MAX_TIME)
            .await
            .map_err(|e| map_err(kind, e))?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(|e| map_err(kind, e))?;
        docs.into_iter().map(|d| from_doc(kind, d)).collect()
    }

    /// `findOneAndUpdate` row by row: each takes one due document atomically, so two
    /// workers (in any process) never take the same one.
    async fn claim(&self, claim: &crm_core::Claim) -> Result<Vec<Row>> {
        let kind = claim.kind;
        let mut sort = Document::new();
        for k in &claim.query.sort {
            sort.insert(key(k.column), if k.direction == Direction::Asc { 1 } else { -1 });
        }
        let filter = Self::query(kind, claim.query.filter.as_ref(), claim.query.include_deleted);
        let lease = kind.require_column(claim.lease_column)?;
        let mut set = Document::new();
        set.insert(
            key(lease),
            bson_map::to_bson(lease, &Value::Timestamp(claim.until)).unwrap_or(mongodb::bson::Bson::Null),
        );
        let mut inc = doc! { "version": 1_i64 };
        if let Some(name) = claim.count_column {
            inc.insert(key(kind.require_column(name)?), 1_i64);
        }
        let update = doc! { "$set": set, "$inc": inc };
        let mut taken = Vec::new();
        let mut misses = 0;
        while taken.len() < claim.query.limit as usize {
            let found = self
                .coll(kind)
                .find_one_and_update(filter.clone(), update.clone())
                .sort(sort.clone())
                .return_document(mongodb::options::ReturnDocument::After)
                .max_time(MAX_TIME)
                .await
                .map_err(|e| map_err(kind, e))?;
            match found {
                Some(d) => taken.push(from_doc(kind, d)?),
                None => {
                    // The document it chose may have been taken by another worker in the
                    // meantime: look again while any is left.
                    let left = self
                        .coll(kind)
                        .count_documents(filter.clone())
                        .limit(1)
                        .max_time(MAX_TIME)
                        .await
                        .map_err(|e| map_err(kind, e))?;
                    misses += 1;
                    if left == 0 || misses > 5 {
                        break;
                    }
                }
            }
        }
        Ok(taken)
    }

    async fn count(&self, kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> Result<u64> {
        self.coll(kind)
            .count_documents(Self::query(kind, filter, include_deleted))
            .max_time(MAX_TIME)
            .await
            .map_err(|e| map_err(kind, e))
    }

    async fn apply(&self, changes: Changeset) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let _turn = self.writer.lock().await;
        self.apply_with_retries(&changes).await
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        let found = self
            .db
            .collection::<Document>(HEAD)
            .find_one(doc! { "_id": 1 })
            .await
            .map_err(|e| map_err(EntityKind::AuditEvent, e))?;
        head_of(found)
    }

    async fn ping(&self) -> Result<()> {
        self.db.run_command(doc! { "ping": 1 }).await.map(|_| ()).map_err(unavailable)
    }

    async fn live_schema(&self) -> Result<crm_core::schema_check::LiveSchema> {
        let mut tables = Vec::new();
        for kind in EntityKind::ALL {
            tables.extend(indexes::live(&self.db, kind).await?);
        }
        Ok(crm_core::schema_check::LiveSchema { tables, column_type: None, index_form: indexes::form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_error(code: i32, name: &str) -> std::result::Result<mongodb::error::Error, mongodb::bson::de::Error> {
        let c: mongodb::error::CommandError =
            mongodb::bson::from_document(doc! { "code": code, "codeName": name, "errmsg": "from the server" })?;
        Ok(mongodb::error::Error::from(mongodb::error::ErrorKind::Command(c)))
    }

    /// A transaction another one beat to a document is a conflict to try again (409),
    /// as on PostgreSQL and MariaDB, not an internal error.
    #[test]
    fn a_write_conflict_is_a_conflict() -> std::result::Result<(), mongodb::bson::de::Error> {
        let e = map_err(EntityKind::SchedulerLease, command_error(112, "WriteConflict")?);
        assert!(
            matches!(&e, Error::Conflict { message, field: None } if message.contains("scheduler_leases")),
            "{e:?}"
        );
        let other = map_err(EntityKind::SchedulerLease, command_error(2, "BadValue")?);
        assert!(matches!(other, Error::Internal { .. }), "{other:?}");
        Ok(())
    }
}
