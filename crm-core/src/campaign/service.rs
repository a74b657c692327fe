//! The campaigns service: templates, segments, campaigns and their lifecycle, metrics,
//! suppressions and consents. Managers and admins create, schedule and send; users read
//! (the `Campaigns` resource). Every change is audited.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{by_id, col, eq, render};
use crate::error::{Error, Errors, Result};
use crate::ids::ContactId;
use crate::model::campaign::{
    Campaign, CampaignRecipient, CampaignState, CampaignTemplate, Consent, ConsentStatus, RecipientState, Segment,
    Suppression, SuppressionReason,
};
use crate::policy::{Action, Actor, Resource};
use crate::query::{Direction, SortKey, StoreQuery};
use crate::schema::{from_row, to_row, EntityKind, Persist, Value, NAME_CHARS};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};

/// A template's fields (all for a new one; those to change for an update).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateInput {
    /// Its name.
    pub name: Option<String>,
    /// The subject line (minijinja).
    pub subject: Option<String>,
    /// The MJML source.
    pub mjml: Option<String>,
    /// The text part; absent: derived from the HTML.
    pub text: Option<String>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// A segment's fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentInput {
    /// Its name.
    pub name: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// A filter over contacts in the list grammar; `""` means every contact.
    pub filter: Option<String>,
    /// A filter over the contacts' companies.
    pub company_filter: Option<String>,
    /// Contacts named one by one.
    pub contact_ids: Option<Vec<Uuid>>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// A campaign's fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CampaignInput {
    /// Its name.
    pub name: Option<String>,
    /// The template sent.
    pub template_id: Option<Uuid>,
    /// The segments that get it.
    pub segment_ids: Option<Vec<Uuid>>,
    /// The segments that never get it.
    pub exclude_segment_ids: Option<Vec<Uuid>>,
    /// The sender's display name.
    pub from_name: Option<String>,
    /// For updates: the version the change was made from.
    pub version: Option<i64>,
}

/// An address to suppress by hand.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuppressionInput {
    /// The address.
    pub email: String,
    /// Why (default `manual`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "manual"))]
    pub reason: Option<SuppressionReason>,
    /// A note.
    pub detail: Option<String>,
}

/// A contact's consent, as set by a person.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentInput {
    /// The answer.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "subscribed"))]
    pub status: ConsentStatus,
    /// Where it came from (`form`, `phone`, `event`; default `admin`).
    pub source: Option<String>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Subject.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Text part.
    pub text: String,
}

/// A segment's size and first members.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SegmentPreview {
    /// Contacts with an address in it.
    pub count: u64,
    /// Up to 10 of them: `{contactId, email}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub sample: Vec<serde_json::Value>,
}

/// A campaign's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CampaignStats {
    /// Recipients in the frozen audience.
    pub audience: u64,
    /// Not yet sent.
    pub queued: u64,
    /// Accepted by the SMTP server.
    pub sent: u64,
    /// Sent and not bounced.
    pub delivered: u64,
    /// Refused by the SMTP server.
    pub failed: u64,
    /// Dropped before sending (suppressed or unsubscribed meanwhile).
    pub skipped: u64,
    /// Left unconfirmed by a sender that stopped (maybe delivered; never resent).
    pub interrupted: u64,
    /// Bounced (hard or soft).
    pub bounced: u64,
    /// Hard bounces.
    pub hard_bounced: u64,
    /// Soft bounces.
    pub soft_bounced: u64,
    /// Recipients who opened (unique opens).
    pub opened: u64,
    /// Opens in all.
    pub opens: u64,
    /// Recipients who clicked.
    pub clicked: u64,
    /// Clicks in all.
    pub clicks: u64,
    /// Recipients who unsubscribed.
    pub unsubscribed: u64,
    /// Recipients who complained.
    pub complained: u64,
    /// Unique opens ÷ delivered.
    pub open_rate: f64,
    /// Recipients who clicked ÷ delivered.
    pub click_rate: f64,
    /// Bounced ÷ sent.
    pub bounce_rate: f64,
    /// Unsubscribed ÷ delivered.
    pub unsubscribe_rate: f64,
}

/// One campaign in a contact's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactCampaign {
    /// The campaign.
    pub campaign_id: Uuid,
    /// Its name.
    pub name: String,
    /// The recipient row.
    pub recipient: CampaignRecipient,
}

/// Campaigns and everything they are made of.
#[derive(Debug, Clone, Copy)]
pub struct CampaignService<'a> {
    pub(crate) crm: &'a Crm,
}

impl Crm {
    /// Email campaigns: templates, segments, campaigns, suppressions, consents.
    pub fn campaigns(&self) -> CampaignService<'_> {
        CampaignService { crm: self }
    }
}

fn required_text(errs: &mut Errors, field: &str, v: Option<String>, max: usize, creating: bool) -> Option<String> {
    checked_text(errs, field, v, max, creating, false)
}

/// A text input: trimmed, present when `required`, at most `max` characters, free of
/// control characters (tab and newlines allowed when `multiline`). Errors name `field`.
fn checked_text(
    errs: &mut Errors,
    field: &str,
    v: Option<String>,
    max: usize,
    required: bool,
    multiline: bool,
) -> Option<String> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if s.is_empty() && required => {
            errs.add(field, "required", format!("{field} may not be empty"));
            None
        }
        Some(s) if s.is_empty() => None,
        Some(s) => match crate::values::check_text(field, &s, max, multiline) {
            Ok(()) => Some(s),
            Err(e) => {
                errs.absorb(field, e);
                None
            }
        },
        None if required => {
            errs.add(field, "required", format!("{field} is required"));
            None
        }
        None => None,
    }
}

/// Re-labels the field errors of a filter under the input's field name.
fn filter_errors(errs: &mut Errors, field: &str, e: Error) {
    match e {
        Error::Validation(list) | Error::Malformed(list) => {
            for fe in list {
                errs.add(field, fe.code, fe.message);
            }
        }
        other => errs.add(field, other.code(), other.to_string()),
    }
}

const UNFINISHED: [CampaignState; 4] =
    [CampaignState::Draft, CampaignState::Scheduled, CampaignState::Sending, CampaignState::Paused];

impl CampaignService<'_> {
    fn require(&self, actor: &Actor, action: Action) -> Result<()> {
        self.crm.policy().require(actor, Resource::Campaigns, action).map(|_| ())
    }

    async fn load<T: Persist>(&self, id: Uuid, entity: &'static str) -> Result<T> {
        self.crm.store().get_as::<T>(id).await?.ok_or(Error::NotFound { entity })
    }

    async fn all<T: Persist>(&self, newest_first: bool) -> Result<Vec<T>> {
        let k = T::KIND;
        let q = StoreQuery {
            filter: None,
            sort: vec![SortKey {
                column: col(k, "id")?,
                direction: if newest_first { Direction::Desc } else { Direction::Asc },
            }],
            limit: 10_000,
            include_deleted: true,
        };
        self.crm.store().list_as::<T>(&q).await
    }

    async fn commit(
        &self,
        actor: &Actor,
        write: Write,
        action: &str,
        kind: EntityKind,
        id: Uuid,
        changes: serde_json::Value,
    ) -> Result<()> {
        let audit = self.crm.audit_event(actor, action.into(), kind, Some(id), changes);
        self.crm.store().apply(Changeset { writes: vec![write], audit: vec![audit] }).await
    }

    // ----- templates -------------------------------------------------------------

    fn check_template(&self, t: &CampaignTemplate) -> Result<()> {
        render::compile(&t.subject, &t.mjml, t.text.as_deref()).map(|_| ())
    }

    /// A new template; its MJML must render and its placeholders exist.
    pub async fn create_template(&self, actor: &Actor, input: TemplateInput) -> Result<CampaignTemplate> {
        self.require(actor, Action::Create)?;
        let mut errs = Errors::new();
        let name = required_text(&mut errs, "name", input.name, NAME_CHARS, true);
        let subject = required_text(&mut errs, "subject", input.subject, 500, true);
        let mjml = checked_text(&mut errs, "mjml", input.mjml, 500_000, true, true);
        let text = checked_text(&mut errs, "text", input.text, 500_000, false, true);
        errs.finish()?;
        let now = self.crm.now();
        let t = CampaignTemplate {
            id: self.crm.new_id(now),
            name: name.unwrap_or_default(),
            subject: subject.unwrap_or_default(),
            mjml: mjml.unwrap_or_default(),
            text,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        };
        self.check_template(&t)?;
        let w = Write::Insert { kind: EntityKind::CampaignTemplate, row: to_row(&t)? };
        self.commit(actor, w, "campaign_template.created", EntityKind::CampaignTemplate, t.id, json!({"name": t.name}))
            .await?;
        Ok(t)
    }

    /// Every template, newest first.
    pub async fn templates(&self, actor: &Actor) -> Result<Vec<CampaignTemplate>> {
        self.require(actor, Action::Read)?;
        self.all(true).await
    }

    /// One template.
    pub async fn template(&self, actor: &Actor, id: Uuid) -> Result<CampaignTemplate> {
        self.require(actor, Action::Read)?;
        self.load(id, "campaign_template").await
    }

    /// Changes a template (campaigns already sending keep the content they froze).
    pub async fn update_template(&self, actor: &Actor, id: Uuid, input: TemplateInput) -> Result<CampaignTemplate> {
        self.require(actor, Action::Update)?;
        let before: CampaignTemplate = self.load(id, "campaign_template").await?;
        crate::service::write_path::check_version(input.version, before.version)?;
        let mut errs = Errors::new();
        let mut t = before.clone();
        if input.name.is_some() {
            if let Some(n) = required_text(&mut errs, "name", input.name, NAME_CHARS, true) {
                t.name = n;
            }
        }
        if input.subject.is_some() {
            if let Some(s) = required_text(&mut errs, "subject", input.subject, 500, true) {
                t.subject = s;
            }
        }
        if input.mjml.is_some() {
            if let Some(m) = checked_text(&mut errs, "mjml", input.mjml, 500_000, true, true) {
                t.mjml = m;
            }
        }
        if input.text.is_some() {
            t.text = checked_text(&mut errs, "text", input.text, 500_000, false, true);
        }
        errs.finish()?;
        self.check_template(&t)?;
        t.updated_at = self.crm.now();
        t.version += 1;
        let w =
            Write::Update { kind: EntityKind::CampaignTemplate, row: to_row(&t)?, expected_version: before.version };
        self.commit(actor, w, "campaign_template.updated", EntityKind::CampaignTemplate, id, json!({"name": t.name}))
            .await?;
        Ok(t)
    }

    /// Removes a template no unfinished campaign uses.
    pub async fn delete_template(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let t: CampaignTemplate = self.load(id, "campaign_template").await?;
        let campaigns: Vec<Campaign> = self.all(false).await?;
        if let Some(c) = campaigns.iter().find(|c| c.template_id == id && UNFINISHED.contains(&c.state)) {
            return Err(Error::Conflict {
                message: format!("campaign '{}' ({}) uses it", c.name, c.state),
                field: Some("id".into()),
            });
        }
        let w = Write::Purge { kind: EntityKind::CampaignTemplate, column: "id", id };
        self.commit(actor, w, "campaign_template.deleted", EntityKind::CampaignTemplate, id, json!({"name": t.name}))
            .await
    }

    /// A template rendered for a contact (or with empty values): what they would get.
    pub async fn preview_template(&self, actor: &Actor, id: Uuid, contact: Option<Uuid>) -> Result<Preview> {
        let t = self.template(actor, id).await?;
        let compiled = render::compile(&t.subject, &t.mjml, t.text.as_deref())?;
        let (contact_obj, company_obj) = match contact {
            Some(cid) => {
                let c = self.crm.contacts().get(actor, ContactId(cid)).await?;
                let company = match c.company_id {
                    Some(co) => self.crm.store().get_as::<crate::model::company::Company>(co.as_uuid()).await?,
                    None => None,
                };
                let cj = serde_json::to_value(&c).map_err(|e| Error::internal("a contact", e))?;
                let coj = company
                    .map(|co| serde_json::to_value(&co))
                    .transpose()
                    .map_err(|e| Error::internal("a company", e))?;
                (render::template_object(&cj, true), coj.map(|j| render::template_object(&j, false)))
            }
            None => (json!({}), None),
        };
        let ctx =
            render::recipient_context(&contact_obj, company_obj.as_ref(), &json!({"name": t.name}), "#unsubscribe", "");
        let p = render::Personalizer::new(&compiled)?.render(&ctx)?;
        Ok(Preview { subject: p.subject, html: p.html, text: p.text })
    }

    // ----- segments --------------------------------------------------------------

    fn check_segment(&self, s: &Segment, errs: &mut Errors) {
        if let Some(f) = s.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            if let Err(e) = crate::query::parse_filter(EntityKind::Contact, f) {
                filter_errors(errs, "filter", e);
            }
        }
        if let Some(f) = s.company_filter.as_deref().filter(|f| !f.trim().is_empty()) {
            if let Err(e) = crate::query::parse_filter(EntityKind::Company, f) {
                filter_errors(errs, "companyFilter", e);
            }
        }
        if s.filter.is_none() && s.company_filter.is_none() && s.contact_ids.is_empty() {
            errs.add("filter", "required", "give a filter (\"\" for every contact), a companyFilter or contactIds");
        }
        if s.contact_ids.len() > 100_000 {
            errs.add("contactIds", "too_long", "at most 100,000 contacts; use a filter for more");
        }
    }

    /// A new segment.
    pub async fn create_segment(&self, actor: &Actor, input: SegmentInput) -> Result<Segment> {
        self.require(actor, Action::Create)?;
        let mut errs = Errors::new();
        let name = required_text(&mut errs, "name", input.name, NAME_CHARS, true);
        let description = checked_text(&mut errs, "description", input.description, 2000, false, true);
        // `""` is a filter too: every contact.
        let filter = match input.filter {
            Some(f) if f.trim().is_empty() => Some(String::new()),
            f => checked_text(&mut errs, "filter", f, 4000, false, false),
        };
        let company_filter = checked_text(&mut errs, "companyFilter", input.company_filter, 4000, false, false);
        let now = self.crm.now();
        let s = Segment {
            id: self.crm.new_id(now),
            name: name.unwrap_or_default(),
            description,
            filter,
            company_filter,
            contact_ids: input.contact_ids.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        };
        self.check_segment(&s, &mut errs);
        errs.finish()?;
        let w = Write::Insert { kind: EntityKind::Segment, row: to_row(&s)? };
        self.commit(
            actor,
            w,
            "segment.created",
            EntityKind::Segment,
            s.id,
            json!({"name": s.name, "filter": s.filter}),
        )
        .await?;
        Ok(s)
    }

    /// Every segment, newest first.
    pub async fn segments(&self, actor: &Actor) -> Result<Vec<Segment>> {
        self.require(actor, Action::Read)?;
        self.all(true).await
    }

    /// One segment.
    pub async fn segment(&self, actor: &Actor, id: Uuid) -> Result<Segment> {
        self.require(actor, Action::Read)?;
        self.load(id, "segment").await
    }

    /// Changes a segment (audiences already frozen keep their recipients).
    pub async fn update_segment(&self, actor: &Actor, id: Uuid, input: SegmentInput) -> Result<Segment> {
        self.require(actor, Action::Update)?;
        let before: Segment = self.load(id, "segment").await?;
        crate::service::write_path::check_version(input.version, before.version)?;
        let mut errs = Errors::new();
        let mut s = before.clone();
        if input.name.is_some() {
            if let Some(n) = required_text(&mut errs, "name", input.name, NAME_CHARS, true) {
                s.name = n;
            }
        }
        if input.description.is_some() {
            s.description = checked_text(&mut errs, "description", input.description, 2000, false, true);
        }
        match input.filter {
            Some(f) if f.trim().is_empty() => s.filter = Some(String::new()),
            Some(f) => s.filter = checked_text(&mut errs, "filter", Some(f), 4000, false, false),
            None => {}
        }
        if input.company_filter.is_some() {
            s.company_filter = checked_text(&mut errs, "companyFilter", input.company_filter, 4000, false, false);
        }
        if let Some(ids) = input.contact_ids {
            s.contact_ids = ids;
        }
        self.check_segment(&s, &mut errs);
        errs.finish()?;
        s.updated_at = self.crm.now();
        s.version += 1;
        let w = Write::Update { kind: EntityKind::Segment, row: to_row(&s)?, expected_version: before.version };
        self.commit(actor, w, "segment.updated", EntityKind::Segment, id, json!({"name": s.name, "filter": s.filter}))
            .await?;
        Ok(s)
    }

    /// Removes a segment no unfinished campaign uses.
    pub async fn delete_segment(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let s: Segment = self.load(id, "segment").await?;
        let campaigns: Vec<Campaign> = self.all(false).await?;
        if let Some(c) = campaigns.iter().find(|c| {
            UNFINISHED.contains(&c.state) && (c.segment_ids.contains(&id) || c.exclude_segment_ids.contains(&id))
        }) {
            return Err(Error::Conflict {
                message: format!("campaign '{}' ({}) uses it", c.name, c.state),
                field: Some("id".into()),
            });
        }
        let w = Write::Purge { kind: EntityKind::Segment, column: "id", id };
        self.commit(actor, w, "segment.deleted", EntityKind::Segment, id, json!({"name": s.name})).await
    }

    /// How many contacts with an address a segment holds now, and the first ten.
    pub async fn preview_segment(&self, actor: &Actor, id: Uuid) -> Result<SegmentPreview> {
        let s = self.segment(actor, id).await?;
        let mut members = super::segment_members(self.crm, &s).await?;
        members.sort_by(|a, b| a.1.cmp(&b.1));
        members.dedup_by(|a, b| a.1 == b.1);
        let sample = members.iter().take(10).map(|(id, e)| json!({"contactId": id, "email": e})).collect();
        Ok(SegmentPreview { count: members.len() as u64, sample })
    }

    // ----- campaigns -------------------------------------------------------------

    async fn check_campaign(&self, c: &Campaign, errs: &mut Errors) -> Result<()> {
        if self.crm.store().get_as::<CampaignTemplate>(c.template_id).await?.is_none() {
            errs.add("templateId", "not_found", "no such campaign template");
        }
        if c.segment_ids.is_empty() {
            errs.add("segmentIds", "required", "name at least one segment");
        }
        for (field, ids) in [("segmentIds", &c.segment_ids), ("excludeSegmentIds", &c.exclude_segment_ids)] {
            if ids.len() > 50 {
                errs.add(field, "too_long", "at most 50 segments");
                continue;
            }
            for (i, id) in ids.iter().enumerate() {
                if self.crm.store().get_as::<Segment>(*id).await?.is_none() {
                    errs.add(format!("{field}[{i}]"), "not_found", "no such segment");
                }
            }
        }
        Ok(())
    }

    /// A new campaign, in draft.
    pub async fn create(&self, actor: &Actor, input: CampaignInput) -> Result<Campaign> {
        self.require(actor, Action::Create)?;
        let mut errs = Errors::new();
        let name = required_text(&mut errs, "name", input.name, NAME_CHARS, true);
        if input.template_id.is_none() {
            errs.add("templateId", "required", "templateId is required");
        }
        let from_name = required_text(&mut errs, "fromName", input.from_name, 200, false);
        let now = self.crm.now();
        let c = Campaign {
            id: self.crm.new_id(now),
            name: name.unwrap_or_default(),
            template_id: input.template_id.unwrap_or_default(),
            segment_ids: input.segment_ids.unwrap_or_default(),
            exclude_segment_ids: input.exclude_segment_ids.unwrap_or_default(),
            from_name,
            state: CampaignState::Draft,
            scheduled_at: None,
            started_at: None,
            finished_at: None,
            paused_reason: None,
            frozen: false,
            audience: 0,
            errors: 0,
            subject: None,
            html: None,
            text: None,
            lease_until: now,
            created_at: now,
            updated_at: now,
            created_by: Some(actor.user_id.as_uuid()),
            version: 1,
        };
        if input.template_id.is_some() {
            self.check_campaign(&c, &mut errs).await?;
        }
        errs.finish()?;
        let w = Write::Insert { kind: EntityKind::Campaign, row: to_row(&c)? };
        self.commit(actor, w, "campaign.created", EntityKind::Campaign, c.id, json!({"name": c.name})).await?;
        Ok(c)
    }

    /// Every campaign, newest first (without their frozen content).
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Campaign>> {
        self.require(actor, Action::Read)?;
        let mut all: Vec<Campaign> = self.all(true).await?;
        for c in &mut all {
            c.html = None;
            c.text = None;
        }
        Ok(all)
    }

    /// One campaign.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Campaign> {
        self.require(actor, Action::Read)?;
        self.load(id, "campaign").await
    }

    /// Changes a draft or scheduled campaign.
    pub async fn update(&self, actor: &Actor, id: Uuid, input: CampaignInput) -> Result<Campaign> {
        self.require(actor, Action::Update)?;
        let before: Campaign = self.load(id, "campaign").await?;
        crate::service::write_path::check_version(input.version, before.version)?;
        if !matches!(before.state, CampaignState::Draft | CampaignState::Scheduled) {
            return Err(Error::Conflict {
                message: format!("a {} campaign cannot change; only drafts and scheduled ones", before.state),
                field: Some("state".into()),
            });
        }
        let mut errs = Errors::new();
        let mut c = before.clone();
        if input.name.is_some() {
            if let Some(n) = required_text(&mut errs, "name", input.name, NAME_CHARS, true) {
                c.name = n;
            }
        }
        if let Some(t) = input.template_id {
            c.template_id = t;
        }
        if let Some(s) = input.segment_ids {
            c.segment_ids = s;
        }
        if let Some(s) = input.exclude_segment_ids {
            c.exclude_segment_ids = s;
        }
        if input.from_name.is_some() {
            c.from_name = required_text(&mut errs, "fromName", input.from_name, 200, false);
        }
        self.check_campaign(&c, &mut errs).await?;
        errs.finish()?;
        self.save(actor, &before, c, "campaign.updated", json!({})).await
    }

    async fn save(
        &self,
        actor: &Actor,
        before: &Campaign,
        mut after: Campaign,
        action: &str,
        changes: serde_json::Value,
    ) -> Result<Campaign> {
        after.updated_at = self.crm.now();
        after.version = before.version + 1;
        let mut changes = changes;
        if let Some(o) = changes.as_object_mut() {
            o.insert("state".into(), json!({"before": before.state, "after": after.state}));
        }
        let w = Write::Update { kind: EntityKind::Campaign, row: to_row(&after)?, expected_version: before.version };
        self.commit(actor, w, action, EntityKind::Campaign, after.id, changes).await?;
        Ok(after)
    }

    fn wrong_state(c: &Campaign, to: &str) -> Error {
        Error::Conflict { message: format!("a {} campaign cannot be {to}", c.state), field: Some("state".into()) }
    }

    /// Schedules a draft to start at `at` (now when absent): the sender starts it then.
    pub async fn schedule(&self, actor: &Actor, id: Uuid, at: Option<DateTime<Utc>>) -> Result<Campaign> {
        self.require(actor, Action::Update)?;
        let before: Campaign = self.load(id, "campaign").await?;
        if !matches!(before.state, CampaignState::Draft | CampaignState::Scheduled) {
            return Err(Self::wrong_state(&before, "scheduled"));
        }
        let mut errs = Errors::new();
        self.check_campaign(&before, &mut errs).await?;
        if let Ok(Some(t)) = self.crm.store().get_as::<CampaignTemplate>(before.template_id).await {
            if let Err(e) = render::compile(&t.subject, &t.mjml, t.text.as_deref()) {
                errs.absorb_under("template", e);
            }
        }
        errs.finish()?;
        let mut c = before.clone();
        c.state = CampaignState::Scheduled;
        c.scheduled_at = Some(crate::clock::truncate_ms(at.unwrap_or_else(|| self.crm.now())));
        self.save(actor, &before, c, "campaign.scheduled", json!({"scheduledAt": at})).await
    }

    /// Pauses a scheduled or sending campaign; messages in flight finish.
    pub async fn pause(&self, actor: &Actor, id: Uuid) -> Result<Campaign> {
        self.require(actor, Action::Update)?;
        let before: Campaign = self.load(id, "campaign").await?;
        if !matches!(before.state, CampaignState::Scheduled | CampaignState::Sending) {
            return Err(Self::wrong_state(&before, "paused"));
        }
        let mut c = before.clone();
        c.state = CampaignState::Paused;
        c.paused_reason = Some("paused by a person".into());
        self.save(actor, &before, c, "campaign.paused", json!({})).await
    }

    /// Resumes a paused campaign where it stopped (its error count starts again).
    pub async fn resume(&self, actor: &Actor, id: Uuid) -> Result<Campaign> {
        self.require(actor, Action::Update)?;
        let before: Campaign = self.load(id, "campaign").await?;
        if before.state != CampaignState::Paused {
            return Err(Self::wrong_state(&before, "resumed"));
        }
        let mut c = before.clone();
        c.state = CampaignState::Sending;
        c.paused_reason = None;
        c.errors = 0;
        c.lease_until = self.crm.now();
        self.save(actor, &before, c, "campaign.resumed", json!({})).await
    }

    /// Stops a campaign for good; recipients not yet sent get nothing.
    pub async fn cancel(&self, actor: &Actor, id: Uuid) -> Result<Campaign> {
        self.require(actor, Action::Update)?;
        let before: Campaign = self.load(id, "campaign").await?;
        if !UNFINISHED.contains(&before.state) {
            return Err(Self::wrong_state(&before, "cancelled"));
        }
        let mut c = before.clone();
        c.state = CampaignState::Cancelled;
        c.finished_at = Some(self.crm.now());
        self.save(actor, &before, c, "campaign.cancelled", json!({})).await
    }

    /// Removes a draft or cancelled campaign and its recipient rows.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let c: Campaign = self.load(id, "campaign").await?;
        if !matches!(c.state, CampaignState::Draft | CampaignState::Cancelled) {
            return Err(Self::wrong_state(&c, "deleted (cancel it first; sent campaigns stay for their history)"));
        }
        let audit = self.crm.audit_event(
            actor,
            "campaign.deleted".into(),
            EntityKind::Campaign,
            Some(id),
            json!({"name": c.name}),
        );
        let cs = Changeset {
            writes: vec![
                Write::Purge { kind: EntityKind::CampaignRecipient, column: "campaign_id", id },
                Write::Purge { kind: EntityKind::Campaign, column: "id", id },
            ],
            audit: vec![audit],
        };
        self.crm.store().apply(cs).await
    }

    /// A campaign's figures, counted from its recipient rows.
    pub async fn stats(&self, actor: &Actor, id: Uuid) -> Result<CampaignStats> {
        let c = self.get(actor, id).await?;
        let k = EntityKind::CampaignRecipient;
        let pos = |n: &str| k.columns().iter().position(|x| x.name == n).unwrap_or(0);
        let cols =
            [pos("state"), pos("opens"), pos("clicks"), pos("bounce"), pos("unsubscribed_at"), pos("complained_at")];
        let f = eq(k, "campaign_id", Value::Uuid(c.id))?;
        let rows = self.crm.store().scan_columns(k, Some(&f), false, &cols).await?;
        let mut s = CampaignStats { audience: rows.len() as u64, ..Default::default() };
        for r in rows {
            let int = |i: usize| match r.get(i) {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            };
            let set = |i: usize| r.get(i).is_some_and(|v| !v.is_null());
            match r.first() {
                Some(Value::Text(t)) if t == RecipientState::Queued.as_str() => s.queued += 1,
                Some(Value::Text(t)) if t == RecipientState::Sending.as_str() => s.queued += 1,
                Some(Value::Text(t)) if t == RecipientState::Sent.as_str() => s.sent += 1,
                Some(Value::Text(t)) if t == RecipientState::Failed.as_str() => s.failed += 1,
                Some(Value::Text(t)) if t == RecipientState::Skipped.as_str() => s.skipped += 1,
                Some(Value::Text(t)) if t == RecipientState::Interrupted.as_str() => s.interrupted += 1,
                _ => {}
            }
            let sent = matches!(r.first(), Some(Value::Text(t)) if t == RecipientState::Sent.as_str());
            match r.get(3) {
                Some(Value::Text(b)) if b == "hard" && sent => s.hard_bounced += 1,
                Some(Value::Text(b)) if b == "soft" && sent => s.soft_bounced += 1,
                _ => {}
            }
            s.opens += int(1);
            s.clicks += int(2);
            if int(1) > 0 || int(2) > 0 {
                s.opened += 1;
            }
            if int(2) > 0 {
                s.clicked += 1;
            }
            if set(4) {
                s.unsubscribed += 1;
            }
            if set(5) {
                s.complained += 1;
            }
        }
        s.bounced = s.hard_bounced + s.soft_bounced;
        s.delivered = s.sent.saturating_sub(s.hard_bounced);
        let rate = |n: u64, d: u64| if d == 0 { 0.0 } else { (n as f64 / d as f64 * 10_000.0).round() / 10_000.0 };
        s.open_rate = rate(s.opened, s.delivered);
        s.click_rate = rate(s.clicked, s.delivered);
        s.bounce_rate = rate(s.bounced, s.sent);
        s.unsubscribe_rate = rate(s.unsubscribed, s.delivered);
        Ok(s)
    }

    /// A campaign's recipients, by id, optionally in one state.
    pub async fn recipients(
        &self,
        actor: &Actor,
        id: Uuid,
        state: Option<RecipientState>,
        limit: u32,
    ) -> Result<Vec<CampaignRecipient>> {
        let c = self.get(actor, id).await?;
        let k = EntityKind::CampaignRecipient;
        let mut parts = vec![eq(k, "campaign_id", Value::Uuid(c.id))?];
        if let Some(s) = state {
            parts.push(eq(k, "state", Value::Text(s.as_str().into()))?);
        }
        let q = by_id(k, limit.clamp(1, 10_000), Some(crate::query::and(parts)))?;
        self.crm.store().list_as(&q).await
    }

    /// The campaigns a contact was in, newest first.
    pub async fn contact_history(&self, actor: &Actor, contact: Uuid) -> Result<Vec<ContactCampaign>> {
        self.require(actor, Action::Read)?;
        self.crm.contacts().get(actor, ContactId(contact)).await?;
        let k = EntityKind::CampaignRecipient;
        let q = StoreQuery {
            filter: Some(eq(k, "contact_id", Value::Uuid(contact))?),
            sort: vec![SortKey { column: col(k, "id")?, direction: Direction::Desc }],
            limit: 1000,
            include_deleted: false,
        };
        let rows: Vec<CampaignRecipient> = self.crm.store().list_as(&q).await?;
        let mut names: HashMap<Uuid, String> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name = match names.get(&r.campaign_id) {
                Some(n) => n.clone(),
                None => {
                    let n =
                        self.crm.store().get_as::<Campaign>(r.campaign_id).await?.map(|c| c.name).unwrap_or_default();
                    names.insert(r.campaign_id, n.clone());
                    n
                }
            };
            out.push(ContactCampaign { campaign_id: r.campaign_id, name, recipient: r });
        }
        Ok(out)
    }

    // ----- suppressions and consent ----------------------------------------------

    /// The suppression list, newest first.
    pub async fn suppressions(&self, actor: &Actor) -> Result<Vec<Suppression>> {
        self.require(actor, Action::Read)?;
        self.all(true).await
    }

    /// Suppresses an address by hand.
    pub async fn suppress(&self, actor: &Actor, input: SuppressionInput) -> Result<Suppression> {
        self.require(actor, Action::Create)?;
        let email = crate::values::Email::parse(&input.email).map_err(|_| {
            Error::invalid("email", "invalid_email", format!("'{}' is not an email address", input.email))
        })?;
        let reason = input.reason.unwrap_or(SuppressionReason::Manual);
        let mut errs = Errors::new();
        let detail = checked_text(&mut errs, "detail", input.detail, 1000, false, true);
        errs.finish()?;
        let Some(w) = super::suppress_write(self.crm, email.as_str(), reason, "admin", None, detail.as_deref()).await?
        else {
            return Err(Error::Conflict {
                message: "the address is suppressed already".into(),
                field: Some("email".into()),
            });
        };
        let Write::Insert { row, .. } = &w else { return Err(Error::internal_msg("a suppression insert")) };
        let s: Suppression = from_row(row.clone())?;
        self.commit(
            actor,
            w,
            "suppression.created",
            EntityKind::Suppression,
            s.id,
            json!({"email": s.email, "reason": s.reason}),
        )
        .await?;
        Ok(s)
    }

    /// Lifts a suppression (an address that was unsubscribed by mistake, or fixed).
    pub async fn unsuppress(&self, actor: &Actor, id: Uuid) -> Result<()> {
        self.require(actor, Action::Delete)?;
        let s: Suppression = self.load(id, "suppression").await?;
        let w = Write::Purge { kind: EntityKind::Suppression, column: "id", id };
        self.commit(actor, w, "suppression.deleted", EntityKind::Suppression, id, json!({"email": s.email})).await
    }

    /// A contact's consent (`unknown` when never asked).
    pub async fn consent(&self, actor: &Actor, contact: Uuid) -> Result<Consent> {
        self.require(actor, Action::Read)?;
        let c = self.crm.contacts().get(actor, ContactId(contact)).await?;
        Ok(self.crm.store().get_as::<Consent>(contact).await?.unwrap_or(Consent {
            id: contact,
            status: ConsentStatus::Unknown,
            source: "none".into(),
            changed_at: c.meta.created_at,
            version: 0,
        }))
    }

    /// Records a contact's consent.
    pub async fn set_consent(&self, actor: &Actor, contact: Uuid, input: ConsentInput) -> Result<Consent> {
        self.require(actor, Action::Update)?;
        self.crm.contacts().get(actor, ContactId(contact)).await?;
        let mut errs = Errors::new();
        let source = required_text(&mut errs, "source", input.source, 100, false).unwrap_or_else(|| "admin".into());
        errs.finish()?;
        let writes = super::consent_write(self.crm, contact, input.status, &source).await?;
        let audit = self.crm.audit_event(
            actor,
            "consent.changed".into(),
            EntityKind::Consent,
            Some(contact),
            json!({"status": input.status, "source": source}),
        );
        self.crm.store().apply(Changeset { writes, audit: vec![audit] }).await?;
        self.consent(actor, contact).await
    }
}
