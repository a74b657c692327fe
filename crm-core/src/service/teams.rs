//! The teams service.

use serde::Deserialize;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::error::{Errors, Result};
use crate::ids::{TeamId, UserId};
use crate::model::team::Team;
use crate::model::RecordMeta;
use crate::policy::{Action, Actor, Resource};
use crate::query::{ListQuery, Page};

/// Input of [`TeamService::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTeam {
    /// Name (required, unique among live teams).
    pub name: String,
    /// What the team does, in free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The user who manages the team; none: no manager yet.
    #[serde(default)]
    pub manager_id: Option<UserId>,
}

/// Input of [`TeamService::update`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamPatch {
    /// New name; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// New manager; `null` removes the manager, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub manager_id: Option<Option<UserId>>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Teams: create, rename, manage members (admins), read (everyone).
#[derive(Debug, Clone, Copy)]
pub struct TeamService<'a> {
    pub(super) crm: &'a Crm,
}

impl TeamService<'_> {
    /// Creates a team.
    pub async fn create(&self, actor: &Actor, input: NewTeam) -> Result<Team> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Teams, Action::Create)?;
        let mut errs = Errors::new();
        let name = input::required(&mut errs, "name", &input.name, 100);
        let description = input::text(&mut errs, "description", input.description, 2000, true);
        if let Some(m) = input.manager_id {
            crm.check_user(m, "managerId", &mut errs).await?;
        }
        errs.finish()?;
        let now = crm.now();
        let team = Team {
            id: TeamId(crm.new_id(now)),
            name,
            description,
            manager_id: input.manager_id,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        crm.commit_insert(actor, &team, Default::default()).await?;
        Ok(team)
    }

    /// A live team the actor may read.
    pub async fn get(&self, actor: &Actor, id: TeamId) -> Result<Team> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of teams the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Team>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes a team.
    pub async fn update(&self, actor: &Actor, id: TeamId, patch: TeamPatch) -> Result<Team> {
        let crm = self.crm;
        let before: Team = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut t = before.clone();
        if let Some(n) = patch.name {
            t.name = input::required(&mut errs, "name", &n, 100);
        }
        if let Some(d) = patch.description {
            t.description = input::text(&mut errs, "description", d, 2000, true);
        }
        if let Some(m) = patch.manager_id {
            if let Some(u) = m {
                crm.check_user(u, "managerId", &mut errs).await?;
            }
            t.manager_id = m;
        }
        errs.finish()?;
        crm.commit_update(actor, &before, t, "updated", Default::default()).await
    }

    /// Soft-deletes a team.
    pub async fn delete(&self, actor: &Actor, id: TeamId, expected_version: Option<i64>) -> Result<Team> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a team.
    pub async fn restore(&self, actor: &Actor, id: TeamId) -> Result<Team> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }
}
