//! The storage contract every backend implements.
//!
//! A backend implements [`Store`]: a handful of generic methods over [`EntityKind`]s and
//! typed [`Row`]s. The typed, per-aggregate conveniences live in [`StoreExt`], a blanket
//! extension, so no backend can get one aggregate subtly wrong. All writes go through
//! [`Store::apply`], which commits the record writes, the audit events and the outbox
//! events of one [`Changeset`] together, or none of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditHead, NewAuditEvent};
use crate::error::Result;
use crate::query::{Filter, StoreQuery};
use crate::schema::{from_row, EntityKind, Persist, Row, Value};

/// One record write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert a new row. A unique key collision is [`crate::Error::Conflict`] naming the field.
    Insert {
        /// The table or collection written.
        kind: EntityKind,
        /// The row, in the kind's column order.
        row: Row,
    },
    /// Replace a row, only if its stored version is `expected_version`; otherwise
    /// [`crate::Error::VersionConflict`] with the current version (or `NotFound`).
    Update {
        /// The table or collection written.
        kind: EntityKind,
        /// The new row (its `version` already raised by core).
        row: Row,
        /// The version the change was computed from.
        expected_version: i64,
    },
    /// Delete, for good, every row whose `column` equals `id`.
    Purge {
        /// The table or collection purged.
        kind: EntityKind,
        /// Storage column (`id`, or a parent reference such as `deal_id`).
        column: &'static str,
        /// The id.
        id: Uuid,
    },
    /// Delete, for good, every row whose timestamp `column` is before `before`: expired
    /// sessions, tokens and idempotency records.
    PurgeExpired {
        /// The table or collection purged.
        kind: EntityKind,
        /// A timestamp column (`expires_at`).
        column: &'static str,
        /// The cut-off.
        before: DateTime<Utc>,
    },
    /// Fail the changeset with [`crate::Error::Conflict`] unless `kind` has no rows at
    /// all (soft-deleted ones included). Checked under the same lock that orders audit
    /// events, so two changesets asserting the same can never both pass (the first
    /// admin of an empty store).
    AssertEmpty {
        /// The table or collection that must be empty.
        kind: EntityKind,
    },
    /// Move the end of the audit chain to `head`: the last of audit events stored as
    /// they are (inserts of [`EntityKind::AuditEvent`] rows already sealed elsewhere), when
    /// a whole CRM is carried to another store ([`crate::copy`]). Fails with
    /// [`crate::Error::Conflict`] unless the chain here is empty or already ends at
    /// `head`; checked under the head's lock.
    AdoptAuditHead {
        /// The chain's last sequence number and hash.
        head: AuditHead,
    },
    /// Set `column` to `to` (and raise `version`, set `updated_at`) on every row whose
    /// `column` equals `from`: records handed from one user to another.
    Reassign {
        /// The table or collection written.
        kind: EntityKind,
        /// Storage column.
        column: &'static str,
        /// The old value.
        from: Uuid,
        /// The new value.
        to: Uuid,
        /// The time of the change.
        at: DateTime<Utc>,
    },
    /// Set `column` to NULL (and raise `version`, set `updated_at`) on every row whose
    /// `column` equals `id`: references to a purged record.
    ClearReference {
        /// The table or collection written.
        kind: EntityKind,
        /// Storage column.
        column: &'static str,
        /// The id no longer referenced.
        id: Uuid,
        /// The time of the change.
        at: DateTime<Utc>,
    },
}

/// Everything one service call changes: committed together or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changeset {
    /// Record writes, in order (outbox events are inserts of [`EntityKind::OutboxEvent`]).
    pub writes: Vec<Write>,
    /// Audit events, sealed into the chain by the store in this order.
    pub audit: Vec<NewAuditEvent>,
}

impl Changeset {
    /// Is there nothing to do?
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.audit.is_empty()
    }
}

/// Due rows taken for one worker: see [`Store::claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The kind (it has `id` and `version` columns).
    pub kind: EntityKind,
    /// Which rows, in which order, how many. The filter must leave out rows whose
    /// lease is still running (`lease_column <= now`), or a claim takes them again.
    pub query: StoreQuery,
    /// A timestamp column set to `until` on the rows taken: their lease.
    pub lease_column: &'static str,
    /// The end of the lease.
    pub until: DateTime<Utc>,
    /// An integer column raised by one on the rows taken (the attempts), if any.
    pub count_column: Option<&'static str>,
}

/// A storage backend.
///
/// Contract for implementors (checked by the conformance suite in `tests/`):
/// - rows are in the column order of their kind; values round-trip exactly;
/// - `get` returns soft-deleted rows too (core decides what callers see);
/// - `list` applies the filter, hides soft-deleted rows unless asked, sorts by the keys
///   with NULL as the smallest value, and returns at most `limit` rows;
/// - text compares and sorts by bytes (binary collation);
/// - `apply` is atomic: the writes run in order, then the audit head is locked, each
///   audit event is sealed after it and stored, and the head moves, in one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name (`sqlite`, `postgres`, `mongo`).
    fn backend(&self) -> &'static str;

    /// One row by id.
    async fn get(&self, kind: EntityKind, id: Uuid) -> Result<Option<Row>>;

    /// Rows matching a query.
    async fn list(&self, kind: EntityKind, query: &StoreQuery) -> Result<Vec<Row>>;

    /// Rows matching a query with only some of their columns: each row holds the values
    /// of `columns` (positions in the kind's column order), in that order. For readers of
    /// many rows and few columns (the analytics snapshot). The default reads whole rows.
    async fn list_columns(&self, kind: EntityKind, query: &StoreQuery, columns: &[usize]) -> Result<Vec<Row>> {
        let rows = self.list(kind, query).await?;
        Ok(rows
            .into_iter()
            .map(|r| columns.iter().map(|&i| r.get(i).cloned().unwrap_or(Value::Null)).collect())
            .collect())
    }

    /// Every row matching `filter` (live rows only unless `include_deleted`) with only the
    /// chosen `columns`, in id order: a bulk read. The default pages through
    /// [`Store::list_columns`] by id; backends override it with one streaming read
    /// (PostgreSQL's binary `COPY`, a direct SQLite statement).
    async fn scan_columns(
        &self,
        kind: EntityKind,
        filter: Option<&Filter>,
        include_deleted: bool,
        columns: &[usize],
    ) -> Result<Vec<Row>> {
        page_through(self, kind, filter, include_deleted, columns, None).await
    }

    /// [`Store::scan_columns`] handing its rows over as they are read, a batch at a time,
    /// into `out` (bounded, so a reader of a large table holds a few batches, whatever
    /// the table's size: the analytics snapshot builds its frames from them). Stops
    /// early, without an error, when the receiver is gone. The default sends the pages of
    /// [`Store::list_columns`]; backends override it with their streaming read.
    async fn scan_batches(
        &self,
        kind: EntityKind,
        filter: Option<&Filter>,
        include_deleted: bool,
        columns: &[usize],
        out: RowBatches,
    ) -> Result<()> {
        page_through(self, kind, filter, include_deleted, columns, Some(&out)).await.map(|_| ())
    }

    /// Takes the rows a [`Claim`] describes for one worker and returns them as taken
    /// (lease set, count and `version` raised). Two claims running at once, in one
    /// process or in several, never take the same row. The default reads the rows and
    /// takes each with a versioned update, skipping the ones another worker took first;
    /// backends override it with one statement (PostgreSQL `FOR UPDATE SKIP LOCKED`,
    /// MongoDB `findOneAndUpdate`).
    async fn claim(&self, claim: &Claim) -> Result<Vec<Row>> {
        let kind = claim.kind;
        let lease = kind.require_column(claim.lease_column)?;
        let positions = |name: &str| kind.columns().iter().position(|c| c.name == name);
        let lease_at = positions(lease.name).ok_or_else(|| crate::Error::internal_msg("no lease column"))?;
        let version_at = positions("version").ok_or_else(|| crate::Error::internal_msg("no version column"))?;
        let count_at = claim.count_column.and_then(positions);
        let mut taken = Vec::new();
        for mut row in self.list(kind, &claim.query).await? {
            let Some(Value::Int(version)) = row.get(version_at).cloned() else { continue };
            row[lease_at] = Value::Timestamp(claim.until);
            row[version_at] = Value::Int(version + 1);
            if let Some(i) = count_at {
                if let Some(Value::Int(n)) = row.get(i).cloned() {
                    row[i] = Value::Int(n + 1);
                }
            }
            let write = Write::Update { kind, row: row.clone(), expected_version: version };
            match self.apply(Changeset { writes: vec![write], audit: vec![] }).await {
                Ok(()) => taken.push(row),
                Err(crate::Error::VersionConflict { .. } | crate::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    /// How many rows match a filter.
    async fn count(&self, kind: EntityKind, filter: Option<&Filter>, include_deleted: bool) -> Result<u64>;

    /// Commits a changeset atomically.
    async fn apply(&self, changes: Changeset) -> Result<()>;

    /// The end of the audit chain.
    async fn audit_head(&self) -> Result<AuditHead>;

    /// Is the store reachable?
    async fn ping(&self) -> Result<()>;

    /// The tables and indexes the database holds, to compare with crm-core's
    /// declarations ([`crate::schema_check::differences`]).
    async fn live_schema(&self) -> Result<crate::schema_check::LiveSchema>;
}

/// The rows of a bulk read on their way to its reader ([`Store::scan_batches`]).
pub type RowBatches = tokio::sync::mpsc::Sender<Vec<Row>>;

/// Pages through [`Store::list_columns`] by id, `BATCH` (10,000) rows at a time: each
/// page goes to `out` (before the next is read), or into the answer when there is no
/// `out`. The default bulk read, and a backend's own for the reads its streaming form
/// cannot serve.
pub async fn page_through<S: Store + ?Sized>(
    store: &S,
    kind: EntityKind,
    filter: Option<&Filter>,
    include_deleted: bool,
    columns: &[usize],
    out: Option<&RowBatches>,
) -> Result<Vec<Row>> {
    const BATCH: u32 = 10_000;
    let sort = vec![crate::query::id_key(kind, crate::query::Direction::Asc)];
    // The id leads every fetched row: it is the keyset cursor.
    let fetched: Vec<usize> = std::iter::once(0).chain(columns.iter().copied()).collect();
    let mut all = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let position = after.as_ref().and_then(|v| crate::query::keyset_filter(&sort, std::slice::from_ref(v)));
        let query = StoreQuery {
            filter: crate::query::and_opt([filter.cloned(), position]),
            sort: sort.clone(),
            limit: BATCH,
            include_deleted,
        };
        let mut rows = store.list_columns(kind, &query, &fetched).await?;
        let n = rows.len();
        after = rows.last().and_then(|r| r.first().cloned());
        for r in &mut rows {
            r.remove(0);
        }
        match out {
            Some(out) => {
                if out.send(rows).await.is_err() {
                    return Ok(all);
                }
            }
            None => all.extend(rows),
        }
        if n < BATCH as usize {
            return Ok(all);
        }
    }
}

/// Typed conveniences over any [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// One record by id, typed.
    async fn get_as<T: Persist>(&self, id: Uuid) -> Result<Option<T>> {
        match self.get(T::KIND, id).await? {
            Some(row) => Ok(Some(from_row(row)?)),
            None => Ok(None),
        }
    }

    /// Records matching a query, typed.
    async fn list_as<T: Persist>(&self, query: &StoreQuery) -> Result<Vec<T>> {
        self.list(T::KIND, query).await?.into_iter().map(from_row).collect()
    }

    /// A counter that moves on every change (the audit sequence), for caches.
    async fn change_counter(&self) -> Result<i64> {
        Ok(self.audit_head().await?.seq)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
