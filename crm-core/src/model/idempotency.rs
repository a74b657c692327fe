//! Remembered answers of POST requests made with an `Idempotency-Key`: the same key and
//! request within 24 hours replays the first answer instead of acting twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

/// One key's request and, once it is done, its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The record's id.
    pub id: Uuid,
    /// SHA-256 of the caller and the key, hex (unique).
    pub key_hash: String,
    /// SHA-256 of the method, path and body, hex.
    pub request_hash: String,
    /// The answer's status; absent while the first request is still running.
    pub status: Option<i64>,
    /// The answer's body and the headers worth replaying.
    pub response: Option<serde_json::Value>,
    /// When the key was first used.
    pub created_at: DateTime<Utc>,
    /// When it is forgotten.
    pub expires_at: DateTime<Utc>,
    /// Raised when the answer is stored (optimistic concurrency).
    pub version: i64,
}

impl Persist for IdempotencyRecord {
    const KIND: EntityKind = EntityKind::IdempotencyKey;
}

/// Storage columns of idempotency records.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("key_hash", "keyHash", T::Text).filter(),
    Column::new("request_hash", "requestHash", T::Text),
    Column::new("status", "status", T::Int).null(),
    Column::new("response", "response", T::Json).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("expires_at", "expiresAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `idempotency_keys` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("idempotency_keys_key", &["key_hash"]).unique(),
    Index::on("idempotency_keys_expires_idx", &["expires_at"]),
];
