//! The tasks service: assignment and completion.

use serde::Deserialize;
use serde_json::json;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::date_or_time::DateOrTime;
use crate::error::{Errors, Result};
use crate::ids::{TaskId, UserId};
use crate::model::company::Company;
use crate::model::contact::Contact;
use crate::model::deal::Deal;
use crate::model::task::{Related, RelatedType, Task, TaskPriority, TaskStatus};
use crate::model::RecordMeta;
use crate::policy::{Action, Actor, Resource};
use crate::query::{ListQuery, Page};
use crate::schema::{EntityKind, NAME_CHARS};
use crate::store::Changeset;

/// Input of [`TaskService::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTask {
    /// What to do (required).
    pub name: String,
    /// Details.
    #[serde(default)]
    pub description: Option<String>,
    /// Due: an RFC 3339 time, or a date (`2030-01-15`) meaning the end of that day in
    /// the caller's time zone.
    #[serde(default)]
    pub due_date: Option<DateOrTime>,
    /// Priority (default `medium`).
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    /// Status (default `open`).
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Assignee (notified).
    #[serde(default)]
    pub assigned_user: Option<UserId>,
    /// What it is about.
    #[serde(default)]
    pub related: Option<Related>,
    /// Who does it; absent: the caller.
    #[serde(default)]
    pub owner_id: Option<UserId>,
}

/// Input of [`TaskService::update`]: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskPatch {
    /// New title; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New details; `null` clears them, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// Due: an RFC 3339 time, or a date meaning the end of that day in the caller's time
    /// zone; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub due_date: Option<Option<DateOrTime>>,
    /// New priority; absent: unchanged.
    #[serde(default)]
    pub priority: Option<TaskPriority>,
    /// Status; `done` sets `completedAt`, leaving `done` clears it.
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Assignee (`null` unassigns).
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_user: Option<Option<UserId>>,
    /// What it is about.
    #[serde(default, deserialize_with = "nullable")]
    pub related: Option<Option<Related>>,
    /// New assignee (the task moves to their team); absent: unchanged.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Tasks: work to do.
#[derive(Debug, Clone, Copy)]
pub struct TaskService<'a> {
    pub(super) crm: &'a Crm,
}

impl TaskService<'_> {
    async fn check_related(&self, actor: &Actor, r: &Related, errs: &mut Errors) -> Result<()> {
        let crm = self.crm;
        match r.kind {
            RelatedType::Contact => crm.check_ref::<Contact>(actor, r.id, "related.id", errs).await,
            RelatedType::Company => crm.check_ref::<Company>(actor, r.id, "related.id", errs).await,
            RelatedType::Deal => crm.check_ref::<Deal>(actor, r.id, "related.id", errs).await,
        }
    }

    fn assigned_event(&self, actor: &Actor, task: &Task) -> Result<Changeset> {
        let mut cs = Changeset::default();
        if let Some(to) = task.assigned_user.filter(|u| *u != actor.user_id) {
            cs.writes.push(self.crm.event(
                "task.assigned".into(),
                EntityKind::Task,
                task.id.as_uuid(),
                json!({"id": task.id, "name": task.name, "assignedUser": to, "actorId": actor.user_id, "dueDate": task.due_date}),
            )?);
        }
        Ok(cs)
    }

    /// Creates a task; an assignee other than the caller is notified (`task.assigned`).
    pub async fn create(&self, actor: &Actor, input: NewTask) -> Result<Task> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Tasks, Action::Create)?;
        let mut errs = Errors::new();
        let name = input::required(&mut errs, "name", &input.name, NAME_CHARS);
        let description = input::text(&mut errs, "description", input.description, 10_000, true);
        if let Some(u) = input.assigned_user {
            crm.check_recipient(actor, Resource::Tasks, Action::Assign, u, "assignedUser", &mut errs).await?;
        }
        if let Some(r) = &input.related {
            self.check_related(actor, r, &mut errs).await?;
        }
        let (owner_id, team_id) =
            crm.resolve_owner(actor, Resource::Tasks, Action::Create, input.owner_id, &mut errs).await?;
        errs.finish()?;
        let due_date = crm.moment(actor, input.due_date, true).await?;
        let now = crm.now();
        let status = input.status.unwrap_or(TaskStatus::Open);
        let task = Task {
            id: TaskId(crm.new_id(now)),
            name,
            description,
            due_date: due_date.map(crate::clock::truncate_ms),
            priority: input.priority.unwrap_or(TaskPriority::Medium),
            status,
            assigned_user: input.assigned_user,
            related: input.related,
            completed_at: (status == TaskStatus::Done).then_some(now),
            owner_id,
            team_id,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        let extra = self.assigned_event(actor, &task)?;
        crm.commit_insert(actor, &task, extra).await?;
        Ok(task)
    }

    /// A live task the actor may read (owner, assignee, or wider scope).
    pub async fn get(&self, actor: &Actor, id: TaskId) -> Result<Task> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of tasks the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Task>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes the fields the patch names.
    pub async fn update(&self, actor: &Actor, id: TaskId, patch: TaskPatch) -> Result<Task> {
        let crm = self.crm;
        let before: Task = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut t = before.clone();
        if let Some(n) = patch.name {
            t.name = input::required(&mut errs, "name", &n, NAME_CHARS);
        }
        if let Some(d) = patch.description {
            t.description = input::text(&mut errs, "description", d, 10_000, true);
        }
        if let Some(d) = patch.due_date {
            t.due_date = crm.moment(actor, d, true).await?.map(crate::clock::truncate_ms);
        }
        if let Some(p) = patch.priority {
            t.priority = p;
        }
        if let Some(s) = patch.status {
            t.status = s;
            t.completed_at = match (s, before.completed_at) {
                (TaskStatus::Done, Some(at)) => Some(at),
                (TaskStatus::Done, None) => Some(crm.now()),
                _ => None,
            };
        }
        if let Some(r) = patch.related {
            if let Some(r) = &r {
                self.check_related(actor, r, &mut errs).await?;
            }
            t.related = r;
        }
        let mut extra = Changeset::default();
        if let Some(a) = patch.assigned_user.filter(|a| *a != before.assigned_user) {
            crm.authorized::<Task>(actor, id.as_uuid(), Action::Assign).await?;
            if let Some(u) = a {
                crm.check_recipient(actor, Resource::Tasks, Action::Assign, u, "assignedUser", &mut errs).await?;
            }
            t.assigned_user = a;
            extra = self.assigned_event(actor, &t)?;
        }
        if let Some(owner) = patch.owner_id.filter(|o| *o != before.owner_id) {
            crm.authorized::<Task>(actor, id.as_uuid(), Action::Assign).await?;
            let (o, team) = crm.resolve_owner(actor, Resource::Tasks, Action::Assign, Some(owner), &mut errs).await?;
            t.owner_id = o;
            t.team_id = team;
        }
        errs.finish()?;
        crm.commit_update(actor, &before, t, "updated", extra).await
    }

    /// Assigns the task to a user, who is notified (`task.assigned`).
    pub async fn assign(&self, actor: &Actor, id: TaskId, assignee: UserId) -> Result<Task> {
        let crm = self.crm;
        let before: Task = crm.authorized(actor, id.as_uuid(), Action::Assign).await?;
        let mut errs = Errors::new();
        crm.check_recipient(actor, Resource::Tasks, Action::Assign, assignee, "assignedUser", &mut errs).await?;
        errs.finish()?;
        let mut t = before.clone();
        t.assigned_user = Some(assignee);
        let extra = self.assigned_event(actor, &t)?;
        crm.commit_update(actor, &before, t, "assigned", extra).await
    }

    /// Marks the task done (`task.completed`).
    pub async fn complete(&self, actor: &Actor, id: TaskId) -> Result<Task> {
        let crm = self.crm;
        let before: Task = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        if before.status == TaskStatus::Done {
            return Ok(before);
        }
        let mut t = before.clone();
        t.status = TaskStatus::Done;
        t.completed_at = Some(crm.now());
        crm.commit_update(actor, &before, t, "completed", Changeset::default()).await
    }

    /// Soft-deletes a task.
    pub async fn delete(&self, actor: &Actor, id: TaskId, expected_version: Option<i64>) -> Result<Task> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a soft-deleted task.
    pub async fn restore(&self, actor: &Actor, id: TaskId) -> Result<Task> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }

    /// Removes a task for good.
    pub async fn purge(&self, actor: &Actor, id: TaskId) -> Result<()> {
        self.crm.purge_record::<Task>(actor, id.as_uuid(), vec![]).await
    }
}
