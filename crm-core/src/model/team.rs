//! Teams: groups of users; managers see their team's records.

use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, RecordMeta};
use crate::ids::{TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, EntityKind, Index};

/// A team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Team {
    /// The team's id.
    pub id: TeamId,
    /// Name, unique among live teams.
    pub name: String,
    /// What the team does.
    pub description: Option<String>,
    /// The team's manager.
    pub manager_id: Option<UserId>,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(Team, EntityKind::Team, |t| Ownership { owner: t.manager_id, team: Some(t.id), assignee: None }, |t| {
    search_words([Some(t.name.as_str())])
});

/// Storage columns of teams.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("description", "description", T::Text).null(),
    Column::new("manager_id", "managerId", T::Uuid).null().filter(),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `teams` besides the primary key.
pub static INDEXES: &[Index] = &[Index::on("teams_name_key", &["name"]).unique().live()];
