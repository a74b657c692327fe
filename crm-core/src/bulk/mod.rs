//! Work on many records at once: exports of any list, imports of CSV and XLSX files,
//! and batches of creates, updates, upserts and deletes.

pub mod batch;
pub mod export;
pub mod import;

pub use batch::{BatchItem, BatchMode, BatchOp, BatchRequest, Batchable, ItemOutcome, ItemResult};
pub use export::{ExportFormat, RecordExport};
pub use import::{ImportStart, ImportUpload};
