//! The analytics tables read out of the store: a snapshot within the caller's read scope,
//! read with the store's bulk scan (`Store::scan_columns`: PostgreSQL's binary `COPY`, a
//! direct SQLite statement, batches elsewhere) and cached. When the store's change counter
//! has moved, the cached snapshot is brought up to date with what the audit log says
//! changed since (`refresh`); a cold cache or a long run of changes reads it all again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use polars::prelude::*;

use super::{from_polars, Tables};
use crate::error::Result;
use crate::model::company::size_bucket;
use crate::policy::{Action, Actor, Scope};
use crate::query::{Cmp, Filter, Predicate};
use crate::schema::{ColumnType, Derive, EntityKind, Exposed, Value};
use crate::service::{write_path::scope_filter, Crm};
use crate::store::StoreExt;

/// Snapshots kept per process (one per distinct scope), the least recently made dropped first.
const CACHED: usize = 4;

/// The cache's bound in bytes where the process's memory cannot be read.
const FALLBACK_CACHE_BYTES: usize = 512 * 1024 * 1024;

/// The bytes the cached snapshots may hold together when [`crate::CrmConfig`] names no
/// bound: a quarter of the memory this process may use (its cgroup's limit when lower than
/// the machine's memory: a container's, a systemd unit's `MemoryMax`); 512 MiB where
/// neither can be read. A CRM of a million deals and five million interactions takes
/// about 1.8 GB of frames.
pub fn default_cache_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let files = limit_files(&read("/proc/self/cgroup").unwrap_or_default());
        let limits: Vec<String> = files.iter().filter_map(|f| read(f)).collect();
        let limits: Vec<&str> = limits.iter().map(String::as_str).collect();
        memory_limit(&limits, read("/proc/meminfo").as_deref())
            .map_or(FALLBACK_CACHE_BYTES, |bytes| usize::try_from(bytes / 4).unwrap_or(usize::MAX))
    })
}

/// The files that may hold this process's memory limit: the cgroup root's (a container's
/// own, under a cgroup namespace) and those of the process's own cgroups as
/// `/proc/self/cgroup` names them (v2 `memory.max`, v1 `memory.limit_in_bytes`).
fn limit_files(proc_cgroup: &str) -> Vec<String> {
    let mut files =
        vec!["/sys/fs/cgroup/memory.max".to_string(), "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string()];
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let path = path.trim().trim_end_matches('/');
        if path.is_empty() || path.split('/').any(|p| p == "..") {
            continue;
        }
        if controllers.is_empty() {
            files.push(format!("/sys/fs/cgroup{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            files.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
        }
    }
    files
}

/// The memory a process may use, in bytes: the least of the cgroup limits given (v2's
/// `max`, or v1's number near 2^63, is no limit) and `/proc/meminfo`'s `MemTotal`.
fn memory_limit(limits: &[&str], meminfo: Option<&str>) -> Option<u64> {
    let number = |text: &&str| text.trim().parse::<u64>().ok().filter(|n| *n > 0);
    let total = meminfo.and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb.saturating_mul(1024))
    });
    limits.iter().filter_map(number).chain(total).min()
}

/// The memory a frame's columns hold, in bytes: polars' estimate, except for text, where
/// polars counts the text's bytes alone. A text column holds a 16-byte view a row (with
/// a text of up to 12 bytes inside it) and buffers of the longer texts, counted here once
/// each however many slices of the column share them: a column of ids takes 52 bytes a
/// row, where polars' estimate says 36.
pub fn frame_bytes(df: &DataFrame) -> usize {
    let mut seen: HashSet<usize> = HashSet::new();
    df.columns()
        .iter()
        .map(|c| match c.str() {
            Ok(text) => {
                let buffers: usize = text
                    .downcast_iter()
                    .flat_map(|arr| arr.data_buffers().iter())
                    .filter(|b| seen.insert(b.as_ptr() as usize))
                    .map(|b| b.len())
                    .sum();
                let validity = if text.null_count() > 0 { text.len().div_ceil(8) } else { 0 };
                text.len() * 16 + buffers + validity
            }
            Err(_) => c.as_materialized_series().estimated_size(),
        })
        .sum()
}

/// Keeps `entry` at the back of the cache unless it alone is over `max_bytes` (or that is
/// 0), then drops the oldest entries until at most `max_count` of them, of at most
/// `max_bytes` together, are left.
fn admit<E>(entries: &mut VecDeque<E>, entry: E, size: fn(&E) -> usize, max_count: usize, max_bytes: usize) {
    if max_bytes > 0 && size(&entry) <= max_bytes {
        entries.push_back(entry);
    }
    while entries.len() > max_count || entries.iter().map(size).sum::<usize>() > max_bytes {
        entries.pop_front();
    }
}

/// One output column being filled. Text goes straight into polars' string builder (ids
/// formatted on the stack), so no value is allocated on its own; numbers into polars'
/// own builders (values and a validity bitmap, not an `Option` a value), which become the
/// column without a copy.
enum Builder {
    Str(StringChunkedBuilder),
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Micros(PrimitiveChunkedBuilder<Int64Type>),
    Days(PrimitiveChunkedBuilder<Int32Type>),
}

impl Builder {
    fn new(column: &Exposed, capacity: usize) -> Self {
        let name = column.column.name.into();
        match column.column.ty {
            ColumnType::Int => Builder::Int(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Timestamp => Builder::Micros(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Date => Builder::Days(PrimitiveChunkedBuilder::new(name, capacity)),
            _ => Builder::Str(StringChunkedBuilder::new(name, capacity)),
        }
    }

    fn push(&mut self, derive: Derive, v: &Value) {
        match (self, derive, v) {
            (Builder::Str(out), Derive::SizeBucket, Value::Int(n)) => out.append_value(size_bucket(Some(*n))),
            (Builder::Str(out), Derive::SizeBucket, _) => out.append_value(size_bucket(None)),
            (Builder::Str(out), Derive::FirstWord, Value::Text(s)) => {
                out.append_value(s.split_once(' ').map_or(s.as_str(), |(first, _)| first))
            }
            (Builder::Str(out), Derive::OtherWords, Value::Text(s)) => {
                out.append_option(s.split_once(' ').map(|(_, rest)| rest.trim()).filter(|r| !r.is_empty()))
            }
            (Builder::Str(out), Derive::FirstOfList, Value::Json(serde_json::Value::Array(ids))) => {
                out.append_option(ids.first().and_then(|u| u.as_str()))
            }
            (Builder::Str(out), _, Value::Uuid(u)) => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.append_value(u.hyphenated().encode_lower(&mut buf))
            }
            (Builder::Str(out), _, Value::Text(s)) => out.append_value(s),
            (Builder::Int(out), _, Value::Int(n)) => out.append_value(*n),
            (Builder::Micros(out), _, Value::Timestamp(t)) => out.append_value(t.timestamp_micros()),
            (Builder::Days(out), _, Value::Date(d)) => {
                out.append_value((*d - chrono::NaiveDate::default()).num_days() as i32)
            }
            (Builder::Str(out), ..) => out.append_null(),
            (Builder::Int(out), ..) | (Builder::Micros(out), ..) => out.append_null(),
            (Builder::Days(out), ..) => out.append_null(),
        }
    }

    fn finish(self) -> Column {
        match self {
            Builder::Str(b) => b.finish().into_column(),
            Builder::Int(b) => b.finish().into_column(),
            Builder::Micros(b) => b.finish().into_datetime(TimeUnit::Microseconds, None).into_column(),
            Builder::Days(b) => b.finish().into_date().into_column(),
        }
    }
}

/// How one table is read: which stored columns, where each output column and the ids
/// are among them, and which rows (the actor's scope, narrowed by the caller).
#[derive(Clone)]
struct Plan {
    kind: EntityKind,
    /// Positions of the stored columns read, in the order read.
    fetched: Vec<usize>,
    /// For each output column, its position in a row read (`usize::MAX`: absent).
    columns: Vec<usize>,
    /// The position of `deal_id`, if read.
    deal_id: Option<usize>,
    /// The position of the row's own id.
    id: Option<usize>,
    filter: Option<Filter>,
    /// The actor may read none of it.
    nothing: bool,
}

fn plan(crm: &Crm, kind: EntityKind, actor: &Actor, only: Option<Filter>) -> Plan {
    let layout = kind.analytics();
    let scope = if kind == EntityKind::DealStageChange {
        // History has no owner: it is visible with its deal (see `TableBuilder`).
        Scope::All
    } else {
        crm.policy().scope(actor.role, kind.resource(), Action::Read)
    };
    // Only the columns read are fetched, each source column once.
    let position = |name: &str| kind.columns().iter().position(|c| c.name == name);
    let mut fetched: Vec<usize> = Vec::new();
    let mut at = |p: usize| {
        fetched.iter().position(|f| *f == p).unwrap_or_else(|| {
            fetched.push(p);
            fetched.len() - 1
        })
    };
    let columns: Vec<usize> = layout.iter().map(|e| position(e.from).map_or(usize::MAX, &mut at)).collect();
    let deal_id = position("deal_id").map(&mut at);
    // The stage history keeps its ids beside its frame, for later refreshes.
    let id = position("id").filter(|_| kind == EntityKind::DealStageChange).map(&mut at).or(columns.first().copied());
    let filter = crate::query::and_opt([scope_filter(kind, scope, actor), only]);
    Plan { kind, fetched, columns, deal_id, id, filter, nothing: scope == Scope::None }
}

/// One table's rows as read from the store, before conversion.
struct Fetched {
    plan: Plan,
    rows: Vec<crate::schema::Row>,
}

impl Fetched {
    /// The rows' own ids, in row order.
    fn ids(&self) -> impl Iterator<Item = uuid::Uuid> + '_ {
        self.rows.iter().filter_map(|r| match self.plan.id.and_then(|i| r.get(i)) {
            Some(Value::Uuid(u)) => Some(*u),
            _ => None,
        })
    }
}

/// Reads some rows of one table (the actor's, narrowed by `only`) in id order with one
/// bulk read, only the columns the analytics table uses.
async fn fetch(crm: &Crm, kind: EntityKind, actor: &Actor, only: Option<Filter>) -> Result<Fetched> {
    let plan = plan(crm, kind, actor, only);
    let rows = if plan.nothing {
        Vec::new()
    } else {
        crm.read_store().scan_columns(kind, plan.filter.as_ref(), false, &plan.fetched).await?
    };
    Ok(Fetched { plan, rows })
}

/// A table's frame being built from its rows, as they arrive.
struct TableBuilder {
    plan: Plan,
    builders: Vec<Builder>,
    /// Only the rows whose `deal_id` is in the set (the history of the deals the caller
    /// may see).
    keep: Option<Arc<HashSet<uuid::Uuid>>>,
    /// The ids of the rows taken, when asked for.
    ids: Option<Vec<uuid::Uuid>>,
}

impl TableBuilder {
    fn new(plan: Plan, keep: Option<Arc<HashSet<uuid::Uuid>>>, with_ids: bool, capacity: usize) -> Self {
        let builders = plan.kind.analytics().iter().map(|e| Builder::new(e, capacity)).collect();
        Self { plan, builders, keep, ids: with_ids.then(Vec::new) }
    }

    fn push(&mut self, row: &[Value]) {
        if let (Some(keep), Some(i)) = (&self.keep, self.plan.deal_id) {
            let visible = matches!(row.get(i), Some(Value::Uuid(u)) if keep.contains(u));
            if !visible {
                return;
            }
        }
        if let (Some(ids), Some(Value::Uuid(u))) = (&mut self.ids, self.plan.id.and_then(|i| row.get(i))) {
            ids.push(*u);
        }
        let layout = self.plan.kind.analytics();
        for ((b, e), i) in self.builders.iter_mut().zip(layout).zip(&self.plan.columns) {
            b.push(e.derive, row.get(*i).unwrap_or(&Value::Null));
        }
    }

    /// The frame, and the ids of its rows when asked for.
    fn finish(self) -> Result<(DataFrame, Vec<uuid::Uuid>)> {
        let columns = self.builders.into_iter().map(Builder::finish).collect();
        Ok((DataFrame::new_infer_height(columns).map_err(from_polars)?, self.ids.unwrap_or_default()))
    }
}

/// Turns rows read into their table's DataFrame. `keep` limits them to those whose
/// `deal_id` is in the set; the stage history also answers the ids of the rows it keeps.
fn convert(f: &Fetched, keep: Option<Arc<HashSet<uuid::Uuid>>>) -> Result<(DataFrame, Vec<uuid::Uuid>)> {
    let history = f.plan.kind == EntityKind::DealStageChange;
    let mut t = TableBuilder::new(f.plan.clone(), keep, history, f.rows.len());
    for row in &f.rows {
        t.push(row);
    }
    t.finish()
}

/// Reads one whole table (what the actor may see of it) straight into its frame: the
/// store sends the rows a batch at a time and a blocking thread builds the columns as
/// they come, so no more than a few batches of rows are held at once. `with_ids`: also
/// answer the ids of the rows (the stage history always does).
async fn streamed(
    crm: Crm,
    kind: EntityKind,
    actor: Actor,
    keep: Option<Arc<HashSet<uuid::Uuid>>>,
    with_ids: bool,
) -> Result<(DataFrame, Vec<uuid::Uuid>)> {
    let plan = plan(&crm, kind, &actor, None);
    let with_ids = with_ids || kind == EntityKind::DealStageChange;
    // The columns are made at their final size when the rows can be counted first (the
    // same filter; the history narrowed to some deals cannot): grown by doubling, they
    // kept up to twice the memory their rows need.
    let capacity = match (&keep, plan.nothing) {
        (None, false) => usize::try_from(crm.read_store().count(kind, plan.filter.as_ref(), false).await?).unwrap_or(0),
        _ => 0,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<crate::schema::Row>>(2);
    let mut table = TableBuilder::new(plan.clone(), keep, with_ids, capacity);
    let build = tokio::task::spawn_blocking(move || {
        while let Some(batch) = rx.blocking_recv() {
            for row in &batch {
                table.push(row);
            }
        }
        table.finish()
    });
    let read = if plan.nothing {
        drop(tx);
        Ok(())
    } else {
        crm.read_store().scan_batches(kind, plan.filter.as_ref(), false, &plan.fetched, tx).await
    };
    // The sender is gone either way: the builder ends with what it was sent.
    let built = build.await.map_err(|e| crate::Error::internal("building a snapshot table", e))?;
    read?;
    built
}

/// One table of a whole read, on a task of its own (tables are read and decoded side by
/// side on a multi-threaded runtime).
async fn spawned(
    crm: &Crm,
    kind: EntityKind,
    actor: &Actor,
    keep: Option<Arc<HashSet<uuid::Uuid>>>,
    with_ids: bool,
) -> Result<(DataFrame, Vec<uuid::Uuid>)> {
    tokio::spawn(streamed(crm.clone(), kind, actor.clone(), keep, with_ids))
        .await
        .map_err(|e| crate::Error::internal("reading a snapshot table", e))?
}

/// Which rows an actor's snapshot holds: the same key, the same snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScopeKey(Vec<(EntityKind, Scope)>, Option<String>, Option<String>);

fn scope_key(crm: &Crm, actor: &Actor) -> ScopeKey {
    let scopes: Vec<(EntityKind, Scope)> =
        super::KINDS.iter().map(|k| (*k, crm.policy().scope(actor.role, k.resource(), Action::Read))).collect();
    let narrowed = scopes.iter().any(|(_, s)| matches!(s, Scope::Own | Scope::Team));
    let user = narrowed.then(|| actor.user_id.to_string());
    let team = narrowed.then(|| actor.team_id.map(|t| t.to_string())).flatten();
    ScopeKey(scopes, user, team)
}

/// Cached snapshots by scope, each with the change counter it was read at.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    entries: Mutex<VecDeque<Cached>>,
    stats: Mutex<SnapshotStats>,
}

/// How the snapshots a [`Crm`] handed out were made: for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Read whole from the store (a cold cache, a long run of changes, a purge).
    pub loads: u64,
    /// Brought up to date from the audit log's changes since a cached one.
    pub refreshes: u64,
    /// Answered from the cache as they were (nothing changed).
    pub hits: u64,
}

/// One cached snapshot.
#[derive(Clone)]
struct Cached {
    /// Whose rows.
    key: ScopeKey,
    /// The store's change counter (audit sequence) it holds the rows of.
    counter: i64,
    tables: Arc<Tables>,
    /// The stage history's row ids in frame order (its frame has no id column).
    history_ids: Arc<Vec<uuid::Uuid>>,
    /// Its size ([`frame_bytes`]).
    bytes: usize,
}

impl SnapshotCache {
    fn count(&self, tally: impl FnOnce(&mut SnapshotStats)) {
        tally(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCache").finish_non_exhaustive()
    }
}

/// `kind`'s rows whose `column` is one of `ids`, a thousand at a time (bounded statements).
fn any_of(kind: EntityKind, column: &str, ids: &[uuid::Uuid]) -> Option<Filter> {
    kind.column(column)
        .map(|column| Filter::Cmp(Cmp { column, pred: Predicate::In(ids.iter().map(|u| Value::Uuid(*u)).collect()) }))
}

/// The rows of `kind` among `ids` (by `column`), as the actor sees them, in id order.
async fn fetch_some(crm: &Crm, kind: EntityKind, actor: &Actor, column: &str, ids: &[uuid::Uuid]) -> Result<Fetched> {
    let mut out = Fetched { plan: plan(crm, kind, actor, None), rows: Vec::new() };
    for chunk in ids.chunks(1_000) {
        out.rows.extend(fetch(crm, kind, actor, any_of(kind, column, chunk)).await?.rows);
    }
    Ok(out)
}

impl Crm {
    /// The analytics tables (companies, contacts, deals, deal_stage_history,
    /// interactions, tasks) as the actor may read them: live rows only, ids as UUID text,
    /// timestamps in UTC. Read from the store in bulk, the six tables side by side, and
    /// cached: repeated reports on an unchanged CRM read nothing again, and after a
    /// change only the records the audit log names as changed are read again.
    pub async fn analytics_tables(&self, actor: &Actor) -> Result<Arc<Tables>> {
        let key = scope_key(self, actor);
        // Everything a snapshot reads comes from one store (the read replica when there
        // is one), its change counter too: the snapshot is that store's state at that
        // counter, however far a replica lags.
        let counter = self.read_store().change_counter().await?;
        let cache = self.analytics_cache();
        let base = {
            let entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            let found = entries.iter().find(|e| e.key == key).cloned();
            if let Some(e) = found.as_ref().filter(|e| e.counter == counter) {
                cache.count(|s| s.hits += 1);
                return Ok(e.tables.clone());
            }
            found
        };
        let delta = match base {
            Some(base) if base.counter < counter && counter - base.counter <= super::refresh::MAX_EVENTS => {
                self.changed_since(base.counter, counter).await?.map(|touched| (base, touched))
            }
            _ => None,
        };
        let fresh = match delta {
            Some((base, touched)) => {
                let fresh = self.refreshed(actor, key, counter, &base, touched).await?;
                cache.count(|s| s.refreshes += 1);
                fresh
            }
            None => {
                let fresh = self.loaded(actor, key, counter).await?;
                cache.count(|s| s.loads += 1);
                fresh
            }
        };
        let tables = fresh.tables.clone();
        let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
        // A newer snapshot of the same scope, made meanwhile, stays.
        if !entries.iter().any(|e| e.key == fresh.key && e.counter > fresh.counter) {
            entries.retain(|e| e.key != fresh.key);
            let bound = self.config().analytics_cache_bytes.unwrap_or_else(default_cache_bytes);
            admit(&mut entries, fresh, |e| e.bytes, CACHED, bound);
        }
        Ok(tables)
    }

    /// How the snapshots handed out so far were made.
    pub fn analytics_snapshot_stats(&self) -> SnapshotStats {
        *self.analytics_cache().stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The records the audit events after `since` (up to `head`) name as changed, or
    /// `None` when only a full reload is right (see `refresh::classify`).
    async fn changed_since(&self, since: i64, head: i64) -> Result<Option<super::refresh::Touched>> {
        let k = EntityKind::AuditEvent;
        let (Some(seq), Some(ty), Some(id), Some(action)) =
            (k.column("seq"), k.column("entity_type"), k.column("entity_id"), k.column("action"))
        else {
            return Ok(None);
        };
        let at = |name: &str| k.columns().iter().position(|c| c.name == name).unwrap_or(usize::MAX);
        let query = crate::query::StoreQuery {
            filter: Some(crate::query::and(vec![
                Filter::Cmp(Cmp { column: seq, pred: Predicate::Gt(Value::Int(since)) }),
                Filter::Cmp(Cmp { column: seq, pred: Predicate::Lte(Value::Int(head)) }),
            ])),
            sort: vec![crate::query::SortKey { column: seq, direction: crate::query::Direction::Asc }],
            limit: (head - since) as u32,
            include_deleted: true,
        };
        let rows = self.read_store().list_columns(k, &query, &[at(ty.name), at(id.name), at(action.name)]).await?;
        fn text(v: Option<&Value>) -> &str {
            match v {
                Some(Value::Text(t)) => t.as_str(),
                _ => "",
            }
        }
        let events = rows.iter().map(|r| {
            let id = match r.get(1) {
                Some(Value::Uuid(u)) => Some(*u),
                _ => None,
            };
            (text(r.first()), id, text(r.get(2)))
        });
        Ok(super::refresh::classify(events))
    }

    /// The actor's snapshot read whole from the store.
    async fn loaded(&self, actor: &Actor, key: ScopeKey, counter: i64) -> Result<Cached> {
        // The tables are read side by side, each straight into its frame; the history
        // waits for the deals only when it must be narrowed to the visible ones.
        let all_deals = self.policy().scope(actor.role, EntityKind::Deal.resource(), Action::Read) == Scope::All;
        let history = all_deals
            .then(|| tokio::spawn(streamed(self.clone(), EntityKind::DealStageChange, actor.clone(), None, true)));
        let (companies, contacts, deals, interactions, tasks) = tokio::try_join!(
            spawned(self, EntityKind::Company, actor, None, false),
            spawned(self, EntityKind::Contact, actor, None, false),
            spawned(self, EntityKind::Deal, actor, None, !all_deals),
            spawned(self, EntityKind::Interaction, actor, None, false),
            spawned(self, EntityKind::Task, actor, None, false),
        )?;
        let (deals, deal_ids) = deals;
        let keep = (!all_deals).then(|| Arc::new(deal_ids.into_iter().collect::<HashSet<_>>()));
        let (history, history_ids) = match history {
            Some(task) => task.await.map_err(|e| crate::Error::internal("reading a snapshot table", e))??,
            None => spawned(self, EntityKind::DealStageChange, actor, keep, true).await?,
        };
        let history_ids = Arc::new(history_ids);
        let tables: std::collections::BTreeMap<String, DataFrame> = [
            (EntityKind::Company, companies.0),
            (EntityKind::Contact, contacts.0),
            (EntityKind::Deal, deals),
            (EntityKind::DealStageChange, history),
            (EntityKind::Interaction, interactions.0),
            (EntityKind::Task, tasks.0),
        ]
        .into_iter()
        .map(|(kind, df)| (kind.table().to_string(), df))
        .collect();
        let bytes: usize = tables.values().map(frame_bytes).sum();
        Ok(Cached { key, counter, tables: Arc::new(Tables(tables)), history_ids, bytes })
    }

    /// `base` brought up to `counter`: the `touched` records read again and spliced into
    /// their tables in id order, with the stage history of the touched deals.
    async fn refreshed(
        &self,
        actor: &Actor,
        key: ScopeKey,
        counter: i64,
        base: &Cached,
        touched: super::refresh::Touched,
    ) -> Result<Cached> {
        use super::refresh::{insert_points, positions, splice, splice_ids};
        let mut patches = Vec::new();
        for (kind, ids) in &touched {
            let list: Vec<uuid::Uuid> = ids.iter().copied().collect();
            patches.push((*kind, ids.clone(), fetch_some(self, *kind, actor, "id", &list).await?));
        }
        let deals: Vec<uuid::Uuid> =
            touched.get(&EntityKind::Deal).map(|d| d.iter().copied().collect()).unwrap_or_default();
        let history = if deals.is_empty() {
            None
        } else {
            Some(fetch_some(self, EntityKind::DealStageChange, actor, "deal_id", &deals).await?)
        };
        let all_deals = self.policy().scope(actor.role, EntityKind::Deal.resource(), Action::Read) == Scope::All;
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut tables = base.tables.0.clone();
            // The touched deals the actor still sees: their history is visible with them.
            let mut visible: HashSet<uuid::Uuid> = HashSet::new();
            for (kind, ids, fetched) in patches {
                if kind == EntityKind::Deal {
                    visible.extend(fetched.ids());
                }
                let (new, _) = convert(&fetched, None)?;
                let Some(old) = tables.get_mut(kind.table()) else { continue };
                let remove = positions(old, "id", &ids)?;
                let at = insert_points(old, &new, "id")?;
                *old = splice(old, &remove, &new, &at)?;
            }
            let mut history_ids = base.history_ids.clone();
            if let (Some(fetched), Some(old)) = (history, tables.get_mut(EntityKind::DealStageChange.table())) {
                // History is only ever appended to (a purge reloads everything): rows
                // already held stay, new ones of visible deals come in, and the rows of a
                // deal the actor no longer sees go.
                let keep = (!all_deals).then(|| Arc::new(visible));
                let (shown, shown_ids) = convert(&fetched, keep)?;
                let shown_set: HashSet<uuid::Uuid> = shown_ids.iter().copied().collect();
                let mut remove: Vec<usize> = fetched
                    .ids()
                    .filter(|id| !shown_set.contains(id))
                    .filter_map(|id| history_ids.binary_search(&id).ok())
                    .collect();
                remove.sort_unstable();
                let (mut take, mut new_ids, mut at) = (Vec::new(), Vec::new(), Vec::new());
                for (n, id) in shown_ids.iter().enumerate() {
                    if let Err(p) = history_ids.binary_search(id) {
                        take.push(n as IdxSize);
                        new_ids.push(*id);
                        at.push(p);
                    }
                }
                // Most changes to a deal leave its history as it was: nothing to copy.
                if !remove.is_empty() || !take.is_empty() {
                    let new = shown.take(&IdxCa::from_vec("".into(), take)).map_err(super::from_polars)?;
                    *old = splice(old, &remove, &new, &at)?;
                    history_ids = Arc::new(splice_ids(&history_ids, &remove, &new_ids, &at));
                }
            }
            let bytes: usize = tables.values().map(frame_bytes).sum();
            Ok(Cached { key, counter, tables: Arc::new(Tables(tables)), history_ids, bytes })
        })
        .await
        .map_err(|e| crate::Error::internal("refreshing a snapshot", e))?
    }

    /// Runs a standard report on the actor's snapshot of the store.
    pub async fn standard_report(&self, actor: &Actor, name: &str, params: &super::Params) -> Result<DataFrame> {
        Ok(self.standard_report_with_params(actor, name, params).await?.0)
    }

    /// A standard report on the caller's snapshot and the parameters it ran with, defaults
    /// filled in. A CRM without live deals has no default `as_of` in the data: it takes now.
    pub async fn standard_report_with_params(
        &self,
        actor: &Actor,
        name: &str,
        params: &super::Params,
    ) -> Result<(DataFrame, super::Resolved)> {
        self.standard_report_of(actor, name, params, &super::Cut::default()).await
    }

    /// A standard report over what a dashboard's filters keep (`cut`: some users'
    /// records, a period; [`Cut::default`]: everything the caller may read).
    ///
    /// A period keeps, per report: R1 and R4 the deals created in it (R4 with their
    /// stage history), R3 and R6 the deals closed in it, R5 the contacts created in it,
    /// and R8 the months in it (a customer is still new in the month of its first win
    /// ever). R2 and R7 take it as their window unless their parameters are given: R2
    /// forecasts from its start to its end, R7 counts the interactions between them.
    pub async fn standard_report_of(
        &self,
        actor: &Actor,
        name: &str,
        params: &super::Params,
        cut: &super::Cut,
    ) -> Result<(DataFrame, super::Resolved)> {
        let cut = cut.clone();
        let period = cut.period;
        // Name the reports before reading anything.
        let report = super::StandardReport::named(name, "name")?;
        let name = name.to_string();
        let params = match period {
            Some(p) => p.window(report, *params),
            None => *params,
        };
        let now = self.now().naive_utc();
        self.on_snapshot(actor, move |all| {
            let mut t = cut.owned(all)?;
            if let Some(kept) = period.map(|p| p.cut_for(report, &t)).transpose()?.flatten() {
                t = std::borrow::Cow::Owned(kept);
            }
            // The defaults come from everything the caller may read, so a filtered card
            // shares its "as of" with the others.
            let r = match params.resolve(all) {
                Err(_) if params.as_of.is_none() => super::Params { as_of: Some(now), ..params }.resolve(all)?,
                other => other?,
            };
            let full = super::Params {
                as_of: Some(r.as_of),
                forecast_end: Some(r.forecast_end),
                engagement_start: Some(r.engagement_start),
            };
            let df = super::report(&name, &t, &full)?;
            let df = match &period {
                Some(p) => p.answer_of(report, df)?,
                None => df,
            };
            Ok((df, r))
        })
        .await
    }

    /// A custom report on the caller's snapshot (validated before anything is read).
    pub async fn custom_report(&self, actor: &Actor, spec: &super::ReportSpec) -> Result<DataFrame> {
        self.custom_report_of(actor, spec, &super::Cut::default()).await
    }

    /// A custom report over what a dashboard's filters keep: some users' records (cut
    /// as [`standard_report_of`](Self::standard_report_of) cuts), and the rows of its
    /// source table that came about in a period (by [`super::period_column`]; joined
    /// tables stay whole).
    pub async fn custom_report_of(
        &self,
        actor: &Actor,
        spec: &super::ReportSpec,
        cut: &super::Cut,
    ) -> Result<DataFrame> {
        let compiled = super::custom::compile(spec)?;
        let period = cut.period.zip(super::period_column(&spec.source));
        let source = spec.source.clone();
        let cut = cut.clone();
        self.on_snapshot(actor, move |all| {
            let mut t = cut.owned(all)?;
            if let Some((p, column)) = &period {
                t = std::borrow::Cow::Owned(t.within(&source, column, p)?);
            }
            compiled.run(&t)
        })
        .await
    }

    /// May the actor take reports away as files (`Export` on reports)? Ask before the
    /// report runs; [`Crm::exported`] records the export once it is made.
    pub fn may_export(&self, actor: &Actor) -> Result<()> {
        self.policy().require(actor, crate::policy::Resource::Reports, Action::Export).map(|_| ())
    }

    /// Records in the audit log that the actor took a report away as a file: which report
    /// (`saved` names a saved report), in which format, how many rows.
    pub async fn exported(
        &self,
        actor: &Actor,
        report: &str,
        saved: Option<uuid::Uuid>,
        format: &str,
        rows: usize,
    ) -> Result<()> {
        let changes = serde_json::json!({"report": report, "format": format, "rows": rows});
        let ev = self.audit_event(actor, "report.exported".into(), EntityKind::SavedReport, saved, changes);
        self.store().apply(crate::store::Changeset { writes: vec![], audit: vec![ev] }).await
    }

    /// Contact analytics on the caller's snapshot, as of now.
    pub async fn contact_analytics(&self, actor: &Actor) -> Result<super::ContactAnalytics> {
        let now = self.now().naive_utc();
        self.on_snapshot(actor, move |t| super::contact_analytics(t, now)).await
    }

    /// Company analytics on the caller's snapshot, as of now.
    pub async fn company_analytics(&self, actor: &Actor) -> Result<super::CompanyAnalytics> {
        let now = self.now().naive_utc();
        self.on_snapshot(actor, move |t| super::company_analytics(t, now)).await
    }

    /// Runs `work` on the caller's snapshot on a blocking thread (polars keeps a core busy).
    async fn on_snapshot<T: Send + 'static>(
        &self,
        actor: &Actor,
        work: impl FnOnce(&Tables) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let tables = self.analytics_tables(actor).await?;
        tokio::task::spawn_blocking(move || work(&tables))
            .await
            .map_err(|e| crate::Error::internal("analytics task", e))?
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn names(entries: &VecDeque<(u8, usize)>) -> Vec<u8> {
        entries.iter().map(|e| e.0).collect()
    }

    #[test]
    fn a_frames_bytes_count_text_views_and_shared_buffers_once() -> PolarsResult<()> {
        let n = 10_000;
        let ids: Vec<String> = (0..n).map(|i| uuid::Uuid::from_u64_pair(7, i).to_string()).collect();
        let stages: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "proposal" } else { "closed_won" }).collect();
        let amounts: Vec<i64> = (0..n as i64).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("id".into(), ids),
            Column::new("stage".into(), stages),
            Column::new("amount".into(), amounts),
        ])?;
        let n = n as usize;
        // Ids: a view and 36 bytes each; stages: a view each (inline); amounts: 8 bytes.
        let bytes = frame_bytes(&df);
        assert!((52 * n + 16 * n + 8 * n..=52 * n + 16 * n + 8 * n + 4096).contains(&bytes), "{bytes}");
        assert!(bytes > df.estimated_size() + 20 * n, "polars' estimate leaves the views out");
        // A table spliced from slices of itself (as a refresh makes) shares the buffers.
        let mut spliced = df.slice(0, n / 2);
        spliced.vstack_mut_owned(df.slice((n / 2) as i64, n - n / 2))?;
        assert_eq!(spliced.first_col_n_chunks(), 2);
        assert_eq!(frame_bytes(&spliced), bytes, "each buffer counted once");
        Ok(())
    }

    #[test]
    fn the_cache_is_bounded_in_count_and_bytes() {
        let size = |e: &(u8, usize)| e.1;
        let mut cache = VecDeque::new();
        for name in 1..=5 {
            admit(&mut cache, (name, 10), size, 4, 100);
        }
        assert_eq!(names(&cache), [2, 3, 4, 5], "four at most, the oldest dropped");
        admit(&mut cache, (6, 101), size, 4, 100);
        assert_eq!(names(&cache), [2, 3, 4, 5], "one larger than the bound is used once, not kept");
        admit(&mut cache, (7, 75), size, 4, 100);
        assert_eq!(names(&cache), [4, 5, 7], "the oldest go until the bytes fit: 10 + 10 + 75");
        admit(&mut cache, (8, 100), size, 4, 100);
        assert_eq!(names(&cache), [8], "exactly the bound fits, alone");
        admit(&mut cache, (9, 0), size, 4, 0);
        assert!(cache.is_empty(), "a bound of 0 keeps nothing, not even an empty snapshot");
    }

    #[test]
    fn the_memory_a_process_may_use_is_read_from_its_cgroup_or_the_machine() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(memory_limit(&[], Some(meminfo)), Some(24_576_000 * 1024), "the machine's memory");
        assert_eq!(memory_limit(&["max\n"], Some(meminfo)), Some(24_576_000 * 1024), "no cgroup limit");
        assert_eq!(memory_limit(&["1073741824\n"], Some(meminfo)), Some(1 << 30), "a container's limit");
        // cgroup v1 says "no limit" with a number near 2^63.
        assert_eq!(memory_limit(&["9223372036854771712\n"], Some(meminfo)), Some(24_576_000 * 1024));
        assert_eq!(memory_limit(&["max", "536870912"], None), Some(1 << 29), "the lowest, without /proc/meminfo");
        assert_eq!(memory_limit(&["garbage"], Some("nothing here")), None, "nothing readable");
        assert!(default_cache_bytes() > 0);
    }

    #[test]
    fn the_cgroup_limit_files_follow_the_process_cgroups() {
        let root = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"];
        // A container with its own cgroup namespace: the root's files are its own.
        assert_eq!(limit_files("0::/\n"), root);
        // A systemd unit (v2) and a v1 hierarchy: their own files too.
        let v2 = limit_files("0::/system.slice/crm-server.service\n");
        assert_eq!(v2[2..], ["/sys/fs/cgroup/system.slice/crm-server.service/memory.max"]);
        let v1 = limit_files("5:devices:/\n4:memory:/process_api/a1\n2:cpu,cpuacct:/x\n");
        assert_eq!(v1[2..], ["/sys/fs/cgroup/memory/process_api/a1/memory.limit_in_bytes"]);
        assert_eq!(limit_files("0::/../../etc\nnot a line\n"), root, "nothing outside /sys/fs/cgroup");
    }
}
