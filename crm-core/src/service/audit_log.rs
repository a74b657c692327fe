//! Reading the audit log: by actor (activity logs) and by record (history).

use uuid::Uuid;

use super::Crm;
use crate::audit::AuditEvent;
use crate::error::Result;
use crate::ids::UserId;
use crate::model::Record;
use crate::policy::{Action, Actor};
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

    /// The activity of one user (self, or an admin asking).
    pub async fn for_user(&self, actor: &Actor, user: UserId, query: ListQuery) -> Result<Page<AuditEvent>> {
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
