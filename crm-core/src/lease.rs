//! Scheduler leadership: which replica runs a periodic job. Every `crm-server` (and
//! `worker`) runs the same timers (billing runs, the sweep of expired sessions, acting on
//! payment events); before each run it asks for the job's lease, and only the holder
//! runs. A lease is a row of `scheduler_leases` per job name, taken through
//! [`Store::claim`](crate::Store::claim) (`FOR UPDATE SKIP LOCKED` on PostgreSQL and
//! MariaDB, the one writer on SQLite, a conditional update on MongoDB) when it has run
//! out or is the caller's already, so the same code gives one holder on every backend. A
//! holder that dies is replaced once its lease runs out; one that stops cleanly hands the
//! lease back ([`Leases::release`]).
//!
//! Leadership saves duplicate work; it is not what makes a job run once. The jobs claim
//! each row they act on (an invoice period, a delivery), so two holders at once (a lease
//! taken over from a holder that was only slow) still do each thing once.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, Column, ColumnType as T, EntityKind, Index, Persist, Value};
use crate::store::{Changeset, Claim, Write};
use crate::Crm;

/// The lease of one periodic job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerLease {
    /// The row's id.
    pub id: Uuid,
    /// The job (`billing.subscriptions`), unique.
    pub name: String,
    /// Who holds it (see [`holder_name`]); `None` once handed back.
    pub holder: Option<String>,
    /// Until when; after that anyone may take it.
    pub held_until: DateTime<Utc>,
    /// How many times it changed hands.
    pub handovers: i64,
    /// Version.
    pub version: i64,
}

impl Persist for SchedulerLease {
    const KIND: EntityKind = EntityKind::SchedulerLease;
}

/// Storage columns of scheduler leases.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).filter(),
    Column::new("holder", "holder", T::Text).null().filter(),
    Column::new("held_until", "heldUntil", T::Timestamp).filter().sort(),
    Column::new("handovers", "handovers", T::Int),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `scheduler_leases` besides the primary key.
pub static INDEXES: &[Index] = &[Index::on("scheduler_leases_name_key", &["name"]).unique()];

/// A name for this process as a lease holder: host, process id and a random part (two
/// processes in two containers may share a host name and a pid).
pub fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    // A v7 id ends in random bits.
    let random = Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[24..])
}

/// The lease operations of an engine (`Crm::leases`).
pub struct Leases<'a> {
    crm: &'a Crm,
}

impl Crm {
    /// Scheduler leases: which replica runs each periodic job.
    pub fn leases(&self) -> Leases<'_> {
        Leases { crm: self }
    }
}

fn column(name: &str) -> Result<&'static Column> {
    EntityKind::SchedulerLease.require_column(name)
}

fn check(name: &str, holder: &str, ttl: Duration) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(Error::invalid("name", "invalid_value", "a lease's name is 1 to 200 characters"));
    }
    if holder.trim().is_empty() || holder.len() > 200 {
        return Err(Error::invalid("holder", "invalid_value", "a lease's holder is 1 to 200 characters"));
    }
    if ttl <= Duration::zero() || ttl > Duration::days(1) {
        return Err(Error::invalid("ttl", "out_of_range", "a lease lasts more than nothing and at most a day"));
    }
    Ok(())
}

impl Leases<'_> {
    /// Takes the lease `name` for `holder` until `ttl` from now, or keeps it that long
    /// when `holder` has it already. `true` when `holder` holds it on return; `false`
    /// while someone else's runs.
    pub async fn hold(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        check(name, holder, ttl)?;
        let kind = EntityKind::SchedulerLease;
        let now = self.crm.now();
        let text = |s: &str| Value::Text(s.to_string());
        let claim = Claim {
            kind,
            query: StoreQuery {
                filter: Some(Filter::And(vec![
                    Filter::Cmp(Cmp { column: column("name")?, pred: Predicate::Eq(text(name)) }),
                    Filter::Or(vec![
                        Filter::Cmp(Cmp { column: column("held_until")?, pred: Predicate::Lte(Value::Timestamp(now)) }),
                        Filter::Cmp(Cmp { column: column("holder")?, pred: Predicate::Eq(text(holder)) }),
                    ]),
                ])),
                sort: vec![SortKey { column: column("id")?, direction: Direction::Asc }],
                limit: 1,
                include_deleted: true,
            },
            lease_column: "held_until",
            until: now + ttl,
            count_column: None,
        };
        let claimed = match self.crm.store().claim(&claim).await {
            Ok(rows) => rows,
            // The database chose another replica's claim (an InnoDB deadlock between two
            // claims of one row): that one holds it.
            Err(Error::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let taken: Vec<SchedulerLease> = claimed.into_iter().map(crate::schema::from_row).collect::<Result<_>>()?;
        if let Some(lease) = taken.into_iter().next() {
            if lease.holder.as_deref() == Some(holder) {
                return Ok(true);
            }
            // Ours until `now + ttl`: no other claim takes it meanwhile, so this update
            // meets the version the claim left.
            let after = SchedulerLease {
                holder: Some(holder.to_string()),
                handovers: lease.handovers + 1,
                version: lease.version + 1,
                ..lease.clone()
            };
            let write = Write::Update { kind, row: to_row(&after)?, expected_version: lease.version };
            return match self.crm.store().apply(Changeset { writes: vec![write], audit: Vec::new() }).await {
                Ok(()) => Ok(true),
                Err(Error::VersionConflict { .. } | Error::Conflict { .. }) => Ok(false),
                Err(e) => Err(e),
            };
        }
        if self.get(name).await?.is_some() {
            return Ok(false);
        }
        // The job's first lease: whoever inserts it first holds it.
        let lease = SchedulerLease {
            id: self.crm.new_id(now),
            name: name.to_string(),
            holder: Some(holder.to_string()),
            held_until: now + ttl,
            handovers: 0,
            version: 1,
        };
        let write = Write::Insert { kind, row: to_row(&lease)? };
        match self.crm.store().apply(Changeset { writes: vec![write], audit: Vec::new() }).await {
            Ok(()) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Hands the lease back (a server stopping cleanly), so another replica takes it at
    /// its next tick. Nothing happens unless `holder` holds it.
    pub async fn release(&self, name: &str, holder: &str) -> Result<()> {
        let Some(lease) = self.get(name).await? else { return Ok(()) };
        let now = self.crm.now();
        if lease.holder.as_deref() != Some(holder) || lease.held_until <= now {
            return Ok(());
        }
        let after = SchedulerLease { holder: None, held_until: now, version: lease.version + 1, ..lease.clone() };
        let write =
            Write::Update { kind: EntityKind::SchedulerLease, row: to_row(&after)?, expected_version: lease.version };
        match self.crm.store().apply(Changeset { writes: vec![write], audit: Vec::new() }).await {
            // Taken over meanwhile: it is no longer ours to give.
            Ok(()) | Err(Error::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The lease of `name`, if it was ever taken.
    pub async fn get(&self, name: &str) -> Result<Option<SchedulerLease>> {
        self.crm.find_by("name", Value::Text(name.to_string())).await
    }
}
