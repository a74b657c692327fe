//! R4, the stage funnel, on a purpose-built path: one pass that gives each live deal a
//! dense number, a counting sort of the history by deal, and a walk through each deal's
//! entries in time order. It answers exactly what the general polars plan (`super::r4`)
//! answers; tables it does not handle (NULLs in the history, ids of another type) go to
//! that plan.

use polars::prelude::*;

use super::{from_polars, round6_f, Tables, STAGES};
use crate::error::Result;

/// The dense number of each history row's deal (`u32::MAX`: not a live deal), or `None`
/// when the ids are of a type this path does not handle.
fn deal_numbers(history_ids: &Column, live_ids: &Column) -> Result<Option<(Vec<u32>, usize)>> {
    const NONE: u32 = u32::MAX;
    if history_ids.dtype() != live_ids.dtype() {
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
                _ => return Ok(Some((vec![NONE; hist.len()], 0))),
            };
            // Compact ids (the usual case): a table indexed by id; else a hash map.
            let span = max.checked_sub(min).and_then(|s| usize::try_from(s).ok());
            match span {
                Some(span) if span < 4 * n_live + 1024 => {
                    let mut slot = vec![NONE; span + 1];
                    let mut n = 0u32;
                    for id in live.into_no_null_iter() {
                        let s = &mut slot[(id - min) as usize];
                        if *s == NONE {
                            *s = n;
                            n += 1;
                        }
                    }
                    let numbers = hist
                        .iter()
                        .map(|id| match id {
                            Some(id) if id >= min && id <= max => slot[(id - min) as usize],
                            _ => NONE,
                        })
                        .collect();
                    Ok(Some((numbers, n as usize)))
                }
                _ => {
                    let mut map: PlHashMap<i64, u32> = PlHashMap::with_capacity(n_live);
                    for id in live.into_no_null_iter() {
                        let next = map.len() as u32;
                        map.entry(id).or_insert(next);
                    }
                    let numbers =
                        hist.iter().map(|id| id.and_then(|id| map.get(&id).copied()).unwrap_or(NONE)).collect();
                    Ok(Some((numbers, map.len())))
                }
            }
        }
        DataType::String => {
            let live = live_ids.str().map_err(from_polars)?;
            let hist = history_ids.str().map_err(from_polars)?;
            let mut map: PlHashMap<&str, u32> = PlHashMap::with_capacity(n_live);
            for id in live.iter().flatten() {
                let next = map.len() as u32;
                map.entry(id).or_insert(next);
            }
            let numbers = hist.iter().map(|id| id.and_then(|id| map.get(id).copied()).unwrap_or(NONE)).collect();
            Ok(Some((numbers, map.len())))
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
    let Some((deal_of, n_deals)) = deal_numbers(&deal_id, live.column("id").map_err(from_polars)?)? else {
        return Ok(None);
    };
    let micros = changed_at
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(from_polars)?;
    let micros = micros.i64().map_err(from_polars)?;
    let times: Vec<i64> = micros.into_no_null_iter().collect();
    // The stage of each row (STAGES.len() for a stage outside the six: it still ends the
    // time in the stage before it).
    let other = STAGES.len() as u8;
    let stages: Vec<u8> = to_stage
        .str()
        .map_err(from_polars)?
        .iter()
        .flatten()
        .map(|s| STAGES.iter().position(|(name, _)| *name == s).map_or(other, |p| p as u8))
        .collect();

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
