//! The analytics engine (cargo feature `analytics`, on polars' lazy API): the standard
//! reports of `shared/analytics/REPORTS.md` over the six analytics tables — companies,
//! contacts, deals, deal_stage_history, interactions, tasks — given as DataFrames.
//!
//! Done so far: R1 `r1_pipeline_by_stage`, R2 `r2_forecast_by_month`,
//! R3 `r3_win_rate_by_owner`, R6 `r6_top_companies_by_revenue`,
//! R8 `r8_customer_acquisition`. R4, R5 and R7, the store snapshot, custom reports,
//! exports and the Python package are the rest of the analytics issue.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, NaiveDateTime};
use polars::prelude::*;

use crate::error::{Error, Result};

/// The deal stages in order, with their probability in percent.
pub const STAGES: [(&str, i64); 6] = [
    ("prospecting", 10),
    ("qualification", 20),
    ("proposal", 40),
    ("negotiation", 60),
    ("closed_won", 100),
    ("closed_lost", 0),
];

/// The standard reports, by name.
pub const REPORTS: [&str; 5] = [
    "r1_pipeline_by_stage",
    "r2_forecast_by_month",
    "r3_win_rate_by_owner",
    "r6_top_companies_by_revenue",
    "r8_customer_acquisition",
];

/// The analytics tables by name (`deals`, `companies`, …). Extra columns are ignored.
#[derive(Debug, Clone, Default)]
pub struct Tables(pub BTreeMap<String, DataFrame>);

impl Tables {
    /// A table as a lazy frame, its timestamp columns in microseconds.
    fn lazy(&self, name: &str) -> Result<LazyFrame> {
        let df = self.0.get(name).ok_or_else(|| {
            Error::invalid("tables", "required", format!("the {name} table is needed for this report"))
        })?;
        let ts: Vec<Expr> = df
            .schema()
            .iter()
            .filter(|(_, dt)| matches!(dt, DataType::Datetime(_, _)))
            .map(|(name, _)| col(name.clone()).cast(DataType::Datetime(TimeUnit::Microseconds, None)))
            .collect();
        Ok(df.clone().lazy().with_columns(ts))
    }

    /// A table's live rows (`deleted_at` NULL).
    fn live(&self, name: &str) -> Result<LazyFrame> {
        Ok(self.lazy(name)?.filter(col("deleted_at").is_null()))
    }
}

/// Report parameters; `None` takes REPORTS.md's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Params {
    /// Default: the latest `created_at` of a live deal.
    pub as_of: Option<NaiveDateTime>,
    /// Default: `as_of`'s date + 12 calendar months (day clamped).
    pub forecast_end: Option<NaiveDate>,
    /// Default: `as_of` − 90 days.
    pub engagement_start: Option<NaiveDateTime>,
}

/// Parameters with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    /// The reference time.
    pub as_of: NaiveDateTime,
    /// The end (exclusive) of the forecast.
    pub forecast_end: NaiveDate,
    /// The start of the engagement window.
    pub engagement_start: NaiveDateTime,
}

fn polars(e: PolarsError) -> Error {
    Error::internal("analytics query", e)
}

impl Params {
    /// Fills in the defaults from the data.
    pub fn resolve(&self, t: &Tables) -> Result<Resolved> {
        let as_of = match self.as_of {
            Some(a) => a,
            None => {
                // Microseconds since the epoch (the tables' timestamps are in µs).
                let max = t
                    .live("deals")?
                    .select([col("created_at").max().cast(DataType::Int64)])
                    .collect()
                    .map_err(polars)?;
                let value = max.column("created_at").map_err(polars)?.get(0).map_err(polars)?.extract::<i64>();
                match value {
                    Some(us) => chrono::DateTime::from_timestamp_micros(us)
                        .map(|d| d.naive_utc())
                        .ok_or_else(|| Error::internal_msg("as_of out of range"))?,
                    None => return Err(Error::invalid("as_of", "required", "no live deals to take as_of from")),
                }
            }
        };
        let forecast_end = match self.forecast_end {
            Some(f) => f,
            None => as_of
                .date()
                .checked_add_months(Months::new(12))
                .ok_or_else(|| Error::invalid("forecast_end", "out_of_range", "as_of + 12 months is out of range"))?,
        };
        let engagement_start = self.engagement_start.unwrap_or(as_of - chrono::Duration::days(90));
        Ok(Resolved { as_of, forecast_end, engagement_start })
    }
}

/// Runs a standard report by name.
pub fn report(name: &str, t: &Tables, p: &Params) -> Result<DataFrame> {
    let plan = match name {
        "r1_pipeline_by_stage" => r1(t)?,
        "r2_forecast_by_month" => r2(t, &p.resolve(t)?)?,
        "r3_win_rate_by_owner" => r3(t)?,
        "r6_top_companies_by_revenue" => r6(t)?,
        "r8_customer_acquisition" => r8(t)?,
        other => {
            return Err(Error::invalid(
                "name",
                "invalid_value",
                format!("'{other}' is not a standard report; they are {}", REPORTS.join(", ")),
            ))
        }
    };
    plan.collect().map_err(polars)
}

/// The stages with their order and probability.
fn stages() -> LazyFrame {
    let names: Vec<&str> = STAGES.iter().map(|s| s.0).collect();
    let order: Vec<i64> = (0..STAGES.len() as i64).collect();
    let prob: Vec<i64> = STAGES.iter().map(|s| s.1).collect();
    DataFrame::new_infer_height(vec![
        Column::new("stage".into(), names),
        Column::new("stage_order".into(), order),
        Column::new("prob_pct".into(), prob),
    ])
    .map(|df| df.lazy())
    .unwrap_or_default()
}

fn open_deals(t: &Tables) -> Result<LazyFrame> {
    Ok(t.live("deals")?
        .join(stages(), [col("pipeline_stage")], [col("stage")], JoinArgs::new(JoinType::Inner))
        .filter(col("stage_order").lt(lit(4i64))))
}

fn count() -> Expr {
    len().cast(DataType::Int64)
}

fn amount_sum() -> Expr {
    col("amount_cents").fill_null(lit(0i64)).sum()
}

fn weighted() -> Expr {
    (col("amount_cents").fill_null(lit(0i64)) * col("prob_pct")).sum().floor_div(lit(100i64))
}

fn round6(e: Expr) -> Expr {
    e.round(6, RoundMode::HalfAwayFromZero)
}

/// `YYYY-MM` of a date or timestamp column.
fn month(e: Expr) -> Expr {
    e.dt().strftime("%Y-%m")
}

/// R1: open deals per stage.
fn r1(t: &Tables) -> Result<LazyFrame> {
    Ok(open_deals(t)?
        .group_by([col("pipeline_stage").alias("stage"), col("stage_order")])
        .agg([
            count().alias("deal_count"),
            amount_sum().alias("total_amount"),
            col("amount_cents").count().cast(DataType::Int64).alias("n_amount"),
            weighted().alias("weighted_amount"),
        ])
        .with_columns([col("total_amount").floor_div(col("n_amount")).alias("avg_amount")])
        .sort(["stage_order"], Default::default())
        .select([col("stage"), col("deal_count"), col("total_amount"), col("avg_amount"), col("weighted_amount")]))
}

/// R2: open deals expected to close in the forecast window, by month.
fn r2(t: &Tables, p: &Resolved) -> Result<LazyFrame> {
    let date = col("expected_close_date").cast(DataType::Date);
    Ok(open_deals(t)?
        .filter(date.clone().gt_eq(lit(p.as_of.date())).and(date.clone().lt(lit(p.forecast_end))))
        .group_by([month(date).alias("month")])
        .agg([count().alias("deal_count"), amount_sum().alias("total_amount"), weighted().alias("weighted_amount")])
        .sort(["month"], Default::default()))
}

/// R3: closed deals by owner.
fn r3(t: &Tables) -> Result<LazyFrame> {
    let won = col("pipeline_stage").eq(lit("closed_won"));
    let days = (col("closed_at") - col("created_at")).dt().total_seconds(false).cast(DataType::Float64) / lit(86_400.0);
    Ok(t.live("deals")?
        .filter(won.clone().or(col("pipeline_stage").eq(lit("closed_lost"))))
        .group_by([col("owner_id")])
        .agg([
            won.clone().cast(DataType::Int64).sum().alias("won"),
            won.clone().not().cast(DataType::Int64).sum().alias("lost"),
            when(won).then(col("amount_cents").fill_null(lit(0i64))).otherwise(lit(0i64)).sum().alias("won_amount"),
            days.mean().alias("avg_days_to_close"),
        ])
        .with_columns([
            round6(col("won").cast(DataType::Float64) / (col("won") + col("lost")).cast(DataType::Float64))
                .alias("win_rate"),
            round6(col("avg_days_to_close")),
        ])
        .sort_by_exprs(
            [col("won_amount"), col("owner_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .select([
            col("owner_id"),
            col("won"),
            col("lost"),
            col("win_rate"),
            col("won_amount"),
            col("avg_days_to_close"),
        ]))
}

/// Live closed_won deals of live companies.
fn won_with_companies(t: &Tables) -> Result<LazyFrame> {
    let companies = t.live("companies")?.select([col("id").alias("company_id"), col("name"), col("industry")]);
    Ok(t.live("deals")?
        .filter(col("pipeline_stage").eq(lit("closed_won")))
        .select([col("company_id"), col("amount_cents"), col("closed_at")])
        .join(companies, [col("company_id")], [col("company_id")], JoinArgs::new(JoinType::Inner)))
}

/// R6: the top 100 companies by won revenue.
fn r6(t: &Tables) -> Result<LazyFrame> {
    Ok(won_with_companies(t)?
        .group_by([col("company_id"), col("name"), col("industry")])
        .agg([count().alias("won_deals"), amount_sum().alias("revenue")])
        .with_columns([round6(col("revenue").cast(DataType::Float64) / col("revenue").sum().cast(DataType::Float64))
            .alias("revenue_share")])
        .sort_by_exprs(
            [col("revenue"), col("company_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(100)
        .select([
            col("company_id"),
            col("name"),
            col("industry"),
            col("won_deals"),
            col("revenue"),
            col("revenue_share"),
        ]))
}

/// R8: companies by the month of their first won deal, with the running total.
fn r8(t: &Tables) -> Result<LazyFrame> {
    Ok(won_with_companies(t)?
        .filter(col("closed_at").is_not_null())
        .group_by([col("company_id")])
        .agg([col("closed_at").min().alias("first_won")])
        .group_by([month(col("first_won")).alias("month")])
        .agg([count().alias("new_customers")])
        .sort(["month"], Default::default())
        .with_columns([col("new_customers").cum_sum(false).alias("cumulative_customers")]))
}

#[cfg(test)]
mod tests;
