//! Rows to BSON documents and back, and filters to BSON queries.
//!
//! Every value is typed by its column before it becomes BSON, so a user's string is
//! always a BSON string: it never becomes an operator, a field name or a pattern.
//! UUIDs are binary subtype 4, timestamps BSON dates (milliseconds, like every backend),
//! integers Int64, dates `YYYY-MM-DD` strings (they sort as dates), lists arrays.
//! NULL is not stored: a missing field reads as NULL, which keeps the partial unique
//! indexes (`{field: {$exists: true}}`) equal to SQL's "NULLs never collide".
//! The free JSON columns (custom fields, addresses) are embedded documents whose keys
//! are escaped (`%` → `%25`, `$` → `%24`, `.` → `%2E`), so a key such as `$where` or
//! `a.b` is stored as literal text and read back unchanged.

use chrono::{NaiveDate, TimeZone, Utc};
use crm_core::query::{Filter, Pattern, PatternPart, Predicate};
use crm_core::schema::{Column, ColumnType, EntityKind, Row, Value};
use crm_core::{Error, Result};
use mongodb::bson::{self, doc, spec::BinarySubtype, Binary, Bson, Document};
use uuid::Uuid;

/// The document field of a column: the id is `_id`.
pub fn key(c: &Column) -> &'static str {
    if c.name == "id" {
        "_id"
    } else {
        c.name
    }
}

/// Marks live (not soft-deleted) records, for the partial unique indexes.
pub const LIVE: &str = "_live";

/// A UUID as BSON binary subtype 4.
pub fn uuid(u: Uuid) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: u.as_bytes().to_vec() })
}

fn bad(kind: EntityKind, what: impl std::fmt::Display) -> Error {
    Error::internal_msg(format!("{} document: {what}", kind.name()))
}

/// A typed value as BSON (`None` for NULL, which is not stored).
pub fn to_bson(c: &Column, v: &Value) -> Option<Bson> {
    Some(match v {
        Value::Null => return None,
        Value::Uuid(u) => uuid(*u),
        Value::Text(s) => Bson::String(s.clone()),
        Value::Int(i) => Bson::Int64(*i),
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Timestamp(t) => Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis())),
        Value::Date(d) => Bson::String(d.format("%Y-%m-%d").to_string()),
        Value::Json(j) => match c.ty {
            ColumnType::UuidList | ColumnType::TextList => match j {
                serde_json::Value::Array(items) => Bson::Array(
                    items
                        .iter()
                        .map(|i| match (c.ty, i) {
                            (ColumnType::UuidList, serde_json::Value::String(s)) => {
                                Uuid::parse_str(s).map(uuid).unwrap_or_else(|_| Bson::String(s.clone()))
                            }
                            _ => json_to_bson(i),
                        })
                        .collect(),
                ),
                other => json_to_bson(other),
            },
            _ => json_to_bson(j),
        },
    })
}

/// A filter value of a list column's element, or of a plain column.
fn element(c: &Column, v: &Value) -> Bson {
    match (c.ty.element(), v) {
        (Some(_), Value::Uuid(u)) => uuid(*u),
        (Some(_), Value::Text(s)) => Bson::String(s.clone()),
        _ => to_bson(c, v).unwrap_or(Bson::Null),
    }
}

/// A row as a document.
pub fn to_doc(kind: EntityKind, row: &Row) -> Result<Document> {
    let cols = kind.columns();
    if row.len() != cols.len() {
        return Err(bad(kind, format!("{} values for {} columns", row.len(), cols.len())));
    }
    let mut d = Document::new();
    for (c, v) in cols.iter().zip(row) {
        if let Some(b) = to_bson(c, v) {
            d.insert(key(c), b);
        }
    }
    if kind.soft_deletes() && !d.contains_key("deleted_at") {
        d.insert(LIVE, true);
    }
    Ok(d)
}

/// A document as a row.
pub fn from_doc(kind: EntityKind, mut d: Document) -> Result<Row> {
    kind.columns()
        .iter()
        .map(|c| match d.remove(key(c)) {
            None | Some(Bson::Null) => Ok(Value::Null),
            Some(b) => from_bson(c, b).ok_or_else(|| bad(kind, format!("{} does not hold a {:?}", c.name, c.ty))),
        })
        .collect()
}

fn bson_uuid(b: &Bson) -> Option<Uuid> {
    match b {
        Bson::Binary(bin) if bin.bytes.len() == 16 => Uuid::from_slice(&bin.bytes).ok(),
        _ => None,
    }
}

fn from_bson(c: &Column, b: Bson) -> Option<Value> {
    Some(match (c.ty, b) {
        (ColumnType::Uuid, b) => Value::Uuid(bson_uuid(&b)?),
        (ColumnType::Text, Bson::String(s)) => Value::Text(s),
        (ColumnType::Int, Bson::Int64(i)) => Value::Int(i),
        (ColumnType::Int, Bson::Int32(i)) => Value::Int(i64::from(i)),
        (ColumnType::Bool, Bson::Boolean(b)) => Value::Bool(b),
        (ColumnType::Timestamp, Bson::DateTime(t)) => {
            Value::Timestamp(Utc.timestamp_millis_opt(t.timestamp_millis()).single()?)
        }
        (ColumnType::Date, Bson::String(s)) => Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()?),
        (ColumnType::UuidList, Bson::Array(items)) => Value::Json(serde_json::Value::Array(
            items
                .iter()
                .map(|i| bson_uuid(i).map(|u| serde_json::Value::String(u.to_string())))
                .collect::<Option<_>>()?,
        )),
        (ColumnType::TextList | ColumnType::Json, b) => Value::Json(bson_to_json(b)),
        _ => return None,
    })
}

/// Escapes a JSON key so that it is a plain BSON field name.
pub fn escape_key(k: &str) -> String {
    if !k.contains(['%', '$', '.']) && !k.contains('\0') {
        return k.to_string();
    }
    let mut out = String::with_capacity(k.len() + 4);
    for ch in k.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '$' => out.push_str("%24"),
            '.' => out.push_str("%2E"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// The key [`escape_key`] escaped.
pub fn unescape_key(k: &str) -> String {
    if !k.contains('%') {
        return k.to_string();
    }
    let mut out = String::with_capacity(k.len());
    let mut rest = k;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        let ch = match code {
            Some("25") => Some('%'),
            Some("24") => Some('$'),
            Some("2E") => Some('.'),
            Some("00") => Some('\0'),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON value as BSON, keys escaped.
pub fn json_to_bson(v: &serde_json::Value) -> Bson {
    use serde_json::Value as J;
    match v {
        J::Null => Bson::Null,
        J::Bool(b) => Bson::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Bson::String(s.clone()),
        J::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        J::Object(m) => Bson::Document(m.iter().map(|(k, v)| (escape_key(k), json_to_bson(v))).collect()),
    }
}

/// BSON (as [`json_to_bson`] wrote it) as JSON, keys unescaped.
pub fn bson_to_json(b: Bson) -> serde_json::Value {
    use serde_json::Value as J;
    match b {
        Bson::Null | Bson::Undefined => J::Null,
        Bson::Boolean(b) => J::Bool(b),
        Bson::Int32(i) => J::from(i),
        Bson::Int64(i) => J::from(i),
        Bson::Double(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Bson::String(s) => J::String(s),
        Bson::Array(items) => J::Array(items.into_iter().map(bson_to_json).collect()),
        Bson::Document(d) => J::Object(d.into_iter().map(|(k, v)| (unescape_key(&k), bson_to_json(v))).collect()),
        other => J::String(other.to_string()),
    }
}

/// A `like` pattern as a regular expression matching the whole text, in the syntax both
/// MongoDB's PCRE and Python's `re` (SecantusDB) read the same way: `(?s)` so `.` takes
/// newlines, literals escaped, and `(?!.)` for "end of text" (`$` would also match
/// before a final newline, and `\z` is spelt differently in the two).
///
/// Backtracking is bounded: `%a%b%c` as `.*a.*b.*c` would try every way of placing each
/// piece, O(n^k) on a text that almost matches. Each piece between two `%` is instead
/// taken at its first place and kept there (an atomic group, `(?>.*?a)`), which loses no
/// match: a piece of fixed length found earlier leaves more room for the rest. Only the
/// last piece searches, once, for its place at the end.
pub fn pattern_regex(p: &Pattern, ignore_case: bool) -> String {
    // The fixed-length pieces between the `%`s.
    let mut pieces = vec![String::new()];
    for part in &p.0 {
        match part {
            PatternPart::AnyMany => pieces.push(String::new()),
            PatternPart::AnyOne => pieces.last_mut().into_iter().for_each(|s| s.push('.')),
            PatternPart::Lit(lit) => pieces.last_mut().into_iter().for_each(|s| escape_regex(lit, s)),
        }
    }
    let mut out = String::from(if ignore_case { "(?is)^" } else { "(?s)^" });
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        match i {
            0 => out.push_str(piece),
            i if i < last => {
                out.push_str("(?>.*?");
                out.push_str(piece);
                out.push(')');
            }
            _ => {
                out.push_str(".*");
                out.push_str(piece);
            }
        }
    }
    out.push_str("(?!.)");
    out
}

/// Escapes every ASCII punctuation character (both regex dialects read `\` + punctuation
/// as the literal character) and NUL.
fn escape_regex(s: &str, out: &mut String) {
    for ch in s.chars() {
        if ch.is_ascii_punctuation() {
            out.push('\\');
            out.push(ch);
        } else if ch == '\0' {
            out.push_str("\\x00");
        } else {
            out.push(ch);
        }
    }
}

/// Matches no document.
fn nothing() -> Document {
    doc! { "_id": { "$in": [] } }
}

/// The conjunction of query documents: one flat document when their fields differ (the
/// shape query planners match indexes against most readily — SecantusDB's only then),
/// else `$and`. Nested `$and`s are flattened first.
pub fn all_of(parts: Vec<Document>) -> Document {
    let mut flat: Vec<Document> = Vec::with_capacity(parts.len());
    let mut stack: Vec<Document> = parts.into_iter().rev().collect();
    while let Some(d) = stack.pop() {
        match d.get_array("$and") {
            Ok(items) if d.len() == 1 => {
                for item in items.iter().rev() {
                    if let Bson::Document(inner) = item {
                        stack.push(inner.clone());
                    }
                }
            }
            _ => flat.push(d),
        }
    }
    let mut merged = Document::new();
    for d in &flat {
        if d.keys().any(|k| merged.contains_key(k)) {
            return match flat.len() {
                1 => flat.remove(0),
                _ => doc! { "$and": flat },
            };
        }
        merged.extend(d.clone());
    }
    merged
}

/// A filter tree as a query document.
pub fn filter(f: &Filter) -> Document {
    match f {
        Filter::And(parts) if parts.is_empty() => Document::new(),
        Filter::Or(parts) if parts.is_empty() => nothing(),
        Filter::And(parts) => all_of(parts.iter().map(filter).collect()),
        Filter::Or(parts) => doc! { "$or": parts.iter().map(filter).collect::<Vec<_>>() },
        Filter::Not(inner) => doc! { "$nor": [filter(inner)] },
        Filter::Cmp(c) => cmp(c.column, &c.pred),
    }
}

fn cmp(c: &Column, pred: &Predicate) -> Document {
    let k = key(c);
    let v = |v: &Value| element(c, v);
    let is_list = c.ty.element().is_some();
    match pred {
        Predicate::Eq(x) => doc! { k: v(x) },
        // `$ne` also matches a missing field: NULL counts as not equal, as in SQL here.
        Predicate::Neq(x) => doc! { k: { "$ne": v(x) } },
        Predicate::In(xs) => doc! { k: { "$in": xs.iter().map(v).collect::<Vec<_>>() } },
        Predicate::Gt(x) => doc! { k: { "$gt": v(x) } },
        Predicate::Gte(x) => doc! { k: { "$gte": v(x) } },
        Predicate::Lt(x) => doc! { k: { "$lt": v(x) } },
        Predicate::Lte(x) => doc! { k: { "$lte": v(x) } },
        Predicate::StartsWith(p) if p.is_empty() => doc! { k: { "$exists": true } },
        Predicate::StartsWith(p) => {
            let mut re = String::from("(?s)^");
            escape_regex(p, &mut re);
            doc! { k: { "$regex": re } }
        }
        Predicate::Like(p) => doc! { k: { "$regex": pattern_regex(p, false) } },
        Predicate::ILike(p) => doc! { k: { "$regex": pattern_regex(p, true) } },
        Predicate::IsNull if is_list => doc! { "$or": [ { k: { "$exists": false } }, { k: { "$size": 0 } } ] },
        Predicate::IsNotNull if is_list => doc! { format!("{k}.0"): { "$exists": true } },
        Predicate::IsNull => doc! { k: { "$exists": false } },
        Predicate::IsNotNull => doc! { k: { "$exists": true } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_never_hold_operators() {
        for k in ["plain", "$where", "a.b", "%24", "100%", "$ne.$gt", "", "x%2"] {
            let e = escape_key(k);
            assert!(!e.starts_with('$') && !e.contains('.'), "{k} → {e}");
            assert_eq!(unescape_key(&e), k);
        }
    }

    #[test]
    fn conjunctions_flatten_unless_fields_repeat() {
        let flat = all_of(vec![doc! { "a": 1 }, doc! { "$and": [ { "b": 2 }, { "c": 3 } ] }]);
        assert_eq!(flat, doc! { "a": 1, "b": 2, "c": 3 });
        let kept = all_of(vec![doc! { "a": { "$gt": 1 } }, doc! { "a": { "$lt": 5 } }]);
        assert_eq!(kept, doc! { "$and": [ { "a": { "$gt": 1 } }, { "a": { "$lt": 5 } } ] });
        assert_eq!(all_of(vec![]), Document::new());
    }

    #[test]
    fn json_round_trips() {
        let j = serde_json::json!({"$where": "1", "a.b": [1, 2.5, null, {"$ne": null}], "n": -3, "t": true});
        assert_eq!(bson_to_json(json_to_bson(&j)), j);
    }

    #[test]
    fn patterns_escape_metacharacters() {
        let p = Pattern::parse("a.b%c_(d)*$");
        assert_eq!(pattern_regex(&p, false), "(?s)^a\\.b.*c.\\(d\\)\\*\\$(?!.)");
        assert!(pattern_regex(&p, true).starts_with("(?is)^"));
        let p = Pattern::parse("%a%%b_%c");
        assert_eq!(pattern_regex(&p, false), "(?s)^(?>.*?a)(?>.*?b.).*c(?!.)");
        assert_eq!(pattern_regex(&Pattern::parse("exact"), false), "(?s)^exact(?!.)");
    }
}
