//! Custom reports: a [`ReportSpec`] (JSON) — a source table, optionally joined with the
//! tables it refers to, a filter in the list queries' grammar, group-by fields with time
//! buckets, aggregates, sort and limit — validated with field-level errors and compiled to
//! a polars lazy query over the analytics tables.
//!
//! Rows of deleted records do not exist here either: the source and every joined table are
//! read live (`deleted_at` NULL), the stage history of a deleted deal and the interactions
//! of a deleted contact are left out, and a row whose joined record was deleted is left out
//! (a row whose reference is empty stays, with the joined columns NULL).

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{from_polars, Tables};
use crate::error::{Error, Errors, Result};
use crate::query::{parse_filter_in, Cmp, Direction, FieldSet, Filter, Predicate};
use crate::schema::{Column, ColumnType, Value};

/// The most rows a custom report returns.
pub const MAX_LIMIT: u32 = 1_000_000;
/// The most group-by fields, aggregates or listed fields.
const MAX_TERMS: usize = 20;

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
    fn parts(&self) -> (&str, Option<Bucket>, Option<&str>) {
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
    fn name(self) -> &'static str {
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

/// The columns of an analytics table, as its kind declares them.
fn columns(table: &str) -> Option<impl Iterator<Item = &'static Column> + Clone> {
    let kind = super::KINDS.iter().find(|k| k.table() == table)?;
    Some(kind.analytics().iter().map(|e| &e.column))
}

/// The joins a source allows: (table, the source's reference column).
fn joins_of(source: &str) -> &'static [(&'static str, &'static str)] {
    match source {
        "deals" => &[("companies", "company_id"), ("contacts", "contact_id")],
        "contacts" => &[("companies", "company_id")],
        "interactions" => &[("contacts", "contact_id")],
        "deal_stage_history" => &[("deals", "deal_id")],
        _ => &[],
    }
}

/// The parent whose deletion removes a source's rows: (table, reference column).
fn parent_of(source: &str) -> Option<(&'static str, &'static str)> {
    match source {
        "deal_stage_history" => Some(("deals", "deal_id")),
        "interactions" => Some(("contacts", "contact_id")),
        _ => None,
    }
}

/// A source with its joins: resolves `field` and `table.field` names.
struct Scope<'a> {
    source: &'a str,
    joins: Vec<&'static str>,
}

impl Scope<'_> {
    /// The table and column a field name stands for.
    fn resolve(&self, field: &str) -> Option<(&str, &'static Column)> {
        let (table, name) = match field.split_once('.') {
            Some((t, n)) if t == self.source || self.joins.contains(&t) => (t, n),
            Some(_) => return None,
            None => (self.source, field),
        };
        let column = columns(table)?.find(|c| c.name == name && c.name != "deleted_at")?;
        let table =
            if table == self.source { self.source } else { self.joins.iter().copied().find(|j| *j == table)? };
        Some((table, column))
    }

    /// The frame column a resolved column is found under.
    fn frame_name(&self, table: &str, column: &Column) -> String {
        if table == self.source {
            column.name.to_string()
        } else {
            format!("{table}.{}", column.name)
        }
    }

    /// The frame column of a column the filter parser handed back (found by identity:
    /// each table's columns are a static array of their own).
    fn locate(&self, column: &'static Column) -> Option<String> {
        std::iter::once(self.source)
            .chain(self.joins.iter().copied())
            .find_map(|t| columns(t)?.any(|c| std::ptr::eq(c, column)).then(|| self.frame_name(t, column)))
    }

    fn field_list(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for t in std::iter::once(self.source).chain(self.joins.iter().copied()) {
            for c in columns(t).into_iter().flatten().filter(|c| c.name != "deleted_at") {
                out.push(self.frame_name(t, c));
            }
        }
        out.join(", ")
    }
}

impl FieldSet for Scope<'_> {
    fn lookup(&self, field: &str) -> Option<&'static Column> {
        self.resolve(field).map(|(_, c)| c)
    }
    fn owner(&self) -> String {
        format!("the {} report (fields: {})", self.source, self.field_list())
    }
}

/// An output column name: letters, digits, `_`, `.`; at most 64 bytes.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// A validated spec, ready to run on tables.
#[derive(Debug, Clone)]
pub struct Compiled {
    spec: ReportSpec,
    joins: Vec<(&'static str, &'static str)>,
    filter: Option<Filter>,
    groups: Vec<GroupCol>,
    aggs: Vec<AggCol>,
    /// (frame column, output name)
    fields: Vec<(String, String)>,
    sort: Vec<(String, Direction)>,
}

/// A group-by output column.
#[derive(Debug, Clone)]
struct GroupCol {
    /// The frame column it comes from, and its type.
    frame: String,
    ty: ColumnType,
    bucket: Option<Bucket>,
    /// The output name.
    out: String,
}

/// An aggregate output column.
#[derive(Debug, Clone)]
struct AggCol {
    func: AggFn,
    /// The frame column and its type (none for a row count).
    target: Option<(String, ColumnType)>,
    /// The output name.
    out: String,
}

/// Validates a spec: every problem is reported at once, each on its field
/// (`groupBy.1.bucket`, `aggregates.0.field`, `filter`, …).
pub fn compile(spec: &ReportSpec) -> Result<Compiled> {
    let mut errs = Errors::new();
    if spec.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
        errs.add("title", "too_long", "a title has at most 200 characters");
    }
    let source = match columns(&spec.source) {
        Some(_) => spec.source.as_str(),
        None => {
            return Err(Error::invalid(
                "source",
                "invalid_value",
                format!("'{}' is not a table; the tables are {}", spec.source, super::TABLES.join(", ")),
            ))
        }
    };
    let allowed = joins_of(source);
    let mut joins = Vec::new();
    for (i, j) in spec.join.iter().enumerate() {
        match allowed.iter().find(|(t, _)| t == j) {
            Some(found) if !joins.contains(found) => joins.push(*found),
            Some(_) => errs.add(format!("join.{i}"), "invalid_value", format!("'{j}' is joined twice")),
            None => errs.add(
                format!("join.{i}"),
                "invalid_value",
                if allowed.is_empty() {
                    format!("{source} joins no other table")
                } else {
                    format!(
                        "{source} can be joined with {}, not '{j}'",
                        allowed.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(" and ")
                    )
                },
            ),
        }
    }
    let scope = Scope { source, joins: joins.iter().map(|(t, _)| *t).collect() };
    let unknown = |f: &str| format!("{} has no field '{f}'", scope.owner());

    let filter = match &spec.filter {
        Some(f) if !f.trim().is_empty() => errs.take("filter", parse_filter_in(&scope, f)),
        _ => None,
    };

    let mut names: Vec<String> = Vec::new();
    let mut claim = |errs: &mut Errors, at: String, name: String| {
        if !valid_name(&name) {
            errs.add(at, "invalid_value", format!("'{name}' is not a column name (letters, digits, _ and .)"));
        } else if names.contains(&name) {
            errs.add(at, "invalid_value", format!("two output columns are named '{name}'; give one an \"as\""));
        } else {
            names.push(name);
        }
    };

    if spec.group_by.len() > MAX_TERMS || spec.aggregates.len() > MAX_TERMS || spec.fields.len() > MAX_TERMS {
        errs.add("spec", "too_long", format!("at most {MAX_TERMS} group-by fields, aggregates and fields each"));
    }
    let mut groups = Vec::new();
    for (i, g) in spec.group_by.iter().enumerate() {
        let (field, bucket, alias) = g.parts();
        let Some((table, column)) = scope.resolve(field) else {
            errs.add(format!("groupBy.{i}.field"), "unknown_field", unknown(field));
            continue;
        };
        if let Some(b) = bucket {
            if !matches!(column.ty, ColumnType::Date | ColumnType::Timestamp) {
                errs.add(
                    format!("groupBy.{i}.bucket"),
                    "invalid_value",
                    format!("'{field}' is not a date or time, so it has no {b:?} bucket"),
                );
                continue;
            }
        }
        let out = match (alias, bucket) {
            (Some(a), _) => a.to_string(),
            (None, None) => column.name.to_string(),
            (None, Some(b)) => format!("{}_{}", column.name, format!("{b:?}").to_lowercase()),
        };
        claim(&mut errs, format!("groupBy.{i}"), out.clone());
        groups.push(GroupCol { frame: scope.frame_name(table, column), ty: column.ty, bucket, out });
    }

    let mut aggs = Vec::new();
    for (i, a) in spec.aggregates.iter().enumerate() {
        let at = format!("aggregates.{i}");
        let target = match &a.field {
            None if a.func == AggFn::Count => None,
            None => {
                errs.add(format!("{at}.field"), "required", format!("{} needs a field", a.func.name()));
                continue;
            }
            Some(f) => match scope.resolve(f) {
                Some((table, column)) => Some((scope.frame_name(table, column), column.ty)),
                None => {
                    errs.add(format!("{at}.field"), "unknown_field", unknown(f));
                    continue;
                }
            },
        };
        if let Some((name, ty)) = &target {
            let numeric = *ty == ColumnType::Int;
            if matches!(a.func, AggFn::Sum | AggFn::Avg | AggFn::Median) && !numeric {
                errs.add(
                    format!("{at}.fn"),
                    "invalid_value",
                    format!("{} applies to numbers, and '{name}' is not one", a.func.name()),
                );
                continue;
            }
        }
        let out = match (&a.alias, &target) {
            (Some(alias), _) => alias.clone(),
            (None, None) => "count".to_string(),
            (None, Some((name, _))) => format!("{}_{}", a.func.name(), name.replace('.', "_")),
        };
        claim(&mut errs, at, out.clone());
        aggs.push(AggCol { func: a.func, target, out });
    }

    let mut fields = Vec::new();
    if !spec.fields.is_empty() && (!spec.aggregates.is_empty() || !spec.group_by.is_empty()) {
        errs.add("fields", "invalid_value", "list fields, or group and aggregate: not both");
    }
    for (i, f) in spec.fields.iter().enumerate() {
        match scope.resolve(f) {
            Some((table, column)) => {
                let frame = scope.frame_name(table, column);
                claim(&mut errs, format!("fields.{i}"), frame.clone());
                fields.push((frame.clone(), frame));
            }
            None => errs.add(format!("fields.{i}"), "unknown_field", unknown(f)),
        }
    }
    if spec.fields.is_empty() && spec.aggregates.is_empty() {
        errs.add("aggregates", "required", "a report needs aggregates (or, to list rows, fields)");
    }

    let mut sort = Vec::new();
    if let Some(s) = spec.sort.as_deref() {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, dir) = if let Some(rest) = part.strip_prefix('-') {
                (rest, Some(Direction::Desc))
            } else if let Some((name, d)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) {
                (
                    name,
                    match d.to_ascii_lowercase().as_str() {
                        "asc" => Some(Direction::Asc),
                        "desc" => Some(Direction::Desc),
                        _ => None,
                    },
                )
            } else {
                (part, Some(Direction::Asc))
            };
            let Some(dir) = dir else {
                errs.add("sort", "invalid_value", format!("'{part}': the direction is asc or desc"));
                continue;
            };
            if !names.iter().any(|n| n == name) {
                errs.add(
                    "sort",
                    "unknown_field",
                    format!("'{name}' is not an output column (they are {})", names.join(", ")),
                );
            } else if sort.iter().any(|(n, _)| n == name) {
                errs.add("sort", "invalid_value", format!("'{name}' is named twice"));
            } else {
                sort.push((name.to_string(), dir));
            }
        }
    }
    if let Some(l) = spec.limit {
        if l == 0 || l > MAX_LIMIT {
            errs.add("limit", "out_of_range", format!("limit is 1 to {MAX_LIMIT}"));
        }
    }
    errs.finish()?;
    Ok(Compiled { spec: spec.clone(), joins, filter, groups, aggs, fields, sort })
}

/// Validates and runs a custom report.
pub fn custom(spec: &ReportSpec, t: &Tables) -> Result<DataFrame> {
    compile(spec)?.run(t)
}

impl Compiled {
    /// The spec this was compiled from.
    pub fn spec(&self) -> &ReportSpec {
        &self.spec
    }

    /// The lazy query over the tables.
    pub fn plan(&self, t: &Tables) -> Result<LazyFrame> {
        let source = self.spec.source.as_str();
        let mut lf = if columns(source).is_some_and(|mut c| c.any(|c| c.name == "deleted_at")) {
            t.live(source)?
        } else {
            t.lazy(source)?
        };
        if let Some((parent, key)) = parent_of(source) {
            let live = t.live(parent)?.select([col("id").alias(key)]);
            lf = lf.join(live, [col(key)], [col(key)], JoinArgs::new(JoinType::Semi));
        }
        for (table, key) in &self.joins {
            let cols = columns(table).into_iter().flatten();
            let present = t.0.get(*table).map(|df| df.schema()).ok_or_else(|| {
                Error::invalid("tables", "required", format!("the {table} table is needed for this report"))
            })?;
            let select: Vec<Expr> = cols
                .filter(|c| c.name != "deleted_at" && present.contains(c.name))
                .map(|c| col(c.name).alias(format!("{table}.{}", c.name)))
                .collect();
            let joined_id = format!("{table}.id");
            lf = lf
                .join(
                    t.live(table)?.select(select),
                    [col(*key)],
                    [col(joined_id.as_str())],
                    JoinArgs::new(JoinType::Left).with_coalesce(JoinCoalesce::KeepColumns),
                )
                // A reference to a deleted (or missing) record: the row goes with it.
                .filter(col(*key).is_null().or(col(joined_id.as_str()).is_not_null()));
        }
        if let Some(f) = &self.filter {
            let scope = Scope { source, joins: self.joins.iter().map(|(t, _)| *t).collect() };
            let schema = lf.collect_schema().map_err(from_polars)?;
            lf = lf.filter(filter_expr(f, &scope, &schema)?);
        }

        let nulls = |dirs: &[Direction]| -> Vec<bool> { dirs.iter().map(|d| *d == Direction::Desc).collect() };
        if !self.fields.is_empty() {
            lf = lf.select(self.fields.iter().map(|(c, out)| col(c.as_str()).alias(out.as_str())).collect::<Vec<_>>());
            let mut keys: Vec<(String, Direction)> = self.sort.clone();
            // Without a sort, rows come in the source's id order (history: deal, then time).
            let default: &[&str] = if source == "deal_stage_history" { &["deal_id", "changed_at"] } else { &["id"] };
            for d in default {
                if self.fields.iter().any(|(_, o)| o == d) && !keys.iter().any(|(k, _)| k == d) {
                    keys.push((d.to_string(), Direction::Asc));
                }
            }
            lf = sorted(lf, &keys, nulls);
        } else {
            let aggs: Vec<Expr> =
                self.aggs.iter().map(|a| agg_expr(a.func, a.target.as_ref()).alias(a.out.as_str())).collect();
            if self.groups.is_empty() {
                lf = lf.select(aggs);
            } else {
                let keys: Vec<Expr> = self
                    .groups
                    .iter()
                    .map(|g| bucket_expr(col(g.frame.as_str()), g.ty, g.bucket).alias(g.out.as_str()))
                    .collect();
                lf = lf.group_by(keys).agg(aggs);
                let mut order = self.sort.clone();
                for g in &self.groups {
                    if !order.iter().any(|(k, _)| *k == g.out) {
                        order.push((g.out.clone(), Direction::Asc));
                    }
                }
                lf = sorted(lf, &order, nulls);
            }
        }
        if let Some(l) = self.spec.limit {
            lf = lf.limit(l);
        }
        Ok(lf)
    }

    /// Runs the report on the tables.
    pub fn run(&self, t: &Tables) -> Result<DataFrame> {
        self.plan(t)?.collect().map_err(from_polars)
    }
}

/// Sorts by output columns: NULL is the smallest value (first ascending, last descending),
/// as in list queries.
fn sorted(lf: LazyFrame, keys: &[(String, Direction)], nulls_last: impl Fn(&[Direction]) -> Vec<bool>) -> LazyFrame {
    if keys.is_empty() {
        return lf;
    }
    let dirs: Vec<Direction> = keys.iter().map(|(_, d)| *d).collect();
    let exprs: Vec<Expr> = keys.iter().map(|(k, _)| col(k.as_str())).collect();
    lf.sort_by_exprs(
        exprs,
        SortMultipleOptions::default()
            .with_order_descending_multi(dirs.iter().map(|d| *d == Direction::Desc))
            .with_nulls_last_multi(nulls_last(&dirs))
            .with_maintain_order(true),
    )
}

fn bucket_expr(e: Expr, ty: ColumnType, bucket: Option<Bucket>) -> Expr {
    let Some(b) = bucket else { return e };
    let e = if ty == ColumnType::Date { e.cast(DataType::Date) } else { e };
    match b {
        Bucket::Day => e.cast(DataType::Date),
        Bucket::Week => e.cast(DataType::Date).dt().truncate(lit("1w")),
        Bucket::Month => e.dt().strftime("%Y-%m"),
        Bucket::Quarter => concat_str(
            [e.clone().dt().year().cast(DataType::String), lit("-Q"), e.dt().quarter().cast(DataType::String)],
            "",
            false,
        ),
        Bucket::Year => e.dt().year().cast(DataType::Int64),
    }
}

fn agg_expr(f: AggFn, target: Option<&(String, ColumnType)>) -> Expr {
    let Some((name, _)) = target else {
        return len().cast(DataType::Int64);
    };
    let c = col(name.as_str());
    match f {
        AggFn::Count => c.count().cast(DataType::Int64),
        AggFn::CountDistinct => c.drop_nulls().n_unique().cast(DataType::Int64),
        AggFn::Sum => c.sum(),
        AggFn::Avg => c.cast(DataType::Float64).mean(),
        AggFn::Min => c.min(),
        AggFn::Max => c.max(),
        AggFn::Median => c.cast(DataType::Float64).median(),
    }
}

/// A filter as a polars expression. Values are cast to the frame's column types (so id
/// filters work on int64 and string ids); NULL never equals anything, and `neq` keeps
/// NULLs (as list queries do).
fn filter_expr(f: &Filter, scope: &Scope<'_>, schema: &Schema) -> Result<Expr> {
    Ok(match f {
        Filter::And(parts) => {
            let parts = parts.iter().map(|p| filter_expr(p, scope, schema)).collect::<Result<Vec<_>>>()?;
            parts.into_iter().reduce(Expr::and).unwrap_or(lit(true))
        }
        Filter::Or(parts) => {
            let parts = parts.iter().map(|p| filter_expr(p, scope, schema)).collect::<Result<Vec<_>>>()?;
            parts.into_iter().reduce(Expr::or).unwrap_or(lit(false))
        }
        Filter::Not(inner) => filter_expr(inner, scope, schema)?.not(),
        Filter::Cmp(Cmp { column, pred }) => {
            let name = scope.locate(column).ok_or_else(|| Error::internal_msg("a filter column outside its scope"))?;
            let dtype = schema.get(name.as_str()).cloned().ok_or_else(|| {
                Error::invalid("tables", "invalid_value", format!("the tables have no column '{name}'"))
            })?;
            let c = col(name.as_str());
            let v = |value: &Value| literal(value, &dtype, &name);
            let cmp = match pred {
                Predicate::Eq(x) => c.eq(v(x)?),
                Predicate::Neq(x) => c.neq_missing(v(x)?),
                Predicate::In(xs) => xs
                    .iter()
                    .map(|x| v(x).map(|l| c.clone().eq(l)))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .reduce(|a, b| a.or(b))
                    .unwrap_or(lit(false)),
                Predicate::Gt(x) => c.gt(v(x)?),
                Predicate::Gte(x) => c.gt_eq(v(x)?),
                Predicate::Lt(x) => c.lt(v(x)?),
                Predicate::Lte(x) => c.lt_eq(v(x)?),
                Predicate::StartsWith(s) => c.str().starts_with(lit(s.clone())),
                Predicate::Like(p) => c.str().contains(lit(p.to_regex(false)), true),
                Predicate::ILike(p) => c.str().contains(lit(p.to_regex(true)), true),
                Predicate::IsNull => c.is_null(),
                Predicate::IsNotNull => c.is_not_null(),
            };
            // A comparison with NULL is not a match.
            cmp.fill_null(lit(false))
        }
    })
}

/// A filter value as a literal of the frame column's type.
fn literal(v: &Value, dtype: &DataType, name: &str) -> Result<Expr> {
    let bad = |what: &str| {
        Error::invalid(
            "filter",
            "invalid_value",
            format!("'{name}' holds {dtype}, and {what} cannot be compared with it"),
        )
    };
    Ok(match (v, dtype) {
        (Value::Text(s), DataType::String) => lit(s.clone()),
        (Value::Text(s), dt) if dt.is_integer() => {
            lit(s.parse::<i64>().map_err(|_| bad(&format!("'{s}' (not a whole number)")))?).cast(dt.clone())
        }
        (Value::Int(i), dt) if dt.is_primitive_numeric() => lit(*i).cast(dt.clone()),
        (Value::Date(d), DataType::Date) => lit(*d),
        (Value::Date(d), DataType::Datetime(_, _)) => {
            lit(d.and_hms_opt(0, 0, 0).unwrap_or_default()).cast(dtype.clone())
        }
        (Value::Timestamp(ts), DataType::Datetime(_, _)) => lit(ts.naive_utc()).cast(dtype.clone()),
        (Value::Timestamp(ts), DataType::Date) => {
            lit(ts.naive_utc()).cast(DataType::Datetime(TimeUnit::Microseconds, None))
        }
        (other, _) => return Err(bad(&format!("{other:?}"))),
    })
}
