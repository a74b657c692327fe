//! The contacts service.

use std::collections::HashMap;

use serde::Deserialize;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::{Crm, MAX_BATCH};
use crate::error::{Error, Errors, Result};
use crate::ids::{CompanyId, ContactId, TeamId, UserId};
use crate::model::company::Company;
use crate::model::contact::{Contact, LifecycleStage};
use crate::model::{JsonObject, RecordMeta};
use crate::policy::{Action, Actor, Resource};
use crate::query::{ListQuery, Page};
use crate::schema::{EntityKind, NAME_CHARS};
use crate::store::Write;

/// Input of [`ContactService::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewContact {
    /// Full name (required).
    pub name: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number in any common notation.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Position at the company (`Head of Sales`).
    #[serde(default)]
    pub job_title: Option<String>,
    /// The company the contact works for.
    #[serde(default)]
    pub company_id: Option<CompanyId>,
    /// Owner (default: the caller; another user needs the right to give records).
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Where the lead came from (`web`, `referral`, …).
    #[serde(default)]
    pub lead_source: Option<String>,
    /// Lifecycle stage (default `lead`).
    #[serde(default)]
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Free labels; duplicates are dropped.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Communication preferences (`{"channel": "email"}`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub preferences: JsonObject,
    /// Social profiles.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub social: JsonObject,
    /// Postal address (`street`, `city`, `postalCode`, `country`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub address: JsonObject,
    /// Values of the custom fields defined for contacts.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_fields: JsonObject,
}

/// Input of [`ContactService::update`]: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactPatch {
    /// New full name; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New email (unique among live contacts); `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    /// New phone number, stored in E.164; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub phone_number: Option<Option<String>>,
    /// New job title; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub job_title: Option<Option<String>>,
    /// New company; `null` unlinks it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub company_id: Option<Option<CompanyId>>,
    /// New owner (the contact moves to their team); absent: unchanged.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// New lead source; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub lead_source: Option<Option<String>>,
    /// New funnel stage (becoming `customer` sets `convertedAt`); absent: unchanged.
    #[serde(default)]
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Tags (replace).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Preferences (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub preferences: Option<JsonObject>,
    /// Social profiles (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub social: Option<JsonObject>,
    /// Address (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub address: Option<JsonObject>,
    /// Custom fields (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub custom_fields: Option<JsonObject>,
    /// The version the change is based on; a stale one is a conflict.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A record's owner and the owner's team.
type Owner = (UserId, Option<TeamId>);

/// Contacts: people.
#[derive(Debug, Clone, Copy)]
pub struct ContactService<'a> {
    pub(super) crm: &'a Crm,
}

impl ContactService<'_> {
    /// Creates a contact.
    pub async fn create(&self, actor: &Actor, input: NewContact) -> Result<Contact> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Contacts, Action::Create)?;
        let mut errs = Errors::new();
        if let Some(c) = input.company_id {
            crm.check_ref::<Company>(actor, c.as_uuid(), "companyId", &mut errs).await?;
        }
        let owner = crm.resolve_owner(actor, Resource::Contacts, Action::Create, input.owner_id, &mut errs).await?;
        let contact = self.build(actor, input, owner, &mut errs);
        errs.finish()?;
        crm.commit_insert(actor, &contact, Default::default()).await?;
        Ok(contact)
    }

    /// Creates up to [`MAX_BATCH`] contacts at once (an import): all of them in one atomic
    /// write, or none. Every bad field of every item is reported, named `<index>.<field>`
    /// (`3.email`); two items with the same email are a validation error too. Each contact
    /// gets its own audit and outbox events, as if created one by one.
    pub async fn create_many(&self, actor: &Actor, inputs: Vec<NewContact>) -> Result<Vec<Contact>> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Contacts, Action::Create)?;
        if inputs.len() > MAX_BATCH {
            return Err(Error::invalid("items", "too_long", format!("at most {MAX_BATCH} contacts at once")));
        }
        let mut errs = Errors::new();
        // References are checked once per distinct id, not once per item.
        let mut companies: HashMap<CompanyId, bool> = HashMap::new();
        let mut owners: HashMap<Option<UserId>, (Owner, bool)> = HashMap::new();
        let mut emails: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let mut item = Errors::new();
            if let Some(c) = input.company_id {
                let ok = match companies.get(&c) {
                    Some(ok) => *ok,
                    None => {
                        let mut probe = Errors::new();
                        crm.check_ref::<Company>(actor, c.as_uuid(), "companyId", &mut probe).await?;
                        *companies.entry(c).or_insert(probe.is_empty())
                    }
                };
                if !ok {
                    item.add("companyId", "not_found", format!("no company with id {c}"));
                }
            }
            let (owner, ok) = match owners.get(&input.owner_id) {
                Some(known) => *known,
                None => {
                    let mut probe = Errors::new();
                    let owner = crm
                        .resolve_owner(actor, Resource::Contacts, Action::Create, input.owner_id, &mut probe)
                        .await?;
                    *owners.entry(input.owner_id).or_insert((owner, probe.is_empty()))
                }
            };
            if !ok {
                item.add("ownerId", "not_found", format!("no active user with id {}", owner.0));
            }
            let contact = self.build(actor, input, owner, &mut item);
            if let Some(email) = &contact.email {
                if let Some(first) = emails.insert(email.as_str().to_string(), i) {
                    item.add("email", "duplicate", format!("the same email as item {first}"));
                }
            }
            errs.nest(&i.to_string(), item);
            out.push(contact);
        }
        errs.finish()?;
        crm.commit_inserts(actor, &out).await?;
        Ok(out)
    }

    /// Validates an input into a new contact, recording every bad field in `errs` (the
    /// returned contact is meaningful only when `errs` stays empty).
    fn build(&self, actor: &Actor, input: NewContact, owner: Owner, errs: &mut Errors) -> Contact {
        let crm = self.crm;
        let region = crm.config().default_phone_region.as_deref();
        let name = input::required(errs, "name", &input.name, NAME_CHARS);
        let email = input::email(errs, "email", input.email);
        let phone_number = input::phone(errs, "phoneNumber", input.phone_number, region);
        let job_title = input::text(errs, "jobTitle", input.job_title, 200, false);
        let lead_source = input::text(errs, "leadSource", input.lead_source, 100, false);
        let tags = input::tags(errs, "tags", input.tags);
        let preferences = input::object(errs, "preferences", input.preferences);
        let social = input::object(errs, "social", input.social);
        let address = input::object(errs, "address", input.address);
        let custom_fields = input::object(errs, "customFields", input.custom_fields);
        let now = crm.now();
        let stage = input.lifecycle_stage.unwrap_or(LifecycleStage::Lead);
        Contact {
            id: ContactId(crm.new_id(now)),
            name,
            email,
            phone_number,
            job_title,
            company_id: input.company_id,
            owner_id: owner.0,
            team_id: owner.1,
            lead_source,
            lifecycle_stage: stage,
            converted_at: (stage == LifecycleStage::Customer).then_some(now),
            tags,
            preferences,
            social,
            address,
            custom_fields,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        }
    }

    /// A live contact the actor may read.
    pub async fn get(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of contacts the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Contact>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes the fields the patch names.
    pub async fn update(&self, actor: &Actor, id: ContactId, patch: ContactPatch) -> Result<Contact> {
        let crm = self.crm;
        let before: Contact = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let region = crm.config().default_phone_region.as_deref();
        let mut errs = Errors::new();
        let mut c = before.clone();
        if let Some(n) = patch.name {
            c.name = input::required(&mut errs, "name", &n, NAME_CHARS);
        }
        if let Some(e) = patch.email {
            c.email = input::email(&mut errs, "email", e);
        }
        if let Some(p) = patch.phone_number {
            c.phone_number = input::phone(&mut errs, "phoneNumber", p, region);
        }
        if let Some(j) = patch.job_title {
            c.job_title = input::text(&mut errs, "jobTitle", j, 200, false);
        }
        if let Some(l) = patch.lead_source {
            c.lead_source = input::text(&mut errs, "leadSource", l, 100, false);
        }
        if let Some(t) = patch.tags {
            c.tags = input::tags(&mut errs, "tags", t);
        }
        if let Some(o) = patch.preferences {
            c.preferences = input::object(&mut errs, "preferences", o);
        }
        if let Some(o) = patch.social {
            c.social = input::object(&mut errs, "social", o);
        }
        if let Some(o) = patch.address {
            c.address = input::object(&mut errs, "address", o);
        }
        if let Some(o) = patch.custom_fields {
            c.custom_fields = input::object(&mut errs, "customFields", o);
        }
        if let Some(company) = patch.company_id {
            if let Some(cid) = company.filter(|cid| Some(*cid) != before.company_id) {
                crm.check_ref::<Company>(actor, cid.as_uuid(), "companyId", &mut errs).await?;
            }
            c.company_id = company;
        }
        if let Some(stage) = patch.lifecycle_stage {
            c.lifecycle_stage = stage;
            if stage == LifecycleStage::Customer && c.converted_at.is_none() {
                c.converted_at = Some(crm.now());
            }
        }
        if let Some(owner) = patch.owner_id.filter(|o| *o != before.owner_id) {
            crm.authorized::<Contact>(actor, id.as_uuid(), Action::Assign).await?;
            let (o, t) = crm.resolve_owner(actor, Resource::Contacts, Action::Assign, Some(owner), &mut errs).await?;
            c.owner_id = o;
            c.team_id = t;
        }
        errs.finish()?;
        crm.commit_update(actor, &before, c, "updated", Default::default()).await
    }

    /// Soft-deletes a contact.
    pub async fn delete(&self, actor: &Actor, id: ContactId, expected_version: Option<i64>) -> Result<Contact> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a soft-deleted contact.
    pub async fn restore(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }

    /// Removes a contact for good, with its interactions.
    pub async fn purge(&self, actor: &Actor, id: ContactId) -> Result<()> {
        let cascade = vec![Write::Purge { kind: EntityKind::Interaction, column: "contact_id", id: id.as_uuid() }];
        self.crm.purge_record::<Contact>(actor, id.as_uuid(), cascade).await
    }
}
