//! Exports of a report's DataFrame: CSV (REPORTS.md's canonical form), Parquet, JSON (an
//! array of row objects), XLSX (rust_xlsxwriter: a typed sheet, plus an "About" sheet
//! with the title and parameters) and PDF (title, parameters, chart and table).

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use polars::prelude::*;
use rust_xlsxwriter::{Format as CellFormat, Workbook, XlsxError};

use super::from_polars;
use crate::error::{Error, Result};
use crate::model::report::ChartSpec;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, REPORTS.md's canonical output.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// A JSON array of row objects.
    Json,
    /// An Excel workbook.
    Xlsx,
    /// A PDF document: title, parameters, a chart and the table.
    Pdf,
}

impl Format {
    /// Every format, by name.
    pub const ALL: [Format; 5] = [Format::Csv, Format::Parquet, Format::Json, Format::Xlsx, Format::Pdf];

    /// The format's name (and file extension).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
        }
    }

    /// The media type of the exported bytes.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pdf => "application/pdf",
        }
    }

    /// A format by name (`csv`, `parquet`, `json`, `xlsx`, `pdf`; any case).
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.name() == lower).ok_or_else(|| {
            Error::invalid(
                "format",
                "invalid_value",
                format!("'{s}' is not an export format; they are {}", Self::ALL.map(|f| f.name()).join(", ")),
            )
        })
    }

    /// The format a file name's extension names.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) => Self::parse(ext),
            None => Err(Error::invalid(
                "format",
                "required",
                format!("{} has no extension to take the format from; name one", path.display()),
            )),
        }
    }
}

/// What an export says about its report besides the rows (the XLSX "About" sheet, the
/// PDF's heading and chart).
#[derive(Debug, Clone, Default)]
pub struct About {
    /// The report's title.
    pub title: Option<String>,
    /// The parameters, as (name, value) text.
    pub parameters: Vec<(String, String)>,
    /// The PDF's chart; without one, a bar chart of the first label column and the
    /// first numeric columns (none when the report has no numbers).
    pub chart: Option<ChartSpec>,
}

/// Excel's row limit (header included).
const XLSX_MAX_ROWS: usize = 1_048_576;

/// The report's rows in a format.
pub fn export(df: &DataFrame, format: Format, about: &About) -> Result<Vec<u8>> {
    match format {
        Format::Pdf => {
            let title = about.title.as_deref().unwrap_or("Report");
            let spec = about.chart.clone().or_else(|| super::chart::guess(df));
            let data = spec.map(|s| super::chart::data(df, &s, title)).transpose()?;
            super::pdf::pdf(df, about, data.as_ref())
        }
        Format::Xlsx => xlsx(df, about).map_err(|e| match e {
            XlsxError::RowColumnLimitError => Error::invalid(
                "format",
                "out_of_range",
                format!("{} rows do not fit an Excel sheet ({} at most)", df.height(), XLSX_MAX_ROWS - 1),
            ),
            other => Error::internal("writing the workbook", other),
        }),
        Format::Csv | Format::Parquet | Format::Json => {
            let mut out = Vec::new();
            write_export(df, format, about, &mut out)?;
            Ok(out)
        }
    }
}

impl Format {
    /// Whether [`write_export`] writes this format as it goes (CSV and JSON row by row,
    /// Parquet a row group at a time), so a server can send it while it is made. XLSX (a
    /// zip that needs to seek) and PDF are made whole first.
    pub fn streams(self) -> bool {
        matches!(self, Format::Csv | Format::Parquet | Format::Json)
    }
}

/// Writes the report's rows in a format to `out`: in pieces for the formats that
/// [`Format::streams`], whole for the others. An error writing to `out` (a client gone)
/// stops the export.
pub fn write_export(df: &DataFrame, format: Format, about: &About, out: &mut dyn Write) -> Result<()> {
    let written = |e: std::io::Error| Error::internal("writing the export", e);
    match format {
        Format::Csv => csv(df, out),
        Format::Parquet => {
            ParquetWriter::new(out).finish(&mut df.clone()).map_err(from_polars)?;
            Ok(())
        }
        Format::Json => write_json_rows(df, false, out),
        Format::Xlsx | Format::Pdf => out.write_all(&export(df, format, about)?).map_err(written),
    }
}

/// Writes an export to a file; the format defaults to the file's extension.
pub fn export_to(df: &DataFrame, path: &Path, format: Option<Format>, about: &About) -> Result<Format> {
    let format = match format {
        Some(f) => f,
        None => Format::from_path(path)?,
    };
    let bytes = export(df, format, about)?;
    std::fs::write(path, bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            Error::invalid("path", "invalid_value", format!("cannot write {}: {e}", path.display()))
        }
        _ => Error::internal(format!("writing {}", path.display()), e),
    })?;
    Ok(format)
}

/// REPORTS.md's canonical CSV: a header, `\n` line ends, quoting as needed, floats with
/// six decimals, timestamps `YYYY-MM-DD HH:MM:SS`, NULL as an empty field; text that a
/// spreadsheet would run as a formula is defused ([`defuse_formulas`]).
fn csv(df: &DataFrame, out: &mut dyn Write) -> Result<()> {
    let mut df = defuse_formulas(df)?;
    CsvWriter::new(out)
        .include_header(true)
        .with_line_terminator("\n".into())
        .with_float_precision(Some(6))
        .with_float_scientific(Some(false))
        .with_date_format(Some("%Y-%m-%d".into()))
        .with_datetime_format(Some("%Y-%m-%d %H:%M:%S".into()))
        .with_null_value(PlSmallStr::EMPTY)
        .finish(&mut df)
        .map_err(from_polars)?;
    Ok(())
}

/// Whether a spreadsheet opening a CSV would take this text for a formula (OWASP's rule:
/// it starts with `=`, `+`, `-`, `@`, a tab or a carriage return).
pub fn is_formula_like(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The text as it goes into a CSV cell: formula-like text gets a leading `'`, which
/// spreadsheets show as text (a record named `=HYPERLINK(…)` stays a name).
pub fn defuse_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_like(text) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The frame with every text cell passed through [`defuse_formula`]; numbers (a negative
/// amount) stay numbers.
pub fn defuse_formulas(df: &DataFrame) -> Result<DataFrame> {
    let mut out = df.clone();
    for column in df.columns() {
        if column.dtype() != &DataType::String {
            continue;
        }
        let text = column.str().map_err(from_polars)?;
        if !text.iter().flatten().any(is_formula_like) {
            continue;
        }
        let mut defused: StringChunked = text.iter().map(|v| v.map(defuse_formula)).collect();
        defused.rename(column.name().clone());
        out.replace(column.name(), defused.into_series().into()).map_err(from_polars)?;
    }
    Ok(out)
}

/// A value in JSON: numbers, strings, booleans; dates `YYYY-MM-DD`; timestamps ISO 8601
/// (with `Z` when the column is in UTC, or when `utc` says naive ones are); NaN and
/// infinities as NULL.
fn json_value(v: &AnyValue<'_>, utc: bool) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AnyValue::Null => J::Null,
        AnyValue::Boolean(b) => J::Bool(*b),
        AnyValue::Int8(i) => J::from(*i),
        AnyValue::Int16(i) => J::from(*i),
        AnyValue::Int32(i) => J::from(*i),
        AnyValue::Int64(i) => J::from(*i),
        AnyValue::UInt8(i) => J::from(*i),
        AnyValue::UInt16(i) => J::from(*i),
        AnyValue::UInt32(i) => J::from(*i),
        AnyValue::UInt64(i) => J::from(*i),
        AnyValue::Float32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        AnyValue::Float64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        AnyValue::String(s) => J::String((*s).to_string()),
        AnyValue::StringOwned(s) => J::String(s.to_string()),
        AnyValue::Date(d) => date(*d).map_or(J::Null, |d| J::String(d.format("%Y-%m-%d").to_string())),
        AnyValue::Datetime(v, unit, tz) => datetime(*v, *unit).map_or(J::Null, |t| {
            let utc = if tz.is_some() { tz.is_some_and(|z| z.as_str() == "UTC") } else { utc };
            J::String(format!("{}{}", t.format("%Y-%m-%dT%H:%M:%S%.f"), if utc { "Z" } else { "" }))
        }),
        AnyValue::DatetimeOwned(v, unit, tz) => {
            json_value(&AnyValue::Datetime(*v, *unit, tz.as_ref().map(|z| z.as_ref())), utc)
        }
        other => J::String(other.str_value().to_string()),
    }
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days.into()))
}

fn datetime(v: i64, unit: TimeUnit) -> Option<NaiveDateTime> {
    let t = match unit {
        TimeUnit::Nanoseconds => DateTime::from_timestamp_nanos(v),
        TimeUnit::Microseconds => DateTime::from_timestamp_micros(v)?,
        TimeUnit::Milliseconds => DateTime::from_timestamp_millis(v)?,
    };
    Some(t.naive_utc())
}

/// The rows as a JSON array of objects, keys in column order. With `utc`, timestamps
/// without a time zone are taken as UTC (`…Z`), as the store's snapshot holds them.
pub fn json_rows(df: &DataFrame, utc: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_json_rows(df, utc, &mut out)?;
    Ok(out)
}

/// [`json_rows`] written to `out` row by row.
fn write_json_rows(df: &DataFrame, utc: bool, out: &mut dyn Write) -> Result<()> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| serde_json::to_string(n.as_str()).unwrap_or_else(|_| "\"\"".into()))
        .collect();
    let columns = df.columns();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut row_text = String::new();
    for row in 0..df.height() {
        row_text.clear();
        row_text.push_str(match row {
            0 => "[{",
            _ => ",\n{",
        });
        for (i, (name, column)) in names.iter().zip(columns).enumerate() {
            if i > 0 {
                row_text.push(',');
            }
            row_text.push_str(name);
            row_text.push(':');
            let v = column.get(row).map_err(from_polars)?;
            row_text.push_str(&json_value(&v, utc).to_string());
        }
        row_text.push('}');
        out.write_all(row_text.as_bytes()).map_err(|e| Error::internal("writing the export", e))?;
    }
    let end: &[u8] = if df.height() == 0 { b"[]\n" } else { b"]\n" };
    out.write_all(end).and_then(|()| out.flush()).map_err(|e| Error::internal("writing the export", e))
}

fn xlsx(df: &DataFrame, about: &About) -> std::result::Result<Vec<u8>, XlsxError> {
    if df.height() >= XLSX_MAX_ROWS {
        return Err(XlsxError::RowColumnLimitError);
    }
    let mut book = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let day = CellFormat::new().set_num_format("yyyy-mm-dd");
    let time = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let decimals = CellFormat::new().set_num_format("0.000000");
    let sheet = book.add_worksheet().set_name("Report")?;
    for (c, column) in df.columns().iter().enumerate() {
        let c = u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)?;
        sheet.write_string_with_format(0, c, column.name().as_str(), &bold)?;
        for r in 0..df.height() {
            let row = u32::try_from(r + 1).map_err(|_| XlsxError::RowColumnLimitError)?;
            let v = column.get(r).map_err(|e| XlsxError::ParameterError(e.to_string()))?;
            match v {
                AnyValue::Null => {}
                AnyValue::Float32(f) if f.is_finite() => {
                    sheet.write_number_with_format(row, c, f64::from(f), &decimals)?;
                }
                AnyValue::Float64(f) if f.is_finite() => {
                    sheet.write_number_with_format(row, c, f, &decimals)?;
                }
                AnyValue::Float32(_) | AnyValue::Float64(_) => {}
                AnyValue::Boolean(b) => {
                    sheet.write_boolean(row, c, b)?;
                }
                AnyValue::Date(d) => {
                    if let Some(d) = date(d) {
                        sheet.write_datetime_with_format(row, c, d, &day)?;
                    }
                }
                AnyValue::Datetime(v, unit, _) => {
                    if let Some(t) = datetime(v, unit) {
                        sheet.write_datetime_with_format(row, c, t, &time)?;
                    }
                }
                // Integers (counts, cents, int64 ids) as numbers: exact up to 2^53.
                ref v if v.dtype().is_integer() => match v.extract::<i64>() {
                    Some(i) if i.unsigned_abs() <= 1 << 53 => {
                        sheet.write_number(row, c, i as f64)?;
                    }
                    _ => {
                        sheet.write_string(row, c, v.str_value().as_ref())?;
                    }
                },
                ref v => {
                    sheet.write_string(row, c, v.str_value().as_ref())?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    if df.width() > 0 {
        let last = u16::try_from(df.width() - 1).map_err(|_| XlsxError::RowColumnLimitError)?;
        sheet.autofilter(0, 0, u32::try_from(df.height()).unwrap_or(u32::MAX), last)?;
    }
    sheet.autofit();

    let info = book.add_worksheet().set_name("About")?;
    info.write_string_with_format(0, 0, about.title.as_deref().unwrap_or("Report"), &bold)?;
    info.write_string(1, 0, format!("{} rows", df.height()))?;
    if !about.parameters.is_empty() {
        info.write_string_with_format(3, 0, "parameter", &bold)?;
        info.write_string_with_format(3, 1, "value", &bold)?;
        for (i, (k, v)) in about.parameters.iter().enumerate() {
            let row = u32::try_from(i + 4).unwrap_or(u32::MAX);
            info.write_string(row, 0, k)?;
            info.write_string(row, 1, v)?;
        }
    }
    info.autofit();
    book.save_to_buffer()
}
