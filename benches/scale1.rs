//! The scale-1 analytics data (`benches/analytics/generate.py --scale 1`: 50,000
//! companies, 500,000 contacts, 1,000,000 deals, ~3.6M stage-history rows, 5,000,000
//! interactions, 500,000 tasks) loaded into a SQLite CRM, for the benches that need a
//! CRM of that size in a store (`copy`, `freshness`).
//!
//! The parquet tables name records by integers; each becomes a UUID of its kind (the
//! deal of a history row, a contact's company, …), and the stored columns the analytics
//! tables do not carry get a plain value of their type (version 1, empty JSON objects,
//! `updated_at` = `created_at`). The load writes through the store (`Store::apply`,
//! 10,000 rows a transaction), not the services: no audit events, like a CRM's data
//! brought in by a copy.
//!
//! The loaded CRM stays in `target/crm-bench/copy-source.db` for the next run (delete
//! it, or `copy-source.rows`, to load again). `CRM_BENCH_DATA` names another folder of
//! the parquet files.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // a benchmark that cannot set up should stop loudly

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use crm_core::analytics::polars::prelude::{AnyValue, DataFrame, ParquetReader, SerReader, TimeUnit};
use crm_core::schema::{ColumnType, Derive, EntityKind, Row, Value};
use crm_core::{Changeset, Store, Write};
use crm_storage_sql::SqlStore;
use uuid::Uuid;

/// The six analytics kinds, in the order their rows are loaded.
pub const KINDS: [EntityKind; 6] = [
    EntityKind::Company,
    EntityKind::Contact,
    EntityKind::Deal,
    EntityKind::DealStageChange,
    EntityKind::Interaction,
    EntityKind::Task,
];

/// Rows per load transaction.
pub const LOAD_BATCH: usize = 10_000;

/// The kind an integer id column names, as a tag for [`id_of`].
fn tag(kind: EntityKind, column: &str) -> u64 {
    let referred = match column {
        "id" => kind,
        "company_id" => EntityKind::Company,
        "contact_id" | "contact_ids" => EntityKind::Contact,
        "deal_id" => EntityKind::Deal,
        _ => EntityKind::User,
    };
    EntityKind::ALL.iter().position(|k| *k == referred).unwrap() as u64 + 1
}

/// The UUID of record `n` of the kind `tag` names.
fn id_of(tag: u64, n: u64) -> Uuid {
    Uuid::from_u64_pair(tag, n)
}

/// A frame's value as a stored value of `ty`: integers naming records become their
/// UUIDs (of the kind `tag` says).
fn value(v: AnyValue<'_>, ty: ColumnType, tag: u64) -> Value {
    match (v, ty) {
        (AnyValue::Null, ColumnType::UuidList) => Value::Json(serde_json::json!([])),
        (AnyValue::Null, _) => Value::Null,
        (AnyValue::Int64(n), ColumnType::Uuid) => Value::Uuid(id_of(tag, n as u64)),
        (AnyValue::Int64(n), ColumnType::UuidList) => {
            Value::Json(serde_json::json!([id_of(tag, n as u64).to_string()]))
        }
        (AnyValue::Int64(n), _) => Value::Int(n),
        (AnyValue::Int32(n), _) => Value::Int(n.into()),
        (AnyValue::String(s), _) => Value::Text(s.to_string()),
        (AnyValue::StringOwned(s), _) => Value::Text(s.to_string()),
        (AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _), _) => Value::Timestamp(match unit {
            TimeUnit::Nanoseconds => Utc.timestamp_nanos(t),
            TimeUnit::Microseconds => DateTime::from_timestamp_micros(t).unwrap(),
            TimeUnit::Milliseconds => DateTime::from_timestamp_millis(t).unwrap(),
        }),
        (AnyValue::Date(d), _) => {
            Value::Date(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d.into()))
        }
        (other, _) => panic!("a parquet value this bench does not read: {other:?}"),
    }
}

/// A head count inside a report size bucket.
fn size_of(bucket: &Value) -> Value {
    match bucket {
        Value::Text(b) => Value::Int(match b.as_str() {
            "1-10" => 5,
            "11-50" => 30,
            "51-200" => 120,
            "201-1000" => 500,
            "1001+" => 5_000,
            _ => return Value::Null,
        }),
        _ => Value::Null,
    }
}

/// Rows `from..to` of `df` as stored rows of `kind`.
fn rows(kind: EntityKind, df: &DataFrame, from: usize, to: usize, when: DateTime<Utc>) -> Vec<Row> {
    let len = to - from;
    // Each analytics column, sliced and read once: (its name, its values).
    let mut exposed: Vec<(&str, Vec<Value>)> = Vec::new();
    for e in kind.analytics() {
        let Ok(col) = df.column(e.column.name) else { continue };
        let stored = kind.column(e.from).unwrap();
        let ty = if matches!(e.derive, Derive::FirstWord | Derive::OtherWords | Derive::SizeBucket) {
            ColumnType::Text
        } else {
            stored.ty
        };
        let tag = tag(kind, e.column.name);
        let series = col.as_materialized_series().slice(from as i64, len);
        exposed.push((e.column.name, series.iter().map(|v| value(v, ty, tag)).collect()));
    }
    let get = |name: &str, i: usize| exposed.iter().find(|(n, _)| *n == name).map(|(_, v)| v[i].clone());
    (0..len)
        .map(|i| {
            let created = get("created_at", i).unwrap_or(Value::Timestamp(when));
            // A stored column the parquet table does not carry: a plain value of its type.
            let plain = |c: &crm_core::schema::Column| match c.name {
                "id" => Value::Uuid(id_of(tag(kind, "id"), (from + i + 1) as u64)),
                "version" => Value::Int(1),
                "updated_at" | "stage_changed_at" => created.clone(),
                "products" => Value::Json(serde_json::json!([])),
                _ if c.nullable => Value::Null,
                _ => match c.ty {
                    ColumnType::Text => Value::Text(c.choices.first().copied().unwrap_or("").to_string()),
                    ColumnType::Int => Value::Int(0),
                    ColumnType::Bool => Value::Bool(false),
                    ColumnType::Timestamp => created.clone(),
                    ColumnType::Date => Value::Date(when.date_naive()),
                    ColumnType::Json => Value::Json(serde_json::json!({})),
                    ColumnType::UuidList | ColumnType::TextList => Value::Json(serde_json::json!([])),
                    ColumnType::Uuid => Value::Uuid(id_of(tag(kind, c.name), 1)),
                },
            };
            kind.columns()
                .iter()
                .map(|c| {
                    let source = kind.analytics().iter().find(|e| e.from == c.name);
                    match (source.map(|e| e.derive), c.name) {
                        (Some(Derive::FirstWord | Derive::OtherWords), _) => {
                            let first = get("first_name", i).unwrap_or(Value::Null);
                            let last = get("last_name", i).unwrap_or(Value::Null);
                            match (first, last) {
                                (Value::Text(f), Value::Text(l)) => Value::Text(format!("{f} {l}")),
                                (Value::Text(f), _) => Value::Text(f),
                                _ => Value::Text(String::new()),
                            }
                        }
                        (Some(Derive::SizeBucket), _) => size_of(&get("size_bucket", i).unwrap_or(Value::Null)),
                        (Some(_), _) => get(source.unwrap().column.name, i).unwrap_or_else(|| plain(c)),
                        (None, _) => plain(c),
                    }
                })
                .collect()
        })
        .collect()
}

/// Loads the parquet tables into `store`; answers the rows loaded.
pub async fn load(store: &dyn Store, dir: &std::path::Path) -> u64 {
    let when = Utc::now();
    let mut total = 0u64;
    for kind in KINDS {
        let path = dir.join(format!("{}.parquet", kind.table()));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (python benches/analytics/generate.py --scale 1 --out {})", path.display(), dir.display())
        });
        let df = ParquetReader::new(file).finish().expect("parquet");
        let started = Instant::now();
        let mut at = 0;
        while at < df.height() {
            let end = (at + LOAD_BATCH).min(df.height());
            let writes = rows(kind, &df, at, end, when).into_iter().map(|row| Write::Insert { kind, row }).collect();
            store.apply(Changeset { writes, audit: vec![] }).await.expect("load");
            at = end;
        }
        println!("loaded {} {} in {:.1} s", df.height(), kind.table(), started.elapsed().as_secs_f64());
        total += df.height() as u64;
    }
    total
}

/// The workspace's folder (cargo runs benches in the package's).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of the parquet tables: `CRM_BENCH_DATA`, default `target/analytics-data`.
pub fn data_dir() -> PathBuf {
    std::env::var("CRM_BENCH_DATA").map(PathBuf::from).unwrap_or_else(|_| root().join("target/analytics-data"))
}

/// The kept SQLite CRM of the scale-1 data, loaded first when it is not there yet.
pub struct Source {
    /// The database file.
    pub db: PathBuf,
    /// Rows in the six tables.
    pub rows: u64,
    /// The seconds this run spent loading it (`None`: an earlier run loaded it).
    pub load_secs: Option<f64>,
}

/// The scale-1 SQLite CRM in `work` (`copy-source.db`, complete once `copy-source.rows`
/// says so), loaded from `data` when missing. Nothing else writes to it.
pub async fn source(work: &Path, data: &Path) -> Source {
    std::fs::create_dir_all(work).expect("target/crm-bench");
    let (db, marker) = (work.join("copy-source.db"), work.join("copy-source.rows"));
    if let Some(rows) = std::fs::read_to_string(&marker).ok().and_then(|t| t.trim().parse().ok()) {
        return Source { db, rows, load_secs: None };
    }
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", db.display()));
    }
    let store = SqlStore::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.expect("sqlite");
    let started = Instant::now();
    let rows = load(&store, data).await;
    let load_secs = started.elapsed().as_secs_f64();
    store.close().await;
    std::fs::write(&marker, rows.to_string()).expect("marker");
    Source { db, rows, load_secs: Some(load_secs) }
}
