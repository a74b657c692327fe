//! The reports on a small data set whose answers are worked out by hand in the comments.

#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;

use super::*;

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Three companies (the third deleted) and eight deals:
/// 1 Acme prospecting 1000, 2 Acme proposal 2500, 3 Beta proposal NULL (closes after the
/// window), 4 Acme won 9999 after 10 days, 5 Beta won 5000 after 31 days, 6 Beta lost 700
/// after 1.5 days, 7 Gone (deleted company) won 100000 after 1 day, 8 deleted.
fn tables() -> Tables {
    let companies = DataFrame::new_infer_height(vec![
        Column::new("id".into(), [1i64, 2, 3]),
        Column::new("name".into(), ["Acme", "Beta", "Gone"]),
        Column::new("industry".into(), [Some("Tech"), None, Some("Retail")]),
        Column::new("deleted_at".into(), [None, None, Some(ts("2026-01-09 00:00:00"))]),
    ])
    .unwrap();
    let deals = DataFrame::new_infer_height(vec![
        Column::new("id".into(), [1i64, 2, 3, 4, 5, 6, 7, 8]),
        Column::new("company_id".into(), [1i64, 1, 2, 1, 2, 2, 3, 1]),
        Column::new("owner_id".into(), [10i64, 10, 11, 10, 11, 11, 11, 10]),
        Column::new(
            "pipeline_stage".into(),
            [
                "prospecting",
                "proposal",
                "proposal",
                "closed_won",
                "closed_won",
                "closed_lost",
                "closed_won",
                "prospecting",
            ],
        ),
        Column::new(
            "amount_cents".into(),
            [Some(1000i64), Some(2500), None, Some(9999), Some(5000), Some(700), Some(100_000), Some(1)],
        ),
        Column::new(
            "expected_close_date".into(),
            [
                date("2026-02-10"),
                date("2026-03-05"),
                date("2027-06-01"),
                date("2026-01-20"),
                date("2026-02-01"),
                date("2026-01-10"),
                date("2026-01-10"),
                date("2026-04-01"),
            ],
        ),
        Column::new(
            "created_at".into(),
            [
                ts("2026-01-01 00:00:00"),
                ts("2026-01-02 00:00:00"),
                ts("2026-01-03 00:00:00"),
                ts("2026-01-04 00:00:00"),
                ts("2026-01-05 00:00:00"),
                ts("2026-01-06 00:00:00"),
                ts("2026-01-07 00:00:00"),
                ts("2026-03-01 00:00:00"),
            ],
        ),
        Column::new(
            "closed_at".into(),
            [
                None,
                None,
                None,
                Some(ts("2026-01-14 00:00:00")),
                Some(ts("2026-02-05 00:00:00")),
                Some(ts("2026-01-07 12:00:00")),
                Some(ts("2026-01-08 00:00:00")),
                None,
            ],
        ),
        Column::new("deleted_at".into(), [None, None, None, None, None, None, None, Some(ts("2026-03-02 00:00:00"))]),
    ])
    .unwrap();
    Tables([("companies".to_string(), companies), ("deals".to_string(), deals)].into_iter().collect())
}

fn values(df: &DataFrame, c: &str) -> Vec<AnyValue<'static>> {
    let column = df.column(c).unwrap();
    (0..df.height()).map(|i| column.get(i).unwrap().into_static()).collect()
}

fn ints(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
    values(df, c).into_iter().map(|v| v.extract::<i64>()).collect()
}

fn strs(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    values(df, c)
        .into_iter()
        .map(|v| match v {
            AnyValue::Null => None,
            other => Some(other.str_value().to_string()),
        })
        .collect()
}

fn floats(df: &DataFrame, c: &str) -> Vec<f64> {
    values(df, c).into_iter().map(|v| v.extract::<f64>().unwrap_or(f64::NAN)).collect()
}

fn s(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|x| Some((*x).to_string())).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-6, "{a:?} vs {b:?}");
    }
}

fn run(name: &str) -> DataFrame {
    report(name, &tables(), &Params::default()).unwrap()
}

#[test]
fn defaults_come_from_the_live_deals() {
    let r = Params::default().resolve(&tables()).unwrap();
    // Deal 8 is newer but deleted.
    assert_eq!(r.as_of, ts("2026-01-07 00:00:00"));
    assert_eq!(r.forecast_end, date("2027-01-07"));
    assert_eq!(r.engagement_start, ts("2025-10-09 00:00:00"));
    let leap = Params { as_of: Some(ts("2028-02-29 10:00:00")), ..Default::default() }.resolve(&tables()).unwrap();
    assert_eq!(leap.forecast_end, date("2029-02-28"), "the day is clamped");
}

#[test]
fn r1_open_deals_per_stage() {
    let df = run("r1_pipeline_by_stage");
    let cols: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(cols, ["stage", "deal_count", "total_amount", "avg_amount", "weighted_amount"]);
    assert_eq!(strs(&df, "stage"), s(&["prospecting", "proposal"]));
    assert_eq!(ints(&df, "deal_count"), [Some(1), Some(2)]);
    assert_eq!(ints(&df, "total_amount"), [Some(1000), Some(2500)]);
    // The NULL amount is not counted in the average.
    assert_eq!(ints(&df, "avg_amount"), [Some(1000), Some(2500)]);
    // 1000 × 10 // 100; 2500 × 40 // 100.
    assert_eq!(ints(&df, "weighted_amount"), [Some(100), Some(1000)]);
}

#[test]
fn r2_forecast_by_month() {
    let df = run("r2_forecast_by_month");
    // Deal 3 closes after forecast_end (2027-01-07).
    assert_eq!(strs(&df, "month"), s(&["2026-02", "2026-03"]));
    assert_eq!(ints(&df, "deal_count"), [Some(1), Some(1)]);
    assert_eq!(ints(&df, "total_amount"), [Some(1000), Some(2500)]);
    assert_eq!(ints(&df, "weighted_amount"), [Some(100), Some(1000)]);
}

#[test]
fn r3_win_rate_by_owner() {
    let df = run("r3_win_rate_by_owner");
    let cols: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(cols, ["owner_id", "won", "lost", "win_rate", "won_amount", "avg_days_to_close"]);
    // Owner 11: won 5 and 7, lost 6; 105,000 won; (31 + 1 + 1.5) / 3 days.
    assert_eq!(ints(&df, "owner_id"), [Some(11), Some(10)]);
    assert_eq!(ints(&df, "won"), [Some(2), Some(1)]);
    assert_eq!(ints(&df, "lost"), [Some(1), Some(0)]);
    close(&floats(&df, "win_rate"), &[0.666667, 1.0]);
    assert_eq!(ints(&df, "won_amount"), [Some(105_000), Some(9999)]);
    close(&floats(&df, "avg_days_to_close"), &[11.166667, 10.0]);
}

#[test]
fn r6_top_companies_by_revenue() {
    let df = run("r6_top_companies_by_revenue");
    // Deal 7's company is deleted: out of the join and of the total (14,999).
    assert_eq!(ints(&df, "company_id"), [Some(1), Some(2)]);
    assert_eq!(strs(&df, "name"), s(&["Acme", "Beta"]));
    assert_eq!(strs(&df, "industry"), [Some("Tech".to_string()), None]);
    assert_eq!(ints(&df, "won_deals"), [Some(1), Some(1)]);
    assert_eq!(ints(&df, "revenue"), [Some(9999), Some(5000)]);
    close(&floats(&df, "revenue_share"), &[0.666644, 0.333356]);
}

#[test]
fn r8_customer_acquisition() {
    let df = run("r8_customer_acquisition");
    assert_eq!(strs(&df, "month"), s(&["2026-01", "2026-02"]));
    assert_eq!(ints(&df, "new_customers"), [Some(1), Some(1)]);
    assert_eq!(ints(&df, "cumulative_customers"), [Some(1), Some(2)]);
}

#[test]
fn string_ids_work_too() {
    let mut t = tables();
    for (name, cols) in [("deals", &["id", "company_id", "owner_id"][..]), ("companies", &["id"][..])] {
        let df = t.0.get_mut(name).unwrap();
        for c in cols {
            let as_text = df.column(c).unwrap().cast(&DataType::String).unwrap();
            df.with_column(as_text).unwrap();
        }
    }
    let df = report("r6_top_companies_by_revenue", &t, &Params::default()).unwrap();
    assert_eq!(strs(&df, "company_id"), s(&["1", "2"]));
    let df = report("r3_win_rate_by_owner", &t, &Params::default()).unwrap();
    assert_eq!(strs(&df, "owner_id"), s(&["11", "10"]));
}

#[test]
fn unknown_reports_and_missing_tables_are_named() {
    let e = report("r9_nothing", &tables(), &Params::default()).unwrap_err();
    assert!(e.to_string().contains("r1_pipeline_by_stage"), "{e}");
    let e = report("r1_pipeline_by_stage", &Tables::default(), &Params::default()).unwrap_err();
    assert!(e.to_string().contains("deals"), "{e}");
}
