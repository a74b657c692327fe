//! The interactions service: calls, emails, meetings and notes logged on contacts.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::date_or_time::DateOrTime;
use crate::error::{Errors, Result};
use crate::ids::{ContactId, DealId, InteractionId};
use crate::model::contact::Contact;
use crate::model::deal::Deal;
use crate::model::interaction::{Interaction, InteractionKind};
use crate::model::RecordMeta;
use crate::policy::{Action, Actor, Resource};
use crate::query::{ListQuery, Page};

/// Input of [`InteractionService::log`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewInteraction {
    /// The contact (must be readable by the caller).
    pub contact_id: ContactId,
    /// Call, email, meeting, note, …
    pub kind: InteractionKind,
    /// When (default: now; not more than a day ahead): an RFC 3339 time, or a date meaning
    /// the start of that day in the caller's time zone.
    #[serde(default)]
    pub occurred_at: Option<DateOrTime>,
    /// The deal it was about.
    #[serde(default)]
    pub deal_id: Option<DealId>,
    /// Subject line or title.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body or notes.
    #[serde(default)]
    pub body: Option<String>,
}

/// Input of [`InteractionService::update`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InteractionPatch {
    /// New kind; absent: unchanged.
    #[serde(default)]
    pub kind: Option<InteractionKind>,
    /// When: an RFC 3339 time, or a date meaning the start of that day in the caller's
    /// time zone.
    #[serde(default)]
    pub occurred_at: Option<DateOrTime>,
    /// New subject; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub subject: Option<Option<String>>,
    /// New body; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub body: Option<Option<String>>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Interactions: the communication history of contacts.
#[derive(Debug, Clone, Copy)]
pub struct InteractionService<'a> {
    pub(super) crm: &'a Crm,
}

impl InteractionService<'_> {
    fn check_time(&self, errs: &mut Errors, at: DateTime<Utc>) -> DateTime<Utc> {
        if at > self.crm.now() + chrono::Duration::days(1) {
            errs.add("occurredAt", "out_of_range", "an interaction cannot lie in the future");
        }
        crate::clock::truncate_ms(at)
    }

    /// Logs an interaction on a contact.
    pub async fn log(&self, actor: &Actor, input: NewInteraction) -> Result<Interaction> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Interactions, Action::Create)?;
        let mut errs = Errors::new();
        crm.check_ref::<Contact>(actor, input.contact_id.as_uuid(), "contactId", &mut errs).await?;
        if let Some(d) = input.deal_id {
            crm.check_ref::<Deal>(actor, d.as_uuid(), "dealId", &mut errs).await?;
        }
        let subject = input::text(&mut errs, "subject", input.subject, 500, false);
        let body = input::text(&mut errs, "body", input.body, 100_000, true);
        let now = crm.now();
        let occurred_at = crm.moment(actor, input.occurred_at, false).await?.unwrap_or(now);
        let occurred_at = self.check_time(&mut errs, occurred_at);
        errs.finish()?;
        let it = Interaction {
            id: InteractionId(crm.new_id(now)),
            contact_id: input.contact_id,
            deal_id: input.deal_id,
            kind: input.kind,
            occurred_at,
            subject,
            body,
            owner_id: actor.user_id,
            team_id: actor.team_id,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        crm.commit_insert(actor, &it, Default::default()).await?;
        Ok(it)
    }

    /// A live interaction the actor may read.
    pub async fn get(&self, actor: &Actor, id: InteractionId) -> Result<Interaction> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of interactions the actor may read (filter on `contactId` for one contact's).
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Interaction>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes the fields the patch names.
    pub async fn update(&self, actor: &Actor, id: InteractionId, patch: InteractionPatch) -> Result<Interaction> {
        let crm = self.crm;
        let before: Interaction = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut it = before.clone();
        if let Some(k) = patch.kind {
            it.kind = k;
        }
        if let Some(at) = crm.moment(actor, patch.occurred_at, false).await? {
            it.occurred_at = self.check_time(&mut errs, at);
        }
        if let Some(s) = patch.subject {
            it.subject = input::text(&mut errs, "subject", s, 500, false);
        }
        if let Some(b) = patch.body {
            it.body = input::text(&mut errs, "body", b, 100_000, true);
        }
        errs.finish()?;
        crm.commit_update(actor, &before, it, "updated", Default::default()).await
    }

    /// Soft-deletes an interaction.
    pub async fn delete(&self, actor: &Actor, id: InteractionId, expected_version: Option<i64>) -> Result<Interaction> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a soft-deleted interaction.
    pub async fn restore(&self, actor: &Actor, id: InteractionId) -> Result<Interaction> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }
}
