//! Companies: the organisations contacts work for and deals are won from.

use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, JsonObject, RecordMeta};
use crate::ids::{CompanyId, TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, Derive, EntityKind, Exposed, Index, NAME_CHARS};
use crate::values::{Domain, Email, Phone};

/// How to reach a company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactDetails {
    /// General email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// Switchboard number, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<Phone>,
    /// Web site URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub address: Option<JsonObject>,
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// The company's id, stable for its life.
    pub id: CompanyId,
    /// The company's display name (not unique: the domain is).
    pub name: String,
    /// Web domain, unique among live companies (`acme.com`).
    pub domain: Option<Domain>,
    /// Free-text industry (`Software`), grouped on in company analytics.
    pub industry: Option<String>,
    /// Number of employees.
    pub size: Option<i64>,
    /// Country, ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// How to reach it.
    pub contact_details: ContactDetails,
    /// The user who owns the account.
    pub owner_id: UserId,
    /// The owner's team when the owner was set.
    pub team_id: Option<TeamId>,
    /// Values of the fields an admin defined for companies, keyed by field name.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_fields: JsonObject,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl Company {
    /// The size bucket used by reports (`1-10`, `11-50`, `51-200`, `201-1000`, `1001+`, `unknown`).
    pub fn size_bucket(&self) -> &'static str {
        size_bucket(self.size)
    }
}

/// The report size bucket of a head count (see [`Company::size_bucket`]).
pub fn size_bucket(size: Option<i64>) -> &'static str {
    match size {
        None => "unknown",
        Some(n) if n <= 10 => "1-10",
        Some(n) if n <= 50 => "11-50",
        Some(n) if n <= 200 => "51-200",
        Some(n) if n <= 1000 => "201-1000",
        Some(_) => "1001+",
    }
}

impl_record!(
    Company,
    EntityKind::Company,
    |c| Ownership { owner: Some(c.owner_id), team: c.team_id, assignee: None },
    |c| search_words([Some(c.name.as_str()), c.domain.as_ref().map(|d| d.as_str())])
);

/// Storage columns of companies.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort().chars(NAME_CHARS),
    Column::new("domain", "domain", T::Text).null().sort().lower(),
    Column::new("industry", "industry", T::Text).null().sort(),
    Column::new("size", "size", T::Int).null().sort(),
    Column::new("country", "country", T::Text).null().sort(),
    Column::new("contact_details", "contactDetails", T::Json),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("custom_fields", "customFields", T::Json),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `companies` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("companies_domain_key", &["domain"]).unique().live(),
    Index::on("companies_created_idx", &["created_at", "id"]).live(),
    Index::on("companies_name_idx", &["name", "id"]).live(),
    Index::on("companies_owner_idx", &["owner_id", "created_at"]),
    Index::on("companies_team_idx", &["team_id", "created_at"]),
    Index::on("companies_industry_idx", &["industry"]),
    Index::on("companies_deleted_idx", &["deleted_at"]).deleted(),
];

/// The `companies` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static ANALYTICS: &[Exposed] = &[
    Exposed::id("id", "id"),
    Exposed::new("name", T::Text, "name"),
    Exposed::new("industry", T::Text, "industry").null(),
    Exposed::new("size_bucket", T::Text, "size").derive(Derive::SizeBucket),
    Exposed::new("country", T::Text, "country").null(),
    Exposed::id("owner_id", "owner_id").null(),
    Exposed::new("created_at", T::Timestamp, "created_at"),
    Exposed::new("deleted_at", T::Timestamp, "deleted_at").null().hidden(),
];
