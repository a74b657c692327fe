//! Translation between crm-core's typed [`Value`]s and each dialect's parameters and
//! column values. SQLite keeps UUIDs as 16-byte BLOBs, timestamps as INTEGER
//! microseconds, dates as TEXT and JSON as TEXT; PostgreSQL uses its native types;
//! MariaDB keeps UUIDs as BINARY(16), times as DATETIME(6) in UTC, dates as DATE and JSON
//! as its JSON text.

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::schema::{Column, ColumnType};
use crm_core::{Error, Result, Value};
use sea_query::Value as Sq;
#[cfg(feature = "mysql")]
use sqlx::mysql::{MySqlArguments, MySqlRow};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgArguments, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row};
use uuid::Uuid;

/// The SQL dialect of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL 12+.
    Postgres,
    /// MariaDB 10.6+ (MySQL's protocol and SQL).
    MySql,
}

/// A NULL of the column's type (PostgreSQL wants typed NULLs).
fn null_of(ty: ColumnType, d: Dialect) -> Sq {
    match (ty, d) {
        (ColumnType::Uuid, Dialect::Postgres) => Sq::Uuid(None),
        (ColumnType::Uuid, Dialect::Sqlite | Dialect::MySql) => Sq::Bytes(None),
        (ColumnType::Text, _) => Sq::String(None),
        (ColumnType::Int, _) => Sq::BigInt(None),
        (ColumnType::Bool, _) => Sq::Bool(None),
        (ColumnType::Timestamp, Dialect::Postgres | Dialect::MySql) => Sq::ChronoDateTimeUtc(None),
        (ColumnType::Timestamp, Dialect::Sqlite) => Sq::BigInt(None),
        (ColumnType::Date, Dialect::Postgres | Dialect::MySql) => Sq::ChronoDate(None),
        (ColumnType::Date, Dialect::Sqlite) => Sq::String(None),
        (ColumnType::Json | ColumnType::UuidList | ColumnType::TextList, Dialect::Postgres) => Sq::Json(None),
        (ColumnType::Json | ColumnType::UuidList | ColumnType::TextList, Dialect::Sqlite | Dialect::MySql) => {
            Sq::String(None)
        }
    }
}

fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A crm-core value as a sea-query parameter for a column of type `ty`.
pub(crate) fn to_sq(v: &Value, ty: ColumnType, d: Dialect) -> Sq {
    into_sq(v.clone(), ty, d)
}

/// [`to_sq`], taking the value (rows to insert are not copied).
pub(crate) fn into_sq(v: Value, ty: ColumnType, d: Dialect) -> Sq {
    match (v, d) {
        (Value::Null, _) => null_of(ty, d),
        (Value::Uuid(u), Dialect::Postgres) => Sq::Uuid(Some(Box::new(u))),
        (Value::Uuid(u), Dialect::Sqlite | Dialect::MySql) => Sq::Bytes(Some(Box::new(u.as_bytes().to_vec()))),
        (Value::Text(s), _) => Sq::String(Some(Box::new(s))),
        (Value::Int(i), _) => Sq::BigInt(Some(i)),
        (Value::Bool(b), _) => Sq::Bool(Some(b)),
        (Value::Timestamp(t), Dialect::Postgres | Dialect::MySql) => Sq::ChronoDateTimeUtc(Some(Box::new(t))),
        (Value::Timestamp(t), Dialect::Sqlite) => Sq::BigInt(Some(micros(&t))),
        (Value::Date(x), Dialect::Postgres | Dialect::MySql) => Sq::ChronoDate(Some(Box::new(x))),
        (Value::Date(x), Dialect::Sqlite) => Sq::String(Some(Box::new(x.format("%Y-%m-%d").to_string()))),
        (Value::Json(j), Dialect::Postgres) => Sq::Json(Some(Box::new(j))),
        (Value::Json(j), Dialect::Sqlite | Dialect::MySql) => Sq::String(Some(Box::new(j.to_string()))),
    }
}

fn unsupported(v: &Sq) -> Error {
    Error::internal_msg(format!("unsupported SQL parameter {v:?}"))
}

/// Binds sea-query parameters for PostgreSQL.
#[cfg(feature = "postgres")]
pub(crate) fn pg_args(values: sea_query::Values) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    for v in values.0 {
        let r = match v {
            Sq::Bool(b) => args.add(b),
            Sq::BigInt(i) => args.add(i),
            Sq::Int(i) => args.add(i),
            Sq::BigUnsigned(u) => args.add(u.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
            Sq::String(s) => args.add(s.map(|s| *s)),
            Sq::Uuid(u) => args.add(u.map(|u| *u)),
            Sq::ChronoDateTimeUtc(t) => args.add(t.map(|t| *t)),
            Sq::ChronoDate(x) => args.add(x.map(|x| *x)),
            Sq::Json(j) => args.add(j.map(|j| *j)),
            other => return Err(unsupported(&other)),
        };
        r.map_err(|e| Error::internal_msg(format!("binding a parameter: {e}")))?;
    }
    Ok(args)
}

/// Binds sea-query parameters for SQLite.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_args(values: sea_query::Values) -> Result<SqliteArguments<'static>> {
    let mut args = SqliteArguments::default();
    for v in values.0 {
        let r = match v {
            Sq::Bool(b) => args.add(b),
            Sq::BigInt(i) => args.add(i),
            Sq::Int(i) => args.add(i),
            Sq::BigUnsigned(u) => args.add(u.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
            Sq::String(s) => args.add(s.map(|s| *s)),
            Sq::Bytes(b) => args.add(b.map(|b| *b)),
            other => return Err(unsupported(&other)),
        };
        r.map_err(|e| Error::internal_msg(format!("binding a parameter: {e}")))?;
    }
    Ok(args)
}

/// Binds sea-query parameters for MariaDB.
#[cfg(feature = "mysql")]
pub(crate) fn mysql_args(values: sea_query::Values) -> Result<MySqlArguments> {
    let mut args = MySqlArguments::default();
    for v in values.0 {
        let r = match v {
            Sq::Bool(b) => args.add(b),
            Sq::BigInt(i) => args.add(i),
            Sq::Int(i) => args.add(i),
            Sq::BigUnsigned(u) => args.add(u.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
            Sq::String(s) => args.add(s.map(|s| *s)),
            Sq::Bytes(b) => args.add(b.map(|b| *b)),
            Sq::ChronoDateTimeUtc(t) => args.add(t.map(|t| *t)),
            Sq::ChronoDate(x) => args.add(x.map(|x| *x)),
            other => return Err(unsupported(&other)),
        };
        r.map_err(|e| Error::internal_msg(format!("binding a parameter: {e}")))?;
    }
    Ok(args)
}

fn decode_err(col: &Column, e: impl std::fmt::Display) -> Error {
    Error::internal_msg(format!("decoding column {}: {e}", col.name))
}

/// Decodes a PostgreSQL row whose columns are `cols`, in order.
#[cfg(feature = "postgres")]
pub(crate) fn pg_row(row: &PgRow, cols: &[Column]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        let v = match col.ty {
            ColumnType::Uuid => row.try_get::<Option<Uuid>, _>(i).map(|v| v.map(Value::Uuid)),
            ColumnType::Text => row.try_get::<Option<String>, _>(i).map(|v| v.map(Value::Text)),
            ColumnType::Int => row.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::Int)),
            ColumnType::Bool => row.try_get::<Option<bool>, _>(i).map(|v| v.map(Value::Bool)),
            ColumnType::Timestamp => row.try_get::<Option<DateTime<Utc>>, _>(i).map(|v| v.map(Value::Timestamp)),
            ColumnType::Date => row.try_get::<Option<NaiveDate>, _>(i).map(|v| v.map(Value::Date)),
            ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => {
                row.try_get::<Option<serde_json::Value>, _>(i).map(|v| v.map(Value::Json))
            }
        }
        .map_err(|e| decode_err(col, e))?;
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Decodes a SQLite row whose columns are `cols`, in order.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_row(row: &SqliteRow, cols: &[Column]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        let v = match col.ty {
            ColumnType::Uuid => match row.try_get::<Option<Vec<u8>>, _>(i).map_err(|e| decode_err(col, e))? {
                Some(b) => Some(Value::Uuid(Uuid::from_slice(&b).map_err(|e| decode_err(col, e))?)),
                None => None,
            },
            ColumnType::Text => row.try_get::<Option<String>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Text),
            ColumnType::Int => row.try_get::<Option<i64>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Int),
            ColumnType::Bool => row.try_get::<Option<bool>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Bool),
            ColumnType::Timestamp => match row.try_get::<Option<i64>, _>(i).map_err(|e| decode_err(col, e))? {
                Some(us) => Some(Value::Timestamp(
                    DateTime::from_timestamp_micros(us).ok_or_else(|| decode_err(col, "timestamp out of range"))?,
                )),
                None => None,
            },
            ColumnType::Date => match row.try_get::<Option<String>, _>(i).map_err(|e| decode_err(col, e))? {
                Some(s) => {
                    Some(Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| decode_err(col, e))?))
                }
                None => None,
            },
            ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => {
                match row.try_get::<Option<String>, _>(i).map_err(|e| decode_err(col, e))? {
                    Some(s) => Some(Value::Json(serde_json::from_str(&s).map_err(|e| decode_err(col, e))?)),
                    None => None,
                }
            }
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Decodes a MariaDB row whose columns are `cols`, in order. Text arrives as bytes (the
/// columns' binary collation marks them so) and is checked as UTF-8 here.
#[cfg(feature = "mysql")]
pub(crate) fn mysql_row(row: &MySqlRow, cols: &[Column]) -> Result<Vec<Value>> {
    let text = |i: usize, col: &Column| -> Result<Option<String>> {
        match row.try_get_unchecked::<Option<Vec<u8>>, _>(i).map_err(|e| decode_err(col, e))? {
            Some(b) => String::from_utf8(b).map(Some).map_err(|e| decode_err(col, e)),
            None => Ok(None),
        }
    };
    let mut out = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        let v = match col.ty {
            ColumnType::Uuid => match row.try_get::<Option<Vec<u8>>, _>(i).map_err(|e| decode_err(col, e))? {
                Some(b) => Some(Value::Uuid(Uuid::from_slice(&b).map_err(|e| decode_err(col, e))?)),
                None => None,
            },
            ColumnType::Text => text(i, col)?.map(Value::Text),
            ColumnType::Int => row.try_get::<Option<i64>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Int),
            ColumnType::Bool => row.try_get::<Option<bool>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Bool),
            ColumnType::Timestamp => {
                row.try_get::<Option<DateTime<Utc>>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Timestamp)
            }
            ColumnType::Date => {
                row.try_get::<Option<NaiveDate>, _>(i).map_err(|e| decode_err(col, e))?.map(Value::Date)
            }
            ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => match text(i, col)? {
                Some(s) => Some(Value::Json(serde_json::from_str(&s).map_err(|e| decode_err(col, e))?)),
                None => None,
            },
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}
