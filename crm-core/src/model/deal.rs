//! Deals: sales opportunities moving through the pipeline, with line items and history.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{impl_record, record_columns, search_words, string_enum, RecordMeta};
use crate::ids::{CompanyId, ContactId, DealId, TeamId, UserId};
use crate::policy::Ownership;
use crate::schema::{Column, ColumnType as T, Derive, EntityKind, Exposed, Index, Persist};
use crate::values::{Currency, Percent};

string_enum! {
    /// Pipeline stage, in pipeline order.
    DealStage {
        /// Finding out whether there is a need.
        Prospecting = "prospecting",
        /// Qualifying budget, authority, need, timing.
        Qualification = "qualification",
        /// A proposal is out.
        Proposal = "proposal",
        /// Negotiating terms.
        Negotiation = "negotiation",
        /// Signed: counted in won revenue and the win rate.
        ClosedWon = "closed_won",
        /// Lost; `lost_reason` says why.
        ClosedLost = "closed_lost",
    }
}

impl DealStage {
    /// The default win probability of the stage, in percent.
    pub const fn probability(&self) -> i64 {
        match self {
            DealStage::Prospecting => 10,
            DealStage::Qualification => 20,
            DealStage::Proposal => 40,
            DealStage::Negotiation => 60,
            DealStage::ClosedWon => 100,
            DealStage::ClosedLost => 0,
        }
    }

    /// Is the deal closed (won or lost)?
    pub fn is_closed(&self) -> bool {
        matches!(self, DealStage::ClosedWon | DealStage::ClosedLost)
    }
}

/// A product or service on a deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// The catalogue product it is, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Uuid>,
    /// What is sold.
    pub name: String,
    /// How many (at least 1).
    pub quantity: i64,
    /// Price of one, in minor units of the deal's currency.
    pub unit_price: i64,
    /// Discount on the line.
    #[serde(default)]
    pub discount_percent: Percent,
    /// Tax on the discounted line.
    #[serde(default)]
    pub tax_percent: Percent,
    /// quantity × unit price − discount + tax, in minor units (computed).
    #[serde(default)]
    pub total: i64,
}

impl LineItem {
    /// Computes the line total; `None` on overflow.
    pub fn compute_total(&self) -> Option<i64> {
        let gross = self.quantity.checked_mul(self.unit_price)?;
        let net = gross.checked_sub(self.discount_percent.of(gross)?)?;
        net.checked_add(self.tax_percent.of(net)?)
    }
}

/// A sales opportunity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    /// The deal's id, stable for its life.
    pub id: DealId,
    /// The deal's display name (`Acme — 40 seats`).
    pub name: String,
    /// What is being sold, in free text.
    pub description: Option<String>,
    /// Value in minor units of `currency`.
    pub amount: Option<i64>,
    /// ISO 4217 currency.
    pub currency: Currency,
    /// Pipeline stage.
    pub stage: DealStage,
    /// Win probability in percent (the stage's unless set).
    pub probability: i64,
    /// When it is expected to close.
    pub expected_close_date: Option<NaiveDate>,
    /// When it closed (won or lost).
    pub closed_at: Option<DateTime<Utc>>,
    /// When the stage last changed.
    pub stage_changed_at: DateTime<Utc>,
    /// The people involved; the first is the primary contact.
    pub contact_ids: Vec<ContactId>,
    /// The buying company.
    pub company_id: Option<CompanyId>,
    /// The salesperson.
    pub owner_id: UserId,
    /// The owner's team.
    pub team_id: Option<TeamId>,
    /// Line items.
    pub products: Vec<LineItem>,
    /// Free-text notes of the salesperson.
    pub notes: Option<String>,
    /// Why it was lost.
    pub lost_reason: Option<String>,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(Deal, EntityKind::Deal, |d| Ownership { owner: Some(d.owner_id), team: d.team_id, assignee: None }, |d| {
    search_words([Some(d.name.as_str())])
});

/// Storage columns of deals.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("description", "description", T::Text).null(),
    Column::new("amount", "amount", T::Int).null().sort(),
    Column::new("currency", "currency", T::Text).sort(),
    Column::new("stage", "stage", T::Text).sort().choices(DealStage::CHOICES),
    Column::new("probability", "probability", T::Int).sort(),
    Column::new("expected_close_date", "expectedCloseDate", T::Date).null().sort(),
    Column::new("closed_at", "closedAt", T::Timestamp).null().sort(),
    Column::new("stage_changed_at", "stageChangedAt", T::Timestamp).sort(),
    Column::new("contact_ids", "contactIds", T::UuidList).filter(),
    Column::new("company_id", "companyId", T::Uuid).null().filter(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("products", "products", T::Json),
    Column::new("notes", "notes", T::Text).null(),
    Column::new("lost_reason", "lostReason", T::Text).null().filter(),
    Column::new("search_text", "", T::Text),
];

/// The indexes of `deals` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("deals_created_idx", &["created_at", "id"]).live(),
    Index::on("deals_stage_idx", &["stage", "created_at", "id"]).live(),
    Index::on("deals_close_idx", &["expected_close_date"]).live(),
    Index::on("deals_amount_idx", &["amount"]).live(),
    Index::on("deals_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("deals_team_idx", &["team_id", "created_at", "id"]),
    Index::on("deals_company_idx", &["company_id"]),
    Index::on("deals_contacts_idx", &["contact_ids"]).members(),
    Index::on("deals_deleted_idx", &["deleted_at"]).deleted(),
];

/// The `deals` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static ANALYTICS: &[Exposed] = &[
    Exposed::id("id", "id"),
    Exposed::new("name", T::Text, "name"),
    Exposed::id("company_id", "company_id").null(),
    Exposed::id("contact_id", "contact_ids").null().derive(Derive::FirstOfList),
    Exposed::id("owner_id", "owner_id"),
    Exposed::new("pipeline_stage", T::Text, "stage").choices(DealStage::CHOICES),
    Exposed::new("amount_cents", T::Int, "amount").null(),
    Exposed::new("currency", T::Text, "currency"),
    Exposed::new("expected_close_date", T::Date, "expected_close_date").null(),
    Exposed::new("created_at", T::Timestamp, "created_at"),
    Exposed::new("closed_at", T::Timestamp, "closed_at").null(),
    Exposed::new("deleted_at", T::Timestamp, "deleted_at").null().hidden(),
];

/// One entry of a deal's stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DealStageChange {
    /// The history entry's id.
    pub id: Uuid,
    /// The deal whose stage changed.
    pub deal_id: DealId,
    /// The stage before (absent for the first entry, written when the deal is created).
    pub from_stage: Option<DealStage>,
    /// The stage entered.
    pub to_stage: DealStage,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// By whom.
    pub changed_by: Option<UserId>,
}

impl Persist for DealStageChange {
    const KIND: EntityKind = EntityKind::DealStageChange;
}

/// Storage columns of the stage history.
pub static HISTORY_COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("deal_id", "dealId", T::Uuid).filter(),
    Column::new("from_stage", "fromStage", T::Text).null().filter().choices(DealStage::CHOICES),
    Column::new("to_stage", "toStage", T::Text).filter().choices(DealStage::CHOICES),
    Column::new("changed_at", "changedAt", T::Timestamp).sort(),
    Column::new("changed_by", "changedBy", T::Uuid).null().filter(),
];

/// The indexes of `deal_stage_history` besides the primary key.
pub static HISTORY_INDEXES: &[Index] = &[Index::on("deal_stage_history_deal_idx", &["deal_id", "changed_at"])];

/// The `deal_stage_history` analytics table (`docs/REPORTS.md`) and the stored columns it comes from.
pub static HISTORY_ANALYTICS: &[Exposed] = &[
    Exposed::id("deal_id", "deal_id"),
    Exposed::new("from_stage", T::Text, "from_stage").null().choices(DealStage::CHOICES),
    Exposed::new("to_stage", T::Text, "to_stage").choices(DealStage::CHOICES),
    Exposed::new("changed_at", T::Timestamp, "changed_at"),
];
