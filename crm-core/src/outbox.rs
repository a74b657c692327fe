//! The outbox: side effects (emails, webhooks, chat posts) recorded in the same atomic
//! write as the change that causes them, and delivered later by a worker.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::{Column, ColumnType as T, EntityKind, Persist};

/// One domain event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEvent {
    /// Id (time-ordered).
    pub id: Uuid,
    /// `contact.created`, `deal.stage_changed`, `task.assigned`, …
    pub topic: String,
    /// The entity kind concerned.
    pub entity_type: String,
    /// The entity concerned.
    pub entity_id: Option<Uuid>,
    /// The event body.
    pub payload: serde_json::Value,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Not to be delivered before.
    pub available_at: DateTime<Utc>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Version, so two workers never both claim it.
    pub version: i64,
}

impl Persist for OutboxEvent {
    const KIND: EntityKind = EntityKind::OutboxEvent;
}

/// Storage columns of the outbox.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("topic", "topic", T::Text).sort(),
    Column::new("entity_type", "entityType", T::Text).filter(),
    Column::new("entity_id", "entityId", T::Uuid).null().filter(),
    Column::new("payload", "payload", T::Json),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("available_at", "availableAt", T::Timestamp).sort(),
    Column::new("attempts", "attempts", T::Int).filter(),
    Column::new("delivered_at", "deliveredAt", T::Timestamp).null().sort(),
    Column::new("last_error", "lastError", T::Text).null(),
    Column::new("version", "version", T::Int).filter(),
];
