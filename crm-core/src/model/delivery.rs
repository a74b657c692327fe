//! What the delivery engine stores: one [`Delivery`] per (outbox event, consumer,
//! target) — an email, a webhook call, a chat post — with its attempts and state; the
//! outgoing [`Webhook`] subscriptions; and the in-app [`Notification`]s of each user.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::string_enum;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

string_enum! {
    /// Where a delivery is.
    DeliveryState {
        /// Waiting for its next attempt (or being attempted).
        Pending = "pending",
        /// Accepted by its receiver.
        Delivered = "delivered",
        /// Given up: too many attempts, or it can never succeed. An admin may replay it.
        Dead = "dead",
    }
}

/// One message to one receiver, retried until it is accepted or given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Id (time-ordered).
    pub id: Uuid,
    /// The outbox event it delivers: the idempotency key receivers see (the same on
    /// every attempt, so a receiver that remembers it acts once).
    pub event_id: Uuid,
    /// Who sends it: `mail`, `webhook`, `email`, `slack`, `teams`.
    pub consumer: String,
    /// The receiver: a webhook subscription, a user or a team (by consumer).
    pub target_id: Option<Uuid>,
    /// The event's topic (`deal.won`).
    pub topic: String,
    /// What to send, fixed when the event was dispatched.
    pub payload: serde_json::Value,
    /// Where it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "pending"))]
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// The next attempt, not before (while an attempt runs: the end of its lease).
    pub available_at: DateTime<Utc>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When its receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// The receiver's last HTTP status, for HTTP receivers.
    pub last_status: Option<i64>,
    /// Version: a claim or an outcome written from a stale copy is refused.
    pub version: i64,
}

impl Persist for Delivery {
    const KIND: EntityKind = EntityKind::Delivery;
}

/// Storage columns of deliveries.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("event_id", "eventId", T::Uuid).filter(),
    Column::new("consumer", "consumer", T::Text).filter(),
    Column::new("target_id", "targetId", T::Uuid).null().filter(),
    Column::new("topic", "topic", T::Text).filter(),
    Column::new("payload", "payload", T::Json),
    Column::new("state", "state", T::Text).filter(),
    Column::new("attempts", "attempts", T::Int).filter(),
    Column::new("available_at", "availableAt", T::Timestamp).sort(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("delivered_at", "deliveredAt", T::Timestamp).null().sort(),
    Column::new("last_error", "lastError", T::Text).null(),
    Column::new("last_status", "lastStatus", T::Int).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `deliveries` besides the primary key: the claim path (due pending
/// rows of some consumers, oldest first), a receiver's log, an event's deliveries.
pub static INDEXES: &[Index] = &[
    Index::on("deliveries_due_idx", &["state", "available_at", "id"]),
    Index::on("deliveries_target_idx", &["target_id", "created_at"]),
    Index::on("deliveries_event_idx", &["event_id"]),
];

/// An outgoing webhook: events of the chosen types are POSTed to `url`, signed per the
/// Standard Webhooks specification with the subscription's secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The subscription's id (also the `webhook-id` prefix of its messages).
    pub id: Uuid,
    /// Where events go (`https://…`).
    pub url: String,
    /// The event types sent (`deal.won`, `contact.*`, or `*` for all).
    pub events: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Paused subscriptions get nothing (events of the pause are not queued for them).
    pub active: bool,
    /// The signing secret (`whsec_…`), sealed: the database never holds it readable.
    pub secret: String,
    /// The secret before the last rotation (sealed), still signing until `previous_until`.
    pub previous_secret: Option<String>,
    /// The end of the rotation's overlap.
    pub previous_until: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Raised by each change (optimistic concurrency).
    pub version: i64,
}

impl Persist for Webhook {
    const KIND: EntityKind = EntityKind::Webhook;
}

/// Storage columns of webhook subscriptions.
pub static WEBHOOK_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("url", "url", T::Text).sort(),
    Column::new("events", "events", T::TextList).filter(),
    Column::new("description", "description", T::Text).null(),
    Column::new("active", "active", T::Bool).filter(),
    Column::new("secret", "secret", T::Text),
    Column::new("previous_secret", "previousSecret", T::Text).null(),
    Column::new("previous_until", "previousUntil", T::Timestamp).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `webhooks` besides the primary key: the dispatcher reads the active ones.
pub static WEBHOOK_INDEXES: &[Index] = &[Index::on("webhooks_active_idx", &["active", "id"])];

/// A notification shown in the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The event it tells of.
    pub event_id: Uuid,
    /// What happened (`task.assigned`).
    pub topic: String,
    /// The kind of record concerned.
    pub entity_type: String,
    /// The record concerned.
    pub entity_id: Option<Uuid>,
    /// One line.
    pub title: String,
    /// More.
    pub body: String,
    /// Where the record is in the app.
    pub link: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its user read it.
    pub read_at: Option<DateTime<Utc>>,
    /// Raised by each claim and each attempt (two workers never both send it).
    pub version: i64,
}

impl Persist for Notification {
    const KIND: EntityKind = EntityKind::Notification;
}

/// Storage columns of notifications.
pub static NOTIFICATION_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("user_id", "userId", T::Uuid).filter(),
    Column::new("event_id", "eventId", T::Uuid).filter(),
    Column::new("topic", "topic", T::Text).filter(),
    Column::new("entity_type", "entityType", T::Text).filter(),
    Column::new("entity_id", "entityId", T::Uuid).null().filter(),
    Column::new("title", "title", T::Text),
    Column::new("body", "body", T::Text),
    Column::new("link", "link", T::Text).null(),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("read_at", "readAt", T::Timestamp).null().sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `notifications` besides the primary key: a user's, newest first.
pub static NOTIFICATION_INDEXES: &[Index] = &[Index::on("notifications_user_idx", &["user_id", "id"])];

string_enum! {
    /// A chat service notifications are posted to.
    ChatProvider {
        /// Slack, through an incoming webhook (Block Kit messages).
        Slack = "slack",
        /// Microsoft Teams, through a Workflows webhook (Adaptive Cards).
        Teams = "teams",
    }
}

/// Where a user's (or a team's) chat posts go: the webhook URL of a Slack app or a Teams
/// workflow, sealed (it is a credential: whoever holds it posts to the channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatChannel {
    /// The channel's id.
    pub id: Uuid,
    /// `user` or `team`.
    pub scope: String,
    /// The user or team it belongs to.
    pub scope_id: Uuid,
    /// `slack` or `teams`.
    pub provider: String,
    /// The webhook URL, sealed; empty for a Slack bot.
    pub url: String,
    /// A Slack bot's token (`xoxb-…`), sealed: posts go through `chat.postMessage`.
    pub token: Option<String>,
    /// The Slack channel a bot posts to (`C0123456789`).
    pub channel: Option<String>,
    /// When it was set.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who set it.
    pub created_by: Option<Uuid>,
    /// Raised by each change (optimistic concurrency).
    pub version: i64,
}

impl Persist for ChatChannel {
    const KIND: EntityKind = EntityKind::ChatChannel;
}

/// Storage columns of chat channels.
pub static CHAT_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("scope", "scope", T::Text).filter(),
    Column::new("scope_id", "scopeId", T::Uuid).filter(),
    Column::new("provider", "provider", T::Text).filter(),
    Column::new("url", "url", T::Text),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("created_by", "createdBy", T::Uuid).null().filter(),
    Column::new("version", "version", T::Int).filter(),
    Column::new("token", "token", T::Text).null(),
    Column::new("channel", "channel", T::Text).null(),
];

/// The indexes of `chat_channels` besides the primary key: one per owner and provider.
pub static CHAT_INDEXES: &[Index] = &[Index::on("chat_channels_owner_key", &["scope_id", "provider"]).unique()];
