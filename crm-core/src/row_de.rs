//! Rows straight into domain types: a serde [`Deserializer`] driven by the kind's column
//! declaration.
//!
//! The derived `Deserialize` of a domain type asks for a map; this one walks the kind's
//! columns and hands each typed [`Value`] to the field's own deserialiser (an id's, an
//! enum's, a timestamp's) with no `serde_json` document in between. A column of a nested
//! object (`contactDetails.email`) becomes a member of the parent's map; a parent whose
//! members are all NULL is absent (`null`), as the API shows it. JSON columns hand over
//! their document's own deserialiser.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

use crate::schema::{format_ts, Column, Value};

/// Why a row did not fit its type, or a value its columns (`row_ser` uses it too).
#[derive(Debug)]
pub(crate) struct RowError(pub(crate) String);

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowError {}

impl de::Error for RowError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RowError(msg.to_string())
    }
}

impl serde::ser::Error for RowError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RowError(msg.to_string())
    }
}

fn json_err(e: serde_json::Error) -> RowError {
    RowError(e.to_string())
}

/// The parent of a nested column (`contactDetails` of `contactDetails.email`).
fn parent(col: &Column) -> Option<&'static str> {
    col.field.split_once('.').map(|(p, _)| p)
}

/// A whole row (`members` = `None`) or the members of one nested object of it.
pub(crate) struct RowDe<'r> {
    cols: &'static [Column],
    values: &'r mut [Value],
    /// `Some(parent)`: only the columns under `parent.`, keyed by the child's name.
    nested: Option<&'static str>,
}

impl<'r> RowDe<'r> {
    /// A deserialiser of the row `values`, in the order of `cols`.
    pub(crate) fn new(cols: &'static [Column], values: &'r mut [Value]) -> Self {
        Self { cols, values, nested: None }
    }
}

impl RowDe<'_> {
    /// Is this a nested object whose members are all NULL? Only those are absent.
    fn is_absent(&self) -> bool {
        match self.nested {
            Some(p) => self.cols.iter().zip(self.values.iter()).all(|(c, v)| parent(c) != Some(p) || v.is_null()),
            None => false,
        }
    }
}

impl<'de> de::Deserializer<'de> for RowDe<'_> {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        if self.is_absent() {
            return visitor.visit_unit();
        }
        visitor.visit_map(Entries { cols: self.cols, values: self.values, nested: self.nested, at: 0, pending: None })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        if self.is_absent() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The map of a row's fields, in column order.
struct Entries<'r> {
    cols: &'static [Column],
    values: &'r mut [Value],
    nested: Option<&'static str>,
    at: usize,
    /// The column (or nested parent) whose key was handed out last.
    pending: Option<Pending>,
}

#[derive(Clone, Copy)]
enum Pending {
    Column(usize),
    Parent(&'static str),
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = RowError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, RowError> {
        while self.at < self.cols.len() {
            let i = self.at;
            self.at += 1;
            let col = &self.cols[i];
            if col.is_computed() {
                continue;
            }
            let key = match (self.nested, col.field.split_once('.')) {
                (None, None) => {
                    self.pending = Some(Pending::Column(i));
                    col.field
                }
                (None, Some((p, _))) => {
                    // A parent is one entry, handed out at its first column.
                    if self.cols[..i].iter().any(|c| parent(c) == Some(p)) {
                        continue;
                    }
                    self.pending = Some(Pending::Parent(p));
                    p
                }
                (Some(want), Some((p, child))) if p == want => {
                    // NULL members are left out of a nested object.
                    if self.values[i].is_null() {
                        continue;
                    }
                    self.pending = Some(Pending::Column(i));
                    child
                }
                (Some(_), _) => continue,
            };
            return seed.deserialize(BorrowedStrDeserializer::<RowError>::new(key)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, RowError> {
        match self.pending.take() {
            Some(Pending::Column(i)) => {
                let value = std::mem::replace(&mut self.values[i], Value::Null);
                seed.deserialize(ValueDe(value))
            }
            Some(Pending::Parent(p)) => {
                seed.deserialize(RowDe { cols: self.cols, values: &mut *self.values, nested: Some(p) })
            }
            None => Err(RowError("a value asked for before its key".into())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.cols.len().saturating_sub(self.at))
    }
}

/// One typed value, handed to the field's deserialiser in the form its serde expects
/// (ids, timestamps and dates as their text).
pub(crate) struct ValueDe(pub(crate) Value);

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Uuid(u) => visitor.visit_str(u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())),
            Value::Text(s) => visitor.visit_string(s),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Timestamp(t) => visitor.visit_string(format_ts(&t)),
            Value::Date(d) => visitor.visit_string(d.format("%Y-%m-%d").to_string()),
            Value::Json(j) => j.deserialize_any(visitor).map_err(json_err),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.0 {
            Value::Null | Value::Json(serde_json::Value::Null) => visitor.visit_none(),
            other => visitor.visit_some(ValueDe(other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        match self.0 {
            Value::Text(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Json(j) => j.deserialize_enum(name, variants, visitor).map_err(json_err),
            other => Err(RowError(format!("{other:?} is not one of {variants:?}"))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::Record;
    use crate::schema::{from_row, from_row_via_json, to_row, to_row_via_json, Persist};
    use crate::{Contact, Deal, Task, Value};

    fn meta() -> serde_json::Value {
        json!({
            "version": 3,
            "createdAt": "2026-01-02T03:04:05.678Z",
            "updatedAt": "2026-02-03T04:05:06.789Z",
            "createdBy": "0190e2a5-0000-7000-8000-000000000001",
            "updatedBy": null,
            "deletedAt": null,
            "deletedBy": null,
        })
    }

    fn with_meta(mut v: serde_json::Value) -> serde_json::Value {
        if let (Some(o), serde_json::Value::Object(m)) = (v.as_object_mut(), meta()) {
            o.extend(m);
        }
        v
    }

    /// Rows decode to what they were made from, and to what the JSON round trip gave.
    fn same<T: Persist + Record + PartialEq + std::fmt::Debug>(doc: serde_json::Value) {
        let item: T = serde_json::from_value(with_meta(doc)).unwrap_or_else(|e| panic!("sample: {e}"));
        let row = to_row(&item).unwrap_or_else(|e| panic!("to_row: {e}"));
        assert_eq!(row, to_row_via_json(&item).unwrap_or_else(|e| panic!("to_row via json: {e}")));
        let direct: T = from_row(row.clone()).unwrap_or_else(|e| panic!("from_row: {e}"));
        let via_json: T = from_row_via_json(row).unwrap_or_else(|e| panic!("via json: {e}"));
        assert_eq!(direct, item);
        assert_eq!(direct, via_json);
    }

    #[test]
    fn rows_decode_as_the_json_round_trip_did() {
        same::<Contact>(json!({
            "id": "0190e2a5-0000-7000-8000-0000000000aa",
            "name": "Ann Lee",
            "email": "ann@example.com",
            "phoneNumber": "+14155550123",
            "jobTitle": null,
            "companyId": "0190e2a5-0000-7000-8000-0000000000bb",
            "ownerId": "0190e2a5-0000-7000-8000-000000000001",
            "teamId": null,
            "leadSource": "web",
            "lifecycleStage": "customer",
            "convertedAt": "2026-03-01T00:00:00.001Z",
            "tags": ["vip", "eu"],
            "preferences": {"newsletter": true},
            "social": {},
            "address": {"city": "Lyon", "lines": ["1 rue"]},
            "customFields": {"score": 12, "tier": null},
        }));
        for related in [json!(null), json!({"type": "deal", "id": "0190e2a5-0000-7000-8000-0000000000cc"})] {
            same::<Task>(json!({
                "id": "0190e2a5-0000-7000-8000-0000000000dd",
                "name": "Call back",
                "description": null,
                "dueDate": "2026-04-01T09:30:00.000Z",
                "priority": "high",
                "status": "in_progress",
                "assignedUser": null,
                "related": related,
                "completedAt": null,
                "ownerId": "0190e2a5-0000-7000-8000-000000000001",
                "teamId": "0190e2a5-0000-7000-8000-0000000000ee",
            }));
        }
        same::<Deal>(json!({
            "id": "0190e2a5-0000-7000-8000-0000000000ff",
            "name": "Big one",
            "description": null,
            "amount": 1_250_000,
            "currency": "EUR",
            "stage": "negotiation",
            "probability": 60,
            "expectedCloseDate": "2026-06-30",
            "closedAt": null,
            "stageChangedAt": "2026-05-01T10:00:00.000Z",
            "contactIds": ["0190e2a5-0000-7000-8000-0000000000aa"],
            "companyId": null,
            "ownerId": "0190e2a5-0000-7000-8000-000000000001",
            "teamId": null,
            "products": [{"name": "Seat", "quantity": 10, "unitPrice": 125_000}],
            "notes": "n",
            "lostReason": null,
        }));
    }

    #[test]
    fn a_bad_row_is_an_error_not_a_panic() {
        let item: Task = serde_json::from_value(with_meta(json!({
            "id": "0190e2a5-0000-7000-8000-0000000000dd", "name": "x", "description": null, "dueDate": null,
            "priority": "low", "status": "open", "assignedUser": null, "related": null, "completedAt": null,
            "ownerId": "0190e2a5-0000-7000-8000-000000000001", "teamId": null,
        })))
        .unwrap_or_else(|e| panic!("sample: {e}"));
        let mut row = to_row(&item).unwrap_or_else(|e| panic!("to_row: {e}"));
        let status = Task::KIND.columns().iter().position(|c| c.name == "status").unwrap_or_else(|| panic!("status"));
        row[status] = Value::Text("sleeping".into());
        let e = from_row::<Task>(row).err().unwrap_or_else(|| panic!("a bad status decoded"));
        assert!(e.to_string().contains("sleeping"), "{e}");
    }
}
