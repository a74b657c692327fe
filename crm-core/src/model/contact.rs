//! Contacts: people the business deals with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, string_enum, JsonObject, RecordMeta};
use crate::ids::{CompanyId, ContactId, TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, Derive, EntityKind, Exposed, Index, NAME_CHARS};
use crate::values::{Email, Phone};

string_enum! {
    /// Where a contact stands in the funnel (HubSpot's lifecycle stages).
    LifecycleStage {
        /// Gets the newsletter.
        Subscriber = "subscriber",
        /// Showed interest.
        Lead = "lead",
        /// Marketing-qualified lead.
        Mql = "mql",
        /// Sales-qualified lead.
        Sql = "sql",
        /// In an open deal.
        Opportunity = "opportunity",
        /// Bought.
        Customer = "customer",
    }
}

/// A person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// The contact's id, stable for its life.
    pub id: ContactId,
    /// Full name.
    pub name: String,
    /// Email address, unique among live contacts.
    pub email: Option<Email>,
    /// Phone number, E.164.
    pub phone_number: Option<Phone>,
    /// Position at the company (`Head of Sales`).
    pub job_title: Option<String>,
    /// The company they work for.
    pub company_id: Option<CompanyId>,
    /// The user who owns the relationship.
    pub owner_id: UserId,
    /// The owner's team when the owner was set.
    pub team_id: Option<TeamId>,
    /// Where the lead came from (`web`, `referral`, …).
    pub lead_source: Option<String>,
    /// Funnel stage.
    pub lifecycle_stage: LifecycleStage,
    /// When the contact first became a customer.
    pub converted_at: Option<DateTime<Utc>>,
    /// Free labels.
    pub tags: Vec<String>,
    /// Communication preferences.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub preferences: JsonObject,
    /// Social profiles.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub social: JsonObject,
    /// Postal address.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub address: JsonObject,
    /// Values of the fields an admin defined for contacts, keyed by field name.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_fields: JsonObject,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(
    Contact,
    EntityKind::Contact,
    |c| Ownership { owner: Some(c.owner_id), team: c.team_id, assignee: None },
    |c| search_words([
        Some(c.name.as_str()),
        c.email.as_ref().map(|e| e.as_str()),
        c.phone_number.as_ref().map(|p| p.as_str()),
    ])
);

/// Storage columns of contacts.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort().chars(NAME_CHARS),
    Column::new("email", "email", T::Text).null().sort().lower(),
    Column::new("phone_number", "phoneNumber", T::Text).null().sort(),
    Column::new("job_title", "jobTitle", T::Text).null().sort(),
    Column::new("company_id", "companyId", T::Uuid).null().filter(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("lead_source", "leadSource", T::Text).null().sort(),
    Column::new("lifecycle_stage", "lifecycleStage", T::Text).sort().choices(LifecycleStage::CHOICES),
    Column::new("converted_at", "convertedAt", T::Timestamp).null().sort(),
    Column::new("tags", "tags", T::TextList).filter(),
    Column::new("preferences", "preferences", T::Json),
    Column::new("social", "social", T::Json),
    Column::new("address", "address", T::Json),
    Column::new("custom_fields", "customFields", T::Json),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `contacts` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("contacts_email_key", &["email"]).unique().live(),
    Index::on("contacts_created_idx", &["created_at", "id"]).live(),
    Index::on("contacts_updated_idx", &["updated_at", "id"]).live(),
    Index::on("contacts_name_idx", &["name", "id"]).live(),
    Index::on("contacts_stage_idx", &["lifecycle_stage", "created_at", "id"]).live(),
    Index::on("contacts_stage_name_idx", &["lifecycle_stage", "name", "id"]).live(),
    Index::on("contacts_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("contacts_team_idx", &["team_id", "created_at", "id"]),
    Index::on("contacts_company_idx", &["company_id"]),
    Index::on("contacts_tags_idx", &["tags"]).members(),
    Index::on("contacts_deleted_idx", &["deleted_at"]).deleted(),
];

/// The `contacts` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static ANALYTICS: &[Exposed] = &[
    Exposed::id("id", "id"),
    Exposed::id("company_id", "company_id").null(),
    Exposed::id("owner_id", "owner_id"),
    Exposed::new("first_name", T::Text, "name").derive(Derive::FirstWord),
    Exposed::new("last_name", T::Text, "name").derive(Derive::OtherWords),
    Exposed::new("email", T::Text, "email"),
    Exposed::new("lead_source", T::Text, "lead_source").null(),
    Exposed::new("lifecycle_stage", T::Text, "lifecycle_stage"),
    Exposed::new("created_at", T::Timestamp, "created_at"),
    Exposed::new("converted_at", T::Timestamp, "converted_at").null(),
    Exposed::new("deleted_at", T::Timestamp, "deleted_at").null().hidden(),
];
