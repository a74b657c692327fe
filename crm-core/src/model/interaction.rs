//! Interactions: calls, emails, meetings and notes logged on a contact.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, string_enum, RecordMeta};
use crate::ids::{ContactId, DealId, InteractionId, TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, EntityKind, Exposed, Index};

string_enum! {
    /// What kind of touch point.
    InteractionKind {
        /// A phone call.
        Call = "call",
        /// An email.
        Email = "email",
        /// A meeting.
        Meeting = "meeting",
        /// A note.
        Note = "note",
    }
}

/// One logged touch point with a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    /// The interaction's id.
    pub id: InteractionId,
    /// The contact it was with; it shows on their timeline.
    pub contact_id: ContactId,
    /// The deal it was about, if any.
    pub deal_id: Option<DealId>,
    /// Call, email, meeting, note, …
    pub kind: InteractionKind,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Subject line.
    pub subject: Option<String>,
    /// Body or notes.
    pub body: Option<String>,
    /// Who logged it.
    pub owner_id: UserId,
    /// The owner's team.
    pub team_id: Option<TeamId>,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(
    Interaction,
    EntityKind::Interaction,
    |i| Ownership { owner: Some(i.owner_id), team: i.team_id, assignee: None },
    |i| search_words([i.subject.as_deref()])
);

/// Storage columns of interactions.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("contact_id", "contactId", T::Uuid).filter(),
    Column::new("deal_id", "dealId", T::Uuid).null().filter(),
    Column::new("kind", "kind", T::Text).sort().choices(InteractionKind::CHOICES),
    Column::new("occurred_at", "occurredAt", T::Timestamp).sort(),
    Column::new("subject", "subject", T::Text).null().sort(),
    Column::new("body", "body", T::Text).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `interactions` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("interactions_contact_idx", &["contact_id", "occurred_at"]),
    Index::on("interactions_created_idx", &["created_at", "id"]).live(),
    Index::on("interactions_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("interactions_deal_idx", &["deal_id"]),
];

/// The `interactions` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static ANALYTICS: &[Exposed] = &[
    Exposed::id("id", "id"),
    Exposed::id("contact_id", "contact_id"),
    Exposed::id("deal_id", "deal_id").null(),
    Exposed::id("owner_id", "owner_id").null(),
    Exposed::new("kind", T::Text, "kind"),
    Exposed::new("occurred_at", T::Timestamp, "occurred_at"),
];
