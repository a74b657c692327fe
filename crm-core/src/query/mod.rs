//! Typed list queries: filters, search, sort, keyset cursors, limits.
//!
//! A filter names columns through the entity's [`Column`] table, so an unknown or
//! unfilterable field is a validation error before any backend sees it, and every value
//! is typed by its column. Backends translate [`Filter`] trees; they never receive a user
//! string to splice. Keyset pagination is expressed as an ordinary filter by core
//! ([`keyset_filter`]), so every backend pages the same way.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Errors, Result};
use crate::schema::{format_ts, Column, EntityKind, Value};

mod cursor;
mod parse;

pub use cursor::{decode_cursor, encode_cursor};
pub use parse::{parse_filter, parse_filter_in, parse_sort, FieldSet};

/// The largest page.
pub const MAX_LIMIT: u32 = 200;
/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;

/// A boolean tree of comparisons.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All of them.
    And(Vec<Filter>),
    /// Any of them.
    Or(Vec<Filter>),
    /// Not this one.
    Not(Box<Filter>),
    /// One comparison.
    Cmp(Cmp),
}

/// One comparison of a column with typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    /// The column.
    pub column: &'static Column,
    /// The test.
    pub pred: Predicate,
}

/// The tests a comparison can make. On list columns (`tags`, `contactIds`) `Eq`, `Neq`
/// and `In` test membership, and `IsNull` means "empty".
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Equal. On lists: contains.
    Eq(Value),
    /// Not equal; NULL counts as not equal. On lists: does not contain.
    Neq(Value),
    /// One of. On lists: contains any.
    In(Vec<Value>),
    /// Greater than.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Starts with (case-sensitive, byte order).
    StartsWith(String),
    /// SQL-style pattern, case-sensitive.
    Like(Pattern),
    /// SQL-style pattern, case-insensitive.
    ILike(Pattern),
    /// Is NULL (lists: empty).
    IsNull,
    /// Is not NULL (lists: not empty).
    IsNotNull,
}

/// A `like` pattern: literal runs and wildcards, parsed once so each backend renders
/// its own syntax (SQL `LIKE … ESCAPE`, SQLite `GLOB`, a Mongo regex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<PatternPart>);

/// A piece of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    /// Literal text.
    Lit(String),
    /// `%`: any run of characters.
    AnyMany,
    /// `_`: exactly one character.
    AnyOne,
}

impl Pattern {
    /// Parses `%` and `_` as wildcards; `\` escapes the next character.
    pub fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let part = match c {
                '\\' => {
                    lit.push(chars.next().unwrap_or('\\'));
                    continue;
                }
                // `%%` matches what `%` matches: one part.
                '%' if lit.is_empty() && parts.last() == Some(&PatternPart::AnyMany) => continue,
                '%' => PatternPart::AnyMany,
                '_' => PatternPart::AnyOne,
                c => {
                    lit.push(c);
                    continue;
                }
            };
            if !lit.is_empty() {
                parts.push(PatternPart::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
        }
        if !lit.is_empty() {
            parts.push(PatternPart::Lit(lit));
        }
        Pattern(parts)
    }

    /// A pattern matching any text containing `needle`.
    pub fn contains(needle: &str) -> Self {
        Pattern(vec![PatternPart::AnyMany, PatternPart::Lit(needle.to_string()), PatternPart::AnyMany])
    }

    /// Renders in SQL `LIKE` syntax with `\` as the escape character.
    pub fn to_like(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                PatternPart::AnyMany => out.push('%'),
                PatternPart::AnyOne => out.push('_'),
                PatternPart::Lit(s) => {
                    for c in s.chars() {
                        if matches!(c, '%' | '_' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    /// The same pattern as a regular expression matching the whole text (Rust `regex`
    /// syntax, which MongoDB's PCRE reads the same way for these constructs): `%` is
    /// `.*`, `_` is `.`, literals are escaped; `ignore_case` folds all of Unicode.
    pub fn to_regex(&self, ignore_case: bool) -> String {
        let mut out = String::from(if ignore_case { "(?is)^" } else { "(?s)^" });
        for p in &self.0 {
            match p {
                PatternPart::AnyMany => out.push_str(".*"),
                PatternPart::AnyOne => out.push('.'),
                PatternPart::Lit(s) => regex_syntax::escape_into(s, &mut out),
            }
        }
        out.push('$');
        out
    }

    /// The same pattern with literals lower-cased.
    pub fn lowercase(&self) -> Self {
        Pattern(
            self.0
                .iter()
                .map(|p| match p {
                    PatternPart::Lit(s) => PatternPart::Lit(s.to_lowercase()),
                    other => other.clone(),
                })
                .collect(),
        )
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Smallest first; NULL is the smallest value on every backend.
    Asc,
    /// Largest first; NULL comes last.
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The column.
    pub column: &'static Column,
    /// The direction.
    pub direction: Direction,
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.direction {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        };
        write!(f, "{}[{d}]", self.column.field)
    }
}

/// A list request as a caller gives it. Build with the methods, or from the raw API
/// strings with [`ListQuery::parse`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// The filter.
    pub filter: Option<Filter>,
    /// Free text matched against name, email, phone and domain (case-insensitive, contains).
    pub search: Option<String>,
    /// Sort keys; the id is always added last as a tie-break. Default: newest first.
    pub sort: Vec<SortKey>,
    /// The cursor of the previous page (`endCursor`).
    pub after: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// Include soft-deleted records (needs the restore right).
    pub include_deleted: bool,
    /// Also count every matching record.
    pub count: bool,
}

/// The raw list parameters of the HTTP API and the Python bindings.
#[derive(Debug, Clone, Default)]
pub struct RawListParams<'a> {
    /// `filter=` in the grammar of API.md.
    pub filter: Option<&'a str>,
    /// `q=`.
    pub q: Option<&'a str>,
    /// `sort=`.
    pub sort: Option<&'a str>,
    /// `after=`.
    pub after: Option<&'a str>,
    /// `limit=`.
    pub limit: Option<&'a str>,
    /// `includeDeleted=`.
    pub include_deleted: Option<&'a str>,
    /// `count=`.
    pub count: Option<&'a str>,
}

fn parse_bool(field: &str, s: &str) -> Result<bool> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(Error::invalid(field, "invalid_value", format!("'{other}' is not true or false"))),
    }
}

impl ListQuery {
    /// An empty query: first page, default sort.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the raw API parameters for an entity, reporting every bad one at once.
    pub fn parse(kind: EntityKind, raw: &RawListParams<'_>) -> Result<Self> {
        let mut errs = Errors::new();
        let mut q = ListQuery::new();
        if let Some(f) = raw.filter.filter(|s| !s.trim().is_empty()) {
            q.filter = errs.take("filter", parse_filter(kind, f));
        }
        if let Some(s) = raw.sort.filter(|s| !s.trim().is_empty()) {
            q.sort = errs.take("sort", parse_sort(kind, s)).unwrap_or_default();
        }
        if let Some(l) = raw.limit {
            match l.trim().parse::<u32>() {
                Ok(n) => q.limit = Some(n),
                Err(_) => {
                    errs.add("limit", "invalid_value", format!("'{l}' is not a whole number from 1 to {MAX_LIMIT}"))
                }
            }
        }
        q.search = raw.q.map(str::to_string);
        q.after = raw.after.filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(d) = raw.include_deleted {
            q.include_deleted = errs.take("includeDeleted", parse_bool("includeDeleted", d)).unwrap_or(false);
        }
        if let Some(c) = raw.count {
            q.count = errs.take("count", parse_bool("count", c)).unwrap_or(false);
        }
        errs.finish()?;
        Ok(q)
    }

    /// With a filter.
    pub fn filter(mut self, f: Filter) -> Self {
        self.filter = Some(f);
        self
    }

    /// With a filter in the API grammar.
    pub fn filter_str(self, kind: EntityKind, f: &str) -> Result<Self> {
        Ok(self.filter(parse_filter(kind, f)?))
    }

    /// With free-text search.
    pub fn search(mut self, q: impl Into<String>) -> Self {
        self.search = Some(q.into());
        self
    }

    /// With a sort in the API grammar (`name[asc],createdAt[desc]`).
    pub fn sort_str(mut self, kind: EntityKind, s: &str) -> Result<Self> {
        self.sort = parse_sort(kind, s)?;
        Ok(self)
    }

    /// With a page size.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// After a cursor.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = Some(cursor.into());
        self
    }

    /// Including soft-deleted records.
    pub fn include_deleted(mut self, yes: bool) -> Self {
        self.include_deleted = yes;
        self
    }

    /// Counting all matches.
    pub fn count(mut self, yes: bool) -> Self {
        self.count = yes;
        self
    }
}

/// What a store is asked for: one filter (the caller's, the search, the scope and the
/// keyset position already combined by core), the full sort ending with the id, and a
/// row limit.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreQuery {
    /// Rows must match this.
    pub filter: Option<Filter>,
    /// The order; the last key is the id.
    pub sort: Vec<SortKey>,
    /// At most this many rows.
    pub limit: u32,
    /// Include soft-deleted rows.
    pub include_deleted: bool,
}

impl StoreQuery {
    /// Every live row in id order, `limit` at a time.
    pub fn all(kind: EntityKind, limit: u32) -> Self {
        Self { filter: None, sort: vec![id_key(kind, Direction::Asc)], limit, include_deleted: false }
    }
}

/// The id sort key of an entity.
pub fn id_key(kind: EntityKind, direction: Direction) -> SortKey {
    let column = kind.columns().first().filter(|c| c.name == "id");
    SortKey {
        // Every kind's first column is its id (checked by a test).
        column: column.unwrap_or(&kind.columns()[0]),
        direction,
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The records.
    pub data: Vec<T>,
    /// Where the page stands.
    pub page_info: PageInfo,
    /// How many records match in all (when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
}

/// Paging state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// Is there another page?
    pub has_next_page: bool,
    /// The cursor to pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// The filter that selects the rows after `values` (one per sort key) in `sort` order,
/// with NULL the smallest value. A bound on the first key is added so that indexes can
/// start at the cursor instead of scanning from the top.
pub fn keyset_filter(sort: &[SortKey], values: &[Value]) -> Option<Filter> {
    let mut alternatives = Vec::new();
    let mut equal_prefix: Vec<Filter> = Vec::new();
    for (key, v) in sort.iter().zip(values) {
        let after = match (key.direction, v.is_null()) {
            (Direction::Asc, false) => Some(cmp(key.column, Predicate::Gt(v.clone()))),
            (Direction::Asc, true) => Some(cmp(key.column, Predicate::IsNotNull)),
            (Direction::Desc, false) if key.column.nullable => {
                Some(Filter::Or(vec![cmp(key.column, Predicate::Lt(v.clone())), cmp(key.column, Predicate::IsNull)]))
            }
            (Direction::Desc, false) => Some(cmp(key.column, Predicate::Lt(v.clone()))),
            (Direction::Desc, true) => None,
        };
        if let Some(a) = after {
            let mut conj = equal_prefix.clone();
            conj.push(a);
            alternatives.push(and(conj));
        }
        equal_prefix.push(if v.is_null() {
            cmp(key.column, Predicate::IsNull)
        } else {
            cmp(key.column, Predicate::Eq(v.clone()))
        });
    }
    if alternatives.is_empty() {
        // Nothing sorts after a position whose every key is the last possible value;
        // an impossible comparison keeps the result empty on every backend.
        let key = sort.first()?;
        return Some(Filter::And(vec![cmp(key.column, Predicate::IsNull), cmp(key.column, Predicate::IsNotNull)]));
    }
    let mut all = Filter::Or(alternatives);
    if let (Some(first), Some(v)) = (sort.first(), values.first()) {
        if !first.column.nullable && !v.is_null() {
            let bound = match first.direction {
                Direction::Asc => Predicate::Gte(v.clone()),
                Direction::Desc => Predicate::Lte(v.clone()),
            };
            all = Filter::And(vec![cmp(first.column, bound), all]);
        }
    }
    Some(all)
}

fn cmp(column: &'static Column, pred: Predicate) -> Filter {
    Filter::Cmp(Cmp { column, pred })
}

/// ANDs filters, flattening the trivial cases.
pub fn and(mut parts: Vec<Filter>) -> Filter {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::And(parts)
    }
}

/// ANDs optional filters.
pub fn and_opt(parts: impl IntoIterator<Item = Option<Filter>>) -> Option<Filter> {
    let parts: Vec<Filter> = parts.into_iter().flatten().collect();
    if parts.is_empty() {
        None
    } else {
        Some(and(parts))
    }
}

impl Filter {
    /// `column = value`, by API field name. Panics on nothing; unknown fields are errors.
    pub fn eq(kind: EntityKind, field: &str, value: Value) -> Result<Filter> {
        let column = kind.field(field).filter(|c| c.filterable).ok_or_else(|| {
            Error::invalid("filter", "unknown_field", format!("{} has no filterable field '{field}'", kind.name()))
        })?;
        Ok(cmp(column, Predicate::Eq(value)))
    }
}

/// Renders a value in the filter grammar (quoted where needed).
pub(crate) fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Uuid(u) => u.to_string(),
        Value::Text(s) => quote(s),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => quote(&format_ts(t)),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Json(j) => quote(&j.to_string()),
    }
}

/// A text value quoted for the filter grammar (`"a \"b\""`), as [`Filter`]'s `Display`
/// writes it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Filter {
    /// Renders the filter in the API grammar; parsing the output gives the same filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = |f: &mut fmt::Formatter<'_>, name: &str, parts: &[Filter]| {
            write!(f, "{name}(")?;
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{p}")?;
            }
            f.write_str(")")
        };
        match self {
            Filter::And(p) => group(f, "and", p),
            Filter::Or(p) => group(f, "or", p),
            Filter::Not(p) => group(f, "not", std::slice::from_ref(p)),
            Filter::Cmp(Cmp { column, pred }) => {
                let (op, val) = match pred {
                    Predicate::Eq(v) => ("eq", render_value(v)),
                    Predicate::Neq(v) => ("neq", render_value(v)),
                    Predicate::In(vs) => {
                        ("in", format!("[{}]", vs.iter().map(render_value).collect::<Vec<_>>().join(",")))
                    }
                    Predicate::Gt(v) => ("gt", render_value(v)),
                    Predicate::Gte(v) => ("gte", render_value(v)),
                    Predicate::Lt(v) => ("lt", render_value(v)),
                    Predicate::Lte(v) => ("lte", render_value(v)),
                    Predicate::StartsWith(s) => ("startsWith", quote(s)),
                    Predicate::Like(p) => ("like", quote(&p.to_like())),
                    Predicate::ILike(p) => ("ilike", quote(&p.to_like())),
                    Predicate::IsNull => ("is", "null".into()),
                    Predicate::IsNotNull => ("is", "notnull".into()),
                };
                write!(f, "{}[{op}]:{val}", column.field)
            }
        }
    }
}
