//! Import jobs: a CSV or XLSX file of contacts, companies, deals or tasks, its column
//! mapping, and how far its import has come (`bulk::import`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::string_enum;
use crate::schema::{Column, ColumnType as T, EntityKind, Index, Persist};

string_enum! {
    /// Where an import job is.
    ImportStatus {
        /// The file is read and a mapping suggested; it waits to be started.
        Uploaded = "uploaded",
        /// Started; a worker takes it up.
        Queued = "queued",
        /// A worker is importing it, batch by batch.
        Running = "running",
        /// Every row is done (a dry run: every row was checked).
        Completed = "completed",
        /// Stopped by an error that no row caused (`error` says which).
        Failed = "failed",
        /// Stopped by a person; the batches done stay done.
        Cancelled = "cancelled",
    }
}

/// An import of one file into one kind of record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportJob {
    /// The job's id.
    pub id: Uuid,
    /// `contacts`, `companies`, `deals` or `tasks`.
    pub kind: String,
    /// Where it is.
    pub status: ImportStatus,
    /// The file's name as uploaded.
    pub file_name: String,
    /// `csv` or `xlsx`.
    pub format: String,
    /// The CSV's field separator as found (`,`, `;`, tab, `|`).
    pub delimiter: Option<String>,
    /// The text encoding as found (`UTF-8`, `windows-1252`).
    pub encoding: Option<String>,
    /// The header row.
    pub headers: Vec<String>,
    /// For each column, in order: the field it fills, or `null` to leave it out.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Option<String>>))]
    pub mapping: Vec<Option<String>>,
    /// How rows find the record they update: `email`, `domain`, `id`, `customFields.<name>`;
    /// `null` makes every row a new record.
    pub match_by: Option<String>,
    /// A dry run checks every row and says what would happen, writing nothing.
    pub dry_run: bool,
    /// Data rows in the file.
    pub total_rows: i64,
    /// Rows done (committed, in a real run).
    pub rows_done: i64,
    /// Records created (would be, in a dry run).
    pub created: i64,
    /// Records changed.
    pub updated: i64,
    /// Rows that matched a record already holding their values.
    pub unchanged: i64,
    /// Rows refused (see the results).
    pub failed: i64,
    /// Result pieces written (one per batch).
    pub batches: i64,
    /// Why the job failed.
    pub error: Option<String>,
    /// Who started it (the rows are imported with their rights).
    pub owner_id: Uuid,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Rows done when the current run started (for its rate).
    pub started_rows: i64,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// The running worker's lease; a job whose lease ran out is taken up again.
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times a worker took it up.
    pub attempts: i64,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: i64,
}

impl Persist for ImportJob {
    const KIND: EntityKind = EntityKind::ImportJob;
}

/// Storage columns of import jobs.
pub static COLUMNS: &[Column] = &[
    Column::new("id", "id", T::Uuid).sort(),
    Column::new("kind", "kind", T::Text).filter(),
    Column::new("status", "status", T::Text).sort().choices(ImportStatus::CHOICES),
    Column::new("file_name", "fileName", T::Text),
    Column::new("format", "format", T::Text),
    Column::new("delimiter", "delimiter", T::Text).null(),
    Column::new("encoding", "encoding", T::Text).null(),
    Column::new("headers", "headers", T::Json),
    Column::new("mapping", "mapping", T::Json),
    Column::new("match_by", "matchBy", T::Text).null(),
    Column::new("dry_run", "dryRun", T::Bool),
    Column::new("total_rows", "totalRows", T::Int),
    Column::new("rows_done", "rowsDone", T::Int),
    Column::new("created", "created", T::Int),
    Column::new("updated", "updated", T::Int),
    Column::new("unchanged", "unchanged", T::Int),
    Column::new("failed", "failed", T::Int),
    Column::new("batches", "batches", T::Int),
    Column::new("error", "error", T::Text).null(),
    Column::new("owner_id", "ownerId", T::Uuid).filter(),
    Column::new("started_at", "startedAt", T::Timestamp).null(),
    Column::new("started_rows", "startedRows", T::Int),
    Column::new("finished_at", "finishedAt", T::Timestamp).null(),
    Column::new("lease_until", "leaseUntil", T::Timestamp).null().sort(),
    Column::new("attempts", "attempts", T::Int),
    Column::new("created_at", "createdAt", T::Timestamp).sort(),
    Column::new("updated_at", "updatedAt", T::Timestamp).sort(),
    Column::new("version", "version", T::Int).filter(),
];

/// The indexes of `import_jobs`: by owner (their list), by status (the workers' queue).
pub static INDEXES: &[Index] = &[
    Index::on("import_jobs_owner_idx", &["owner_id", "created_at", "id"]),
    Index::on("import_jobs_status_idx", &["status", "lease_until"]),
];

/// How far an import has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportProgress {
    /// Rows done, out of a hundred.
    pub percent: f64,
    /// Rows per second in the current run.
    pub rows_per_second: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<i64>,
}

impl ImportJob {
    /// The progress as of `now`.
    pub fn progress(&self, now: DateTime<Utc>) -> ImportProgress {
        let percent = if self.total_rows > 0 {
            (self.rows_done as f64 * 100.0 / self.total_rows as f64).min(100.0)
        } else {
            100.0
        };
        let rate = self.started_at.and_then(|t| {
            let end = self.finished_at.unwrap_or(now);
            let secs = (end - t).num_milliseconds() as f64 / 1000.0;
            let rows = (self.rows_done - self.started_rows) as f64;
            (secs > 0.0 && rows > 0.0).then(|| rows / secs)
        });
        let running = matches!(self.status, ImportStatus::Running | ImportStatus::Queued);
        let eta =
            rate.filter(|_| running).map(|r| ((self.total_rows - self.rows_done).max(0) as f64 / r).ceil() as i64);
        ImportProgress {
            percent: (percent * 10.0).round() / 10.0,
            rows_per_second: rate.map(|r| r.round()),
            eta_seconds: eta,
        }
    }
}
