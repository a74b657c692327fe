//! Contact merges: which contacts were folded into which, and every change the merge
//! made, so that it can be undone (`bulk::merge`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::JsonObject;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

/// How long a merge can be undone.
pub const UNDO_DAYS: i64 = 30;

/// One value a merge changed on a row that referred to a merged contact: a deal's
/// `contactIds`, an interaction's `contactId`, … Undo puts `before` back where the row
/// still holds `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Relink {
    /// The kind of the row, as the API names it (`deal`, `interaction`, …).
    pub kind: String,
    /// The row's id.
    pub id: Uuid,
    /// The storage column changed.
    pub column: String,
    /// Its value before the merge (`null`: the row did not exist).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub before: serde_json::Value,
    /// Its value after the merge.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub after: serde_json::Value,
}

/// A merge of contacts into one survivor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactMerge {
    /// The merge's id.
    pub id: Uuid,
    /// The contact that stays.
    pub survivor_id: Uuid,
    /// The contacts folded into it (soft-deleted by the merge).
    pub merged_ids: Vec<Uuid>,
    /// For each field the merge set on the survivor, the contact its value came from.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub sources: JsonObject,
    /// The survivor as it was before the merge (API spelling).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub survivor_before: JsonObject,
    /// The survivor as the merge left it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub survivor_after: JsonObject,
    /// Rows moved from the merged contacts to the survivor, by kind.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub relinked_counts: JsonObject,
    /// Every value changed on those rows, for undo.
    pub relinks: Vec<Relink>,
    /// Who merged.
    pub merged_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was undone.
    pub undone_at: Option<DateTime<Utc>>,
    /// Who undid it.
    pub undone_by: Option<Uuid>,
    /// Version.
    pub version: i64,
}

impl Persist for ContactMerge {
    const KIND: EntityKind = EntityKind::ContactMerge;
}

impl ContactMerge {
    /// The last moment the merge can be undone.
    pub fn undo_until(&self) -> DateTime<Utc> {
        self.created_at + chrono::Duration::days(UNDO_DAYS)
    }
}

/// Storage columns of contact merges.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("survivor_id", "survivorId", T::Uuid).filter(),
    Column::new("merged_ids", "mergedIds", T::UuidList).filter(),
    Column::new("sources", "sources", T::Json),
    Column::new("survivor_before", "survivorBefore", T::Json),
    Column::new("survivor_after", "survivorAfter", T::Json),
    Column::new("relinked_counts", "relinkedCounts", T::Json),
    Column::new("relinks", "relinks", T::Json),
    Column::new("merged_by", "mergedBy", T::Uuid).filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("undone_at", "undoneAt", T::Timestamp).null().sort(),
    Column::new("undone_by", "undoneBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `contact_merges`: a survivor's merges, a merged contact's.
pub static INDEXES: &[Index] = &[
    Index::on("contact_merges_survivor_idx", &["survivor_id", "created_at"]),
    Index::on("contact_merges_merged_idx", &["merged_ids"]).members(),
];
