//! Contact and company analytics (`GET /api/contacts/analytics`,
//! `GET /api/companies/analytics`): the figures a CRM's contact and company dashboards
//! show, computed on the analytics tables as of a time.
//!
//! Deleted records do not count; interactions of deleted contacts and deals of deleted
//! companies neither. Money is integer minor units of the reporting currency, as in the
//! standard reports.

use chrono::{DateTime, Datelike, Months, NaiveDateTime, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::{from_polars, stages, Tables};
use crate::error::Result;

/// How many rows the "top" lists hold.
const TOP: u32 = 10;

/// Engagement and value of contacts: interactions, deals, revenue, per contact and in total.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactAnalytics {
    /// The time the figures are taken at.
    pub as_of: DateTime<Utc>,
    /// Live contacts.
    pub total: i64,
    /// Of them, customers.
    pub customers: i64,
    /// customers / total (NULL without contacts).
    pub conversion_rate: Option<f64>,
    /// Contacts per lifecycle stage, most first.
    pub by_lifecycle_stage: Vec<StageCount>,
    /// Contacts per lead source (NULL: none recorded), most first.
    pub by_lead_source: Vec<SourceCount>,
    /// Contacts created in each of the last 12 calendar months (oldest first, the current
    /// month last; months without any are 0).
    pub new_per_month: Vec<MonthCount>,
    /// Interactions with live contacts.
    pub engagement: Engagement,
}

/// Contacts in a lifecycle stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StageCount {
    /// The stage.
    pub stage: String,
    /// Contacts in it.
    pub count: i64,
}

/// Contacts from a lead source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SourceCount {
    /// The lead source (NULL: none recorded).
    pub lead_source: Option<String>,
    /// Contacts.
    pub count: i64,
    /// Of them, customers.
    pub customers: i64,
    /// customers / count.
    pub conversion_rate: f64,
}

/// Contacts created in a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MonthCount {
    /// `YYYY-MM`.
    pub month: String,
    /// Contacts created.
    pub count: i64,
}

/// Engagement: interactions with live contacts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Engagement {
    /// Interactions in the 30 days up to `asOf`.
    pub last_30_days: i64,
    /// Interactions in the 90 days up to `asOf`.
    pub last_90_days: i64,
    /// Contacts with an interaction in the last 90 days.
    pub contacts_engaged_90_days: i64,
    /// Interactions per kind (call, email, meeting, note), in that order.
    pub by_kind: Vec<KindCount>,
    /// The ten contacts with the most interactions in the last 90 days (ties: the most
    /// recent first, then by id).
    pub most_engaged: Vec<EngagedContact>,
}

/// Interactions of a kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct KindCount {
    /// The kind.
    pub kind: String,
    /// All time (up to `asOf`).
    pub total: i64,
    /// In the last 30 days.
    pub last_30_days: i64,
    /// In the last 90 days.
    pub last_90_days: i64,
}

/// A contact and their recent interactions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EngagedContact {
    /// The contact's id.
    pub contact_id: String,
    /// Their name.
    pub name: String,
    /// Interactions in the last 90 days.
    pub interactions: i64,
    /// The latest of them.
    pub last_interaction_at: DateTime<Utc>,
}

/// Company analytics: the largest customers, and companies grouped by industry and size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompanyAnalytics {
    /// The time the figures are taken at.
    pub as_of: DateTime<Utc>,
    /// Live companies.
    pub total: i64,
    /// Of them, with at least one deal.
    pub with_deals: i64,
    /// Won revenue (sum of closed_won amounts).
    pub revenue_won: i64,
    /// The open pipeline (sum of open deals' amounts).
    pub open_pipeline: i64,
    /// The open pipeline weighted by stage probability.
    pub weighted_pipeline: i64,
    /// Deals won.
    pub won_deals: i64,
    /// Deals lost.
    pub lost_deals: i64,
    /// won / (won + lost) (NULL before any deal closed).
    pub win_rate: Option<f64>,
    /// Deals per company (NULL without companies).
    pub deals_per_company: Option<f64>,
    /// The ten companies with the most won revenue (ties by id).
    pub top_companies: Vec<CompanyFigures>,
    /// Per industry (NULL: none recorded), most revenue first.
    pub by_industry: Vec<Segment>,
    /// Per size bucket (`1-10` … `1001+`, `unknown`), most revenue first.
    pub by_size: Vec<Segment>,
}

/// One company's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompanyFigures {
    /// The company's id.
    pub company_id: String,
    /// Its name.
    pub name: String,
    /// Its industry.
    pub industry: Option<String>,
    /// Its deals.
    pub deals: i64,
    /// Deals won.
    pub won_deals: i64,
    /// Won revenue.
    pub revenue_won: i64,
    /// Amount of its open deals, in minor units.
    pub open_pipeline: i64,
}

/// The companies of an industry or size bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// The industry or size bucket (NULL: no industry recorded).
    pub name: Option<String>,
    /// How many companies fall in it.
    pub companies: i64,
    /// Their deals.
    pub deals: i64,
    /// Deals won.
    pub won_deals: i64,
    /// Deals lost.
    pub lost_deals: i64,
    /// won / (won + lost).
    pub win_rate: Option<f64>,
    /// Won revenue.
    pub revenue_won: i64,
    /// Amount of their open deals, in minor units.
    pub open_pipeline: i64,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A DataFrame's columns read out as Rust values.
struct Cols<'a>(&'a DataFrame);

impl Cols<'_> {
    fn i64(&self, name: &str) -> Result<Vec<i64>> {
        let c = self.0.column(name).map_err(from_polars)?.cast(&DataType::Int64).map_err(from_polars)?;
        Ok(c.i64().map_err(from_polars)?.iter().map(|v| v.unwrap_or(0)).collect())
    }
    fn str(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = self.0.column(name).map_err(from_polars)?.cast(&DataType::String).map_err(from_polars)?;
        Ok(c.str().map_err(from_polars)?.iter().map(|v| v.map(str::to_string)).collect())
    }
    fn time(&self, name: &str) -> Result<Vec<Option<DateTime<Utc>>>> {
        let c = self
            .0
            .column(name)
            .map_err(from_polars)?
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(from_polars)?;
        Ok(c.i64().map_err(from_polars)?.iter().map(|v| v.and_then(DateTime::from_timestamp_micros)).collect())
    }
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| super::round6_f(part as f64 / whole as f64))
}

fn count() -> Expr {
    len().cast(DataType::Int64)
}

fn flag(e: Expr) -> Expr {
    e.cast(DataType::Int64).sum()
}

/// Contact analytics as of a time (interactions after it are not counted).
pub fn contact_analytics(t: &Tables, as_of: NaiveDateTime) -> Result<ContactAnalytics> {
    let contacts = t.live("contacts")?.filter(col("created_at").lt_eq(lit(as_of))).cache();
    let customer = col("lifecycle_stage").eq(lit("customer"));

    let totals = contacts
        .clone()
        .select([count().alias("total"), flag(customer.clone()).alias("customers")])
        .collect()
        .map_err(from_polars)?;
    let totals = Cols(&totals);
    let (total, customers) = (totals.i64("total")?[0], totals.i64("customers")?[0]);

    let stages = contacts
        .clone()
        .group_by([col("lifecycle_stage")])
        .agg([count().alias("count")])
        .sort_by_exprs(
            [col("count"), col("lifecycle_stage")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&stages);
    let by_lifecycle_stage = c
        .str("lifecycle_stage")?
        .into_iter()
        .zip(c.i64("count")?)
        .map(|(stage, count)| StageCount { stage: stage.unwrap_or_default(), count })
        .collect();

    let sources = contacts
        .clone()
        .group_by([col("lead_source")])
        .agg([count().alias("count"), flag(customer).alias("customers")])
        .sort_by_exprs(
            [col("count"), col("lead_source")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]).with_nulls_last(true),
        )
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&sources);
    let by_lead_source = c
        .str("lead_source")?
        .into_iter()
        .zip(c.i64("count")?)
        .zip(c.i64("customers")?)
        .map(|((lead_source, count), customers)| SourceCount {
            lead_source,
            count,
            customers,
            conversion_rate: rate(customers, count).unwrap_or(0.0),
        })
        .collect();

    // The last 12 calendar months, the current one last.
    let this_month = as_of.date().with_day(1).unwrap_or(as_of.date());
    let months: Vec<String> = (0..12u32)
        .rev()
        .filter_map(|back| this_month.checked_sub_months(Months::new(back)))
        .map(|d| d.format("%Y-%m").to_string())
        .collect();
    let per_month = contacts
        .clone()
        .group_by([col("created_at").dt().strftime("%Y-%m").alias("month")])
        .agg([count().alias("count")])
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&per_month);
    let found: std::collections::HashMap<String, i64> =
        c.str("month")?.into_iter().zip(c.i64("count")?).filter_map(|(m, n)| m.map(|m| (m, n))).collect();
    let new_per_month =
        months.into_iter().map(|month| MonthCount { count: found.get(&month).copied().unwrap_or(0), month }).collect();

    let engagement = engagement(t, contacts, as_of)?;
    Ok(ContactAnalytics {
        as_of: utc(as_of),
        total,
        customers,
        conversion_rate: rate(customers, total),
        by_lifecycle_stage,
        by_lead_source,
        new_per_month,
        engagement,
    })
}

fn engagement(t: &Tables, contacts: LazyFrame, as_of: NaiveDateTime) -> Result<Engagement> {
    let d30 = as_of - chrono::Duration::days(30);
    let d90 = as_of - chrono::Duration::days(90);
    let people = contacts.select([
        col("id").alias("contact_id"),
        concat_str([col("first_name"), col("last_name")], " ", true).str().strip_chars(lit(NULL)).alias("name"),
    ]);
    let touches = t
        .lazy("interactions")?
        .filter(col("occurred_at").lt_eq(lit(as_of)))
        .join(people, [col("contact_id")], [col("contact_id")], JoinArgs::new(JoinType::Inner))
        .with_columns([
            col("occurred_at").gt_eq(lit(d30)).alias("in_30"),
            col("occurred_at").gt_eq(lit(d90)).alias("in_90"),
        ])
        .cache();

    let kinds = touches
        .clone()
        .group_by([col("kind")])
        .agg([count().alias("total"), flag(col("in_30")).alias("d30"), flag(col("in_90")).alias("d90")])
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&kinds);
    let rows: Vec<(Option<String>, i64, i64, i64)> = c
        .str("kind")?
        .into_iter()
        .zip(c.i64("total")?)
        .zip(c.i64("d30")?.into_iter().zip(c.i64("d90")?))
        .map(|((k, t), (a, b))| (k, t, a, b))
        .collect();
    let known = ["call", "email", "meeting", "note"];
    let mut by_kind: Vec<KindCount> = known
        .iter()
        .map(|k| {
            let found = rows.iter().find(|r| r.0.as_deref() == Some(*k));
            KindCount {
                kind: (*k).to_string(),
                total: found.map_or(0, |r| r.1),
                last_30_days: found.map_or(0, |r| r.2),
                last_90_days: found.map_or(0, |r| r.3),
            }
        })
        .collect();
    // Kinds outside the four (data from elsewhere) after them, by name.
    let mut others: Vec<&(Option<String>, i64, i64, i64)> =
        rows.iter().filter(|r| !r.0.as_deref().is_some_and(|k| known.contains(&k))).collect();
    others.sort_by(|a, b| a.0.cmp(&b.0));
    by_kind.extend(others.into_iter().map(|r| KindCount {
        kind: r.0.clone().unwrap_or_default(),
        total: r.1,
        last_30_days: r.2,
        last_90_days: r.3,
    }));

    let recent = touches.filter(col("in_90"));
    let per_contact = recent
        .group_by([col("contact_id")])
        .agg([
            count().alias("interactions"),
            col("occurred_at").max().alias("last_interaction_at"),
            col("name").first().alias("name"),
        ])
        .cache();
    let engaged = per_contact.clone().select([count().alias("n")]).collect().map_err(from_polars)?;
    let top = per_contact
        .sort_by_exprs(
            [col("interactions"), col("last_interaction_at"), col("contact_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, true, false]),
        )
        .limit(TOP)
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&top);
    let most_engaged = c
        .str("contact_id")?
        .into_iter()
        .zip(c.str("name")?)
        .zip(c.i64("interactions")?.into_iter().zip(c.time("last_interaction_at")?))
        .map(|((id, name), (interactions, last))| EngagedContact {
            contact_id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            interactions,
            last_interaction_at: last.unwrap_or_default(),
        })
        .collect();
    Ok(Engagement {
        last_30_days: by_kind.iter().map(|k| k.last_30_days).sum(),
        last_90_days: by_kind.iter().map(|k| k.last_90_days).sum(),
        contacts_engaged_90_days: Cols(&engaged).i64("n")?[0],
        by_kind,
        most_engaged,
    })
}

/// Company analytics as of a time (deals and companies created after it are not counted).
pub fn company_analytics(t: &Tables, as_of: NaiveDateTime) -> Result<CompanyAnalytics> {
    let companies = t
        .live("companies")?
        .filter(col("created_at").lt_eq(lit(as_of)))
        .select([col("id").alias("company_id"), col("name"), col("industry"), col("size_bucket")])
        .cache();
    let amount = col("amount_cents").fill_null(lit(0i64));
    let won = col("pipeline_stage").eq(lit("closed_won"));
    let lost = col("pipeline_stage").eq(lit("closed_lost"));
    let open = col("stage_order").lt(lit(4i64));
    let deals = t
        .live("deals")?
        .filter(col("created_at").lt_eq(lit(as_of)))
        .join(
            companies.clone().select([col("company_id")]),
            [col("company_id")],
            [col("company_id")],
            JoinArgs::new(JoinType::Semi),
        )
        .join(stages(), [col("pipeline_stage")], [col("stage")], JoinArgs::new(JoinType::Left))
        .group_by([col("company_id")])
        .agg([
            count().alias("deals"),
            flag(won.clone()).alias("won_deals"),
            flag(lost).alias("lost_deals"),
            when(won).then(amount.clone()).otherwise(lit(0i64)).sum().alias("revenue_won"),
            when(open.clone()).then(amount.clone()).otherwise(lit(0i64)).sum().alias("open_pipeline"),
            when(open).then(amount * col("prob_pct")).otherwise(lit(0i64)).sum().alias("weighted_x100"),
        ]);
    let figures = ["deals", "won_deals", "lost_deals", "revenue_won", "open_pipeline", "weighted_x100"];
    let per_company = companies
        .join(deals, [col("company_id")], [col("company_id")], JoinArgs::new(JoinType::Left))
        .with_columns(figures.map(|f| col(f).fill_null(lit(0i64))))
        .cache();

    let totals = per_company
        .clone()
        .select([
            count().alias("total"),
            flag(col("deals").gt(lit(0i64))).alias("with_deals"),
            col("deals").sum(),
            col("won_deals").sum(),
            col("lost_deals").sum(),
            col("revenue_won").sum(),
            col("open_pipeline").sum(),
            col("weighted_x100").sum(),
        ])
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&totals);
    let one = |name: &str| -> Result<i64> { Ok(c.i64(name)?[0]) };
    let (total, deals, won_deals, lost_deals) = (one("total")?, one("deals")?, one("won_deals")?, one("lost_deals")?);

    let top = per_company
        .clone()
        .sort_by_exprs(
            [col("revenue_won"), col("company_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(TOP)
        .collect()
        .map_err(from_polars)?;
    let tc = Cols(&top);
    let top_companies = tc
        .str("company_id")?
        .into_iter()
        .zip(tc.str("name")?)
        .zip(tc.str("industry")?)
        .zip(tc.i64("deals")?.into_iter().zip(tc.i64("won_deals")?))
        .zip(tc.i64("revenue_won")?.into_iter().zip(tc.i64("open_pipeline")?))
        .map(|((((id, name), industry), (deals, won_deals)), (revenue_won, open_pipeline))| CompanyFigures {
            company_id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            industry,
            deals,
            won_deals,
            revenue_won,
            open_pipeline,
        })
        .collect();

    Ok(CompanyAnalytics {
        as_of: utc(as_of),
        total,
        with_deals: one("with_deals")?,
        revenue_won: one("revenue_won")?,
        open_pipeline: one("open_pipeline")?,
        weighted_pipeline: one("weighted_x100")?.div_euclid(100),
        won_deals,
        lost_deals,
        win_rate: rate(won_deals, won_deals + lost_deals),
        deals_per_company: (total > 0).then(|| super::round6_f(deals as f64 / total as f64)),
        top_companies,
        by_industry: segments(per_company.clone(), "industry")?,
        by_size: segments(per_company, "size_bucket")?,
    })
}

fn segments(per_company: LazyFrame, by: &str) -> Result<Vec<Segment>> {
    let df = per_company
        .group_by([col(by)])
        .agg([
            count().alias("companies"),
            col("deals").sum(),
            col("won_deals").sum(),
            col("lost_deals").sum(),
            col("revenue_won").sum(),
            col("open_pipeline").sum(),
        ])
        .sort_by_exprs(
            [col("revenue_won"), col(by)],
            SortMultipleOptions::default().with_order_descending_multi([true, false]).with_nulls_last(true),
        )
        .collect()
        .map_err(from_polars)?;
    let c = Cols(&df);
    let names = c.str(by)?;
    let (companies, deals, won, lost, revenue, open) = (
        c.i64("companies")?,
        c.i64("deals")?,
        c.i64("won_deals")?,
        c.i64("lost_deals")?,
        c.i64("revenue_won")?,
        c.i64("open_pipeline")?,
    );
    Ok((0..df.height())
        .map(|i| Segment {
            name: names[i].clone(),
            companies: companies[i],
            deals: deals[i],
            won_deals: won[i],
            lost_deals: lost[i],
            win_rate: rate(won[i], won[i] + lost[i]),
            revenue_won: revenue[i],
            open_pipeline: open[i],
        })
        .collect())
}
