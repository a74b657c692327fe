//! Tasks: follow-ups, calls to make, demos to run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{impl_record, record_columns, search_words, string_enum, RecordMeta};
use crate::ids::{TaskId, TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, EntityKind, Exposed, Index};

string_enum! {
    /// How urgent.
    TaskPriority {
        /// Whenever there is time.
        Low = "low",
        /// Medium (the default).
        Medium = "medium",
        /// Before medium ones.
        High = "high",
        /// Drop everything.
        Urgent = "urgent",
    }
}

string_enum! {
    /// Progress.
    TaskStatus {
        /// Not started (the default).
        Open = "open",
        /// Under way.
        InProgress = "in_progress",
        /// Finished.
        Done = "done",
        /// Dropped.
        Cancelled = "cancelled",
    }
}

string_enum! {
    /// The kind of record a task is about.
    RelatedType {
        /// A contact.
        Contact = "contact",
        /// A company.
        Company = "company",
        /// A deal.
        Deal = "deal",
    }
}

/// The record a task is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Related {
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: RelatedType,
    /// Its id.
    pub id: Uuid,
}

/// A piece of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// What to do.
    pub name: String,
    /// Details.
    pub description: Option<String>,
    /// When it is due.
    pub due_date: Option<DateTime<Utc>>,
    /// How urgent (`low` to `urgent`); lists sort on it.
    pub priority: TaskPriority,
    /// Where it is (`open`, `in_progress`, `done`, `cancelled`).
    pub status: TaskStatus,
    /// Who does it.
    pub assigned_user: Option<UserId>,
    /// What it is about.
    pub related: Option<Related>,
    /// When it was done.
    pub completed_at: Option<DateTime<Utc>>,
    /// Who owns it (the creator, unless reassigned).
    pub owner_id: UserId,
    /// The owner's team.
    pub team_id: Option<TeamId>,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(
    Task,
    EntityKind::Task,
    |t| Ownership { owner: Some(t.owner_id), team: t.team_id, assignee: t.assigned_user },
    |t| search_words([Some(t.name.as_str())])
);

/// Storage columns of tasks.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("description", "description", T::Text).null(),
    Column::new("due_date", "dueDate", T::Timestamp).null().sort(),
    Column::new("priority", "priority", T::Text).sort().choices(TaskPriority::CHOICES),
    Column::new("status", "status", T::Text).sort().choices(TaskStatus::CHOICES),
    Column::new("assigned_user", "assignedUser", T::Uuid).null().filter(),
    Column::new("related_type", "related.type", T::Text).null().filter().choices(RelatedType::CHOICES),
    Column::new("related_id", "related.id", T::Uuid).null().filter(),
    Column::new("completed_at", "completedAt", T::Timestamp).null().sort(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `tasks` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("tasks_created_idx", &["created_at", "id"]).live(),
    Index::on("tasks_due_idx", &["due_date"]).live(),
    Index::on("tasks_status_idx", &["status", "due_date"]).live(),
    Index::on("tasks_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("tasks_assignee_idx", &["assigned_user", "created_at", "id"]),
    Index::on("tasks_team_idx", &["team_id", "created_at", "id"]),
    Index::on("tasks_related_idx", &["related_id"]),
];

/// The `tasks` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static ANALYTICS: &[Exposed] = &[
    Exposed::id("id", "id"),
    Exposed::id("owner_id", "owner_id"),
    Exposed::new("status", T::Text, "status"),
    Exposed::new("priority", T::Text, "priority"),
    Exposed::new("due_at", T::Timestamp, "due_date").null(),
    Exposed::new("completed_at", T::Timestamp, "completed_at").null(),
    Exposed::new("deleted_at", T::Timestamp, "deleted_at").null().hidden(),
];
