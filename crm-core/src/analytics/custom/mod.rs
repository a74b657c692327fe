//! Custom reports: a [`ReportSpec`] (JSON) — a source table, optionally joined with the
//! tables it refers to, a filter in the list queries' grammar, group-by fields with time
//! buckets, aggregates, sort and limit — validated with field-level errors and compiled to
//! a polars lazy query over the analytics tables.
//!
//! Rows of deleted records do not exist here either: the source and every joined table are
//! read live (`deleted_at` NULL), the stage history of a deleted deal and the interactions
//! of a deleted contact are left out, and a row whose joined record was deleted is left out
//! (a row whose reference is empty stays, with the joined columns NULL).

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::Tables;
use crate::error::{Error, Result};

mod catalog;
mod compile;
mod plan;

pub use catalog::{describe as catalog, CatalogField, CatalogSource};
pub use compile::{compile, Compiled};

/// The most rows a custom report returns.
pub const MAX_LIMIT: u32 = 1_000_000;
/// The most group-by fields, aggregates or listed fields.
pub(crate) const MAX_TERMS: usize = 20;

/// A custom report, as the API and `crm.analytics.custom` take it (camelCase JSON).
///
/// ```json
/// {"source": "deals", "join": ["companies"],
///  "filter": "pipeline_stage[eq]:closed_won",
///  "groupBy": ["companies.industry", {"field": "closed_at", "bucket": "quarter"}],
///  "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "amount_cents", "as": "revenue"}],
///  "sort": "revenue[desc]", "limit": 10}
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportSpec {
    /// A title, for exports and saved reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The table the rows come from: `deals`, `companies`, `contacts`, `interactions`,
    /// `tasks` or `deal_stage_history`.
    pub source: String,
    /// Tables joined to the source through its references: deals → companies, contacts;
    /// contacts → companies; interactions → contacts; deal_stage_history → deals.
    /// Their fields are named `table.field` (`companies.industry`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// A filter in the list queries' grammar over the source's and the joined fields
    /// (`and(pipeline_stage[in]:[proposal,negotiation],companies.industry[is]:notnull)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The fields to group by, each optionally bucketed by time.
    #[serde(default, alias = "group_by", skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<GroupBy>,
    /// The aggregates per group (or over all rows without `groupBy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregates: Vec<Aggregate>,
    /// Without aggregates: the fields to list, one row per source row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Sort keys over the output columns, in the list queries' grammar
    /// (`revenue[desc],industry` or `-revenue`). Ties, and reports without a sort, are
    /// ordered by the group-by columns (a listing by the source's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// At most this many rows (1 – 1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A group-by field: `"owner_id"` or `{"field": "created_at", "bucket": "month", "as": "month"}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupBy {
    /// A field by name.
    Field(String),
    /// A field with a time bucket or an output name.
    Spec {
        /// The field.
        field: String,
        /// A time bucket (date and timestamp fields).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bucket: Option<Bucket>,
        /// The output column's name (default: the field's name, with `_<bucket>`).
        #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
    },
}

impl GroupBy {
    pub(crate) fn parts(&self) -> (&str, Option<Bucket>, Option<&str>) {
        match self {
            GroupBy::Field(f) => (f, None, None),
            GroupBy::Spec { field, bucket, alias } => (field, *bucket, alias.as_deref()),
        }
    }
}

/// Time buckets. Days and weeks are dates (a week is named by its Monday), months
/// `YYYY-MM`, quarters `YYYY-Qn`, years integers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// The calendar day.
    Day,
    /// The ISO week (Monday to Sunday).
    Week,
    /// The calendar month.
    Month,
    /// The calendar quarter.
    Quarter,
    /// The calendar year.
    Year,
}

/// An aggregate: `{"fn": "sum", "field": "amount_cents", "as": "revenue"}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// The function.
    #[serde(rename = "fn")]
    pub func: AggFn,
    /// The field (not for a plain `count`, which counts rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The output column's name (default `<fn>_<field>`, or `count`).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// Aggregate functions. NULLs are skipped (a sum of none is 0, a mean or median of none NULL).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFn {
    /// Rows (without a field) or non-NULL values.
    Count,
    /// Distinct non-NULL values.
    CountDistinct,
    /// Sum of a number.
    Sum,
    /// Mean of a number (a float).
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Interpolated median of a number (a float).
    Median,
}

impl AggFn {
    pub(crate) fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::CountDistinct => "count_distinct",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Median => "median",
        }
    }
}

impl ReportSpec {
    /// Reads a spec from JSON; a malformed one is a validation error.
    pub fn from_json(json: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid("spec", "invalid_format", format!("not a report spec: {e}")))?;
        crate::decode::from_json(v)
    }
}

/// Validates and runs a custom report.
pub fn custom(spec: &ReportSpec, t: &Tables) -> Result<DataFrame> {
    compile(spec)?.run(t)
}
