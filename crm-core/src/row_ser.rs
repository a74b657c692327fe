//! Domain types straight into rows: a serde [`Serializer`] driven by the kind's column
//! declaration, the mirror of `row_de`.
//!
//! The derived `Serialize` of a domain type hands over its fields one by one; each goes
//! straight into its column's typed [`Value`] (an id parsed from the text its serde
//! writes, an enum as its wire name), with no `serde_json` document in between. The
//! members of a nested object (`related.type`) go to their own columns; JSON columns
//! hold their field's JSON document.

use std::fmt;

use serde::ser::{Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::schema::{json_into_value, timestamp_value, Column, ColumnType, Value};

use crate::row_de::RowError;

fn refuse(what: impl fmt::Display) -> RowError {
    RowError(what.to_string())
}

/// Serialises `item` into `row` (one value per column of `cols`, NULL until written).
pub(crate) fn to_slots<T: Serialize + ?Sized>(
    cols: &'static [Column],
    item: &T,
    row: &mut [Value],
) -> Result<(), RowError> {
    item.serialize(RowSer { cols, row, nested: None })
}

/// A whole record, or (`nested`) the members of one nested object of it.
struct RowSer<'r> {
    cols: &'static [Column],
    row: &'r mut [Value],
    nested: Option<&'static str>,
}

/// The fields of a record being written.
struct Fields<'r> {
    cols: &'static [Column],
    row: &'r mut [Value],
    nested: Option<&'static str>,
    key: Option<String>,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), RowError> {
        let at = self.cols.iter().position(|c| match (self.nested, c.field.split_once('.')) {
            (None, None) => c.field == key,
            (Some(p), Some((parent, child))) => parent == p && child == key,
            _ => false,
        });
        if let Some(i) = at {
            let col = &self.cols[i];
            let v = if col.ty.is_json() {
                let json = serde_json::to_value(value).map_err(refuse)?;
                if json.is_null() {
                    Value::Null
                } else {
                    json_into_value(col, json).ok_or_else(|| refuse(format!("{key} does not hold a {:?}", col.ty)))?
                }
            } else {
                value.serialize(ValueSer(col))?
            };
            self.row[i] = v;
            return Ok(());
        }
        if self.nested.is_none() {
            let parent = self.cols.iter().find_map(|c| c.field.split_once('.').filter(|(p, _)| *p == key));
            if let Some((p, _)) = parent {
                return value.serialize(RowSer { cols: self.cols, row: &mut *self.row, nested: Some(p) });
            }
        }
        Err(match self.nested {
            Some(p) => refuse(format!("fields without a column: [\"{p}.{key}\"]")),
            None => refuse(format!("fields without a column: [\"{key}\"]")),
        })
    }
}

impl SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = RowError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), RowError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), RowError> {
        Ok(())
    }
}

impl SerializeMap for Fields<'_> {
    type Ok = ();
    type Error = RowError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), RowError> {
        self.key = Some(key.serialize(KeySer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RowError> {
        let key = self.key.take().ok_or_else(|| refuse("a value before its key"))?;
        self.field(&key, value)
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), RowError> {
        let key = key.serialize(KeySer)?;
        self.field(&key, value)
    }
    fn end(self) -> Result<(), RowError> {
        Ok(())
    }
}

/// The `serialize_*` methods a serialiser refuses: `$what` is what it accepts.
macro_rules! refuse_all {
    ($what:literal; $($name:ident($($arg:ty),*)),* $(,)?) => {
        $(
            fn $name(self, $(_: $arg),*) -> Result<Self::Ok, RowError> {
                Err(refuse(concat!("expected ", $what, ", not ", stringify!($name))))
            }
        )*
    };
}

/// The compound `serialize_*` methods a serialiser refuses.
macro_rules! refuse_compound {
    ($what:literal) => {
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a sequence")))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a tuple")))
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a tuple struct")))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a tuple variant")))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a struct variant")))
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a newtype variant")))
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<Self::Ok, RowError> {
            Err(refuse(concat!("expected ", $what, ", not a unit struct")))
        }
    };
}

impl<'r> Serializer for RowSer<'r> {
    type Ok = ();
    type Error = RowError;
    type SerializeSeq = Impossible<(), RowError>;
    type SerializeTuple = Impossible<(), RowError>;
    type SerializeTupleStruct = Impossible<(), RowError>;
    type SerializeTupleVariant = Impossible<(), RowError>;
    type SerializeMap = Fields<'r>;
    type SerializeStruct = Fields<'r>;
    type SerializeStructVariant = Impossible<(), RowError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'r>, RowError> {
        Ok(Fields { cols: self.cols, row: self.row, nested: self.nested, key: None })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Fields<'r>, RowError> {
        Ok(Fields { cols: self.cols, row: self.row, nested: self.nested, key: None })
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), RowError> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), RowError> {
        value.serialize(self)
    }
    /// An absent nested object: its columns stay NULL.
    fn serialize_none(self) -> Result<(), RowError> {
        match self.nested {
            Some(_) => Ok(()),
            None => Err(refuse("a record, not null")),
        }
    }
    fn serialize_unit(self) -> Result<(), RowError> {
        self.serialize_none()
    }
    refuse_all!("an object";
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_str(&str), serialize_bytes(&[u8]),
        serialize_unit_variant(&'static str, u32, &'static str),
    );
    refuse_compound!("an object");
}

/// A map key: text.
struct KeySer;

impl Serializer for KeySer {
    type Ok = String;
    type Error = RowError;
    type SerializeSeq = Impossible<String, RowError>;
    type SerializeTuple = Impossible<String, RowError>;
    type SerializeTupleStruct = Impossible<String, RowError>;
    type SerializeTupleVariant = Impossible<String, RowError>;
    type SerializeMap = Impossible<String, RowError>;
    type SerializeStruct = Impossible<String, RowError>;
    type SerializeStructVariant = Impossible<String, RowError>;

    fn serialize_str(self, v: &str) -> Result<String, RowError> {
        Ok(v.to_owned())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, RowError> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<String, RowError> {
        value.serialize(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(refuse("a text key, not a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, RowError> {
        Err(refuse("a text key, not a struct"))
    }
    refuse_all!("a text key";
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_variant(&'static str, u32, &'static str),
    );
    refuse_compound!("a text key");
}

/// One field's value as its (non-JSON) column's typed value.
struct ValueSer<'c>(&'c Column);

impl ValueSer<'_> {
    fn mismatch(&self, what: impl fmt::Display) -> RowError {
        refuse(format!("{} does not hold a {:?}: {what}", self.0.field, self.0.ty))
    }
    fn int(self, v: i64) -> Result<Value, RowError> {
        match self.0.ty {
            ColumnType::Int => Ok(Value::Int(v)),
            _ => Err(self.mismatch(v)),
        }
    }
}

impl Serializer for ValueSer<'_> {
    type Ok = Value;
    type Error = RowError;
    type SerializeSeq = Impossible<Value, RowError>;
    type SerializeTuple = Impossible<Value, RowError>;
    type SerializeTupleStruct = Impossible<Value, RowError>;
    type SerializeTupleVariant = Impossible<Value, RowError>;
    type SerializeMap = Impossible<Value, RowError>;
    type SerializeStruct = Impossible<Value, RowError>;
    type SerializeStructVariant = Impossible<Value, RowError>;

    fn serialize_str(self, v: &str) -> Result<Value, RowError> {
        let bad = |e: &dyn fmt::Display| refuse(format!("{}: '{v}': {e}", self.0.field));
        match self.0.ty {
            ColumnType::Text => Ok(Value::Text(v.to_owned())),
            ColumnType::Uuid => uuid::Uuid::parse_str(v).map(Value::Uuid).map_err(|e| bad(&e)),
            ColumnType::Timestamp => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| timestamp_value(t.with_timezone(&chrono::Utc)))
                .map_err(|e| bad(&e)),
            ColumnType::Date => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(Value::Date).map_err(|e| bad(&e)),
            _ => Err(self.mismatch(format!("'{v}'"))),
        }
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Value, RowError> {
        self.serialize_str(variant)
    }
    fn serialize_bool(self, v: bool) -> Result<Value, RowError> {
        match self.0.ty {
            ColumnType::Bool => Ok(Value::Bool(v)),
            _ => Err(self.mismatch(v)),
        }
    }
    fn serialize_i8(self, v: i8) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Value, RowError> {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Value, RowError> {
        self.int(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Value, RowError> {
        let i = i64::try_from(v).map_err(|_| self.mismatch(v))?;
        self.int(i)
    }
    fn serialize_none(self) -> Result<Value, RowError> {
        Ok(Value::Null)
    }
    fn serialize_unit(self) -> Result<Value, RowError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, RowError> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<Value, RowError> {
        value.serialize(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(self.mismatch("an object"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, RowError> {
        Err(self.mismatch("an object"))
    }
    refuse_all!("a column's value";
        serialize_f32(f32), serialize_f64(f64), serialize_char(char), serialize_bytes(&[u8]),
    );
    refuse_compound!("a column's value");
}
