//! Carrying a whole CRM from one store to another: every kind's rows as they are
//! (soft-deleted ones, sessions and queued deliveries included), the audit chain event by
//! event with its end adopted by the target, and the files.
//!
//! [`copy_store`] reads each kind in id order, a page of rows at a time (keyset paging
//! by id through [`Store::list_columns`]), and writes it in transactions of
//! [`CopyOptions::batch`] rows through the target's usual write path. Each page is a
//! statement of its own: the source's streaming bulk read ([`Store::scan_batches`])
//! would hold one statement open for as long as the target takes to write the whole
//! kind, and a large kind going to a slower target (a million deals into PostgreSQL)
//! ran past the source's statement time limit. A copy that stopped (killed, a lost
//! connection) continues with [`CopyOptions::resume`]: rows the target holds already are
//! left out, so nothing is written twice. The chain's end moves last, so a target whose
//! chain is empty is a copy not finished yet; [`crate::audit::verify_chain`] on the
//! target checks every event afterwards. Nothing may write to the source meanwhile: the
//! copy refuses to finish when the source's chain moved or its counts changed.
//!
//! Records go as stored, so the copy knows nothing of any kind's meaning: a kind added
//! to [`EntityKind::ALL`] is carried with no change here.

use std::collections::HashSet;

use crate::audit::AuditHead;
use crate::blob::BlobStore;
use crate::error::{Error, Result};
use crate::schema::{EntityKind, Row, Value};
use crate::store::{Changeset, Store, Write};

/// How a copy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOptions {
    /// Continue a copy that stopped: the target may hold some of the source's rows
    /// already (and only those). Without it the target must be empty.
    pub resume: bool,
    /// Rows per write transaction (1 to [`MAX_COPY_BATCH`]).
    pub batch: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self { resume: false, batch: 1_000 }
    }
}

/// The largest [`CopyOptions::batch`].
pub const MAX_COPY_BATCH: usize = 10_000;

/// Where a copy is: after each transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// The kind being copied.
    pub kind: EntityKind,
    /// Rows of every kind handled so far (copied now, or found copied by an earlier run).
    pub done: u64,
    /// Rows of every kind in the source.
    pub total: u64,
}

/// What one kind's copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindCopy {
    /// The kind.
    pub kind: EntityKind,
    /// Its rows in the source (and now in the target).
    pub rows: u64,
    /// How many this run wrote (the rest an earlier run had).
    pub copied: u64,
}

/// What [`copy_store`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Each kind, in [`EntityKind::ALL`]'s order.
    pub kinds: Vec<KindCopy>,
    /// The end of the audit chain, now the target's.
    pub audit_head: AuditHead,
}

impl CopyReport {
    /// Rows of every kind in the target.
    pub fn rows(&self) -> u64 {
        self.kinds.iter().map(|k| k.rows).sum()
    }

    /// Rows this run wrote.
    pub fn copied(&self) -> u64 {
        self.kinds.iter().map(|k| k.copied).sum()
    }
}

/// A field error on the copy's target.
fn target(code: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("to", code, message)
}

/// Copies every row of `from` into `to` (see the module's text), calling `progress`
/// after each transaction, then moves `to`'s audit chain to `from`'s end.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    options: CopyOptions,
    progress: &(dyn Fn(CopyProgress) + Send + Sync),
) -> Result<CopyReport> {
    if options.batch == 0 || options.batch > MAX_COPY_BATCH {
        return Err(Error::invalid(
            "batch",
            "out_of_range",
            format!("a copy writes 1 to {MAX_COPY_BATCH} rows per transaction"),
        ));
    }
    let head = from.audit_head().await?;
    let mut sizes = Vec::with_capacity(EntityKind::ALL.len());
    for kind in EntityKind::ALL {
        if kind.columns().first().map(|c| c.name) != Some("id") {
            return Err(Error::internal_msg(format!("{} rows do not start with their id", kind.table())));
        }
        sizes.push((kind, from.count(kind, None, true).await?));
    }
    let total: u64 = sizes.iter().map(|(_, n)| n).sum();
    let there = to.audit_head().await?;
    if options.resume {
        if there.seq != 0 && there != head {
            return Err(target(
                "not_a_copy",
                format!(
                    "the target's audit chain ends at event {}, the source's at {}: it is not an unfinished copy \
                     of this source (written to since, or another CRM)",
                    there.seq, head.seq
                ),
            ));
        }
    } else {
        if there.seq != 0 {
            return Err(target(
                "not_empty",
                format!(
                    "the target holds a CRM already (its audit chain has {} events): copy into an empty database, \
                     or continue an unfinished copy with --resume",
                    there.seq
                ),
            ));
        }
        for kind in EntityKind::ALL {
            let n = to.count(kind, None, true).await?;
            if n > 0 {
                return Err(target(
                    "not_empty",
                    format!(
                        "the target holds {n} {} already: copy into an empty database, or continue an unfinished \
                         copy with --resume",
                        kind.table()
                    ),
                ));
            }
        }
    }
    let mut done = 0u64;
    let mut kinds = Vec::with_capacity(sizes.len());
    for (kind, rows) in sizes {
        let copied = copy_kind(from, to, kind, rows, options, &mut done, total, progress).await?;
        let landed = to.count(kind, None, true).await?;
        if landed != rows {
            return Err(Error::internal_msg(format!(
                "{} {} in the source, {landed} in the target after the copy: was the source written to meanwhile? \
                 Stop its servers, then copy again into an empty database",
                rows,
                kind.table()
            )));
        }
        kinds.push(KindCopy { kind, rows, copied });
    }
    if from.audit_head().await? != head {
        return Err(Error::invalid(
            "from",
            "changed",
            "the source was written to while it was copied: stop its servers (and workers), then copy again into \
             an empty database",
        ));
    }
    if there != head {
        to.apply(Changeset { writes: vec![Write::AdoptAuditHead { head: head.clone() }], audit: vec![] }).await?;
    }
    Ok(CopyReport { kinds, audit_head: head })
}

/// One kind: the source's rows in id order, in transactions of `options.batch` rows,
/// leaving out (on a resume) the ids the target holds. Returns how many it wrote.
#[allow(clippy::too_many_arguments)]
async fn copy_kind(
    from: &dyn Store,
    to: &dyn Store,
    kind: EntityKind,
    rows: u64,
    options: CopyOptions,
    done: &mut u64,
    total: u64,
    progress: &(dyn Fn(CopyProgress) + Send + Sync),
) -> Result<u64> {
    let held: HashSet<uuid::Uuid> = if options.resume {
        let ids = to.scan_columns(kind, None, true, &[0]).await?;
        ids.into_iter().filter_map(|r| r.into_iter().next()).filter_map(|v| as_uuid(&v)).collect()
    } else {
        HashSet::new()
    };
    if options.resume && held.len() as u64 == rows {
        // Copied whole by the earlier run (only the source's rows ever reach a copy).
        *done += rows;
        progress(CopyProgress { kind, done: *done, total });
        return Ok(0);
    }
    *done += held.len() as u64;
    let columns: Vec<usize> = (0..kind.columns().len()).collect();
    let (out, mut batches) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let read =
        async move { crate::store::page_through(from, kind, None, true, &columns, Some(&out)).await.map(|_| ()) };
    let write = async move {
        let mut copied = 0u64;
        while let Some(batch) = batches.recv().await {
            let fresh: Vec<Row> = batch
                .into_iter()
                .filter(|r| r.first().and_then(as_uuid).is_none_or(|id| !held.contains(&id)))
                .collect();
            let mut fresh = fresh.into_iter().peekable();
            while fresh.peek().is_some() {
                let writes: Vec<Write> =
                    fresh.by_ref().take(options.batch).map(|row| Write::Insert { kind, row }).collect();
                let n = writes.len() as u64;
                to.apply(Changeset { writes, audit: vec![] }).await?;
                copied += n;
                *done += n;
                progress(CopyProgress { kind, done: *done, total });
            }
        }
        Ok::<u64, Error>(copied)
    };
    // The reader stops when the writer fails (its batches are no longer taken).
    let (read, written) = tokio::join!(read, write);
    let copied = written?;
    read?;
    Ok(copied)
}

fn as_uuid(v: &Value) -> Option<uuid::Uuid> {
    match v {
        Value::Uuid(u) => Some(*u),
        Value::Text(t) => uuid::Uuid::parse_str(t).ok(),
        _ => None,
    }
}

/// Copies every file of `from` into `to` (on a resume, leaving out the keys `to` holds
/// already), calling `progress(done, total)` after each. Returns how many it wrote.
pub async fn copy_files(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    resume: bool,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64> {
    let mut keys = from.keys().await?;
    keys.sort();
    let held: HashSet<String> = if resume { to.keys().await?.into_iter().collect() } else { HashSet::new() };
    let total = keys.len() as u64;
    let mut copied = 0u64;
    for (i, key) in keys.iter().enumerate() {
        if !held.contains(key) {
            // A file removed meanwhile is no longer the CRM's.
            if let Some(bytes) = from.get(key).await? {
                to.put(key, bytes).await?;
                copied += 1;
            }
        }
        progress(i as u64 + 1, total);
    }
    Ok(copied)
}
