//! Exports of record lists: every record a list query finds (its filter, search, sort and
//! `includeDeleted`), within the caller's export scope, written as CSV, XLSX or Parquet
//! while it is read. Memory stays constant whatever the list's size: pages of
//! [`PAGE`] rows go through a small queue to a writer thread, CSV rows and Parquet row
//! groups leave as they are made, and an XLSX sheet goes to a temporary file before it
//! is zipped.
//!
//! A file holds one column per field of the record, named as the API names it
//! (`lifecycleStage`); lists (`tags`) are joined with `; `, objects (`address`) are JSON
//! text, timestamps RFC 3339 in UTC. CSV text that a spreadsheet would run as a formula
//! gets a leading `'` (an import takes it off again).

use std::io::Write;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::policy::{Action, Actor};
use crate::query::{and_opt, keyset_filter, Direction, Filter, ListQuery, SortKey, StoreQuery};
use crate::schema::{format_ts, Column, ColumnType, EntityKind, Row, Value};
use crate::service::Crm;

/// Rows read from the store at a time.
pub const PAGE: u32 = 1_000;

/// Excel's row limit (header included).
pub const XLSX_MAX_ROWS: u64 = 1_048_576;

/// The kinds whose lists can be exported.
pub const EXPORTABLE: [EntityKind; 5] =
    [EntityKind::Contact, EntityKind::Company, EntityKind::Deal, EntityKind::Task, EntityKind::Interaction];

/// The file formats of a list export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values, UTF-8, formula-safe.
    Csv,
    /// An Excel workbook (needs the `analytics` feature).
    Xlsx,
    /// Apache Parquet (needs the `analytics` feature).
    Parquet,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Parquet];

    /// The format's name and file extension.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// The media type of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// A format by name (any case); an unknown one is an error on `format`.
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.name() == lower).ok_or_else(|| {
            Error::invalid(
                "format",
                "invalid_value",
                format!("'{s}' is not an export format; they are {}", Self::ALL.map(|f| f.name()).join(", ")),
            )
        })
    }
}

/// The columns a file of `kind` holds: every column with an API name, in the kind's
/// order (columns computed by core, like the search text, are left out).
pub fn export_columns(kind: EntityKind) -> Vec<usize> {
    kind.columns().iter().enumerate().filter(|(_, c)| !c.field.is_empty()).map(|(i, _)| i).collect()
}

/// An export checked and recorded, ready to be written ([`Crm::export_records`]).
pub struct RecordExport {
    crm: Crm,
    kind: EntityKind,
    format: ExportFormat,
    filter: Option<Filter>,
    sort: Vec<SortKey>,
    include_deleted: bool,
    columns: Vec<usize>,
}

impl std::fmt::Debug for RecordExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordExport").field("kind", &self.kind).field("format", &self.format).finish()
    }
}

impl Crm {
    /// Starts an export of every record `query` finds (its page size and cursor are
    /// ignored) that the actor may export: checks the export right (and the restore
    /// right for `includeDeleted`), refuses an XLSX file of more rows than a sheet holds,
    /// and records `<kind>.exported` with the query and format in the audit log. The
    /// rows are read when the export is written ([`RecordExport::write_to`]).
    pub async fn export_records(
        &self,
        actor: &Actor,
        kind: EntityKind,
        query: ListQuery,
        format: ExportFormat,
    ) -> Result<RecordExport> {
        if format != ExportFormat::Csv && !cfg!(feature = "analytics") {
            return Err(Error::invalid(
                "format",
                "invalid_value",
                format!("{} exports need crm-core's analytics feature", format.name()),
            ));
        }
        self.begin_export(actor, kind, query, format, format.name()).await
    }

    /// Every record `query` finds that the actor may export, as one DataFrame (the
    /// columns and types of the Parquet export), audited like a file export. It holds
    /// every row, so it is for lists that fit in memory: Python notebooks.
    #[cfg(feature = "analytics")]
    pub async fn records_frame(
        &self,
        actor: &Actor,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<polars::prelude::DataFrame> {
        let export = self.begin_export(actor, kind, query, ExportFormat::Parquet, "dataframe").await?;
        let columns: Vec<&'static Column> = export.columns.iter().map(|&i| &kind.columns()[i]).collect();
        let mut frame = frames::FrameBuilder::new(&columns);
        export
            .pages(|rows| {
                frame.extend(&rows);
                true
            })
            .await?;
        frame.finish()
    }

    async fn begin_export(
        &self,
        actor: &Actor,
        kind: EntityKind,
        query: ListQuery,
        format: ExportFormat,
        audited_as: &str,
    ) -> Result<RecordExport> {
        if !EXPORTABLE.contains(&kind) {
            return Err(Error::invalid("kind", "invalid_value", format!("{} cannot be exported", kind.name())));
        }
        let newest = kind.column("created_at").map(|c| SortKey { column: c, direction: Direction::Desc });
        let mut errs = crate::error::Errors::new();
        let basis = self.list_basis(actor, kind, &query, Action::Export, newest.into_iter().collect(), &mut errs)?;
        errs.finish()?;
        let filter = and_opt([query.filter.clone(), basis.search, basis.scoped]);
        let sort = basis.sort;
        if format == ExportFormat::Xlsx {
            let n = self.read_store().count(kind, filter.as_ref(), query.include_deleted).await?;
            if n >= XLSX_MAX_ROWS {
                return Err(Error::invalid(
                    "format",
                    "out_of_range",
                    format!(
                        "{n} records do not fit an Excel sheet ({} at most); export CSV or Parquet",
                        XLSX_MAX_ROWS - 1
                    ),
                ));
            }
        }
        let about = serde_json::json!({
            "format": audited_as,
            "filter": query.filter.as_ref().map(ToString::to_string),
            "q": query.search,
            "sort": query.sort.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "includeDeleted": query.include_deleted,
        });
        let ev = self.audit_event(actor, format!("{}.exported", kind.name()), kind, None, about);
        self.store().apply(crate::store::Changeset { writes: vec![], audit: vec![ev] }).await?;
        Ok(RecordExport {
            crm: self.clone(),
            kind,
            format,
            filter,
            sort,
            include_deleted: query.include_deleted,
            columns: export_columns(kind),
        })
    }
}

impl RecordExport {
    /// The kind exported.
    pub fn kind(&self) -> EntityKind {
        self.kind
    }

    /// The format written.
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The header: the API names of the columns, in order.
    pub fn header(&self) -> Vec<&'static str> {
        self.columns.iter().map(|&i| self.kind.columns()[i].field).collect()
    }

    /// Writes the file to `out` while the rows are read, and answers how many records
    /// it holds. A writer that fails (a client gone: a broken pipe) stops the reading.
    pub async fn write_to<W: Write + Send + 'static>(self, out: W) -> Result<u64> {
        let columns: Vec<&'static Column> = self.columns.iter().map(|&i| &self.kind.columns()[i]).collect();
        let format = self.format;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(2);
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = out;
            write_rows(format, &columns, rx, &mut out)?;
            out.flush().map_err(written)
        });
        let read = self.pages(|rows| tx.send(rows).is_ok()).await;
        drop(tx);
        let written = writer.await.map_err(|e| Error::internal("the export writer", e))?;
        // A reading error explains a writer that stopped for want of rows; report it first.
        let n = read?;
        written?;
        Ok(n)
    }

    /// Reads the rows page by page, in the export's order, handing each page (only the
    /// exported columns) to `take` until it says stop. Answers the rows read.
    async fn pages(&self, mut take: impl FnMut(Vec<Row>) -> bool) -> Result<u64> {
        let kind = self.kind;
        let keys: Vec<usize> = self
            .sort
            .iter()
            .map(|k| kind.position(k.column.name).ok_or_else(|| Error::internal_msg("sort column missing")))
            .collect::<Result<_>>()?;
        let mut after: Option<Vec<Value>> = None;
        let mut total = 0u64;
        loop {
            let position = after.as_deref().and_then(|v| keyset_filter(&self.sort, v));
            let q = StoreQuery {
                filter: and_opt([self.filter.clone(), position]),
                sort: self.sort.clone(),
                limit: PAGE,
                include_deleted: self.include_deleted,
            };
            let rows = self.crm.read_store().list(kind, &q).await?;
            let n = rows.len();
            after = rows.last().map(|r| keys.iter().map(|&i| r.get(i).cloned().unwrap_or(Value::Null)).collect());
            let page: Vec<Row> = rows
                .into_iter()
                .map(|mut r| self.columns.iter().map(|&i| std::mem::replace(&mut r[i], Value::Null)).collect())
                .collect();
            total += n as u64;
            if n > 0 && !take(page) {
                return Ok(total);
            }
            if n < PAGE as usize {
                return Ok(total);
            }
        }
    }
}

/// Receives the pages and writes them in `format` to `out`.
fn write_rows<W: Write + Send>(
    format: ExportFormat,
    columns: &[&'static Column],
    rx: std::sync::mpsc::Receiver<Vec<Row>>,
    out: &mut W,
) -> Result<()> {
    match format {
        ExportFormat::Csv => write_csv(columns, rx, out),
        #[cfg(feature = "analytics")]
        ExportFormat::Xlsx => frames::write_xlsx(columns, rx, out),
        #[cfg(feature = "analytics")]
        ExportFormat::Parquet => frames::write_parquet(columns, rx, out),
        #[cfg(not(feature = "analytics"))]
        _ => Err(Error::internal_msg("this export format needs the analytics feature")),
    }
}

fn written(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal("writing the export", e)
}

fn write_csv<W: Write>(columns: &[&'static Column], rx: std::sync::mpsc::Receiver<Vec<Row>>, out: W) -> Result<()> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
    w.write_record(columns.iter().map(|c| c.field)).map_err(written)?;
    let mut cells: Vec<String> = Vec::with_capacity(columns.len());
    for page in rx {
        for row in &page {
            cells.clear();
            for (c, v) in columns.iter().zip(row) {
                let text = cell_text(c.ty, v);
                cells.push(if c.ty == ColumnType::Text || c.ty == ColumnType::Json || c.ty == ColumnType::TextList {
                    defuse(text)
                } else {
                    text
                });
            }
            w.write_record(&cells).map_err(written)?;
        }
    }
    w.flush().map_err(written)
}

/// Text a spreadsheet would run as a formula (OWASP: it starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return) gets a leading `'`.
pub fn defuse(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// A value as the text of a cell: empty for NULL, an empty list or object.
pub fn cell_text(ty: ColumnType, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Uuid(u) => u.hyphenated().to_string(),
        Value::Text(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => format_ts(t),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Json(j) => json_text(ty, j),
    }
}

fn json_text(ty: ColumnType, j: &Json) -> String {
    match j {
        Json::Array(items) if ty.element().is_some() || items.iter().all(Json::is_string) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        Json::Object(m) if m.is_empty() => String::new(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(feature = "analytics")]
mod frames {
    //! The XLSX and Parquet writers, and the frames the Parquet file and Python get.

    use std::io::Write;

    use polars::prelude::*;
    use rust_xlsxwriter::{Format as CellFormat, Workbook};

    use super::{cell_text, json_text, written};
    use crate::analytics::from_polars;
    use crate::error::{Error, Result};
    use crate::schema::{Column as Declared, ColumnType, Row, Value};

    /// Rows per Parquet row group.
    const GROUP: usize = 20_000;

    enum Cells {
        Str(StringChunkedBuilder),
        List(ListStringChunkedBuilder),
        Int(Vec<Option<i64>>),
        Bool(Vec<Option<bool>>),
        Millis(Vec<Option<i64>>),
        Days(Vec<Option<i32>>),
    }

    /// A frame being filled from rows, with the types the API's values have.
    pub(super) struct FrameBuilder {
        columns: Vec<&'static Declared>,
        cells: Vec<Cells>,
        height: usize,
    }

    impl FrameBuilder {
        pub(super) fn new(columns: &[&'static Declared]) -> Self {
            let mut b = Self { columns: columns.to_vec(), cells: Vec::new(), height: 0 };
            b.reset();
            b
        }

        fn reset(&mut self) {
            self.height = 0;
            self.cells = self
                .columns
                .iter()
                .map(|c| match c.ty {
                    ColumnType::Int => Cells::Int(Vec::new()),
                    ColumnType::Bool => Cells::Bool(Vec::new()),
                    ColumnType::Timestamp => Cells::Millis(Vec::new()),
                    ColumnType::Date => Cells::Days(Vec::new()),
                    ColumnType::TextList | ColumnType::UuidList => {
                        Cells::List(ListStringChunkedBuilder::new(c.field.into(), 0, 0))
                    }
                    _ => Cells::Str(StringChunkedBuilder::new(c.field.into(), 0)),
                })
                .collect();
        }

        pub(super) fn extend(&mut self, rows: &[Row]) {
            for row in rows {
                for ((cells, c), v) in self.cells.iter_mut().zip(&self.columns).zip(row) {
                    push(cells, c.ty, v);
                }
            }
            self.height += rows.len();
        }

        pub(super) fn len(&self) -> usize {
            self.height
        }

        /// The frame of the rows taken since the last one; the builder starts again empty.
        pub(super) fn take(&mut self) -> Result<DataFrame> {
            let cells = std::mem::take(&mut self.cells);
            let height = self.height;
            self.reset();
            let columns = cells
                .into_iter()
                .zip(&self.columns)
                .map(|(cells, c)| finish(cells, c.field))
                .collect::<Result<Vec<_>>>()?;
            DataFrame::new(height, columns).map_err(from_polars)
        }

        pub(super) fn finish(mut self) -> Result<DataFrame> {
            self.take()
        }
    }

    fn push(cells: &mut Cells, ty: ColumnType, v: &Value) {
        match (cells, v) {
            (Cells::Int(out), Value::Int(n)) => out.push(Some(*n)),
            (Cells::Int(out), _) => out.push(None),
            (Cells::Bool(out), Value::Bool(b)) => out.push(Some(*b)),
            (Cells::Bool(out), _) => out.push(None),
            (Cells::Millis(out), Value::Timestamp(t)) => out.push(Some(t.timestamp_millis())),
            (Cells::Millis(out), _) => out.push(None),
            (Cells::Days(out), Value::Date(d)) => out.push(Some((*d - chrono::NaiveDate::default()).num_days() as i32)),
            (Cells::Days(out), _) => out.push(None),
            (Cells::List(out), Value::Json(serde_json::Value::Array(items))) => {
                out.append_values_iter(items.iter().filter_map(|i| i.as_str()))
            }
            (Cells::List(out), _) => out.append_null(),
            (Cells::Str(out), Value::Null) => out.append_null(),
            (Cells::Str(out), Value::Text(s)) => out.append_value(s),
            (Cells::Str(out), Value::Json(j)) => out.append_value(json_text(ty, j)),
            (Cells::Str(out), v) => out.append_value(cell_text(ty, v)),
        }
    }

    fn finish(cells: Cells, name: &str) -> Result<Column> {
        let name: PlSmallStr = name.into();
        Ok(match cells {
            Cells::Str(b) => b.finish().into_column(),
            Cells::List(mut b) => b.finish().into_column(),
            Cells::Int(v) => Column::new(name, v),
            Cells::Bool(v) => Column::new(name, v),
            Cells::Millis(v) => Column::new(name, v)
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
                .map_err(from_polars)?,
            Cells::Days(v) => Column::new(name, v).cast(&DataType::Date).map_err(from_polars)?,
        })
    }

    pub(super) fn write_parquet<W: Write + Send>(
        columns: &[&'static Declared],
        rx: std::sync::mpsc::Receiver<Vec<Row>>,
        out: W,
    ) -> Result<()> {
        let mut frame = FrameBuilder::new(columns);
        let schema = frame.take()?.schema().as_ref().clone();
        let mut w = ParquetWriter::new(out).batched(&schema).map_err(from_polars)?;
        for page in rx {
            frame.extend(&page);
            if frame.len() >= GROUP {
                w.write_batch(&frame.take()?).map_err(from_polars)?;
            }
        }
        if frame.len() > 0 {
            w.write_batch(&frame.take()?).map_err(from_polars)?;
        }
        w.finish().map_err(from_polars)?;
        Ok(())
    }

    pub(super) fn write_xlsx<W: Write + Send>(
        columns: &[&'static Declared],
        rx: std::sync::mpsc::Receiver<Vec<Row>>,
        out: W,
    ) -> Result<()> {
        let mut book = Workbook::new();
        let bold = CellFormat::new().set_bold();
        let day = CellFormat::new().set_num_format("yyyy-mm-dd");
        let time = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let sheet = book.add_worksheet_with_constant_memory().map_err(written)?;
        sheet.set_name("Export").map_err(written)?;
        for (c, column) in columns.iter().enumerate() {
            let c = u16::try_from(c).map_err(|_| Error::internal_msg("too many columns"))?;
            sheet.write_string_with_format(0, c, column.field, &bold).map_err(written)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(written)?;
        let mut r: u32 = 0;
        for page in rx {
            for row in &page {
                r += 1;
                for (c, (column, v)) in columns.iter().zip(row).enumerate() {
                    let c = c as u16;
                    match v {
                        Value::Null => {}
                        Value::Int(n) if n.unsigned_abs() <= 1 << 53 => {
                            sheet.write_number(r, c, *n as f64).map_err(written)?;
                        }
                        Value::Bool(b) => {
                            sheet.write_boolean(r, c, *b).map_err(written)?;
                        }
                        Value::Timestamp(t) => {
                            sheet.write_datetime_with_format(r, c, t.naive_utc(), &time).map_err(written)?;
                        }
                        Value::Date(d) => {
                            sheet.write_datetime_with_format(r, c, *d, &day).map_err(written)?;
                        }
                        v => {
                            let text = cell_text(column.ty, v);
                            if !text.is_empty() {
                                sheet.write_string(r, c, text).map_err(written)?;
                            }
                        }
                    }
                }
            }
        }
        book.save_to_writer(out).map_err(written)
    }
}
