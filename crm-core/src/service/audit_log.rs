//! Reading the audit log: by actor (activity logs) and by record (history).

use uuid::Uuid;

use super::Crm;
use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::user::User;
use crate::model::Record;
use crate::policy::{Action, Actor, Ownership, Resource};
use crate::query::{and_opt, Cmp, Direction, Filter, ListQuery, Page, Predicate, SortKey};
use crate::schema::{EntityKind, Value};

/// The audit log.
#[derive(Debug, Clone, Copy)]
pub struct AuditService<'a> {
    pub(super) crm: &'a Crm,
}

fn eq(column: &str, v: Uuid) -> Option<Filter> {
    EntityKind::AuditEvent.column(column).map(|column| Filter::Cmp(Cmp { column, pred: Predicate::Eq(Value::Uuid(v)) }))
}

fn newest_first() -> Vec<SortKey> {
    EntityKind::AuditEvent
        .column("seq")
        .map(|column| SortKey { column, direction: Direction::Desc })
        .into_iter()
        .collect()
}

impl AuditService<'_> {
    /// Events the actor may read (their own; admins: all), newest first. Filter on
    /// `action`, `entityType`, `entityId`, `actorId`, `at`.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<AuditEvent>> {
        self.crm.list_page(actor, EntityKind::AuditEvent, query, newest_first(), None, None).await
    }

    /// Recomputes the whole chain (see [`crate::audit::verify_chain`]): for roles that
    /// read the whole log (admins).
    pub async fn verify(&self, actor: &Actor) -> Result<crate::audit::ChainStatus> {
        if self.crm.policy().scope(actor.role, Resource::Audit, Action::Read) != crate::policy::Scope::All {
            return Err(Error::forbidden(format!("role {} may not check the whole audit log", actor.role.as_str())));
        }
        self.crm.verify_audit_chain().await
    }

    /// Records that the actor was refused a request (`access.denied`): `what` says
    /// which (method, path, route).
    pub async fn denied(&self, actor: &Actor, what: serde_json::Value) -> Result<()> {
        let ev = self.crm.audit_event(actor, "access.denied".into(), EntityKind::User, None, what);
        self.crm.store().apply(crate::store::Changeset { writes: vec![], audit: vec![ev] }).await
    }

    /// The activity of one user: anyone may read their own; reading another's takes a
    /// role whose audit scope covers that user (admins: everyone; by default managers see
    /// their own only). A user the actor cannot read is not found; one they can read but
    /// whose activity is beyond them is forbidden.
    pub async fn for_user(&self, actor: &Actor, user: UserId, query: ListQuery) -> Result<Page<AuditEvent>> {
        if user != actor.user_id {
            let not_found = || Error::NotFound { entity: "user" };
            // The activity of a deactivated or erased account stays readable to those whose
            // scope covers it.
            let target: User = self.crm.load(user.as_uuid()).await?.ok_or_else(not_found)?;
            let own = Ownership { owner: Some(target.id), team: target.team_id, assignee: None };
            if !self.crm.policy().scope(actor.role, Resource::Audit, Action::Read).covers(actor, &own) {
                self.crm.authorized::<User>(actor, user.as_uuid(), Action::Read).await?;
                return Err(Error::forbidden(format!(
                    "role {} may not read another user's activity",
                    actor.role.as_str()
                )));
            }
        }
        self.crm
            .list_page(actor, EntityKind::AuditEvent, query, newest_first(), eq("actor_id", user.as_uuid()), None)
            .await
    }

    /// The history of one record, for anyone who may read the record.
    pub async fn for_record<R: Record>(&self, actor: &Actor, id: Uuid, query: ListQuery) -> Result<Page<AuditEvent>> {
        let _rec: R = self.crm.authorized(actor, id, Action::Read).await?;
        // Reading the record grants its history: list as the system would, limited to it.
        let system = Actor { role: crate::policy::Role::Admin, ..actor.clone() };
        let filter = and_opt([eq("entity_id", id)]);
        self.crm.list_page(&system, EntityKind::AuditEvent, query, newest_first(), filter, None).await
    }
}
