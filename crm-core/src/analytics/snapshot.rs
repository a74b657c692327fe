//! The analytics tables read out of the store: a snapshot within the caller's read scope,
//! read with the store's bulk scan (`Store::scan_columns`: PostgreSQL's binary `COPY`, a
//! direct SQLite statement, batches elsewhere) and cached until the store's change
//! counter moves.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use polars::prelude::*;

use super::{from_polars, Tables};
use crate::error::Result;
use crate::model::company::size_bucket;
use crate::policy::{Action, Actor, Scope};
use crate::schema::{ColumnType, Derive, EntityKind, Exposed, Value};
use crate::service::{write_path::scope_filter, Crm};
use crate::store::StoreExt;

/// Snapshots kept per process (one per distinct scope), the least recently made dropped first.
const CACHED: usize = 4;
/// And at most this many bytes of them (polars' estimate): a snapshot larger than this is
/// used once and not kept.
pub const CACHED_BYTES: usize = 512 * 1024 * 1024;

/// Keeps `entry` at the back of the cache unless it alone is over `max_bytes`, then
/// drops the oldest entries until at most `max_count` of them, of at most `max_bytes`
/// together, are left.
fn admit<E>(entries: &mut VecDeque<E>, entry: E, size: fn(&E) -> usize, max_count: usize, max_bytes: usize) {
    if size(&entry) <= max_bytes {
        entries.push_back(entry);
    }
    while entries.len() > max_count || entries.iter().map(size).sum::<usize>() > max_bytes {
        entries.pop_front();
    }
}

/// One output column being filled. Text goes straight into polars' string builder (ids
/// formatted on the stack), so no value is allocated on its own.
enum Builder {
    Str(StringChunkedBuilder),
    Int(Vec<Option<i64>>),
    Micros(Vec<Option<i64>>),
    Days(Vec<Option<i32>>),
}

impl Builder {
    fn new(column: &Exposed, capacity: usize) -> Self {
        match column.column.ty {
            ColumnType::Int => Builder::Int(Vec::with_capacity(capacity)),
            ColumnType::Timestamp => Builder::Micros(Vec::with_capacity(capacity)),
            ColumnType::Date => Builder::Days(Vec::with_capacity(capacity)),
            _ => Builder::Str(StringChunkedBuilder::new(column.column.name.into(), capacity)),
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
            (Builder::Int(out), _, Value::Int(n)) => out.push(Some(*n)),
            (Builder::Micros(out), _, Value::Timestamp(t)) => out.push(Some(t.timestamp_micros())),
            (Builder::Days(out), _, Value::Date(d)) => {
                out.push(Some((*d - chrono::NaiveDate::default()).num_days() as i32))
            }
            (Builder::Str(out), ..) => out.append_null(),
            (Builder::Int(out), ..) | (Builder::Micros(out), ..) => out.push(None),
            (Builder::Days(out), ..) => out.push(None),
        }
    }

    fn finish(self, name: &str) -> Result<Column> {
        let name: PlSmallStr = name.into();
        Ok(match self {
            Builder::Str(b) => b.finish().into_column(),
            Builder::Int(v) => Column::new(name, v),
            Builder::Micros(v) => {
                Column::new(name, v).cast(&DataType::Datetime(TimeUnit::Microseconds, None)).map_err(from_polars)?
            }
            Builder::Days(v) => Column::new(name, v).cast(&DataType::Date).map_err(from_polars)?,
        })
    }
}

/// One table's rows as read from the store, before conversion.
struct Fetched {
    kind: EntityKind,
    rows: Vec<crate::schema::Row>,
    /// For each output column, its position in a row (`usize::MAX`: absent).
    columns: Vec<usize>,
    /// The position of `deal_id`, if read.
    deal_id: Option<usize>,
}

/// Reads one table (its live rows within the actor's scope) in id order with one bulk
/// read, only the columns the analytics table uses.
async fn fetch(crm: &Crm, kind: EntityKind, actor: &Actor) -> Result<Fetched> {
    let layout = kind.analytics();
    let scope = if kind == EntityKind::DealStageChange {
        // History has no owner: it is visible with its deal (see `convert`).
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
    let rows = if scope == Scope::None {
        Vec::new()
    } else {
        let base = scope_filter(kind, scope, actor);
        crm.store().scan_columns(kind, base.as_ref(), false, &fetched).await?
    };
    Ok(Fetched { kind, rows, columns, deal_id })
}

/// Turns a table's rows into its DataFrame. `keep` limits the rows to those whose
/// `deal_id` is in the set (the history of the deals the caller may see).
fn convert(f: &Fetched, keep: Option<&HashSet<uuid::Uuid>>) -> Result<DataFrame> {
    let layout = f.kind.analytics();
    let mut builders: Vec<Builder> = layout.iter().map(|e| Builder::new(e, f.rows.len())).collect();
    for row in &f.rows {
        if let (Some(keep), Some(i)) = (keep, f.deal_id) {
            let visible = matches!(row.get(i), Some(Value::Uuid(u)) if keep.contains(u));
            if !visible {
                continue;
            }
        }
        for ((b, e), i) in builders.iter_mut().zip(layout).zip(&f.columns) {
            b.push(e.derive, row.get(*i).unwrap_or(&Value::Null));
        }
    }
    let columns = builders.into_iter().zip(layout).map(|(b, e)| b.finish(e.column.name)).collect::<Result<Vec<_>>>()?;
    DataFrame::new_infer_height(columns).map_err(from_polars)
}

/// Converts on a blocking thread (the conversions of several tables run side by side).
async fn converted(f: Fetched, keep: Option<Arc<HashSet<uuid::Uuid>>>) -> Result<(Fetched, DataFrame)> {
    tokio::task::spawn_blocking(move || {
        let df = convert(&f, keep.as_deref())?;
        Ok((f, df))
    })
    .await
    .map_err(|e| crate::Error::internal("converting a snapshot table", e))?
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
}

/// One cached snapshot: its scope, the change counter it was read at, the tables and
/// their size in bytes.
type Cached = (ScopeKey, i64, Arc<Tables>, usize);

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCache").finish_non_exhaustive()
    }
}

impl Crm {
    /// The analytics tables (companies, contacts, deals, deal_stage_history,
    /// interactions, tasks) as the actor may read them: live rows only, ids as UUID text,
    /// timestamps in UTC. Read from the store in bulk, the six tables side by side, and
    /// cached until the store's change counter moves, so repeated reports on an unchanged
    /// CRM read nothing again.
    pub async fn analytics_tables(&self, actor: &Actor) -> Result<Arc<Tables>> {
        let key = scope_key(self, actor);
        let counter = self.store().change_counter().await?;
        let cache = self.analytics_cache();
        {
            let entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, tables, _)) = entries.iter().find(|(k, c, _, _)| *k == key && *c == counter) {
                return Ok(tables.clone());
            }
        }
        // The six tables are read side by side, then converted side by side; the history
        // waits for the deals only when it must be narrowed to the visible ones.
        let (companies, contacts, deals, history, interactions, tasks) = tokio::try_join!(
            fetch(self, EntityKind::Company, actor),
            fetch(self, EntityKind::Contact, actor),
            fetch(self, EntityKind::Deal, actor),
            fetch(self, EntityKind::DealStageChange, actor),
            fetch(self, EntityKind::Interaction, actor),
            fetch(self, EntityKind::Task, actor),
        )?;
        let all_deals = self.policy().scope(actor.role, EntityKind::Deal.resource(), Action::Read) == Scope::All;
        let (companies, contacts, deals, interactions, tasks) = tokio::try_join!(
            converted(companies, None),
            converted(contacts, None),
            converted(deals, None),
            converted(interactions, None),
            converted(tasks, None),
        )?;
        let keep = if all_deals {
            None
        } else {
            // The deals layout reads `id` first.
            let id_at = deals.0.columns[0];
            let ids: HashSet<uuid::Uuid> = deals
                .0
                .rows
                .iter()
                .filter_map(|r| match r.get(id_at) {
                    Some(Value::Uuid(u)) => Some(*u),
                    _ => None,
                })
                .collect();
            Some(Arc::new(ids))
        };
        let history = converted(history, keep).await?;
        let tables: std::collections::BTreeMap<String, DataFrame> =
            [companies, contacts, deals, history, interactions, tasks]
                .into_iter()
                .map(|(f, df)| (f.kind.table().to_string(), df))
                .collect();
        let bytes: usize = tables.values().map(DataFrame::estimated_size).sum();
        let tables = Arc::new(Tables(tables));
        let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _, _, _)| *k != key);
        admit(&mut entries, (key, counter, tables.clone(), bytes), |e| e.3, CACHED, CACHED_BYTES);
        Ok(tables)
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
        self.standard_report_of(actor, name, params, None).await
    }

    /// A standard report over the records some users own (`owners`: their ids; none:
    /// everything the caller may read). A dashboard's owner or team filter.
    pub async fn standard_report_of(
        &self,
        actor: &Actor,
        name: &str,
        params: &super::Params,
        owners: Option<Vec<crate::UserId>>,
    ) -> Result<(DataFrame, super::Resolved)> {
        let owners: Option<std::collections::BTreeSet<String>> =
            owners.map(|o| o.iter().map(|u| u.to_string()).collect());
        // Name the reports before reading anything.
        super::StandardReport::named(name, "name")?;
        let name = name.to_string();
        let params = *params;
        let now = self.now().naive_utc();
        self.on_snapshot(actor, move |all| {
            let cut;
            let t = match &owners {
                Some(o) => {
                    cut = all.owned_by(o)?;
                    &cut
                }
                None => all,
            };
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
            Ok((super::report(&name, t, &full)?, r))
        })
        .await
    }

    /// A custom report on the caller's snapshot (validated before anything is read).
    pub async fn custom_report(&self, actor: &Actor, spec: &super::ReportSpec) -> Result<DataFrame> {
        let compiled = super::custom::compile(spec)?;
        self.on_snapshot(actor, move |t| compiled.run(t)).await
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
    }
}
