//! Purpose-built paths: each standard report answered in one or two passes over the
//! columns it reads, instead of a general polars plan of joins, group-bys and sorts.
//! - R1, R2, R3 (the deal reports): one pass over the deals, each deal's stage read once
//!   as a small code, the sums kept per stage, month or owner.
//! - R4 (the stage funnel): each live deal gets a dense number, the history is
//!   counting-sorted by deal and each deal's entries walked in time order.
//! - R5 (lead conversion): one pass grouping by month and source.
//! - R6, R8 (won revenue, first wins): the live companies numbered densely, the won
//!   deals summed per company in one pass.
//! - R7 (engagement): one pass counting per live contact, then a partial sort for the
//!   top 1,000.
//!
//! Each answers exactly what its general polars plan answers (`super::r1` … `r8`; the
//! tests run both on the same tables); tables a path does not handle (NULLs where the
//! data has none, ids or columns of another type, ids that repeat) go to that plan.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::{from_polars, round6_f, Resolved, Tables, STAGES};
use crate::error::Result;

/// Calls `f(row, value)` for each row of a column of numbers (`None`: NULL), array by
/// array. (A `ChunkedArray`'s own `iter()` goes through a boxed iterator, a dynamic call
/// per row: three times the cost of these reports' loops.)
fn each_num<T: PolarsNumericType>(ca: &ChunkedArray<T>, mut f: impl FnMut(usize, Option<T::Native>)) {
    let mut row = 0;
    for arr in ca.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            Some(valid) => {
                for (v, ok) in arr.values().iter().zip(valid.iter()) {
                    f(row, ok.then_some(*v));
                    row += 1;
                }
            }
            None => {
                for v in arr.values().iter() {
                    f(row, Some(*v));
                    row += 1;
                }
            }
        }
    }
}

/// [`each_num`] for a column of text.
fn each_str<'a>(ca: &'a StringChunked, mut f: impl FnMut(usize, Option<&'a str>)) {
    let mut row = 0;
    for arr in ca.downcast_iter() {
        for v in arr.iter() {
            f(row, v);
            row += 1;
        }
    }
}

/// Calls `f(row, code)` for each row of a text column, `code` being `code_of` of the
/// row's value (`None`: NULL). Arrow keeps a value of up to 12 bytes whole in its 16-byte
/// view, so short values' codes are kept in a small cache keyed by the view: a row whose
/// view is there is settled by one integer compare (exact: the view is the value). A
/// longer value, or one whose cache slot another holds, is read and asked again.
fn each_code<'a, C: Copy>(
    ca: &'a StringChunked,
    mut code_of: impl FnMut(Option<&'a str>) -> C,
    mut f: impl FnMut(usize, C),
) {
    const SLOTS: usize = 256;
    // No inline view is all ones (its length, the low 32 bits, is at most 12).
    const EMPTY: u128 = u128::MAX;
    let null = code_of(None);
    let mut keys = [EMPTY; SLOTS];
    let mut codes = [null; SLOTS];
    let mut code = |arr: &'a <StringType as PolarsDataType>::Array, i: usize| {
        let view = arr.views()[i];
        if !view.is_inline() {
            return code_of(Some(arr.value(i)));
        }
        let key = view.as_u128();
        let slot = (((key as u64) ^ ((key >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        if keys[slot] != key {
            keys[slot] = key;
            codes[slot] = code_of(Some(arr.value(i)));
        }
        codes[slot]
    };
    let mut row = 0;
    for (arr, chunk) in ca.downcast_iter().zip(ca.chunks()) {
        match chunk.validity().filter(|v| v.unset_bits() > 0) {
            Some(valid) => {
                for (i, ok) in valid.iter().enumerate() {
                    f(row, if ok { code(arr, i) } else { null });
                    row += 1;
                }
            }
            None => {
                for i in 0..arr.len() {
                    f(row, code(arr, i));
                    row += 1;
                }
            }
        }
    }
}

/// Which rows of a table are live (`deleted_at` NULL).
fn live_rows(df: &DataFrame) -> Result<Vec<bool>> {
    let deleted = df.column("deleted_at").map_err(from_polars)?;
    let mut live = vec![true; df.height()];
    if deleted.null_count() < deleted.len() {
        let gone = deleted.is_not_null();
        let mut row = 0;
        for arr in gone.downcast_iter() {
            for g in arr.values().iter() {
                live[row] = !g;
                row += 1;
            }
        }
    }
    Ok(live)
}

/// Dense numbers for ids: for each row of `ids`, the number of its live id (`u32::MAX`:
/// not a live one), and for each number, the row of `live_ids` it stands for. `None` when
/// the ids are of a type these paths do not handle, or when a live id repeats (a join
/// would count its rows twice; the general plans do that).
fn dense_numbers(ids: &Column, live_ids: &Column) -> Result<Option<(Vec<u32>, Vec<u32>)>> {
    let numbers = numbers_of(ids, live_ids)?;
    Ok(numbers.filter(|(_, rows)| rows.len() == live_ids.len()))
}

/// [`dense_numbers`], a repeated live id taking the number of its first row.
fn numbers_of(history_ids: &Column, live_ids: &Column) -> Result<Option<(Vec<u32>, Vec<u32>)>> {
    const NONE: u32 = u32::MAX;
    if history_ids.dtype() != live_ids.dtype() || live_ids.null_count() > 0 {
        return Ok(None);
    }
    let n_live = live_ids.len();
    if n_live >= NONE as usize {
        return Ok(None);
    }
    match history_ids.dtype() {
        DataType::Int64 => {
            let live = live_ids.i64().map_err(from_polars)?;
            let hist = history_ids.i64().map_err(from_polars)?;
            let (min, max) = match (live.min(), live.max()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Ok(Some((vec![NONE; hist.len()], vec![]))),
            };
            // Compact ids (the usual case): a table indexed by id; else a hash map.
            let span = max.checked_sub(min).and_then(|s| usize::try_from(s).ok());
            match span {
                Some(span) if span < 4 * n_live + 1024 => {
                    let mut slot = vec![NONE; span + 1];
                    let mut rows = Vec::with_capacity(n_live);
                    for (row, id) in live.into_no_null_iter().enumerate() {
                        let s = &mut slot[(id - min) as usize];
                        if *s == NONE {
                            *s = rows.len() as u32;
                            rows.push(row as u32);
                        }
                    }
                    let mut numbers = vec![NONE; hist.len()];
                    each_num(hist, |row, id| {
                        if let Some(id) = id.filter(|id| *id >= min && *id <= max) {
                            numbers[row] = slot[(id - min) as usize];
                        }
                    });
                    Ok(Some((numbers, rows)))
                }
                _ => {
                    let mut map: PlHashMap<i64, u32> = PlHashMap::with_capacity(n_live);
                    let mut rows = Vec::with_capacity(n_live);
                    for (row, id) in live.into_no_null_iter().enumerate() {
                        map.entry(id).or_insert_with(|| {
                            rows.push(row as u32);
                            rows.len() as u32 - 1
                        });
                    }
                    let mut numbers = vec![NONE; hist.len()];
                    each_num(hist, |row, id| {
                        if let Some(n) = id.and_then(|id| map.get(&id)) {
                            numbers[row] = *n;
                        }
                    });
                    Ok(Some((numbers, rows)))
                }
            }
        }
        DataType::String => {
            let live = live_ids.str().map_err(from_polars)?;
            let hist = history_ids.str().map_err(from_polars)?;
            let mut map: PlHashMap<&str, u32> = PlHashMap::with_capacity(n_live);
            let mut rows = Vec::with_capacity(n_live);
            for (row, id) in live.iter().enumerate() {
                if let Some(id) = id {
                    map.entry(id).or_insert_with(|| {
                        rows.push(row as u32);
                        rows.len() as u32 - 1
                    });
                }
            }
            let mut numbers = vec![NONE; hist.len()];
            each_str(hist, |row, id| {
                if let Some(n) = id.and_then(|id| map.get(id)) {
                    numbers[row] = *n;
                }
            });
            Ok(Some((numbers, rows)))
        }
        _ => Ok(None),
    }
}

/// The interpolated median (NULL for none), rounded as REPORTS.md rounds day values.
fn median(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (lower, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *mid;
    let m = if n % 2 == 1 { upper } else { (lower.iter().copied().fold(f64::NEG_INFINITY, f64::max) + upper) / 2.0 };
    Some(round6_f(m))
}

/// R4 on the purpose-built path; `None` when the tables need the general plan.
pub(super) fn r4_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let (Some(history), Some(deals)) = (t.0.get("deal_stage_history"), t.0.get("deals")) else {
        return Ok(None);
    };
    let column = |df: &DataFrame, name: &str| df.column(name).cloned().map_err(from_polars);
    let deal_id = column(history, "deal_id")?;
    let to_stage = column(history, "to_stage")?;
    let changed_at = column(history, "changed_at")?;
    if deal_id.null_count() > 0
        || to_stage.null_count() > 0
        || changed_at.null_count() > 0
        || to_stage.dtype() != &DataType::String
        || !matches!(changed_at.dtype(), DataType::Datetime(_, _))
    {
        return Ok(None);
    }
    let live =
        deals.clone().lazy().filter(col("deleted_at").is_null()).select([col("id")]).collect().map_err(from_polars)?;
    let Some((deal_of, deal_rows)) = dense_numbers(&deal_id, live.column("id").map_err(from_polars)?)? else {
        return Ok(None);
    };
    let n_deals = deal_rows.len();
    let micros = changed_at
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(from_polars)?;
    let micros = micros.i64().map_err(from_polars)?;
    let mut times = vec![0i64; micros.len()];
    each_num(micros, |row, at| times[row] = at.unwrap_or_default());
    // The stage of each row (STAGES.len() for a stage outside the six: it still ends the
    // time in the stage before it).
    let mut stages = vec![STAGES.len() as u8; times.len()];
    each_code(
        to_stage.str().map_err(from_polars)?,
        |stage| stage.map(stage_code).filter(|c| *c != GONE).unwrap_or(STAGES.len() as u8),
        |row, code| stages[row] = code,
    );

    // Counting sort of the rows by deal.
    let mut start = vec![0u32; n_deals + 1];
    for &d in &deal_of {
        if d != u32::MAX {
            start[d as usize + 1] += 1;
        }
    }
    for i in 0..n_deals {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; start[n_deals] as usize];
    for (row, &d) in deal_of.iter().enumerate() {
        if d != u32::MAX {
            let at = &mut fill[d as usize];
            order[*at as usize] = row as u32;
            *at += 1;
        }
    }

    const NS: usize = STAGES.len();
    let mut reached = [0i64; NS];
    let mut converted = [0i64; NS];
    let mut durations: [Vec<f64>; NS] = Default::default();
    let mut entries: Vec<(i64, u8)> = Vec::new();
    for d in 0..n_deals {
        let rows = &order[start[d] as usize..start[d + 1] as usize];
        if rows.is_empty() {
            continue;
        }
        entries.clear();
        entries.extend(rows.iter().map(|&r| (times[r as usize], stages[r as usize])));
        // In time order; rows of the same time keep the table's order (a stable sort).
        entries.sort_by_key(|e| e.0);
        let mut first = [i64::MAX; NS];
        let mut last = [i64::MIN; NS];
        for (i, &(at, stage)) in entries.iter().enumerate() {
            let s = stage as usize;
            if s == NS {
                continue;
            }
            first[s] = first[s].min(at);
            last[s] = last[s].max(at);
            if let Some(&(next, _)) = entries.get(i + 1) {
                // Whole seconds, as the general plan counts them.
                durations[s].push(((next - at) / 1_000_000) as f64 / 86_400.0);
            }
        }
        for s in 0..NS {
            if first[s] != i64::MAX {
                reached[s] += 1;
                if s < 4 && last[s + 1] > first[s] {
                    converted[s] += 1;
                }
            }
        }
    }

    let mut out_stage = Vec::new();
    let mut out_reached = Vec::new();
    let mut out_converted = Vec::new();
    let mut out_rate = Vec::new();
    let mut out_median = Vec::new();
    for s in 0..NS {
        if reached[s] == 0 {
            continue;
        }
        let open = s < 4;
        out_stage.push(STAGES[s].0);
        out_reached.push(reached[s]);
        out_converted.push(open.then_some(converted[s]));
        out_rate.push(open.then(|| round6_f(converted[s] as f64 / reached[s] as f64)));
        out_median.push(median(&mut durations[s]));
    }
    DataFrame::new_infer_height(vec![
        Column::new("stage".into(), out_stage),
        Column::new("deals_reached".into(), out_reached),
        Column::new("converted_to_next".into(), out_converted),
        Column::new("conversion_to_next".into(), out_rate),
        Column::new("median_days_in_stage".into(), out_median),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// A column's values as µs since the epoch (`None` for a column that is not a timestamp).
fn micros(c: &Column) -> Result<Option<Int64Chunked>> {
    if !matches!(c.dtype(), DataType::Datetime(_, _)) {
        return Ok(None);
    }
    let c = c
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(from_polars)?;
    Ok(Some(c.i64().map_err(from_polars)?.clone()))
}

/// Whole seconds between two µs timestamps, in days (as the general plans count them).
fn days(later: i64, earlier: i64) -> f64 {
    ((later - earlier) / 1_000_000) as f64 / 86_400.0
}

/// The live ids of a table, as a column.
fn live_ids(t: &Tables, table: &str) -> Result<Option<Column>> {
    let Some(df) = t.0.get(table) else { return Ok(None) };
    let live =
        df.clone().lazy().filter(col("deleted_at").is_null()).select([col("id")]).collect().map_err(from_polars)?;
    Ok(Some(live.column("id").map_err(from_polars)?.clone()))
}

/// The civil (year, month) of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub(super) fn year_month(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32)
}

/// R5 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r5_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let Some(contacts) = t.0.get("contacts") else { return Ok(None) };
    let column = |name: &str| contacts.column(name).cloned().map_err(from_polars);
    let (created, stage, source, converted) =
        (column("created_at")?, column("lifecycle_stage")?, column("lead_source")?, column("converted_at")?);
    if created.null_count() > 0
        || stage.null_count() > 0
        || stage.dtype() != &DataType::String
        || source.dtype() != &DataType::String
    {
        return Ok(None);
    }
    let (Some(created), Some(converted)) = (micros(&created)?, micros(&converted)?) else { return Ok(None) };
    let live = live_rows(contacts)?;
    let n = contacts.height();

    // Each row's time and month, its source as a number (NULL: u32::MAX) and whether it is
    // a customer; then one pass adding each live row to its (month, source) slot.
    let mut times = vec![0i64; n];
    let mut months = vec![0i64; n];
    let (mut first, mut last_month) = (i64::MAX, i64::MIN);
    let mut last = (i64::MIN, 0);
    each_num(&created, |row, at| {
        let at = at.unwrap_or_default();
        let day = at.div_euclid(86_400_000_000);
        if day != last.0 {
            last = (day, month_key(day));
        }
        times[row] = at;
        months[row] = last.1;
        if live[row] {
            first = first.min(last.1);
            last_month = last_month.max(last.1);
        }
    });
    let mut numbers: PlHashMap<&str, u32> = PlHashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut src = vec![u32::MAX; n];
    each_code(
        source.str().map_err(from_polars)?,
        |source| match source {
            None => u32::MAX,
            Some(s) => *numbers.entry(s).or_insert_with(|| {
                names.push(s);
                names.len() as u32 - 1
            }),
        },
        |row, n| src[row] = n,
    );
    let mut customer = vec![false; n];
    each_code(stage.str().map_err(from_polars)?, |s| s == Some("customer"), |row, c| customer[row] = c);

    // Slot `month * sources + source`, NULL the last source; too many slots (many
    // thousands of free-text sources) go to the general plan.
    let sources = names.len() + 1;
    let slot_of = |row: usize| {
        let s = if src[row] == u32::MAX { names.len() } else { src[row] as usize };
        (months[row] - first) as usize * sources + s
    };
    let span = if first > last_month { 0 } else { (last_month - first + 1) as usize };
    if span.saturating_mul(sources) > 1 << 22 {
        return Ok(None);
    }
    let mut made = vec![0i64; span * sources];
    let mut conv = vec![0i64; span * sources];
    let mut days_to = vec![Vec::new(); span * sources];
    each_num(&converted, |row, converted| {
        if !live[row] {
            return;
        }
        let g = slot_of(row);
        made[g] += 1;
        if customer[row] {
            conv[g] += 1;
            if let Some(c) = converted {
                days_to[g].push(days(c, times[row]));
            }
        }
    });
    // By month, then source in byte order with NULL last.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by(|a, b| names[*a].as_bytes().cmp(names[*b].as_bytes()));
    order.push(names.len());
    let (mut month, mut lead, mut created, mut converted, mut rate, mut med) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in 0..span {
        for &s in &order {
            let g = m * sources + s;
            if made[g] == 0 {
                continue;
            }
            month.push(month_text(first + m as i64));
            lead.push(names.get(s).copied());
            created.push(made[g]);
            converted.push(conv[g]);
            rate.push(round6_f(conv[g] as f64 / made[g] as f64));
            med.push(median(&mut days_to[g]));
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("month".into(), month),
        Column::new("lead_source".into(), lead),
        Column::new("created".into(), created),
        Column::new("converted".into(), converted),
        Column::new("conversion_rate".into(), rate),
        Column::new("median_days_to_convert".into(), med),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// R7 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r7_fast(t: &Tables, p: &Resolved) -> Result<Option<DataFrame>> {
    let Some(interactions) = t.0.get("interactions") else { return Ok(None) };
    let Some(live) = live_ids(t, "contacts")? else { return Ok(None) };
    let column = |name: &str| interactions.column(name).cloned().map_err(from_polars);
    let (contact, kind, occurred) = (column("contact_id")?, column("kind")?, column("occurred_at")?);
    if contact.null_count() > 0
        || kind.null_count() > 0
        || occurred.null_count() > 0
        || kind.dtype() != &DataType::String
    {
        return Ok(None);
    }
    let Some(occurred) = micros(&occurred)? else { return Ok(None) };
    let (start, end) = (p.engagement_start.and_utc().timestamp_micros(), p.as_of.and_utc().timestamp_micros());
    // The rows in the window first (a small share of all), then only their contacts and kinds.
    let mut window: Vec<IdxSize> = Vec::new();
    each_num(&occurred, |row, at| {
        if at.is_some_and(|at| at >= start && at < end) {
            window.push(row as IdxSize);
        }
    });
    let window = IdxCa::from_vec("".into(), window);
    let times = occurred.take(&window).map_err(from_polars)?;
    let contact = contact.take(&window).map_err(from_polars)?;
    let kind = kind.take(&window).map_err(from_polars)?;
    let Some((number, rows)) = dense_numbers(&contact, &live)? else { return Ok(None) };
    let n = rows.len();
    // Per contact: total, call, email, meeting, note, and the latest time.
    let mut counts = vec![[0i64; 5]; n];
    let mut last = vec![i64::MIN; n];
    let kind_code = |kind: Option<&str>| match kind {
        Some("call") => 1,
        Some("email") => 2,
        Some("meeting") => 3,
        Some("note") => 4,
        _ => 0,
    };
    each_code(kind.str().map_err(from_polars)?, kind_code, |i, kind: usize| {
        if let Some(c) = counts.get_mut(number[i] as usize) {
            c[0] += 1;
            if kind > 0 {
                c[kind] += 1;
            }
        }
    });
    each_num(&times, |i, at| {
        if let (Some(l), Some(at)) = (last.get_mut(number[i] as usize), at) {
            *l = (*l).max(at);
        }
    });
    let mut chosen: Vec<u32> = (0..n as u32).filter(|i| counts[*i as usize][0] > 0).collect();
    // The most interactions first, then by id (the ids' own order: numbers or bytes).
    let by_id = id_order(&live);
    let order = |a: &u32, b: &u32| {
        counts[*b as usize][0].cmp(&counts[*a as usize][0]).then_with(|| by_id(rows[*a as usize], rows[*b as usize]))
    };
    const TOP: usize = 1000;
    if chosen.len() > TOP {
        chosen.select_nth_unstable_by(TOP - 1, order);
        chosen.truncate(TOP);
    }
    chosen.sort_unstable_by(order);
    let take = IdxCa::from_vec("".into(), chosen.iter().map(|i| rows[*i as usize] as IdxSize).collect());
    let ids = live.take(&take).map_err(from_polars)?.with_name("contact_id".into());
    let count = |k: usize| chosen.iter().map(|i| counts[*i as usize][k]).collect::<Vec<i64>>();
    let latest =
        Column::new("last_interaction_at".into(), chosen.iter().map(|i| last[*i as usize]).collect::<Vec<i64>>())
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .map_err(from_polars)?;
    DataFrame::new_infer_height(vec![
        ids,
        Column::new("total".into(), count(0)),
        Column::new("calls".into(), count(1)),
        Column::new("emails".into(), count(2)),
        Column::new("meetings".into(), count(3)),
        Column::new("notes".into(), count(4)),
        latest,
    ])
    .map(Some)
    .map_err(from_polars)
}

/// A deal that does not count in the deal reports: deleted, or in a stage outside the six
/// (the general plans' join with the stages drops it).
const GONE: u8 = u8::MAX;

/// Each deal's stage as its place in [`STAGES`], [`GONE`] for a deal that does not count.
/// `None` when the stage column is not text.
fn deal_stages(deals: &DataFrame) -> Result<Option<Vec<u8>>> {
    let stage = deals.column("pipeline_stage").map_err(from_polars)?;
    if stage.dtype() != &DataType::String {
        return Ok(None);
    }
    let live = live_rows(deals)?;
    let mut codes = vec![GONE; deals.height()];
    each_code(
        stage.str().map_err(from_polars)?,
        |stage| stage.map_or(GONE, stage_code),
        |row, code| {
            if live[row] {
                codes[row] = code;
            }
        },
    );
    Ok(Some(codes))
}

/// A stage's place in [`STAGES`] ([`GONE`] for another name).
fn stage_code(stage: &str) -> u8 {
    match stage {
        "prospecting" => 0,
        "qualification" => 1,
        "proposal" => 2,
        "negotiation" => 3,
        "closed_won" => 4,
        "closed_lost" => 5,
        _ => GONE,
    }
}

const WON: u8 = 4;
const LOST: u8 = 5;

/// Integer division rounding down, as polars' `floor_div`; `None` for a zero divisor.
fn floor_div(a: i64, b: i64) -> Option<i64> {
    if b == 0 {
        return None;
    }
    let q = a.wrapping_div(b);
    Some(if a.wrapping_rem(b) != 0 && ((a < 0) != (b < 0)) { q - 1 } else { q })
}

/// A deals' column of whole numbers (`None`: of another type).
fn int64<'a>(df: &'a DataFrame, name: &str) -> Result<Option<&'a Int64Chunked>> {
    let c = df.column(name).map_err(from_polars)?;
    Ok(if c.dtype() == &DataType::Int64 { Some(c.i64().map_err(from_polars)?) } else { None })
}

/// Count, sum, count of non-NULL amounts and the probability-weighted sum of a group of
/// deals (REPORTS.md's money rules: NULL adds 0, sums wrap as polars' do).
#[derive(Clone, Copy, Default)]
struct Money {
    deals: i64,
    total: i64,
    amounts: i64,
    weighted: i64,
}

impl Money {
    fn add(&mut self, amount: Option<i64>, stage: u8) {
        let a = amount.unwrap_or(0);
        self.deals += 1;
        self.total = self.total.wrapping_add(a);
        self.amounts += i64::from(amount.is_some());
        self.weighted = self.weighted.wrapping_add(a.wrapping_mul(STAGES[stage as usize].1));
    }
}

/// R1 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r1_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let Some(deals) = t.0.get("deals") else { return Ok(None) };
    let (Some(stages), Some(amount)) = (deal_stages(deals)?, int64(deals, "amount_cents")?) else {
        return Ok(None);
    };
    // The open stages' sums, and one slot the other deals fall into (no branch a row).
    let mut by_stage = [Money::default(); 5];
    each_num(amount, |row, amount| {
        let stage = stages[row].min(4);
        by_stage[stage as usize].add(amount, stage);
    });
    let open = (0..4).filter(|s| by_stage[*s].deals > 0);
    let column = |f: fn(&Money) -> Option<i64>| open.clone().map(|s| f(&by_stage[s])).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("stage".into(), open.clone().map(|s| STAGES[s].0).collect::<Vec<_>>()),
        Column::new("deal_count".into(), column(|m| Some(m.deals))),
        Column::new("total_amount".into(), column(|m| Some(m.total))),
        Column::new("avg_amount".into(), column(|m| floor_div(m.total, m.amounts))),
        Column::new("weighted_amount".into(), column(|m| floor_div(m.weighted, 100))),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// Days since 1970-01-01.
fn epoch_days(d: chrono::NaiveDate) -> i64 {
    d.signed_duration_since(chrono::DateTime::UNIX_EPOCH.date_naive()).num_days()
}

/// `YYYY-MM` of a month counted from year 0 (`year * 12 + month - 1`).
fn month_text(key: i64) -> String {
    format!("{:04}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1)
}

/// The month key (`year * 12 + month - 1`) of a day count since 1970-01-01.
fn month_key(days: i64) -> i64 {
    let (y, m) = year_month(days);
    y * 12 + i64::from(m) - 1
}

/// R2 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r2_fast(t: &Tables, p: &Resolved) -> Result<Option<DataFrame>> {
    let Some(deals) = t.0.get("deals") else { return Ok(None) };
    let close = deals.column("expected_close_date").map_err(from_polars)?;
    if close.dtype() != &DataType::Date {
        return Ok(None);
    }
    let (Some(stages), Some(amount)) = (deal_stages(deals)?, int64(deals, "amount_cents")?) else {
        return Ok(None);
    };
    let close = close.cast(&DataType::Int32).map_err(from_polars)?;
    let (from, to) = (epoch_days(p.as_of.date()), epoch_days(p.forecast_end));
    if to - from > 1 << 20 {
        // A window of thousands of years: the general plan.
        return Ok(None);
    }
    // One slot a month of the window, in order; each day of the window's slot, looked up.
    let first = month_key(from);
    let mut months = vec![Money::default(); usize::try_from(month_key(to) - first + 1).unwrap_or(0)];
    let day_slot: Vec<u32> = (from..to.max(from)).map(|d| (month_key(d) - first) as u32).collect();
    // Each row's slot (u32::MAX: not an open deal closing in the window), then the amounts.
    let mut slot = vec![u32::MAX; deals.height()];
    each_num(close.i32().map_err(from_polars)?, |row, day| {
        if let Some(day) = day.map(i64::from).filter(|d| stages[row] < 4 && *d >= from && *d < to) {
            slot[row] = day_slot[(day - from) as usize];
        }
    });
    each_num(amount, |row, amount| {
        if let Some(m) = months.get_mut(slot[row] as usize) {
            m.add(amount, stages[row]);
        }
    });
    // The months with deals, in order (the slots are).
    let months: Vec<(i64, Money)> =
        months.into_iter().enumerate().filter(|(_, m)| m.deals > 0).map(|(i, m)| (first + i as i64, m)).collect();
    let column = |f: fn(&Money) -> Option<i64>| months.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("month".into(), months.iter().map(|(k, _)| month_text(*k)).collect::<Vec<_>>()),
        Column::new("deal_count".into(), column(|m| Some(m.deals))),
        Column::new("total_amount".into(), column(|m| Some(m.total))),
        Column::new("weighted_amount".into(), column(|m| floor_div(m.weighted, 100))),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// Group numbers for the values of a key column (whole numbers or text, no NULLs): for
/// each row, its group; for each group, its first row. `None` for another type or NULLs.
fn groups_of(keys: &Column) -> Result<Option<(Vec<u32>, Vec<u32>)>> {
    if keys.null_count() > 0 {
        return Ok(None);
    }
    let mut firsts = Vec::new();
    let mut groups = vec![0u32; keys.len()];
    match keys.dtype() {
        DataType::Int64 => {
            let mut map: PlHashMap<i64, u32> = PlHashMap::new();
            each_num(keys.i64().map_err(from_polars)?, |row, k| {
                groups[row] = *map.entry(k.unwrap_or_default()).or_insert_with(|| {
                    firsts.push(row as u32);
                    firsts.len() as u32 - 1
                });
            });
        }
        DataType::String => {
            let mut map: PlHashMap<&str, u32> = PlHashMap::new();
            each_str(keys.str().map_err(from_polars)?, |row, k| {
                groups[row] = *map.entry(k.unwrap_or_default()).or_insert_with(|| {
                    firsts.push(row as u32);
                    firsts.len() as u32 - 1
                });
            });
        }
        _ => return Ok(None),
    }
    Ok(Some((groups, firsts)))
}

/// The rows of a table as an index for `take`.
fn index(rows: &[u32]) -> IdxCa {
    IdxCa::from_vec("".into(), rows.iter().map(|r| *r as IdxSize).collect())
}

/// Orders rows of an id column by its values (numbers or bytes), ascending.
fn id_order(ids: &Column) -> impl Fn(u32, u32) -> std::cmp::Ordering + '_ {
    let ints = ids.i64().ok();
    let strs = ids.str().ok();
    move |a, b| match (ints, strs) {
        (Some(i), _) => i.get(a as usize).cmp(&i.get(b as usize)),
        (_, Some(s)) => s.get(a as usize).map(str::as_bytes).cmp(&s.get(b as usize).map(str::as_bytes)),
        _ => std::cmp::Ordering::Equal,
    }
}

/// R3 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r3_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let Some(deals) = t.0.get("deals") else { return Ok(None) };
    let (Some(stages), Some(amount)) = (deal_stages(deals)?, int64(deals, "amount_cents")?) else {
        return Ok(None);
    };
    let column = |name: &str| deals.column(name).map_err(from_polars);
    let (Some(created), Some(closed)) = (micros(column("created_at")?)?, micros(column("closed_at")?)?) else {
        return Ok(None);
    };
    // The closed deals' columns, then one pass over each.
    let closed_rows: Vec<u32> =
        stages.iter().enumerate().filter(|(_, s)| **s == WON || **s == LOST).map(|(r, _)| r as u32).collect();
    let take = index(&closed_rows);
    let owners = column("owner_id")?.take(&take).map_err(from_polars)?;
    let Some((group, firsts)) = groups_of(&owners)? else { return Ok(None) };
    let won: Vec<bool> = closed_rows.iter().map(|r| stages[*r as usize] == WON).collect();

    #[derive(Clone, Default)]
    struct Owner {
        won: i64,
        lost: i64,
        won_amount: i64,
        seconds: i128,
        timed: i64,
    }
    let mut by_owner = vec![Owner::default(); firsts.len()];
    for (g, won) in group.iter().zip(&won) {
        let o = &mut by_owner[*g as usize];
        if *won {
            o.won += 1;
        } else {
            o.lost += 1;
        }
    }
    each_num(&amount.take(&take).map_err(from_polars)?, |i, amount| {
        if won[i] {
            let o = &mut by_owner[group[i] as usize];
            o.won_amount = o.won_amount.wrapping_add(amount.unwrap_or(0));
        }
    });
    // Whole seconds, as the general plan counts them; summed exactly.
    let taken = |c: &Int64Chunked| c.take(&take).map_err(from_polars);
    let elapsed = (&taken(&closed)? - &taken(&created)?) / 1_000_000;
    each_num(&elapsed, |i, seconds| {
        if let Some(seconds) = seconds {
            let o = &mut by_owner[group[i] as usize];
            o.seconds += i128::from(seconds);
            o.timed += 1;
        }
    });
    let by_id = id_order(&owners);
    let mut order: Vec<u32> = (0..firsts.len() as u32).collect();
    order.sort_unstable_by(|a, b| {
        let (x, y) = (&by_owner[*a as usize], &by_owner[*b as usize]);
        y.won_amount.cmp(&x.won_amount).then_with(|| by_id(firsts[*a as usize], firsts[*b as usize]))
    });
    let field = |f: fn(&Owner) -> i64| order.iter().map(|g| f(&by_owner[*g as usize])).collect::<Vec<_>>();
    let rate = order.iter().map(|g| {
        let o = &by_owner[*g as usize];
        round6_f(o.won as f64 / (o.won + o.lost) as f64)
    });
    let mean = order.iter().map(|g| {
        let o = &by_owner[*g as usize];
        (o.timed > 0).then(|| round6_f(o.seconds as f64 / o.timed as f64 / 86_400.0))
    });
    let firsts: Vec<u32> = order.iter().map(|g| firsts[*g as usize]).collect();
    DataFrame::new_infer_height(vec![
        owners.take(&index(&firsts)).map_err(from_polars)?,
        Column::new("won".into(), field(|o| o.won)),
        Column::new("lost".into(), field(|o| o.lost)),
        Column::new("win_rate".into(), rate.collect::<Vec<_>>()),
        Column::new("won_amount".into(), field(|o| o.won_amount)),
        Column::new("avg_days_to_close".into(), mean.collect::<Vec<_>>()),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// The won deals (live and closed_won) of live companies.
struct WonDeals {
    /// The live companies: `id`, `name`, `industry`.
    companies: DataFrame,
    /// The won deals' rows among the deals, for `take`.
    rows: IdxCa,
    /// Each won deal's company: its row in `companies` (`u32::MAX`: not a live one).
    company: Vec<u32>,
}

/// The won deals of live companies; `None` when the tables need the general plans.
fn won_of_live_companies(t: &Tables) -> Result<Option<WonDeals>> {
    let (Some(deals), Some(companies)) = (t.0.get("deals"), t.0.get("companies")) else { return Ok(None) };
    let Some(stages) = deal_stages(deals)? else { return Ok(None) };
    let live = companies
        .clone()
        .lazy()
        .filter(col("deleted_at").is_null())
        .select([col("id"), col("name"), col("industry")])
        .collect()
        .map_err(from_polars)?;
    let won: Vec<u32> = stages.iter().enumerate().filter(|(_, s)| **s == WON).map(|(r, _)| r as u32).collect();
    let rows = index(&won);
    let company = deals.column("company_id").map_err(from_polars)?.take(&rows).map_err(from_polars)?;
    let Some((company, _)) = dense_numbers(&company, live.column("id").map_err(from_polars)?)? else {
        return Ok(None);
    };
    Ok(Some(WonDeals { companies: live, rows, company }))
}

/// R6 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r6_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let Some(deals) = t.0.get("deals") else { return Ok(None) };
    let Some(amount) = int64(deals, "amount_cents")? else { return Ok(None) };
    let Some(WonDeals { companies, rows, company }) = won_of_live_companies(t)? else { return Ok(None) };
    let mut count = vec![0i64; companies.height()];
    let mut revenue = vec![0i64; companies.height()];
    each_num(&amount.take(&rows).map_err(from_polars)?, |i, amount| {
        if let Some(c) = company.get(i).map(|c| *c as usize).filter(|c| *c < count.len()) {
            count[c] += 1;
            revenue[c] = revenue[c].wrapping_add(amount.unwrap_or(0));
        }
    });
    let total = revenue.iter().zip(&count).filter(|(_, n)| **n > 0).fold(0i64, |s, (r, _)| s.wrapping_add(*r));
    let ids = companies.column("id").map_err(from_polars)?;
    let by_id = id_order(ids);
    let order = |a: &u32, b: &u32| revenue[*b as usize].cmp(&revenue[*a as usize]).then_with(|| by_id(*a, *b));
    let mut chosen: Vec<u32> = (0..companies.height() as u32).filter(|c| count[*c as usize] > 0).collect();
    const TOP: usize = 100;
    if chosen.len() > TOP {
        chosen.select_nth_unstable_by(TOP - 1, order);
        chosen.truncate(TOP);
    }
    chosen.sort_unstable_by(order);
    let take = IdxCa::from_vec("".into(), chosen.iter().map(|c| *c as IdxSize).collect());
    let picked = companies.take(&take).map_err(from_polars)?;
    let column = |name: &str| picked.column(name).cloned().map_err(from_polars);
    DataFrame::new_infer_height(vec![
        column("id")?.with_name("company_id".into()),
        column("name")?,
        column("industry")?,
        Column::new("won_deals".into(), chosen.iter().map(|c| count[*c as usize]).collect::<Vec<_>>()),
        Column::new("revenue".into(), chosen.iter().map(|c| revenue[*c as usize]).collect::<Vec<_>>()),
        Column::new(
            "revenue_share".into(),
            chosen.iter().map(|c| round6_f(revenue[*c as usize] as f64 / total as f64)).collect::<Vec<_>>(),
        ),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// R8 on its purpose-built path; `None` when the tables need the general plan.
pub(super) fn r8_fast(t: &Tables) -> Result<Option<DataFrame>> {
    let Some(deals) = t.0.get("deals") else { return Ok(None) };
    let Some(closed) = micros(deals.column("closed_at").map_err(from_polars)?)? else { return Ok(None) };
    let Some(WonDeals { companies, rows, company }) = won_of_live_companies(t)? else { return Ok(None) };
    let mut first = vec![i64::MAX; companies.height()];
    each_num(&closed.take(&rows).map_err(from_polars)?, |i, at| {
        if let (Some(at), Some(f)) = (at, company.get(i).and_then(|c| first.get_mut(*c as usize))) {
            *f = (*f).min(at);
        }
    });
    let mut months: BTreeMap<i64, i64> = BTreeMap::new();
    for at in first.into_iter().filter(|f| *f != i64::MAX) {
        *months.entry(month_key(at.div_euclid(86_400_000_000))).or_default() += 1;
    }
    let cumulative = months.values().scan(0i64, |sum, n| {
        *sum += n;
        Some(*sum)
    });
    DataFrame::new_infer_height(vec![
        Column::new("month".into(), months.keys().map(|k| month_text(*k)).collect::<Vec<_>>()),
        Column::new("new_customers".into(), months.values().copied().collect::<Vec<_>>()),
        Column::new("cumulative_customers".into(), cumulative.collect::<Vec<_>>()),
    ])
    .map(Some)
    .map_err(from_polars)
}

/// The latest `created_at` of a table's live rows in µs (inner `None`: no live row with
/// one); `None` when the column is not a time.
pub(super) fn latest_live(df: &DataFrame) -> Result<Option<Option<i64>>> {
    let Some(created) = micros(df.column("created_at").map_err(from_polars)?)? else { return Ok(None) };
    let live = live_rows(df)?;
    let mut latest: Option<i64> = None;
    each_num(&created, |row, at| {
        if let Some(at) = at.filter(|_| live[row]) {
            latest = Some(latest.map_or(at, |l| l.max(at)));
        }
    });
    Ok(Some(latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text column of `n` rows over many distinct values (more than the view cache's
    /// slots, so they collide), short and long, some NULL, in three chunks.
    fn texts(n: usize) -> PolarsResult<StringChunked> {
        let value = |i: usize| match i % 7 {
            0 => None,
            1 => Some(format!("a long value number {}", i % 613)),
            _ => Some(format!("v{}", (i * 7919) % 997)),
        };
        let mut ca = StringChunked::new("t".into(), (0..n / 3).map(value).collect::<Vec<_>>());
        for part in [n / 3..2 * n / 3, 2 * n / 3..n] {
            ca.append(&StringChunked::new("t".into(), part.map(value).collect::<Vec<_>>()))?;
        }
        assert_eq!(ca.chunks().len(), 3);
        Ok(ca)
    }

    /// A code a text's every byte decides.
    fn code_of(t: Option<&str>) -> u8 {
        t.map_or(0, |t| t.bytes().fold(1u8, |h, b| h.wrapping_mul(31).wrapping_add(b)))
    }

    #[test]
    fn each_code_gives_every_row_its_own_values_code() -> PolarsResult<()> {
        let ca = texts(10_000)?;
        let expected: Vec<u8> = ca.iter().map(code_of).collect();
        let mut asked = 0;
        let mut got = vec![u8::MAX; ca.len()];
        each_code(
            &ca,
            |t| {
                asked += 1;
                code_of(t)
            },
            |row, code| got[row] = code,
        );
        assert_eq!(got, expected);
        assert!(asked < ca.len(), "the short values' codes come from the cache");
        Ok(())
    }
}
