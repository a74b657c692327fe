//! The filter grammar of API.md:
//!
//! ```text
//! filter  := expr ("," expr)*                      top-level commas AND
//! expr    := ("and" | "or" | "not") "(" filter ")" | cmp
//! cmp     := field "[" op "]" ":" value
//! value   := '"' chars with \" and \\ escapes '"' | bare text up to , ) ]
//!          | "[" value ("," value)* "]"            (for in)
//! op      := eq neq in gt gte lt lte startsWith like ilike is
//! ```
//! Values are typed by the field: UUIDs, integers, booleans, RFC 3339 timestamps
//! (or `YYYY-MM-DD`, meaning midnight UTC), dates, enumerated text.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Cmp, Direction, Filter, Pattern, Predicate, SortKey};
use crate::error::{Error, Result};
use crate::schema::{Column, ColumnType, EntityKind, Value};

const MAX_DEPTH: usize = 16;
const MAX_TERMS: usize = 100;
const MAX_LIST: usize = 500;
const MAX_LEN: usize = 8192;
const MAX_SORT_KEYS: usize = 5;

fn err(code: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("filter", code, message)
}

/// What a filter's field names resolve against: an entity's columns, or (for custom
/// reports) the columns of an analytics table and the tables joined to it.
pub trait FieldSet {
    /// The column a field name stands for.
    fn lookup(&self, field: &str) -> Option<&'static Column>;
    /// What the fields belong to, for messages (`contact`, `the deals report`).
    fn owner(&self) -> String;
}

impl FieldSet for EntityKind {
    fn lookup(&self, field: &str) -> Option<&'static Column> {
        self.field(field)
    }
    fn owner(&self) -> String {
        self.name().to_string()
    }
}

/// Parses a filter for an entity.
pub fn parse_filter(kind: EntityKind, input: &str) -> Result<Filter> {
    parse_filter_in(&kind, input)
}

/// Parses a filter whose field names resolve against `fields`.
pub fn parse_filter_in(fields: &dyn FieldSet, input: &str) -> Result<Filter> {
    if input.len() > MAX_LEN {
        return Err(err("too_long", format!("a filter has at most {MAX_LEN} bytes")));
    }
    let mut p = Parser { fields, s: input, pos: 0, terms: 0 };
    let parts = p.list(0)?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.unexpected("end of filter"));
    }
    Ok(super::and(parts))
}

/// Parses `name[asc],createdAt[desc]` (a bare field sorts ascending; `-field` descending).
pub fn parse_sort(kind: EntityKind, input: &str) -> Result<Vec<SortKey>> {
    let bad = |code, msg: String| Error::invalid("sort", code, msg);
    let mut keys: Vec<SortKey> = Vec::new();
    for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, dir) = if let Some(rest) = part.strip_prefix('-') {
            (rest, Direction::Desc)
        } else if let Some((name, d)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            let dir = match d.to_ascii_lowercase().as_str() {
                "asc" => Direction::Asc,
                "desc" => Direction::Desc,
                other => return Err(bad("invalid_value", format!("'{other}' is not asc or desc"))),
            };
            (name, dir)
        } else {
            (part, Direction::Asc)
        };
        let column =
            kind.field(name).ok_or_else(|| bad("unknown_field", format!("{} has no field '{name}'", kind.name())))?;
        if !column.sortable {
            return Err(bad("invalid_value", format!("cannot sort by '{name}'")));
        }
        if keys.iter().any(|k| k.column.name == column.name) {
            return Err(bad("invalid_value", format!("'{name}' is named twice")));
        }
        keys.push(SortKey { column, direction: dir });
    }
    if keys.len() > MAX_SORT_KEYS {
        return Err(bad("invalid_value", format!("at most {MAX_SORT_KEYS} sort keys")));
    }
    Ok(keys)
}

struct Parser<'a> {
    fields: &'a dyn FieldSet,
    s: &'a str,
    pos: usize,
    terms: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn unexpected(&self, wanted: &str) -> Error {
        match self.peek() {
            Some(c) => err("invalid_syntax", format!("expected {wanted} at position {}, found '{c}'", self.pos)),
            None => err("invalid_syntax", format!("expected {wanted} at the end of the filter")),
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Filter>> {
        let mut out = vec![self.expr(depth)?];
        loop {
            self.skip_ws();
            if self.peek() == Some(',') {
                self.pos += 1;
                out.push(self.expr(depth)?);
            } else {
                return Ok(out);
            }
        }
    }

    fn ident(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.pos]
    }

    fn expr(&mut self, depth: usize) -> Result<Filter> {
        if depth > MAX_DEPTH {
            return Err(err("too_complex", format!("filters nest at most {MAX_DEPTH} deep")));
        }
        let name = self.ident().to_string();
        if name.is_empty() {
            return Err(self.unexpected("a field name or and(/or(/not("));
        }
        self.skip_ws();
        match (name.as_str(), self.peek()) {
            ("and" | "or" | "not", Some('(')) => {
                self.pos += 1;
                let parts = self.list(depth + 1)?;
                self.expect(')')?;
                Ok(match name.as_str() {
                    "and" => super::and(parts),
                    "or" if parts.len() == 1 => parts.into_iter().next().unwrap_or(Filter::Or(vec![])),
                    "or" => Filter::Or(parts),
                    _ if parts.len() == 1 => {
                        Filter::Not(Box::new(parts.into_iter().next().unwrap_or(Filter::And(vec![]))))
                    }
                    _ => Filter::Not(Box::new(Filter::And(parts))),
                })
            }
            _ => self.comparison(&name),
        }
    }

    fn comparison(&mut self, field: &str) -> Result<Filter> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(err("too_complex", format!("at most {MAX_TERMS} comparisons")));
        }
        let column = self
            .fields
            .lookup(field)
            .ok_or_else(|| err("unknown_field", format!("{} has no field '{field}'", self.fields.owner())))?;
        if !column.filterable {
            return Err(err("unknown_field", format!("'{field}' cannot be filtered on")));
        }
        self.expect('[')?;
        let op = self.ident().to_string();
        self.expect(']')?;
        self.expect(':')?;
        self.skip_ws();
        let pred = match op.as_str() {
            "in" => {
                let raw = self.list_value()?;
                if raw.is_empty() || raw.len() > MAX_LIST {
                    return Err(err("invalid_value", format!("in takes 1 to {MAX_LIST} values")));
                }
                let vals = raw.iter().map(|r| typed(column, r)).collect::<Result<Vec<_>>>()?;
                Predicate::In(vals)
            }
            "is" => {
                let raw = self.scalar()?;
                match (raw.quoted, raw.text.as_str()) {
                    (false, "null") => Predicate::IsNull,
                    (false, "notnull") => Predicate::IsNotNull,
                    _ => return Err(err("invalid_value", format!("{field}[is] takes null or notnull"))),
                }
            }
            "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "startsWith" | "like" | "ilike" => {
                let raw = self.scalar()?;
                if !raw.quoted && raw.text == "null" {
                    return Err(err("invalid_value", format!("compare {field} with null using {field}[is]:null")));
                }
                self.predicate(column, &op, &raw)?
            }
            other => {
                return Err(err(
                    "unknown_operator",
                    format!("'{other}' is not an operator (eq neq in gt gte lt lte startsWith like ilike is)"),
                ))
            }
        };
        Ok(Filter::Cmp(Cmp { column, pred }))
    }

    fn predicate(&self, column: &'static Column, op: &str, raw: &Raw) -> Result<Predicate> {
        let text_only = matches!(op, "startsWith" | "like" | "ilike");
        let ordered = matches!(op, "gt" | "gte" | "lt" | "lte");
        let is_list = column.ty.element().is_some();
        if text_only && (column.ty != ColumnType::Text || !column.choices.is_empty()) {
            return Err(err("unknown_operator", format!("{op} applies to text fields, not '{}'", column.field)));
        }
        if ordered && (is_list || column.ty == ColumnType::Bool) {
            return Err(err("unknown_operator", format!("{op} does not apply to '{}'", column.field)));
        }
        let text = || {
            if column.lowercase {
                raw.text.to_lowercase()
            } else {
                raw.text.clone()
            }
        };
        Ok(match op {
            "startsWith" => Predicate::StartsWith(text()),
            "like" => Predicate::Like(Pattern::parse(&text())),
            "ilike" => Predicate::ILike(Pattern::parse(&raw.text)),
            _ => {
                let v = typed(column, raw)?;
                match op {
                    "eq" => Predicate::Eq(v),
                    "neq" => Predicate::Neq(v),
                    "gt" => Predicate::Gt(v),
                    "gte" => Predicate::Gte(v),
                    "lt" => Predicate::Lt(v),
                    _ => Predicate::Lte(v),
                }
            }
        })
    }

    fn scalar(&mut self) -> Result<Raw> {
        self.skip_ws();
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut out = String::new();
            loop {
                let c = self.peek().ok_or_else(|| err("invalid_syntax", "a quoted value is not closed"))?;
                self.pos += c.len_utf8();
                match c {
                    '"' => return Ok(Raw { text: out, quoted: true }),
                    '\\' => {
                        let n = self.peek().ok_or_else(|| err("invalid_syntax", "a quoted value ends with \\"))?;
                        self.pos += n.len_utf8();
                        out.push(n);
                    }
                    c => out.push(c),
                }
            }
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, ',' | ')' | ']' | '(' | '[' | '"') {
                break;
            }
            self.pos += c.len_utf8();
        }
        let text = self.s[start..self.pos].trim().to_string();
        if text.is_empty() {
            return Err(self.unexpected("a value"));
        }
        Ok(Raw { text, quoted: false })
    }

    fn list_value(&mut self) -> Result<Vec<Raw>> {
        self.expect('[')?;
        let mut out = vec![self.scalar()?];
        loop {
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    out.push(self.scalar()?);
                }
                Some(']') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }
}

struct Raw {
    text: String,
    quoted: bool,
}

/// Types a raw value by its column (the element type for list columns).
fn typed(column: &Column, raw: &Raw) -> Result<Value> {
    let ty = column.ty.element().unwrap_or(column.ty);
    let s = raw.text.as_str();
    let bad = |what: &str| err("invalid_value", format!("'{s}' is not {what} (field {})", column.field));
    Ok(match ty {
        ColumnType::Uuid => Value::Uuid(Uuid::parse_str(s).map_err(|_| bad("an id"))?),
        ColumnType::Int => Value::Int(s.parse().map_err(|_| bad("a whole number"))?),
        ColumnType::Bool => Value::Bool(match s {
            "true" => true,
            "false" => false,
            _ => return Err(bad("true or false")),
        }),
        ColumnType::Timestamp => Value::Timestamp(parse_timestamp(s).ok_or_else(|| bad("an RFC 3339 timestamp"))?),
        ColumnType::Date => {
            Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("a YYYY-MM-DD date"))?)
        }
        ColumnType::Text => {
            if !column.choices.is_empty() && !column.choices.contains(&s) {
                return Err(err(
                    "invalid_value",
                    format!("'{s}' is not a {} (one of {})", column.field, column.choices.join(", ")),
                ));
            }
            if s.contains('\0') {
                return Err(bad("text without NUL"));
            }
            Value::Text(if column.lowercase { s.to_lowercase() } else { s.to_string() })
        }
        ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => return Err(bad("comparable")),
    })
}

/// RFC 3339, or a bare date meaning midnight UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Filter;

    fn contact(s: &str) -> Result<Filter> {
        parse_filter(EntityKind::Contact, s)
    }

    #[test]
    fn parses_the_api_example() {
        let f = contact(
            r#"and(lifecycleStage[eq]:customer,createdAt[gte]:"2026-01-01T00:00:00Z",or(email[ilike]:"%@acme.com",companyId[is]:null))"#,
        );
        let Ok(Filter::And(parts)) = f else { panic!("{f:?}") };
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[2], Filter::Or(o) if o.len() == 2));
    }

    #[test]
    fn top_level_commas_and() {
        assert!(matches!(contact("name[eq]:a, leadSource[eq]:web"), Ok(Filter::And(p)) if p.len() == 2));
    }

    #[test]
    fn names_the_bad_field_or_operator() {
        let e = contact("nope[eq]:1").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("'nope'"), "{e}");
        let e = contact("name[approx]:1").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("'approx'"), "{e}");
        let e = contact("lifecycleStage[eq]:whale").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("whale"), "{e}");
        assert!(contact("preferences[eq]:x").is_err());
        assert!(contact("searchText[eq]:x").is_err());
        assert!(contact("createdAt[gt]:yesterday").is_err());
        assert!(contact("lifecycleStage[like]:cust%").is_err());
        assert!(contact("name[eq]:null").is_err());
    }

    #[test]
    fn lists_and_quotes() {
        let f = contact(r#"lifecycleStage[in]:[lead, customer],name[eq]:"O\"Brien, \\ Ltd""#);
        let Ok(Filter::And(parts)) = f else { panic!("{f:?}") };
        let Filter::Cmp(c) = &parts[1] else { panic!() };
        assert_eq!(c.pred, Predicate::Eq(Value::Text("O\"Brien, \\ Ltd".into())));
    }

    #[test]
    fn emails_compare_lower_case() {
        let Ok(Filter::Cmp(c)) = contact("email[eq]:Ann@Example.com") else { panic!() };
        assert_eq!(c.pred, Predicate::Eq(Value::Text("ann@example.com".into())));
    }

    #[test]
    fn sort_grammar() {
        let keys = parse_sort(EntityKind::Deal, "amount[desc],name,-createdAt").unwrap_or_default();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[2].direction, Direction::Desc);
        assert!(parse_sort(EntityKind::Deal, "products").is_err());
        assert!(parse_sort(EntityKind::Deal, "amount[up]").is_err());
    }
}
