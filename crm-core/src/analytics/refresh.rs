//! Bringing a cached analytics snapshot up to date with what changed since it was read,
//! instead of reading the store again.
//!
//! The audit log names every change: each audited write to a company, contact, deal,
//! interaction or task carries an event naming the record. The events after the
//! snapshot's sequence number give the records to read again; each table keeps its id
//! order, the changed rows cut out and the new ones spliced in (zero-copy slices of the
//! old frame around them). A change whose reach the log does not name record by record
//! (a purge and its cascade, an erased user's records handed to another) reloads
//! everything, as does a long run of changes.
//!
//! The contract this rests on, for every write path in crm-core: a changeset that writes
//! a row of an analytics table carries an audit event naming that row (its kind and id),
//! or one of the events [`classify`] answers with a full reload. Stage history rows are
//! written with their deal's event and are read again with the deal.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use uuid::Uuid;

use super::from_polars;
use crate::error::Result;
use crate::schema::EntityKind;

/// At most this many events since the snapshot are applied as a delta; more, and the
/// snapshot is read again (a bulk import moves most of a table anyway).
pub(crate) const MAX_EVENTS: i64 = 5_000;

/// Once a table is in more pieces than this, it is copied into one again (each delta
/// adds a few slices; reports scan faster over few chunks).
const MAX_CHUNKS: usize = 24;

/// The tables whose rows the audit log names record by record (the stage history comes
/// with its deal).
pub(crate) const NAMED: [EntityKind; 5] =
    [EntityKind::Company, EntityKind::Contact, EntityKind::Deal, EntityKind::Interaction, EntityKind::Task];

/// The records to read again, by kind.
pub(crate) type Touched = BTreeMap<EntityKind, BTreeSet<Uuid>>;

/// What a run of audit events (entity type, entity id, action) means for the snapshot:
/// the records to read again, or `None` when only a full reload is right.
pub(crate) fn classify<'a>(events: impl IntoIterator<Item = (&'a str, Option<Uuid>, &'a str)>) -> Option<Touched> {
    let mut touched = Touched::new();
    for (entity_type, id, action) in events {
        if let Some(kind) = NAMED.iter().find(|k| k.name() == entity_type) {
            // A purge takes children with it (interactions, history) and clears
            // references to the record (a company's contacts and deals).
            if action.ends_with(".purged") {
                return None;
            }
            touched.entry(*kind).or_default().insert(id?);
        } else if entity_type == EntityKind::DealStageChange.name() || action == "user.erased" {
            // History is written with its deal's event; one on its own is not expected.
            // An erased user's records may have moved to another owner, all at once.
            return None;
        }
    }
    Some(touched)
}

/// The first position in the sorted `ids` whose value is not less than `id`.
fn lower_bound(ids: &StringChunked, id: &str) -> usize {
    let (mut lo, mut hi) = (0, ids.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ids.get(mid).is_some_and(|v| v < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The positions of `ids` in a table's sorted text column `column` (absent ones left out).
pub(crate) fn positions(df: &DataFrame, column: &str, ids: &BTreeSet<Uuid>) -> Result<Vec<usize>> {
    let col = df.column(column).map_err(from_polars)?.str().map_err(from_polars)?;
    let mut buf = Uuid::encode_buffer();
    let mut out = Vec::new();
    for id in ids {
        let text = id.hyphenated().encode_lower(&mut buf);
        let at = lower_bound(col, text);
        if at < col.len() && col.get(at) == Some(text) {
            out.push(at);
        }
    }
    Ok(out)
}

/// Where each row of `new` goes in `df`: the position of the first row of `df` whose
/// `column` is not less than the new row's.
pub(crate) fn insert_points(df: &DataFrame, new: &DataFrame, column: &str) -> Result<Vec<usize>> {
    let old = df.column(column).map_err(from_polars)?.str().map_err(from_polars)?;
    let new = new.column(column).map_err(from_polars)?.str().map_err(from_polars)?;
    Ok(new.iter().map(|id| lower_bound(old, id.unwrap_or_default())).collect())
}

/// A run of an old table's rows or of the new rows, in the order a splice lays them out.
enum Piece {
    Old(std::ops::Range<usize>),
    New(std::ops::Range<usize>),
}

/// The pieces of a table of `len` rows without the rows at `remove` and with new rows
/// placed before the positions `at` (both sorted, positions in the old table; a row
/// replaced in place is removed at and inserted before the same position).
fn pieces(len: usize, remove: &[usize], at: &[usize]) -> Vec<Piece> {
    let mut out = Vec::with_capacity(2 * (remove.len() + at.len()) + 1);
    let old = |out: &mut Vec<Piece>, from: usize, to: usize| {
        if to > from {
            out.push(Piece::Old(from..to));
        }
    };
    let (mut from, mut r, mut i) = (0usize, 0usize, 0usize);
    while r < remove.len() || i < at.len() {
        // Inserted rows go before a removal at the same position.
        if i < at.len() && remove.get(r).is_none_or(|&p| at[i] <= p) {
            let q = at[i];
            old(&mut out, from, q);
            from = from.max(q);
            // Every new row bound for the same place, as one piece.
            let run = at[i..].iter().take_while(|&&x| x == q).count();
            out.push(Piece::New(i..i + run));
            i += run;
        } else {
            let p = remove[r];
            old(&mut out, from, p);
            from = from.max(p + 1);
            r += 1;
        }
    }
    old(&mut out, from, len);
    out
}

/// `df` laid out by [`pieces`] with the rows of `new`. The result shares the untouched
/// rows' memory with `df`.
pub(crate) fn splice(df: &DataFrame, remove: &[usize], new: &DataFrame, at: &[usize]) -> Result<DataFrame> {
    let mut out = df.clear();
    for piece in pieces(df.height(), remove, at) {
        let (from, range) = match piece {
            Piece::Old(r) => (df, r),
            Piece::New(r) => (new, r),
        };
        out.vstack_mut_owned(from.slice(range.start as i64, range.len())).map_err(from_polars)?;
    }
    if out.first_col_n_chunks() > MAX_CHUNKS {
        out.rechunk_mut_par();
    }
    Ok(out)
}

/// `ids` with the same removals and insertions as [`splice`] made in its table.
pub(crate) fn splice_ids(ids: &[Uuid], remove: &[usize], new: &[Uuid], at: &[usize]) -> Vec<Uuid> {
    let mut out = Vec::with_capacity(ids.len() + new.len());
    for piece in pieces(ids.len(), remove, at) {
        match piece {
            Piece::Old(r) => out.extend_from_slice(&ids[r]),
            Piece::New(r) => out.extend_from_slice(&new[r]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ids: &[&str], n: &[i64]) -> DataFrame {
        let id = Column::new("id".into(), ids);
        let n = Column::new("n".into(), n);
        DataFrame::new_infer_height(vec![id, n]).unwrap_or_default()
    }

    fn ids_of(df: &DataFrame) -> Vec<String> {
        let Ok(col) = df.column("id").and_then(|c| c.str().cloned()) else { return vec![] };
        col.iter().map(|v| v.unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn splicing_removes_replaces_and_inserts_in_order() -> Result<()> {
        let old = frame(&["b", "d", "f", "h"], &[1, 2, 3, 4]);
        // Replace d, drop h, add a (first), e (between d and f) and z (last).
        let new = frame(&["a", "d", "e", "z"], &[10, 20, 30, 40]);
        let at = insert_points(&old, &new, "id")?;
        assert_eq!(at, [0, 1, 2, 4]);
        let out = splice(&old, &[1, 3], &new, &at)?;
        assert_eq!(ids_of(&out), ["a", "b", "d", "e", "f", "z"]);
        let n: Vec<Option<i64>> = out.column("n").map_err(from_polars)?.i64().map_err(from_polars)?.iter().collect();
        assert_eq!(n, [Some(10), Some(1), Some(20), Some(30), Some(3), Some(40)]);
        // Nothing to do: the same rows.
        assert_eq!(ids_of(&splice(&old, &[], &old.clear(), &[])?), ids_of(&old));
        // Everything removed.
        assert_eq!(splice(&old, &[0, 1, 2, 3], &old.clear(), &[])?.height(), 0);
        Ok(())
    }

    #[test]
    fn many_splices_stay_in_few_chunks() -> Result<()> {
        let names: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut df = frame(&refs, &(0..100).collect::<Vec<i64>>());
        for i in (0..100).step_by(3) {
            let new = frame(&[refs[i]], &[-1]);
            df = splice(&df, &[i], &new, &[i])?;
            assert!(df.first_col_n_chunks() <= MAX_CHUNKS);
        }
        assert_eq!(ids_of(&df), names);
        Ok(())
    }

    #[test]
    fn id_lists_splice_like_their_tables() {
        let u = |n: u128| Uuid::from_u128(n);
        let ids = [u(2), u(4), u(6)];
        assert_eq!(splice_ids(&ids, &[1], &[u(1), u(5), u(7)], &[0, 2, 3]), [u(1), u(2), u(5), u(6), u(7)]);
    }

    #[test]
    fn the_log_names_what_to_read_again() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let touched = classify([
            ("deal", Some(a), "deal.updated"),
            ("contact", Some(b), "contact.created"),
            ("user", None, "access.denied"),
            ("saved_report", Some(a), "report.exported"),
            ("deal", Some(a), "deal.stage_changed"),
        ]);
        let want: Touched = [(EntityKind::Contact, [b].into()), (EntityKind::Deal, [a].into())].into();
        assert_eq!(touched, Some(want));
        assert_eq!(classify([("deal", Some(a), "deal.purged")]), None, "a purge cascades");
        assert_eq!(classify([("user", Some(a), "user.erased")]), None, "an erasure may reassign");
        assert_eq!(classify([("task", None, "task.created")]), None, "an event without its record");
        assert_eq!(classify([]), Some(Touched::new()));
    }
}
