//! MongoDB's indexes, generated from crm-core's declarations, and read back for the
//! schema check.
//!
//! Each declared index becomes one index of the same name and key order (`id` is
//! `_id`). Its rows: live → partial `{_live: true}` (queries on live records say
//! `_live: true`); soft-deleted → partial `{deleted_at: {$exists: true}}`; undelivered →
//! every row (a partial filter cannot say "field absent"). A unique index is also
//! partial on each key field existing, so absent values never collide, as NULLs in
//! SQL. A membership index is an ordinary index on the array field (MongoDB indexes
//! each element).

use crm_core::schema::{EntityKind, Index, IndexRows};
use crm_core::schema_check::{LiveIndex, LiveTable};
use crm_core::{Error, Result};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use crate::bson_map::LIVE;

/// How a declared index exists on MongoDB.
pub fn form(index: &Index) -> Option<Index> {
    let rows = match index.rows {
        IndexRows::Undelivered => IndexRows::All,
        other => other,
    };
    Some(Index { rows, members: false, ..*index })
}

fn field(column: &str) -> &str {
    if column == "id" {
        "_id"
    } else {
        column
    }
}

/// The index model of a declared index.
pub fn model(index: &Index) -> IndexModel {
    let index = form(index).unwrap_or(*index);
    let mut keys = Document::new();
    for c in index.columns {
        keys.insert(field(c), 1);
    }
    let mut partial = Document::new();
    if index.unique {
        for c in index.columns {
            partial.insert(field(c), doc! { "$exists": true });
        }
    }
    match index.rows {
        IndexRows::Live => {
            partial.insert(LIVE, true);
        }
        IndexRows::Deleted => {
            partial.insert("deleted_at", doc! { "$exists": true });
        }
        IndexRows::All | IndexRows::Undelivered => {}
    }
    let mut options = IndexOptions::builder().name(index.name.to_string()).unique(index.unique.then_some(true)).build();
    if !partial.is_empty() {
        options.partial_filter_expression = Some(partial);
    }
    IndexModel::builder().keys(keys).options(options).build()
}

/// The indexes of a collection as MongoDB holds them (not `_id_`), as the schema check
/// reads them; `None` when the collection does not exist.
pub async fn live(db: &Database, kind: EntityKind) -> Result<Option<LiveTable>> {
    let coll = db.collection::<Document>(kind.table());
    let specs = match coll.list_indexes().await {
        Ok(cursor) => cursor.try_collect::<Vec<IndexModel>>().await,
        Err(e) => Err(e),
    };
    let specs = match specs {
        Ok(s) => s,
        Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 26) => return Ok(None),
        Err(e) => return Err(Error::internal("reading the indexes", e)),
    };
    let mut indexes = Vec::new();
    for spec in specs {
        let options = spec.options.unwrap_or_default();
        let name = options.name.clone().unwrap_or_default();
        if name == "_id_" {
            continue;
        }
        let columns =
            spec.keys.keys().map(|k| if k == "_id" { "id".to_string() } else { k.clone() }).collect::<Vec<_>>();
        let unique = options.unique.unwrap_or(false);
        let partial = options.partial_filter_expression.unwrap_or_default();
        let rows = if partial.get(LIVE) == Some(&Bson::Boolean(true)) {
            Ok(IndexRows::Live)
        } else if !unique && partial.contains_key("deleted_at") {
            Ok(IndexRows::Deleted)
        } else if partial.keys().all(|k| unique && columns.iter().any(|c| field(c) == k)) {
            Ok(IndexRows::All)
        } else {
            Err(partial.to_string())
        };
        indexes.push(LiveIndex { name, columns, unique, rows, members: false });
    }
    Ok(Some(LiveTable { name: kind.table().to_string(), columns: Vec::new(), indexes }))
}
