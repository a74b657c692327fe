//! Bulk reads for the analytics snapshot (`Store::scan_columns`): PostgreSQL streams the
//! rows with a binary `COPY … TO STDOUT`, decoded here straight into values; SQLite steps
//! one statement on a read-only connection of its own (rusqlite, on the same SQLite
//! library as sqlx), instead of sqlx's per-row hand-over between threads.

#[cfg(feature = "sqlite")]
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use crm_core::query::{Filter, Predicate};
use crm_core::schema::{Column, ColumnType, EntityKind, Row};
use crm_core::{Error, Result, Value};
#[cfg(feature = "postgres")]
use futures_util::TryStreamExt;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgPoolCopyExt};
use uuid::Uuid;

use crate::statements;

#[cfg(feature = "postgres")]
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
pub(crate) const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn bad(col: &Column, why: impl std::fmt::Display) -> Error {
    Error::internal_msg(format!("decoding column {} of a bulk read: {why}", col.name))
}

/// Rows handed over at a time by a streaming bulk read.
const BATCH: usize = 4_096;

/// Reads with `COPY (SELECT …) TO STDOUT (FORMAT binary)`. `COPY` takes no parameters,
/// so the statement carries its values inline: only ids, numbers, booleans and times
/// (the caller sends filters on text to a bound statement, [`compares_text`]). The rows
/// are decoded chunk by chunk as they arrive: with `out`, each batch is sent on as soon as
/// it is full (the answer is then empty); without, they are all answered.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres(
    pool: &PgPool,
    kind: EntityKind,
    cols: &[Column],
    filter: Option<&Filter>,
    include_deleted: bool,
    out: Option<&crm_core::store::RowBatches>,
) -> Result<Vec<Row>> {
    let select = statements::scan_inline_pg(kind, cols, filter, include_deleted);
    let statement = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let mut stream = pool.copy_out_raw(&statement).await.map_err(|e| crate::map_err(kind, e))?;
    let mut decoder = CopyDecoder::new(cols)?;
    let mut rows = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| crate::map_err(kind, e))? {
        decoder.feed(&chunk, &mut rows)?;
        if let Some(out) = out.filter(|_| rows.len() >= BATCH) {
            if out.send(std::mem::take(&mut rows)).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
    decoder.finish()?;
    match out {
        Some(out) => {
            if !rows.is_empty() {
                let _ = out.send(rows).await;
            }
            Ok(Vec::new())
        }
        None => Ok(rows),
    }
}

/// Decodes `COPY`'s binary format as it arrives, in chunks that may end anywhere: the
/// bytes of a row cut by a chunk's end wait for the next.
#[cfg(feature = "postgres")]
pub(crate) struct CopyDecoder<'c> {
    cols: &'c [Column],
    /// Bytes received and not yet decoded.
    pending: Vec<u8>,
    header: bool,
    trailer: bool,
    epoch: NaiveDate,
}

#[cfg(feature = "postgres")]
impl<'c> CopyDecoder<'c> {
    pub(crate) fn new(cols: &'c [Column]) -> Result<Self> {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).ok_or_else(|| Error::internal_msg("date"))?;
        Ok(Self { cols, pending: Vec::new(), header: false, trailer: false, epoch })
    }

    /// Decodes every whole row `chunk` completes into `rows`.
    pub(crate) fn feed(&mut self, chunk: &[u8], rows: &mut Vec<Row>) -> Result<()> {
        const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
        if self.trailer {
            return Err(Error::internal_msg("a bulk read went on after its end"));
        }
        self.pending.extend_from_slice(chunk);
        let data = std::mem::take(&mut self.pending);
        let mut r = Reader { data: &data, at: 0 };
        if !self.header {
            // Signature, flags, extension length, extension.
            let fixed = SIGNATURE.len() + 8;
            let Some(ext) = data.get(fixed - 4..fixed).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
                self.pending = data;
                return Ok(());
            };
            if data.len() < fixed + usize::try_from(ext).unwrap_or(0) {
                self.pending = data;
                return Ok(());
            }
            if r.take(SIGNATURE.len())? != SIGNATURE {
                return Err(Error::internal_msg("a bulk read is not in COPY's binary format"));
            }
            r.take(8)?;
            r.take(usize::try_from(ext).unwrap_or(0))?;
            self.header = true;
        }
        while let Some(len) = whole_row(&data[r.at..]) {
            if r.i16()? == -1 {
                self.trailer = true;
                break;
            }
            r.at -= 2;
            let end = r.at + len;
            rows.push(self.row(&mut r)?);
            if r.at != end {
                return Err(Error::internal_msg("a bulk read row is not as long as it says"));
            }
        }
        self.pending = data[r.at..].to_vec();
        Ok(())
    }

    /// Did the read end where `COPY` says it ends?
    pub(crate) fn finish(&self) -> Result<()> {
        if self.trailer && self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::internal_msg("a bulk read ended early"))
        }
    }

    fn row(&self, r: &mut Reader<'_>) -> Result<Row> {
        let cols = self.cols;
        let n = r.i16()?;
        if n as usize != cols.len() {
            return Err(Error::internal_msg(format!("a bulk read row has {n} fields for {} columns", cols.len())));
        }
        let mut row = Vec::with_capacity(cols.len());
        for col in cols {
            let len = r.i32()?;
            if len < 0 {
                row.push(Value::Null);
                continue;
            }
            let b = r.take(len as usize)?;
            row.push(match col.ty {
                ColumnType::Uuid => Value::Uuid(Uuid::from_slice(b).map_err(|e| bad(col, e))?),
                ColumnType::Text => Value::Text(std::str::from_utf8(b).map_err(|e| bad(col, e))?.to_string()),
                ColumnType::Int => Value::Int(be_i64(b).ok_or_else(|| bad(col, "not an integer"))?),
                ColumnType::Bool => Value::Bool(b.first().is_some_and(|v| *v != 0)),
                ColumnType::Timestamp => {
                    let us = be_i64(b).ok_or_else(|| bad(col, "not a timestamp"))?;
                    let t = us.checked_add(PG_EPOCH_US).and_then(DateTime::from_timestamp_micros);
                    Value::Timestamp(t.ok_or_else(|| bad(col, "timestamp out of range"))?)
                }
                ColumnType::Date => {
                    let days = be_i64(b).ok_or_else(|| bad(col, "not a date"))?;
                    let d = self.epoch.checked_add_signed(chrono::Duration::days(days));
                    Value::Date(d.ok_or_else(|| bad(col, "date out of range"))?)
                }
                ColumnType::Json | ColumnType::UuidList | ColumnType::TextList => {
                    // jsonb: a version byte (1), then the text.
                    let text = match b.split_first() {
                        Some((1, rest)) => rest,
                        _ => b,
                    };
                    Value::Json(serde_json::from_slice(text).map_err(|e| bad(col, e))?)
                }
            });
        }
        Ok(row)
    }
}

/// The length of the row (or the end marker) at the start of `data`, if all of it is
/// there.
#[cfg(feature = "postgres")]
fn whole_row(data: &[u8]) -> Option<usize> {
    let n = i16::from_be_bytes([*data.first()?, *data.get(1)?]);
    let mut at = 2usize;
    for _ in 0..n.max(0) {
        let b = data.get(at..at + 4)?;
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        at += 4 + usize::try_from(len).unwrap_or(0);
        if at > data.len() {
            return None;
        }
    }
    Some(at)
}

#[cfg(feature = "postgres")]
/// A cursor over `COPY`'s binary format.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

#[cfg(feature = "postgres")]
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| Error::internal_msg("a bulk read ended early"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(feature = "postgres")]
fn be_i64(b: &[u8]) -> Option<i64> {
    Some(match b.len() {
        8 => i64::from_be_bytes(b.try_into().ok()?),
        4 => i64::from(i32::from_be_bytes(b.try_into().ok()?)),
        2 => i64::from(i16::from_be_bytes(b.try_into().ok()?)),
        _ => return None,
    })
}

/// Does the filter need the `regexp` function sqlx registers (case-insensitive patterns)?
/// Does the filter compare with text (or JSON)? `COPY` cannot bind it, and the bulk read
/// never inlines one: such a read takes the ordinary, bound statement instead.
#[cfg(feature = "postgres")]
pub(crate) fn compares_text(f: Option<&Filter>) -> bool {
    let texty = |v: &Value| matches!(v, Value::Text(_) | Value::Json(_));
    match f {
        None => false,
        Some(Filter::And(v) | Filter::Or(v)) => v.iter().any(|f| compares_text(Some(f))),
        Some(Filter::Not(f)) => compares_text(Some(f)),
        Some(Filter::Cmp(c)) => match &c.pred {
            Predicate::Eq(v)
            | Predicate::Neq(v)
            | Predicate::Gt(v)
            | Predicate::Gte(v)
            | Predicate::Lt(v)
            | Predicate::Lte(v) => texty(v),
            Predicate::In(vs) => vs.iter().any(texty),
            Predicate::StartsWith(_) | Predicate::Like(_) | Predicate::ILike(_) => true,
            Predicate::IsNull | Predicate::IsNotNull => false,
        },
    }
}

#[cfg(feature = "sqlite")]
pub(crate) fn needs_regexp(f: Option<&Filter>) -> bool {
    match f {
        None => false,
        Some(Filter::And(v) | Filter::Or(v)) => v.iter().any(|f| needs_regexp(Some(f))),
        Some(Filter::Not(f)) => needs_regexp(Some(f)),
        Some(Filter::Cmp(c)) => matches!(c.pred, Predicate::ILike(_)),
    }
}

/// Reads with one statement on a read-only connection of its own (blocking: run it on a
/// blocking thread), interrupted at `deadline` (the store's statement limit). With `out`,
/// the rows are sent on a batch at a time as they are read (the answer is then empty).
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite(
    path: &Path,
    kind: EntityKind,
    cols: &[Column],
    filter: Option<&Filter>,
    include_deleted: bool,
    deadline: Option<std::time::Instant>,
    out: Option<crm_core::store::RowBatches>,
) -> Result<Vec<Row>> {
    use rusqlite::types::ValueRef;
    let (sql, values) = statements::scan_sqlite(kind, cols, filter, include_deleted);
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| sqlite_err(kind, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| sqlite_err(kind, e))?;
    if let Some(deadline) = deadline {
        // `true` interrupts (rusqlite's sense, the opposite of sqlx's).
        conn.progress_handler(10_000, Some(move || std::time::Instant::now() >= deadline));
    }
    let mut stmt = conn.prepare(&sql).map_err(|e| sqlite_err(kind, e))?;
    let params = values.0.into_iter().map(sqlite_param).collect::<Result<Vec<_>>>()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(|e| sqlite_err(kind, e))?;
    let mut rows_read = Vec::new();
    while let Some(row) = rows.next().map_err(|e| sqlite_err(kind, e))? {
        let mut values = Vec::with_capacity(cols.len());
        for (i, col) in cols.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| sqlite_err(kind, e))?;
            values.push(match (col.ty, v) {
                (_, ValueRef::Null) => Value::Null,
                (ColumnType::Uuid, ValueRef::Blob(b)) => Value::Uuid(Uuid::from_slice(b).map_err(|e| bad(col, e))?),
                (ColumnType::Text, ValueRef::Text(t)) => {
                    Value::Text(std::str::from_utf8(t).map_err(|e| bad(col, e))?.to_string())
                }
                (ColumnType::Int, ValueRef::Integer(n)) => Value::Int(n),
                (ColumnType::Bool, ValueRef::Integer(n)) => Value::Bool(n != 0),
                (ColumnType::Timestamp, ValueRef::Integer(us)) => Value::Timestamp(
                    DateTime::from_timestamp_micros(us).ok_or_else(|| bad(col, "timestamp out of range"))?,
                ),
                (ColumnType::Date, ValueRef::Text(t)) => {
                    let s = std::str::from_utf8(t).map_err(|e| bad(col, e))?;
                    Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| bad(col, e))?)
                }
                (ColumnType::Json | ColumnType::UuidList | ColumnType::TextList, ValueRef::Text(t)) => {
                    Value::Json(serde_json::from_slice(t).map_err(|e| bad(col, e))?)
                }
                (ty, other) => return Err(bad(col, format!("a {:?} where a {ty:?} belongs", other.data_type()))),
            });
        }
        rows_read.push(values);
        if let Some(out) = out.as_ref().filter(|_| rows_read.len() >= BATCH) {
            if out.blocking_send(std::mem::take(&mut rows_read)).is_err() {
                return Ok(Vec::new());
            }
        }
    }
    match out {
        Some(out) => {
            if !rows_read.is_empty() {
                let _ = out.blocking_send(rows_read);
            }
            Ok(Vec::new())
        }
        None => Ok(rows_read),
    }
}

#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_param(v: sea_query::Value) -> Result<rusqlite::types::Value> {
    use rusqlite::types::Value as R;
    use sea_query::Value as Sq;
    Ok(match v {
        Sq::Bool(b) => b.map_or(R::Null, |b| R::Integer(i64::from(b))),
        Sq::BigInt(i) => i.map_or(R::Null, R::Integer),
        Sq::Int(i) => i.map_or(R::Null, |i| R::Integer(i64::from(i))),
        Sq::BigUnsigned(u) => u.map_or(R::Null, |u| R::Integer(i64::try_from(u).unwrap_or(i64::MAX))),
        Sq::String(s) => s.map_or(R::Null, |s| R::Text(*s)),
        Sq::Bytes(b) => b.map_or(R::Null, |b| R::Blob(*b)),
        other => return Err(Error::internal_msg(format!("a bulk read cannot bind {other:?}"))),
    })
}

#[cfg(feature = "sqlite")]
fn sqlite_err(kind: EntityKind, e: rusqlite::Error) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
        return Error::Timeout(format!("reading {} in bulk ran past its time limit", kind.table()));
    }
    Error::internal(format!("reading {} in bulk", kind.table()), e)
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    /// `COPY`'s binary form of rows of (uuid, text, int), NULL as `None`.
    fn copy_bytes(rows: &[(Uuid, Option<&str>, i64)]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        // A header extension of 3 bytes, skipped by readers.
        out.extend_from_slice(&3i32.to_be_bytes());
        out.extend_from_slice(b"ext");
        for (id, text, n) in rows {
            out.extend_from_slice(&3i16.to_be_bytes());
            out.extend_from_slice(&16i32.to_be_bytes());
            out.extend_from_slice(id.as_bytes());
            match text {
                Some(t) => {
                    out.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    out.extend_from_slice(t.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    const COLS: &[Column] = &[
        Column::new("id", "id", ColumnType::Uuid),
        Column::new("name", "name", ColumnType::Text),
        Column::new("n", "n", ColumnType::Int),
    ];

    fn decode_in_chunks(data: &[u8], size: usize) -> Result<Vec<Row>> {
        let mut d = CopyDecoder::new(COLS)?;
        let mut rows = Vec::new();
        for chunk in data.chunks(size) {
            d.feed(chunk, &mut rows)?;
        }
        d.finish()?;
        Ok(rows)
    }

    #[test]
    fn copy_decodes_the_same_however_the_stream_is_cut() -> Result<()> {
        let rows = [(Uuid::from_u128(1), Some("Ann"), 7), (Uuid::from_u128(2), None, -1), (Uuid::nil(), Some(""), 0)];
        let data = copy_bytes(&rows);
        let want: Vec<Row> = rows
            .iter()
            .map(|(id, t, n)| vec![Value::Uuid(*id), t.map_or(Value::Null, |t| Value::Text(t.into())), Value::Int(*n)])
            .collect();
        for size in 1..=data.len() {
            assert_eq!(decode_in_chunks(&data, size)?, want, "chunks of {size} bytes");
        }
        // Cut short (no end marker, or half a row): an error, never rows made up.
        assert!(decode_in_chunks(&data[..data.len() - 2], 64).is_err());
        assert!(decode_in_chunks(&data[..data.len() - 9], 64).is_err());
        Ok(())
    }
}
