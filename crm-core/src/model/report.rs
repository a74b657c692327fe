//! Saved reports: a standard report with its parameters, a custom report's spec, or a
//! dashboard's cards, kept under a name with an owner, shared with users, teams or roles,
//! and an optional chart.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{impl_record, record_columns, search_words, string_enum, RecordMeta};
use crate::ids::{SavedReportId, TeamId, UserId};
use crate::model::settings::DashboardCard;
use crate::policy::{Actor, Ownership, Role};
use crate::schema::{Column, ColumnType as T, EntityKind, Index};

string_enum! {
    /// The standard reports of `docs/REPORTS.md`: each one's name, title, parameters and
    /// default chart are here; its plan is `crate::analytics::report`'s (feature
    /// `analytics`), matched on this type so none can be left out.
    StandardReport {
        /// R1: open deals by stage, with amounts weighted by probability.
        PipelineByStage = "r1_pipeline_by_stage",
        /// R2: open deals by month of expected close.
        ForecastByMonth = "r2_forecast_by_month",
        /// R3: won and lost deals and the win rate per owner.
        WinRateByOwner = "r3_win_rate_by_owner",
        /// R4: how many deals reached each stage and moved on.
        StageFunnel = "r4_stage_funnel",
        /// R5: contacts created and converted by month and lead source.
        LeadConversion = "r5_lead_conversion",
        /// R6: companies by won revenue.
        TopCompaniesByRevenue = "r6_top_companies_by_revenue",
        /// R7: contacts by recent interactions.
        ContactEngagement = "r7_contact_engagement",
        /// R8: new customers by month, with the running total.
        CustomerAcquisition = "r8_customer_acquisition",
    }
}

impl StandardReport {
    /// The title charts and exports show.
    pub fn title(&self) -> &'static str {
        match self {
            Self::PipelineByStage => "Open pipeline by stage",
            Self::ForecastByMonth => "Forecast by month of expected close",
            Self::WinRateByOwner => "Win rate by owner",
            Self::StageFunnel => "Stage funnel",
            Self::LeadConversion => "Lead conversion by month and source",
            Self::TopCompaniesByRevenue => "Top companies by won revenue",
            Self::ContactEngagement => "Most engaged contacts",
            Self::CustomerAcquisition => "New customers by month",
        }
    }

    /// The parameters it takes ([`StandardParams`]' API names).
    pub fn parameters(&self) -> &'static [&'static str] {
        match self {
            Self::ForecastByMonth => &["asOf", "forecastEnd"],
            Self::ContactEngagement => &["asOf", "engagementStart"],
            _ => &[],
        }
    }

    /// The chart it is drawn with unless a saved report says otherwise.
    pub fn chart(&self) -> ChartSpec {
        let (kind, x, y): (ChartKind, &str, &[&str]) = match self {
            Self::PipelineByStage => (ChartKind::Bar, "stage", &["total_amount", "weighted_amount"]),
            Self::ForecastByMonth => (ChartKind::Bar, "month", &["total_amount", "weighted_amount"]),
            Self::WinRateByOwner => (ChartKind::Bar, "owner_id", &["won", "lost"]),
            Self::StageFunnel => (ChartKind::Funnel, "stage", &["deals_reached"]),
            Self::LeadConversion => (ChartKind::Bar, "lead_source", &["created", "converted"]),
            Self::TopCompaniesByRevenue => (ChartKind::Bar, "name", &["revenue"]),
            Self::ContactEngagement => (ChartKind::Bar, "contact_id", &["calls", "emails", "meetings", "notes"]),
            Self::CustomerAcquisition => (ChartKind::Line, "month", &["new_customers", "cumulative_customers"]),
        };
        ChartSpec { kind, x: x.to_string(), y: y.iter().map(|s| s.to_string()).collect(), title: None }
    }

    /// The report of a name, or a validation error on `field` listing the names.
    pub fn named(name: &str, field: &str) -> crate::Result<Self> {
        name.parse().map_err(|_| {
            crate::Error::invalid(
                field,
                "invalid_value",
                format!("'{name}' is not a standard report; they are {}", Self::CHOICES.join(", ")),
            )
        })
    }
}

/// The parameters a saved standard report runs with; an absent one takes REPORTS.md's
/// default when the report runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StandardParams {
    /// The reference time (default: the latest `created_at` of a live deal); a date means
    /// its midnight UTC.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::date_or_time::option_utc")]
    pub as_of: Option<DateTime<Utc>>,
    /// The end of the forecast, exclusive (default: `asOf` + 12 months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_end: Option<NaiveDate>,
    /// The start of the engagement window (default: `asOf` − 90 days); a date means its
    /// midnight UTC.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::date_or_time::option_utc")]
    pub engagement_start: Option<DateTime<Utc>>,
}

string_enum! {
    /// The shape of a report's chart.
    ChartKind {
        /// Bars per category, one series per value column.
        Bar = "bar",
        /// Lines over an ordered axis (months, dates), one per value column.
        Line = "line",
        /// A funnel: one value per stage, in the report's row order.
        Funnel = "funnel",
    }
}

/// How a report is drawn: which output column runs along the axis and which are plotted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartSpec {
    /// Bar, line or funnel.
    #[serde(rename = "type")]
    pub kind: ChartKind,
    /// The column of the categories (bar, funnel) or of the axis (line).
    pub x: String,
    /// The numeric columns plotted (1 to 6; a funnel takes exactly one).
    pub y: Vec<String>,
    /// A caption (default: the report's title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Who a report is shared with, besides its owner. Sharing lets them see and run the
/// report; only the owner (and managers/admins within their scope) change it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sharing {
    /// Users who may see it.
    #[serde(default)]
    pub users: Vec<UserId>,
    /// Teams whose members may see it.
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// Roles whose holders may see it (`user` shares it with everyone).
    #[serde(default)]
    pub roles: Vec<Role>,
}

impl Sharing {
    /// Is the report shared with this actor (by user, team or role)?
    pub fn includes(&self, actor: &Actor) -> bool {
        self.users.contains(&actor.user_id)
            || actor.team_id.is_some_and(|t| self.teams.contains(&t))
            || self.roles.contains(&actor.role)
    }

    /// Is it shared with anyone?
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty() && self.roles.is_empty()
    }
}

/// A report kept under a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SavedReport {
    /// The saved report's id.
    pub id: SavedReportId,
    /// The title shown in the report list and on dashboards.
    pub name: String,
    /// What it shows.
    pub description: Option<String>,
    /// A standard report's name (`r1_pipeline_by_stage` …); absent for a custom report.
    pub standard: Option<String>,
    /// The standard report's parameters (empty for a custom report).
    pub parameters: StandardParams,
    /// The custom report's spec (a `ReportSpec`); absent for a standard report.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub spec: Option<serde_json::Value>,
    /// A dashboard's cards, in order; absent for a report. A dashboard is opened (its
    /// cards run one by one), not run or exported itself.
    #[serde(default)]
    pub cards: Option<Vec<DashboardCard>>,
    /// How the report is drawn in PDF exports and dashboards.
    pub chart: Option<ChartSpec>,
    /// Who else may see and run it.
    pub shared_with: Sharing,
    /// Who owns it (its creator unless given away).
    pub owner_id: UserId,
    /// The owner's team.
    pub team_id: Option<TeamId>,
    /// Bookkeeping.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl_record!(
    SavedReport,
    EntityKind::SavedReport,
    |r| Ownership { owner: Some(r.owner_id), team: r.team_id, assignee: None },
    |r| search_words([Some(r.name.as_str()), r.description.as_deref()])
);

/// The role names, for the `sharedWith.roles` column's filters.
const ROLE_CHOICES: &[&str] = &["user", "manager", "admin"];

/// Storage columns of saved reports.
pub static COLUMNS: &[Column] = record_columns![
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("name", "name", T::Text).sort(),
    Column::new("description", "description", T::Text).null(),
    Column::new("standard", "standard", T::Text).null().filter().choices(StandardReport::CHOICES),
    Column::new("parameters", "parameters", T::Json),
    Column::new("spec", "spec", T::Json).null(),
    Column::new("chart", "chart", T::Json).null(),
    Column::new("shared_users", "sharedWith.users", T::UuidList).filter(),
    Column::new("shared_teams", "sharedWith.teams", T::UuidList).filter(),
    Column::new("shared_roles", "sharedWith.roles", T::TextList).filter().choices(ROLE_CHOICES),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("team_id", "teamId", T::Uuid).null().filter(),
    Column::new("search_text", "", T::Text);
    added:
    // Migration 18.
    Column::new("cards", "cards", T::Json).null(),
];

/// The indexes of `saved_reports` besides the primary key.
pub static INDEXES: &[Index] = &[
    Index::on("saved_reports_created_idx", &["created_at", "id"]).live(),
    Index::on("saved_reports_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("saved_reports_team_idx", &["team_id"]),
    Index::on("saved_reports_shared_users_idx", &["shared_users"]).members(),
    Index::on("saved_reports_shared_teams_idx", &["shared_teams"]).members(),
];
