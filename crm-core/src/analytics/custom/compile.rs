//! Checking a spec, one clause at a time, into a [`Compiled`] report: every problem is
//! named on its field (`groupBy.1.bucket`, `aggregates.0.field`, `filter`, …), all at once.

use super::catalog::{columns, joins_of, valid_name, Scope};
use super::{AggFn, Bucket, ReportSpec, MAX_LIMIT, MAX_TERMS};
use crate::error::{Error, Errors, Result};
use crate::query::{parse_filter_in, Direction, Filter};
use crate::schema::ColumnType;

/// A validated spec, ready to run on tables.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub(super) spec: ReportSpec,
    pub(super) joins: Vec<(&'static str, &'static str)>,
    pub(super) filter: Option<Filter>,
    pub(super) groups: Vec<GroupCol>,
    pub(super) aggs: Vec<AggCol>,
    /// (frame column, output name)
    pub(super) fields: Vec<(String, String)>,
    pub(super) sort: Vec<(String, Direction)>,
}

/// A group-by output column.
#[derive(Debug, Clone)]
pub(super) struct GroupCol {
    /// The frame column it comes from, and its type.
    pub(super) frame: String,
    pub(super) ty: ColumnType,
    pub(super) bucket: Option<Bucket>,
    /// The output name.
    pub(super) out: String,
}

/// An aggregate output column.
#[derive(Debug, Clone)]
pub(super) struct AggCol {
    pub(super) func: AggFn,
    /// The frame column and its type (none for a row count).
    pub(super) target: Option<(String, ColumnType)>,
    /// The output name.
    pub(super) out: String,
}

/// The output columns named so far: each name once, and a column name.
#[derive(Default)]
struct Outputs(Vec<String>);

impl Outputs {
    fn claim(&mut self, errs: &mut Errors, at: String, name: String) {
        if !valid_name(&name) {
            errs.add(at, "invalid_value", format!("'{name}' is not a column name (letters, digits, _ and .)"));
        } else if self.0.contains(&name) {
            errs.add(at, "invalid_value", format!("two output columns are named '{name}'; give one an \"as\""));
        } else {
            self.0.push(name);
        }
    }
}

/// Validates a spec: every problem is reported at once, each on its field
/// (`groupBy.1.bucket`, `aggregates.0.field`, `filter`, …).
pub fn compile(spec: &ReportSpec) -> Result<Compiled> {
    let mut errs = Errors::new();
    if spec.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
        errs.add("title", "too_long", "a title has at most 200 characters");
    }
    let source = source(spec)?;
    let joins = joins(spec, source, &mut errs);
    let scope = Scope { source, joins: joins.iter().map(|(t, _)| *t).collect() };
    let filter = match &spec.filter {
        Some(f) if !f.trim().is_empty() => errs.take("filter", parse_filter_in(&scope, f)),
        _ => None,
    };
    if spec.group_by.len() > MAX_TERMS || spec.aggregates.len() > MAX_TERMS || spec.fields.len() > MAX_TERMS {
        errs.add("spec", "too_long", format!("at most {MAX_TERMS} group-by fields, aggregates and fields each"));
    }
    let mut outputs = Outputs::default();
    let groups = group_by(spec, &scope, &mut outputs, &mut errs);
    let aggs = aggregates(spec, &scope, &mut outputs, &mut errs);
    let fields = fields(spec, &scope, &mut outputs, &mut errs);
    let sort = sort(spec, &outputs, &mut errs);
    if let Some(l) = spec.limit {
        if l == 0 || l > MAX_LIMIT {
            errs.add("limit", "out_of_range", format!("limit is 1 to {MAX_LIMIT}"));
        }
    }
    errs.finish()?;
    Ok(Compiled { spec: spec.clone(), joins, filter, groups, aggs, fields, sort })
}

/// `source`: an analytics table (nothing else can be checked without one).
fn source(spec: &ReportSpec) -> Result<&str> {
    match columns(&spec.source) {
        Some(_) => Ok(spec.source.as_str()),
        None => Err(Error::invalid(
            "source",
            "invalid_value",
            format!("'{}' is not a table; the tables are {}", spec.source, super::super::TABLES.join(", ")),
        )),
    }
}

/// `join`: tables the source refers to, each once.
fn joins(spec: &ReportSpec, source: &str, errs: &mut Errors) -> Vec<(&'static str, &'static str)> {
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
    joins
}

fn unknown(scope: &Scope<'_>, field: &str) -> String {
    use crate::query::FieldSet as _;
    format!("{} has no field '{field}'", scope.owner())
}

/// `groupBy`: fields, dates and times optionally in buckets.
fn group_by(spec: &ReportSpec, scope: &Scope<'_>, outputs: &mut Outputs, errs: &mut Errors) -> Vec<GroupCol> {
    let mut groups = Vec::new();
    for (i, g) in spec.group_by.iter().enumerate() {
        let (field, bucket, alias) = g.parts();
        let Some((table, column)) = scope.resolve(field) else {
            errs.add(format!("groupBy.{i}.field"), "unknown_field", unknown(scope, field));
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
        outputs.claim(errs, format!("groupBy.{i}"), out.clone());
        groups.push(GroupCol { frame: scope.frame_name(table, column), ty: column.ty, bucket, out });
    }
    groups
}

/// `aggregates`: a count, or a function of a field (sums, averages and medians of numbers).
fn aggregates(spec: &ReportSpec, scope: &Scope<'_>, outputs: &mut Outputs, errs: &mut Errors) -> Vec<AggCol> {
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
                    errs.add(format!("{at}.field"), "unknown_field", unknown(scope, f));
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
        outputs.claim(errs, at, out.clone());
        aggs.push(AggCol { func: a.func, target, out });
    }
    aggs
}

/// `fields`: a listing of rows instead of groups; one or the other is needed.
fn fields(spec: &ReportSpec, scope: &Scope<'_>, outputs: &mut Outputs, errs: &mut Errors) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if !spec.fields.is_empty() && (!spec.aggregates.is_empty() || !spec.group_by.is_empty()) {
        errs.add("fields", "invalid_value", "list fields, or group and aggregate: not both");
    }
    for (i, f) in spec.fields.iter().enumerate() {
        match scope.resolve(f) {
            Some((table, column)) => {
                let frame = scope.frame_name(table, column);
                outputs.claim(errs, format!("fields.{i}"), frame.clone());
                fields.push((frame.clone(), frame));
            }
            None => errs.add(format!("fields.{i}"), "unknown_field", unknown(scope, f)),
        }
    }
    if spec.fields.is_empty() && spec.aggregates.is_empty() {
        errs.add("aggregates", "required", "a report needs aggregates (or, to list rows, fields)");
    }
    fields
}

/// `sort`: output columns in the list grammar (`revenue[desc],industry` or `-revenue`).
fn sort(spec: &ReportSpec, outputs: &Outputs, errs: &mut Errors) -> Vec<(String, Direction)> {
    let names = &outputs.0;
    let mut sort: Vec<(String, Direction)> = Vec::new();
    for part in spec.sort.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
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
    sort
}
