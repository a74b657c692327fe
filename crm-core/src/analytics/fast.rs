//! Purpose-built paths for the reports a general plan answers slowest: R4 (the stage
//! funnel: each live deal gets a dense number, the history is counting-sorted by deal and
//! each deal's entries walked in time order), R5 (lead conversion: one pass grouping by
//! month and source) and R7 (engagement: one pass counting per live contact, then a
//! partial sort for the top 1,000). Each answers exactly what its general polars plan
//! answers (`super::r4`, `r5`, `r7`); tables a path does not handle (NULLs where the
//! data has none, ids of another type) go to that plan.

use polars::prelude::*;

use super::{from_polars, round6_f, Resolved, Tables, STAGES};
use crate::error::Result;

/// Dense numbers for ids: for each row of `ids`, the number of its live id (`u32::MAX`:
/// not a live one), and for each number, the row of `live_ids` it stands for. `None` when
/// the ids are of a type these paths do not handle.
fn dense_numbers(ids: &Column, live_ids: &Column) -> Result<Option<(Vec<u32>, Vec<u32>)>> {
    let history_ids = ids;
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
                    let numbers = hist
                        .iter()
                        .map(|id| match id {
                            Some(id) if id >= min && id <= max => slot[(id - min) as usize],
                            _ => NONE,
                        })
                        .collect();
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
                    let numbers =
                        hist.iter().map(|id| id.and_then(|id| map.get(&id).copied()).unwrap_or(NONE)).collect();
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
            let numbers = hist.iter().map(|id| id.and_then(|id| map.get(id).copied()).unwrap_or(NONE)).collect();
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
    let (created, stage, source, converted, deleted) = (
        column("created_at")?,
        column("lifecycle_stage")?,
        column("lead_source")?,
        column("converted_at")?,
        column("deleted_at")?,
    );
    if created.null_count() > 0
        || stage.null_count() > 0
        || stage.dtype() != &DataType::String
        || source.dtype() != &DataType::String
    {
        return Ok(None);
    }
    let (Some(created), Some(converted)) = (micros(&created)?, micros(&converted)?) else { return Ok(None) };
    let deleted = deleted.is_null();
    let stage = stage.str().map_err(from_polars)?;
    let source = source.str().map_err(from_polars)?;

    struct Group {
        created: i64,
        converted: i64,
        days: Vec<f64>,
    }
    let mut sources: PlHashMap<&str, u32> = PlHashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut index: PlHashMap<(i64, u32), usize> = PlHashMap::new();
    let mut groups: Vec<((i64, u32), Group)> = Vec::new();
    let rows =
        created.into_no_null_iter().zip(stage.iter()).zip(source.iter()).zip(converted.iter()).zip(deleted.iter());
    for ((((at, stage), source), converted), live) in rows {
        if live != Some(true) {
            continue;
        }
        let (y, m) = year_month(at.div_euclid(86_400_000_000));
        let src = match source {
            None => u32::MAX,
            Some(s) => *sources.entry(s).or_insert_with(|| {
                names.push(s);
                names.len() as u32 - 1
            }),
        };
        let key = (y * 12 + i64::from(m) - 1, src);
        let g = *index.entry(key).or_insert_with(|| {
            groups.push((key, Group { created: 0, converted: 0, days: Vec::new() }));
            groups.len() - 1
        });
        let g = &mut groups[g].1;
        g.created += 1;
        if stage == Some("customer") {
            g.converted += 1;
            if let Some(c) = converted {
                g.days.push(days(c, at));
            }
        }
    }
    // By month, then source in byte order with NULL last.
    groups.sort_by(|(a, _), (b, _)| {
        a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
            (u32::MAX, u32::MAX) => std::cmp::Ordering::Equal,
            (u32::MAX, _) => std::cmp::Ordering::Greater,
            (_, u32::MAX) => std::cmp::Ordering::Less,
            (x, y) => names[x as usize].as_bytes().cmp(names[y as usize].as_bytes()),
        })
    });
    let n = groups.len();
    let (mut month, mut lead, mut made, mut conv, mut rate, mut med) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((key, src), mut g) in groups {
        month.push(format!("{:04}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1));
        lead.push((src != u32::MAX).then(|| names[src as usize]));
        made.push(g.created);
        conv.push(g.converted);
        rate.push(round6_f(g.converted as f64 / g.created as f64));
        med.push(median(&mut g.days));
    }
    DataFrame::new_infer_height(vec![
        Column::new("month".into(), month),
        Column::new("lead_source".into(), lead),
        Column::new("created".into(), made),
        Column::new("converted".into(), conv),
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
    let window: Vec<IdxSize> = occurred
        .into_no_null_iter()
        .enumerate()
        .filter(|(_, at)| *at >= start && *at < end)
        .map(|(i, _)| i as IdxSize)
        .collect();
    let window = IdxCa::from_vec("".into(), window);
    let times = occurred.take(&window).map_err(from_polars)?;
    let contact = contact.take(&window).map_err(from_polars)?;
    let kind = kind.take(&window).map_err(from_polars)?;
    let Some((number, rows)) = dense_numbers(&contact, &live)? else { return Ok(None) };
    let n = rows.len();
    // Per contact: total, call, email, meeting, note, and the latest time.
    let mut counts = vec![[0i64; 5]; n];
    let mut last = vec![i64::MIN; n];
    let kinds = kind.str().map_err(from_polars)?;
    for ((num, at), kind) in number.iter().zip(times.into_no_null_iter()).zip(kinds.iter()) {
        if *num == u32::MAX {
            continue;
        }
        let c = &mut counts[*num as usize];
        c[0] += 1;
        match kind {
            Some("call") => c[1] += 1,
            Some("email") => c[2] += 1,
            Some("meeting") => c[3] += 1,
            Some("note") => c[4] += 1,
            _ => {}
        }
        let l = &mut last[*num as usize];
        *l = (*l).max(at);
    }
    let mut chosen: Vec<u32> = (0..n as u32).filter(|i| counts[*i as usize][0] > 0).collect();
    // The most interactions first, then by id (the ids' own order: numbers or bytes).
    let ints = live.i64().ok().cloned();
    let strs = live.str().ok().cloned();
    let by_id = |a: u32, b: u32| -> std::cmp::Ordering {
        let (ra, rb) = (rows[a as usize] as usize, rows[b as usize] as usize);
        match (&ints, &strs) {
            (Some(i), _) => i.get(ra).cmp(&i.get(rb)),
            (_, Some(s)) => s.get(ra).map(str::as_bytes).cmp(&s.get(rb).map(str::as_bytes)),
            _ => std::cmp::Ordering::Equal,
        }
    };
    let order = |a: &u32, b: &u32| counts[*b as usize][0].cmp(&counts[*a as usize][0]).then_with(|| by_id(*a, *b));
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
