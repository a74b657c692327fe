//! Many rows of one kind into PostgreSQL with `COPY … FROM STDIN (FORMAT binary)`.
//!
//! An import's batch or a `create_many` inserts hundreds of rows at once. A multi-row
//! `INSERT` has the server parse, plan and bind a statement of thousands of parameters;
//! `COPY` streams the rows in PostgreSQL's own binary form and inserts them in groups,
//! which costs the server a fifth to a quarter less per row (a contact: 24–28 µs of
//! backend CPU → 18–22 µs), and took an import of a million contacts from 18,500 to
//! about 30,000 rows/s (`benches/README.md`). Below [`MIN_ROWS`] rows the `INSERT`
//! stays: `COPY` takes one more round trip.
//!
//! The encoding is the one the bulk read's decoder (`scan::CopyDecoder`) reads, column
//! type by column type; a value that does not fit its column's type (none does today)
//! leaves the rows to the `INSERT`, which reports it as before.

use crm_core::schema::{ColumnType, EntityKind, Row};
use crm_core::Value;

use crate::scan::PG_EPOCH_US;
use crate::statements::quoted;
use crate::values::Dialect;

/// The fewest rows sent with `COPY`.
pub(crate) const MIN_ROWS: usize = 64;

/// `COPY <table> (<every column>) FROM STDIN (FORMAT binary)`.
pub(crate) fn statement(kind: EntityKind) -> String {
    let cols: Vec<String> = kind.columns().iter().map(|c| quoted(c.name, Dialect::Postgres)).collect();
    format!("COPY {} ({}) FROM STDIN (FORMAT binary)", quoted(kind.table(), Dialect::Postgres), cols.join(", "))
}

/// The rows in `COPY`'s binary form, or `None` when a row's length or a value does not
/// fit the kind's columns.
pub(crate) fn encode(kind: EntityKind, rows: &[Row]) -> Option<Vec<u8>> {
    let cols = kind.columns();
    let fields = i16::try_from(cols.len()).ok()?;
    let mut out = Vec::with_capacity(32 + rows.len() * cols.len() * 24);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for row in rows {
        if row.len() != cols.len() {
            return None;
        }
        out.extend_from_slice(&fields.to_be_bytes());
        for (c, v) in cols.iter().zip(row) {
            field(&mut out, v, c.ty)?;
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Some(out)
}

/// One field: its length (-1 for NULL) and its bytes as PostgreSQL's `*_recv` reads them.
fn field(out: &mut Vec<u8>, v: &Value, ty: ColumnType) -> Option<()> {
    let sized = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    match (v, ty) {
        (Value::Null, _) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        (Value::Uuid(u), ColumnType::Uuid) => sized(out, u.as_bytes()),
        (Value::Text(s), ColumnType::Text) => sized(out, s.as_bytes()),
        (Value::Int(i), ColumnType::Int) => sized(out, &i.to_be_bytes()),
        (Value::Bool(b), ColumnType::Bool) => sized(out, &[u8::from(*b)]),
        (Value::Timestamp(t), ColumnType::Timestamp) => {
            sized(out, &t.timestamp_micros().checked_sub(PG_EPOCH_US)?.to_be_bytes());
        }
        (Value::Date(d), ColumnType::Date) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)?;
            let days = i32::try_from(d.signed_duration_since(epoch).num_days()).ok()?;
            sized(out, &days.to_be_bytes());
        }
        (Value::Json(j), ColumnType::Json | ColumnType::UuidList | ColumnType::TextList) => {
            // jsonb's binary form: a version byte (1), then the JSON text.
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            out.push(1);
            serde_json::to_writer(&mut *out, j).ok()?;
            let len = i32::try_from(out.len() - at - 4).ok()?;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::scan::CopyDecoder;

    fn contact_row(i: u128, email: Option<&str>) -> Row {
        let cols = EntityKind::Contact.columns();
        cols.iter()
            .map(|c| match (c.name, c.ty) {
                ("email", _) => email.map_or(Value::Null, |e| Value::Text(e.into())),
                ("converted_at" | "deleted_at", _) => Value::Null,
                (_, ColumnType::Uuid) => Value::Uuid(uuid::Uuid::from_u128(i)),
                (_, ColumnType::Text) => Value::Text(format!("Zoë «{i}»\n\"quoted\"")),
                (_, ColumnType::Int) => Value::Int(-7 - i as i64),
                (_, ColumnType::Bool) => Value::Bool(i.is_multiple_of(2)),
                (_, ColumnType::Timestamp) => Value::Timestamp(
                    Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).single().unwrap_or_default()
                        + chrono::Duration::microseconds(i as i64),
                ),
                (_, ColumnType::Date) => Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default()),
                (_, _) => Value::Json(serde_json::json!({"tags": ["a", "b"], "n": i as u64, "none": null})),
            })
            .collect()
    }

    /// What `encode` writes, the bulk read's decoder reads back value for value, cut
    /// into chunks anywhere.
    #[test]
    fn encoded_rows_decode_to_themselves() -> crm_core::Result<()> {
        let rows: Vec<Row> = (0..5).map(|i| contact_row(i, (i != 3).then_some("a@example.com"))).collect();
        let bytes = encode(EntityKind::Contact, &rows).ok_or_else(|| crm_core::Error::internal_msg("not encoded"))?;
        let cols = EntityKind::Contact.columns();
        for cut in [1, 7, 100, bytes.len()] {
            let mut decoder = CopyDecoder::new(cols)?;
            let mut back = Vec::new();
            for chunk in bytes.chunks(cut) {
                decoder.feed(chunk, &mut back)?;
            }
            decoder.finish()?;
            assert_eq!(back, rows, "chunks of {cut}");
        }
        Ok(())
    }

    /// A value of another type than its column's, or a short row, is left to `INSERT`.
    #[test]
    fn rows_that_do_not_fit_are_not_encoded() {
        let mut row = contact_row(1, None);
        row[0] = Value::Text("not a uuid".into());
        assert!(encode(EntityKind::Contact, &[row]).is_none());
        let mut short = contact_row(1, None);
        short.pop();
        assert!(encode(EntityKind::Contact, &[short]).is_none());
    }

    #[test]
    fn the_statement_names_every_column() {
        let sql = statement(EntityKind::Contact);
        assert!(sql.starts_with("COPY \"contacts\" (\"id\", \"name\", "), "{sql}");
        assert!(sql.ends_with(") FROM STDIN (FORMAT binary)"), "{sql}");
    }
}
