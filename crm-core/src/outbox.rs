//! The outbox: side effects (emails, webhooks, chat posts) recorded in the same atomic
//! write as the change that causes them, and delivered later by a worker.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{is_redacted, AuditEvent};
use crate::error::Result;
use crate::query::{id_key, Cmp, Direction, Filter, Predicate, StoreQuery};
use crate::schema::{or_null, timestamp_value, Column, ColumnType as T, EntityKind, Index, Persist, Row, Value};
use crate::store::{Store, StoreExt};

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
    /// When the delivery engine dispatched it into its deliveries (see
    /// [`crate::delivery`]).
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Version, so two workers never both claim it.
    pub version: i64,
}

impl Persist for OutboxEvent {
    const KIND: EntityKind = EntityKind::OutboxEvent;
}

impl OutboxEvent {
    /// Its row, built directly: every write stores outbox events, and this skips the
    /// JSON round trip of [`crate::schema::to_row`] (a test keeps the two equal).
    pub fn into_row(self) -> Row {
        vec![
            Value::Uuid(self.id),
            Value::Text(self.topic),
            Value::Text(self.entity_type),
            or_null(self.entity_id, Value::Uuid),
            Value::Json(self.payload),
            timestamp_value(self.created_at),
            timestamp_value(self.available_at),
            Value::Int(self.attempts),
            or_null(self.delivered_at, timestamp_value),
            or_null(self.last_error, Value::Text),
            Value::Int(self.version),
        ]
    }
}

/// The payload key by which a record change's event names its audit event. Such an
/// event carries `{id, actorId, auditId, changed}`, the names of the changed fields: the
/// values stay in the audit event, written once, where erasing a person redacts them.
/// [`with_changes`] reads them back for delivery.
pub const AUDIT_ID: &str = "auditId";

impl OutboxEvent {
    /// A new event about `entity_id` of `kind`, recorded and due at `at`.
    pub fn new(
        id: Uuid,
        topic: String,
        kind: EntityKind,
        entity_id: Option<Uuid>,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            topic,
            entity_type: kind.name().to_string(),
            entity_id,
            payload,
            created_at: at,
            available_at: at,
            attempts: 0,
            delivered_at: None,
            last_error: None,
            version: 1,
        }
    }

    /// The audit event holding this event's values, if it left them there.
    pub fn audit_id(&self) -> Option<Uuid> {
        if self.payload.get("changes").is_some() {
            return None;
        }
        self.payload.get(AUDIT_ID)?.as_str()?.parse().ok()
    }
}

/// `events` as their deliveries see them: each record change's payload with the change's
/// values (`changes`: `{field: {before, after}}`) from its audit event, read in one query.
/// An event whose audit event is gone, or redacted because its person was erased, keeps
/// only the names of the changed fields.
pub async fn with_changes(store: &dyn Store, events: &[OutboxEvent]) -> Result<Vec<OutboxEvent>> {
    let wanted: Vec<Value> = events.iter().filter_map(OutboxEvent::audit_id).map(Value::Uuid).collect();
    let mut changes: HashMap<Uuid, serde_json::Value> = HashMap::with_capacity(wanted.len());
    if !wanted.is_empty() {
        let k = EntityKind::AuditEvent;
        let query = StoreQuery {
            filter: Some(Filter::Cmp(Cmp { column: k.require_column("id")?, pred: Predicate::In(wanted) })),
            sort: vec![id_key(k, Direction::Asc)],
            limit: u32::try_from(events.len()).unwrap_or(u32::MAX),
            include_deleted: true,
        };
        for audit in store.list_as::<AuditEvent>(&query).await? {
            if !is_redacted(&audit.changes) {
                changes.insert(audit.id, audit.changes);
            }
        }
    }
    Ok(events
        .iter()
        .map(|ev| {
            let mut ev = ev.clone();
            let found = ev.audit_id().and_then(|id| changes.get(&id));
            if let (Some(c), Some(p)) = (found, ev.payload.as_object_mut()) {
                p.insert("changes".into(), c.clone());
            }
            ev
        })
        .collect())
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

/// The indexes of `outbox_events` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("outbox_events_pending_idx", &["available_at", "id"]).undelivered(),
    Index::on("outbox_events_topic_idx", &["topic", "available_at"]).undelivered(),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::to_row;

    #[test]
    fn into_row_matches_the_schema_mapping() {
        let at = DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap_or_default();
        let mut ev = OutboxEvent {
            id: Uuid::from_u128(3),
            topic: "contact.created".into(),
            entity_type: "contact".into(),
            entity_id: Some(Uuid::from_u128(4)),
            payload: serde_json::json!({"id": "x", "changes": {"name": {"before": null, "after": "Ann 😀"}}}),
            created_at: at,
            available_at: at,
            attempts: 2,
            delivered_at: Some(at),
            last_error: Some("timeout".into()),
            version: 3,
        };
        assert_eq!(to_row(&ev).ok(), Some(ev.clone().into_row()));
        ev.entity_id = None;
        ev.delivered_at = None;
        ev.last_error = None;
        assert_eq!(to_row(&ev).ok(), Some(ev.into_row()));
    }
}
