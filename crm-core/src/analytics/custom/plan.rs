//! Running a [`Compiled`] report: the polars lazy query over the analytics tables.

use polars::prelude::*;

use super::catalog::{columns, parent_of, Scope};
use super::compile::Compiled;
use super::{AggFn, Bucket, ReportSpec};
use crate::analytics::{from_polars, Tables};
use crate::error::{Error, Result};
use crate::query::{Cmp, Direction, Filter, Predicate};
use crate::schema::{ColumnType, Value};

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
