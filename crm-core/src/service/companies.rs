//! The companies service.

use serde::Deserialize;

use super::input::{self, nullable};
use super::write_path::check_version;
use super::Crm;
use crate::error::{Errors, Result};
use crate::ids::{CompanyId, UserId};
use crate::model::company::{Company, ContactDetails};
use crate::model::{JsonObject, RecordMeta};
use crate::policy::{Action, Actor, Resource};
use crate::query::{ListQuery, Page};
use crate::schema::{EntityKind, NAME_CHARS};
use crate::store::Write;

/// Contact details as given: raw email and phone, normalised on the way in.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewContactDetails {
    /// General email address (`info@acme.com`).
    #[serde(default)]
    pub email: Option<String>,
    /// Switchboard number; stored in E.164.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Web site URL.
    #[serde(default)]
    pub website: Option<String>,
    /// Postal address (`street`, `city`, `postalCode`, `country`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub address: Option<JsonObject>,
}

/// Input of [`CompanyService::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCompany {
    /// Name (required).
    pub name: String,
    /// Web domain (`acme.com`; a URL is reduced to its host).
    #[serde(default)]
    pub domain: Option<String>,
    /// Free-text industry (`Software`).
    #[serde(default)]
    pub industry: Option<String>,
    /// Employees.
    #[serde(default)]
    pub size: Option<i64>,
    /// Country (ISO 3166-1 alpha-2).
    #[serde(default)]
    pub country: Option<String>,
    /// How to reach it.
    #[serde(default)]
    pub contact_details: NewContactDetails,
    /// The owner; absent: the caller.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Values of the custom fields defined for companies.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_fields: JsonObject,
}

/// Input of [`CompanyService::update`]: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyPatch {
    /// New name; absent: unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// New domain; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub domain: Option<Option<String>>,
    /// New industry; `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub industry: Option<Option<String>>,
    /// Employees.
    #[serde(default, deserialize_with = "nullable")]
    pub size: Option<Option<i64>>,
    /// New country (ISO 3166-1 alpha-2); `null` clears it, absent: unchanged.
    #[serde(default, deserialize_with = "nullable")]
    pub country: Option<Option<String>>,
    /// Contact details (replace).
    #[serde(default)]
    pub contact_details: Option<NewContactDetails>,
    /// New owner (the record moves to their team); absent: unchanged.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Custom fields (replace).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub custom_fields: Option<JsonObject>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

fn details(crm: &Crm, errs: &mut Errors, d: NewContactDetails) -> ContactDetails {
    let region = crm.config().default_phone_region.as_deref();
    ContactDetails {
        email: input::email(errs, "contactDetails.email", d.email),
        phone_number: input::phone(errs, "contactDetails.phoneNumber", d.phone_number, region),
        website: input::text(errs, "contactDetails.website", d.website, 500, false),
        address: d.address.map(|a| input::object(errs, "contactDetails.address", a)),
    }
}

fn size(errs: &mut Errors, s: Option<i64>) -> Option<i64> {
    if let Some(n) = s {
        if !(0..=10_000_000).contains(&n) {
            errs.add("size", "out_of_range", "size is a number of employees from 0 to 10,000,000");
        }
    }
    s
}

fn country(errs: &mut Errors, c: Option<String>) -> Option<String> {
    let c = c.map(|c| c.trim().to_uppercase()).filter(|c| !c.is_empty())?;
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        errs.add("country", "invalid_format", "country is an ISO 3166-1 alpha-2 code such as FR");
    }
    Some(c)
}

/// Companies: organisations.
#[derive(Debug, Clone, Copy)]
pub struct CompanyService<'a> {
    pub(super) crm: &'a Crm,
}

impl CompanyService<'_> {
    /// Creates a company.
    pub async fn create(&self, actor: &Actor, input: NewCompany) -> Result<Company> {
        let crm = self.crm;
        crm.policy().require(actor, Resource::Companies, Action::Create)?;
        let mut errs = Errors::new();
        let name = input::required(&mut errs, "name", &input.name, NAME_CHARS);
        let domain = input::domain(&mut errs, "domain", input.domain);
        let industry = input::text(&mut errs, "industry", input.industry, 100, false);
        let size = size(&mut errs, input.size);
        let country = country(&mut errs, input.country);
        let contact_details = details(crm, &mut errs, input.contact_details);
        let custom_fields = input::object(&mut errs, "customFields", input.custom_fields);
        let (owner_id, team_id) =
            crm.resolve_owner(actor, Resource::Companies, Action::Create, input.owner_id, &mut errs).await?;
        errs.finish()?;
        let now = crm.now();
        let company = Company {
            id: CompanyId(crm.new_id(now)),
            name,
            domain,
            industry,
            size,
            country,
            contact_details,
            owner_id,
            team_id,
            custom_fields,
            meta: RecordMeta::new(now, Some(actor.user_id)),
        };
        crm.commit_insert(actor, &company, Default::default()).await?;
        Ok(company)
    }

    /// A live company the actor may read.
    pub async fn get(&self, actor: &Actor, id: CompanyId) -> Result<Company> {
        self.crm.authorized(actor, id.as_uuid(), Action::Read).await
    }

    /// A page of companies the actor may read.
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Page<Company>> {
        self.crm.list_records(actor, query).await
    }

    /// Changes the fields the patch names.
    pub async fn update(&self, actor: &Actor, id: CompanyId, patch: CompanyPatch) -> Result<Company> {
        let crm = self.crm;
        let before: Company = crm.authorized(actor, id.as_uuid(), Action::Update).await?;
        check_version(patch.version, before.meta.version)?;
        let mut errs = Errors::new();
        let mut c = before.clone();
        if let Some(n) = patch.name {
            c.name = input::required(&mut errs, "name", &n, NAME_CHARS);
        }
        if let Some(d) = patch.domain {
            c.domain = input::domain(&mut errs, "domain", d);
        }
        if let Some(i) = patch.industry {
            c.industry = input::text(&mut errs, "industry", i, 100, false);
        }
        if let Some(s) = patch.size {
            c.size = size(&mut errs, s);
        }
        if let Some(k) = patch.country {
            c.country = country(&mut errs, k);
        }
        if let Some(d) = patch.contact_details {
            c.contact_details = details(crm, &mut errs, d);
        }
        if let Some(o) = patch.custom_fields {
            c.custom_fields = input::object(&mut errs, "customFields", o);
        }
        if let Some(owner) = patch.owner_id.filter(|o| *o != before.owner_id) {
            crm.authorized::<Company>(actor, id.as_uuid(), Action::Assign).await?;
            let (o, t) = crm.resolve_owner(actor, Resource::Companies, Action::Assign, Some(owner), &mut errs).await?;
            c.owner_id = o;
            c.team_id = t;
        }
        errs.finish()?;
        crm.commit_update(actor, &before, c, "updated", Default::default()).await
    }

    /// Soft-deletes a company. Its contacts and deals keep the reference and show it again
    /// when the company is restored.
    pub async fn delete(&self, actor: &Actor, id: CompanyId, expected_version: Option<i64>) -> Result<Company> {
        self.crm.soft_delete(actor, id.as_uuid(), expected_version).await
    }

    /// Restores a soft-deleted company.
    pub async fn restore(&self, actor: &Actor, id: CompanyId) -> Result<Company> {
        self.crm.restore_record(actor, id.as_uuid()).await
    }

    /// Removes a company for good; contacts and deals that named it lose the reference.
    pub async fn purge(&self, actor: &Actor, id: CompanyId) -> Result<()> {
        let at = self.crm.now();
        let cascade = vec![
            Write::ClearReference { kind: EntityKind::Contact, column: "company_id", id: id.as_uuid(), at },
            Write::ClearReference { kind: EntityKind::Deal, column: "company_id", id: id.as_uuid(), at },
        ];
        self.crm.purge_record::<Company>(actor, id.as_uuid(), cascade).await
    }
}
