//! Files attached to contacts, companies, deals and tasks (`bulk::attachments`). The
//! bytes live in the blob store under `attachments/<id>`; the row says what they are.
//! An attachment is seen through its record: hidden while the record is soft-deleted,
//! back when it is restored, gone (bytes too) when it is purged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

/// A file attached to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The attachment's id.
    pub id: Uuid,
    /// The kind of record it is attached to: `contact`, `company`, `deal` or `task`.
    pub parent_type: String,
    /// That record's id.
    pub parent_id: Uuid,
    /// The file's name as uploaded (cleaned of directories and control characters).
    pub file_name: String,
    /// The media type found from the bytes themselves.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Who uploaded it (absent once that user's data is erased).
    pub uploaded_by: Option<Uuid>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for Attachment {
    const KIND: EntityKind = EntityKind::Attachment;
}

impl Attachment {
    /// Where the bytes are kept in the blob store.
    pub fn blob_key(&self) -> String {
        blob_key(self.id)
    }
}

/// The blob-store key of attachment `id`.
pub fn blob_key(id: Uuid) -> String {
    format!("attachments/{id}")
}

/// Storage columns of attachments.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("parent_type", "parentType", T::Text).filter(),
    Column::new("parent_id", "parentId", T::Uuid).filter(),
    Column::new("file_name", "fileName", T::Text).sort(),
    Column::new("content_type", "contentType", T::Text).filter(),
    Column::new("size", "size", T::Int).sort(),
    Column::new("sha256", "sha256", T::Text),
    Column::new("uploaded_by", "uploadedBy", T::Uuid).null().filter(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `attachments`: a record's files, an uploader's.
pub static INDEXES: &[Index] = &[
    Index::on("attachments_parent_idx", &["parent_id", "created_at", "id"]),
    Index::on("attachments_uploader_idx", &["uploaded_by"]),
];
