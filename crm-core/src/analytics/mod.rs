//! The analytics engine (cargo feature `analytics`, on polars' lazy API): the standard
//! reports of `docs/REPORTS.md` over the six analytics tables — companies,
//! contacts, deals, deal_stage_history, interactions, tasks — given as DataFrames.
//!
//! All eight standard reports are here, custom reports ([`custom`]) and the store
//! snapshot (`Crm::analytics_tables`).

use std::collections::{BTreeMap, BTreeSet};

/// The polars this engine is built with (its DataFrames are the engine's input and output).
pub use polars;

use chrono::{Months, NaiveDate, NaiveDateTime};
use polars::prelude::*;

use crate::error::{Error, Result};

/// The deal stages in order, with their probability in percent ([`DealStage`]'s).
///
/// [`DealStage`]: crate::model::deal::DealStage
pub const STAGES: [(&str, i64); 6] = {
    use crate::model::deal::DealStage as S;
    const fn pair(s: S) -> (&'static str, i64) {
        (s.as_str(), s.probability())
    }
    [
        pair(S::Prospecting),
        pair(S::Qualification),
        pair(S::Proposal),
        pair(S::Negotiation),
        pair(S::ClosedWon),
        pair(S::ClosedLost),
    ]
};

/// The standard reports, by name.
pub const REPORTS: &[&str] = StandardReport::CHOICES;

pub use crate::model::report::StandardReport;

/// The kinds behind the analytics tables (each declares its columns:
/// [`crate::schema::EntityKind::analytics`]), parents before the history that follows them.
pub const KINDS: [crate::schema::EntityKind; 6] = {
    use crate::schema::EntityKind as K;
    [K::Company, K::Contact, K::Deal, K::DealStageChange, K::Interaction, K::Task]
};

/// The analytics tables' names (their kinds' table names).
pub const TABLES: [&str; 6] =
    [KINDS[0].table(), KINDS[1].table(), KINDS[2].table(), KINDS[3].table(), KINDS[4].table(), KINDS[5].table()];

/// Reads the analytics tables found in `directory` as `<table>.parquet` (the layout the
/// benchmark generator writes). Tables without a file are left out; a report that needs
/// one says so. No file at all is an error.
pub fn read_parquet(directory: &std::path::Path) -> Result<Tables> {
    if !directory.is_dir() {
        return Err(Error::invalid("directory", "not_found", format!("{} is not a directory", directory.display())));
    }
    let mut tables = BTreeMap::new();
    for name in TABLES {
        let path = directory.join(format!("{name}.parquet"));
        if !path.exists() {
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| Error::internal(format!("opening {}", path.display()), e))?;
        let df = ParquetReader::new(file).finish().map_err(|e| {
            Error::invalid(
                "directory",
                "invalid_format",
                format!("{} is not a readable Parquet file: {e}", path.display()),
            )
        })?;
        tables.insert(name.to_string(), df);
    }
    if tables.is_empty() {
        return Err(Error::invalid(
            "directory",
            "not_found",
            format!("{} holds none of {}", directory.display(), TABLES.map(|t| format!("{t}.parquet")).join(", ")),
        ));
    }
    Ok(Tables(tables))
}

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

    /// The tables cut to what the given users own: deals, contacts, interactions and tasks
    /// by `owner_id`, a deal's stage history with its deal. Companies stay whole: a
    /// company is where deals land, whoever owns the company. (A dashboard's owner or
    /// team filter; the caller's own scope was applied when the tables were read.)
    pub fn owned_by(&self, owners: &BTreeSet<String>) -> Result<Tables> {
        let mut out = self.0.clone();
        for table in ["deals", "contacts", "interactions", "tasks"] {
            if let Some(df) = self.0.get(table) {
                out.insert(table.to_string(), keep_rows(df, "owner_id", |v| owners.contains(v))?);
            }
        }
        history_of_kept_deals(&mut out)?;
        Ok(Tables(out))
    }

    /// The tables with `table` cut to the rows whose time `column` falls in the period
    /// (NULLs never do); a deal's stage history goes with its deal. The other tables
    /// stay whole. (A dashboard's date range.)
    pub fn within(&self, table: &str, column: &str, period: &Period) -> Result<Tables> {
        let mut out = self.0.clone();
        if let Some(df) = self.0.get(table) {
            out.insert(table.to_string(), keep_in_period(df, column, period)?);
            if table == "deals" {
                history_of_kept_deals(&mut out)?;
            }
        }
        Ok(Tables(out))
    }
}

/// The time column a table is cut by for a period: when its rows came about (a task,
/// when it is due).
pub fn period_column(table: &str) -> Option<&'static str> {
    match table {
        "companies" | "contacts" | "deals" => Some("created_at"),
        "interactions" => Some("occurred_at"),
        "deal_stage_history" => Some("changed_at"),
        "tasks" => Some("due_at"),
        _ => None,
    }
}

/// What a dashboard's filters keep of the caller's snapshot before a report runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cut {
    /// Only records these users own (their ids); none: everything the caller may read.
    pub owners: Option<Vec<crate::UserId>>,
    /// Only what happened in this period: each standard report by its own time (see
    /// `docs/API.md`), a custom report by its source table's [`period_column`].
    pub period: Option<Period>,
}

impl Cut {
    /// Only these users' records.
    pub fn owners(owners: Option<Vec<crate::UserId>>) -> Self {
        Cut { owners, period: None }
    }

    /// The tables cut to the owners' records (deals, contacts, interactions and tasks);
    /// all of them, unchanged, where no owners are named.
    pub fn owned<'a>(&self, all: &'a Tables) -> Result<std::borrow::Cow<'a, Tables>> {
        use std::borrow::Cow;
        Ok(match &self.owners {
            Some(o) => Cow::Owned(all.owned_by(&o.iter().map(|u| u.to_string()).collect())?),
            None => Cow::Borrowed(all),
        })
    }
}

/// A span of time: from `start` (inclusive) to `end` (exclusive), either open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// The first instant in it; none: since ever.
    pub start: Option<NaiveDateTime>,
    /// The first instant after it; none: up to now and on.
    pub end: Option<NaiveDateTime>,
}

impl Period {
    /// The days `from` to `to`, both included, from midnight to midnight UTC. `to`
    /// before `from` is a validation error on `to`.
    pub fn days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Period> {
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(Error::invalid(
                    "to",
                    "out_of_range",
                    format!("the range ends ({t}) before it starts ({f})"),
                ));
            }
        }
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
        Ok(Period { start: from.and_then(midnight), end: to.and_then(|d| d.succ_opt()).and_then(midnight) })
    }

    /// R2's and R7's window, where their parameters are not given: R2 forecasts from the
    /// period's start to its end, R7 counts the interactions in it. Others' parameters
    /// are left as they are.
    pub fn window(&self, report: StandardReport, params: Params) -> Params {
        match report {
            StandardReport::ForecastByMonth => Params {
                as_of: params.as_of.or(self.start),
                forecast_end: params.forecast_end.or(self.end.map(|e| e.date())),
                ..params
            },
            StandardReport::ContactEngagement => Params {
                as_of: params.as_of.or(self.end),
                engagement_start: params.engagement_start.or(self.start),
                ..params
            },
            _ => params,
        }
    }

    /// The tables a standard report reads in the period (`None`: all of them): R1 and
    /// R4 the deals created in it (R4 with their stage history), R3 and R6 the deals
    /// closed in it, R5 the contacts created in it.
    pub fn cut_for(&self, report: StandardReport, t: &Tables) -> Result<Option<Tables>> {
        use StandardReport as R;
        let by = match report {
            R::PipelineByStage | R::StageFunnel => ("deals", "created_at"),
            R::WinRateByOwner | R::TopCompaniesByRevenue => ("deals", "closed_at"),
            R::LeadConversion => ("contacts", "created_at"),
            R::ForecastByMonth | R::ContactEngagement | R::CustomerAcquisition => return Ok(None),
        };
        t.within(by.0, by.1, self).map(Some)
    }

    /// What of a standard report's answer lies in the period: R8's months that overlap
    /// it (a customer is new in the month of its first win ever, and the running total
    /// counts those before); the others' answers whole.
    pub fn answer_of(&self, report: StandardReport, df: DataFrame) -> Result<DataFrame> {
        if report != StandardReport::CustomerAcquisition {
            return Ok(df);
        }
        let first = self.start.map(|s| s.format("%Y-%m").to_string());
        let last = self.end.map(|e| (e - chrono::Duration::microseconds(1)).format("%Y-%m").to_string());
        let months = df.column("month").map_err(from_polars)?.cast(&DataType::String).map_err(from_polars)?;
        let mask: BooleanChunked =
            months
                .str()
                .map_err(from_polars)?
                .iter()
                .map(|m| {
                    Some(m.is_some_and(|m| {
                        first.as_deref().is_none_or(|f| m >= f) && last.as_deref().is_none_or(|l| m <= l)
                    }))
                })
                .collect();
        df.filter(&mask).map_err(from_polars)
    }
}

/// The stage history of the deals `tables` still holds.
fn history_of_kept_deals(tables: &mut BTreeMap<String, DataFrame>) -> Result<()> {
    if let (Some(deals), Some(history)) = (tables.get("deals"), tables.get("deal_stage_history")) {
        let ids = deals.column("id").map_err(from_polars)?.cast(&DataType::String).map_err(from_polars)?;
        let ids: BTreeSet<String> = ids.str().map_err(from_polars)?.iter().flatten().map(str::to_string).collect();
        let kept = keep_rows(history, "deal_id", |v| ids.contains(v))?;
        tables.insert("deal_stage_history".to_string(), kept);
    }
    Ok(())
}

/// The rows of `df` whose time `column` falls in the period.
fn keep_in_period(df: &DataFrame, column: &str, period: &Period) -> Result<DataFrame> {
    let micros = df
        .column(column)
        .map_err(from_polars)?
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .map_err(from_polars)?
        .cast(&DataType::Int64)
        .map_err(from_polars)?;
    let start = period.start.map(|t| t.and_utc().timestamp_micros());
    let end = period.end.map(|t| t.and_utc().timestamp_micros());
    let mask: BooleanChunked = micros
        .i64()
        .map_err(from_polars)?
        .iter()
        .map(|v| Some(v.is_some_and(|v| start.is_none_or(|s| v >= s) && end.is_none_or(|e| v < e))))
        .collect();
    df.filter(&mask).map_err(from_polars)
}

/// The rows of `df` whose text `column` passes `keep` (NULLs never do).
fn keep_rows(df: &DataFrame, column: &str, keep: impl Fn(&str) -> bool) -> Result<DataFrame> {
    // Ids are text in the snapshot; a table read from elsewhere may hold them otherwise.
    let values = df.column(column).map_err(from_polars)?.cast(&DataType::String).map_err(from_polars)?;
    let mask: BooleanChunked = values.str().map_err(from_polars)?.iter().map(|v| Some(v.is_some_and(&keep))).collect();
    df.filter(&mask).map_err(from_polars)
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

/// Polars' errors: those about the input's shape (a missing column, a wrong type) are
/// the caller's to fix and become validation errors; the rest are internal.
pub(crate) fn from_polars(e: PolarsError) -> Error {
    fn about_input(e: &PolarsError) -> bool {
        match e {
            PolarsError::ColumnNotFound(_)
            | PolarsError::SchemaMismatch(_)
            | PolarsError::SchemaFieldNotFound(_)
            | PolarsError::InvalidOperation(_)
            | PolarsError::ShapeMismatch(_) => true,
            PolarsError::Context { error, .. } | PolarsError::ExprContext { error, .. } => about_input(error),
            _ => false,
        }
    }
    if about_input(&e) {
        Error::invalid("tables", "invalid_value", format!("the tables do not fit the report: {e}"))
    } else {
        Error::internal("analytics query", e)
    }
}

impl From<crate::model::report::StandardParams> for Params {
    fn from(p: crate::model::report::StandardParams) -> Self {
        Params {
            as_of: p.as_of.map(|t| t.naive_utc()),
            forecast_end: p.forecast_end,
            engagement_start: p.engagement_start.map(|t| t.naive_utc()),
        }
    }
}

impl Params {
    /// These parameters with `other`'s given ones taking precedence.
    pub fn overridden_by(&self, other: &Params) -> Params {
        Params {
            as_of: other.as_of.or(self.as_of),
            forecast_end: other.forecast_end.or(self.forecast_end),
            engagement_start: other.engagement_start.or(self.engagement_start),
        }
    }

    /// Fills in the defaults from the data.
    pub fn resolve(&self, t: &Tables) -> Result<Resolved> {
        let as_of = match self.as_of {
            Some(a) => a,
            None => {
                // Microseconds since the epoch (the tables' timestamps are in µs): one pass
                // over the column, or the general plan for a column that is not a time.
                let value = match t.0.get("deals").map(fast::latest_live).transpose()?.flatten() {
                    Some(latest) => latest,
                    None => {
                        let max = t
                            .live("deals")?
                            .select([col("created_at").max().cast(DataType::Int64)])
                            .collect()
                            .map_err(from_polars)?;
                        max.column("created_at").map_err(from_polars)?.get(0).map_err(from_polars)?.extract::<i64>()
                    }
                };
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

impl Resolved {
    /// The parameters `report` takes, with their values as its answers show them (API
    /// names; times RFC 3339 UTC, dates `YYYY-MM-DD`). Reports without parameters show none.
    pub fn shown(&self, report: &str) -> Vec<(String, String)> {
        let ts = |t: NaiveDateTime| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let Ok(report) = report.parse::<StandardReport>() else {
            return Vec::new();
        };
        report
            .parameters()
            .iter()
            .map(|p| {
                let value = match *p {
                    "asOf" => ts(self.as_of),
                    "forecastEnd" => self.forecast_end.to_string(),
                    _ => ts(self.engagement_start),
                };
                (p.to_string(), value)
            })
            .collect()
    }
}

/// Runs a standard report by name.
pub fn report(name: &str, t: &Tables, p: &Params) -> Result<DataFrame> {
    use StandardReport as R;
    let report = StandardReport::named(name, "name")?;
    // Defaults read the data: resolved only for the reports that take parameters.
    let resolved = || p.resolve(t);
    // Each report's purpose-built path first; its general plan when the tables hold what
    // that path does not handle.
    let fast = match report {
        R::PipelineByStage => fast::r1_fast(t)?,
        R::ForecastByMonth => fast::r2_fast(t, &resolved()?)?,
        R::WinRateByOwner => fast::r3_fast(t)?,
        R::StageFunnel => fast::r4_fast(t)?,
        R::LeadConversion => fast::r5_fast(t)?,
        R::TopCompaniesByRevenue => fast::r6_fast(t)?,
        R::ContactEngagement => fast::r7_fast(t, &resolved()?)?,
        R::CustomerAcquisition => fast::r8_fast(t)?,
    };
    if let Some(df) = fast {
        return Ok(df);
    }
    let plan = match report {
        R::PipelineByStage => r1(t)?,
        R::ForecastByMonth => r2(t, &resolved()?)?,
        R::WinRateByOwner => r3(t)?,
        R::StageFunnel => r4(t)?,
        R::LeadConversion => r5(t)?,
        R::TopCompaniesByRevenue => r6(t)?,
        R::ContactEngagement => r7(t, &resolved()?)?,
        R::CustomerAcquisition => r8(t)?,
    };
    plan.collect().map_err(from_polars)
}

/// The stages with their order and probability.
fn stages() -> LazyFrame {
    let names: Vec<&str> = STAGES.iter().map(|s| s.0).collect();
    let order: Vec<i64> = (0..STAGES.len() as i64).collect();
    let prob: Vec<i64> = STAGES.iter().map(|s| s.1).collect();
    // The stage a deal moves on to; closed stages have none.
    let next: Vec<Option<&str>> = (0..STAGES.len()).map(|i| (i < 4).then(|| STAGES[i + 1].0)).collect();
    DataFrame::new_infer_height(vec![
        Column::new("stage".into(), names),
        Column::new("stage_order".into(), order),
        Column::new("prob_pct".into(), prob),
        Column::new("next_stage".into(), next),
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

/// Days (fractional) from `earlier` to `later`.
fn days(later: Expr, earlier: Expr) -> Expr {
    (later - earlier).dt().total_seconds(false).cast(DataType::Float64) / lit(86_400.0)
}

/// A rate or day value rounded as REPORTS.md rounds them (6 decimals, half away from 0).
fn round6_f(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
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
    let days = days(col("closed_at"), col("created_at"));
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

/// R4: the stage funnel from the stage history of live deals.
fn r4(t: &Tables) -> Result<LazyFrame> {
    let live = t.live("deals")?.select([col("id").alias("deal_id")]);
    let next_entry = col("changed_at").shift(lit(-1)).over([col("deal_id")]).map_err(from_polars)?;
    let history = t
        .lazy("deal_stage_history")?
        .select([col("deal_id"), col("to_stage"), col("changed_at")])
        .join(live, [col("deal_id")], [col("deal_id")], JoinArgs::new(JoinType::Inner))
        .sort(["deal_id", "changed_at"], Default::default())
        // Time in the stage: until the deal's next entry, if there is one.
        .with_columns([days(next_entry, col("changed_at")).alias("days")])
        .cache();
    // Each deal's first and last entry into each stage.
    let entries = history
        .clone()
        .group_by([col("deal_id"), col("to_stage")])
        .agg([col("changed_at").min().alias("first_in"), col("changed_at").max().alias("last_in")])
        .cache();
    let converted = entries
        .clone()
        .join(
            stages().select([col("stage").alias("to_stage"), col("next_stage")]),
            [col("to_stage")],
            [col("to_stage")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            entries.clone().select([
                col("deal_id"),
                col("to_stage").alias("next_stage"),
                col("last_in").alias("next_in"),
            ]),
            [col("deal_id"), col("next_stage")],
            [col("deal_id"), col("next_stage")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("next_in").gt(col("first_in")))
        .group_by([col("to_stage")])
        .agg([count().alias("converted")]);
    let reached = entries.group_by([col("to_stage")]).agg([count().alias("deals_reached")]);
    let medians = history.group_by([col("to_stage")]).agg([col("days").median().alias("median_days_in_stage")]);
    let open = col("stage_order").lt(lit(4i64));
    Ok(stages()
        .join(reached, [col("stage")], [col("to_stage")], JoinArgs::new(JoinType::Inner))
        .join(converted, [col("stage")], [col("to_stage")], JoinArgs::new(JoinType::Left))
        .join(medians, [col("stage")], [col("to_stage")], JoinArgs::new(JoinType::Left))
        .with_columns([when(open.clone())
            .then(col("converted").fill_null(lit(0i64)))
            .otherwise(lit(NULL).cast(DataType::Int64))
            .alias("converted_to_next")])
        .with_columns([
            when(open)
                .then(round6(
                    col("converted_to_next").cast(DataType::Float64) / col("deals_reached").cast(DataType::Float64),
                ))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("conversion_to_next"),
            round6(col("median_days_in_stage").cast(DataType::Float64)),
        ])
        .sort(["stage_order"], Default::default())
        .select([
            col("stage"),
            col("deals_reached"),
            col("converted_to_next"),
            col("conversion_to_next"),
            col("median_days_in_stage"),
        ]))
}

/// R5: live contacts by month created and lead source, with how many became customers.
fn r5(t: &Tables) -> Result<LazyFrame> {
    let customer = col("lifecycle_stage").eq(lit("customer"));
    let to_convert = when(customer.clone().and(col("converted_at").is_not_null()))
        .then(days(col("converted_at"), col("created_at")))
        .otherwise(lit(NULL).cast(DataType::Float64));
    Ok(t.live("contacts")?
        .group_by([month(col("created_at")).alias("month"), col("lead_source")])
        .agg([
            count().alias("created"),
            customer.cast(DataType::Int64).sum().alias("converted"),
            to_convert.median().alias("median_days_to_convert"),
        ])
        .with_columns([
            round6(col("converted").cast(DataType::Float64) / col("created").cast(DataType::Float64))
                .alias("conversion_rate"),
            round6(col("median_days_to_convert")),
        ])
        .sort_by_exprs(
            [col("month"), col("lead_source")],
            SortMultipleOptions::default().with_nulls_last(true).with_maintain_order(false),
        )
        .select([
            col("month"),
            col("lead_source"),
            col("created"),
            col("converted"),
            col("conversion_rate"),
            col("median_days_to_convert"),
        ]))
}

/// R7: the most engaged live contacts in the engagement window.
fn r7(t: &Tables, p: &Resolved) -> Result<LazyFrame> {
    let live = t.live("contacts")?.select([col("id").alias("contact_id")]);
    let kind = |k: &str| col("kind").eq(lit(k.to_string())).cast(DataType::Int64).sum();
    Ok(t.lazy("interactions")?
        .filter(col("occurred_at").gt_eq(lit(p.engagement_start)).and(col("occurred_at").lt(lit(p.as_of))))
        .join(live, [col("contact_id")], [col("contact_id")], JoinArgs::new(JoinType::Inner))
        .group_by([col("contact_id")])
        .agg([
            count().alias("total"),
            kind("call").alias("calls"),
            kind("email").alias("emails"),
            kind("meeting").alias("meetings"),
            kind("note").alias("notes"),
            col("occurred_at").max().alias("last_interaction_at"),
        ])
        .sort_by_exprs(
            [col("total"), col("contact_id")],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(1000))
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

pub mod chart;
pub mod custom;
pub mod export;
mod fast;
pub mod overview;
mod pdf;
mod refresh;
pub(crate) mod snapshot;

pub use custom::{custom, ReportSpec};
pub use export::{export, export_to, About, Format};
pub use overview::{company_analytics, contact_analytics, CompanyAnalytics, ContactAnalytics};
pub use snapshot::{default_cache_bytes, frame_bytes, SnapshotStats};

#[cfg(test)]
mod tests;
