//! Work on many records at once: exports of any list, imports of CSV and XLSX files,
//! batches of creates, updates, upserts and deletes, duplicates and their merge, and
//! files attached to records.

pub mod attachments;
pub mod batch;
pub mod export;
pub mod import;
pub mod merge;

pub use batch::{BatchItem, BatchMode, BatchOp, BatchRequest, Batchable, ItemOutcome, ItemResult};
pub use export::{ExportFormat, RecordExport};
pub use import::{ImportStart, ImportUpload};
pub use merge::{DuplicateCandidate, DuplicateReason, MergeOutcome, MergeRequest};
