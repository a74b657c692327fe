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
    // Deal 1 slips back to prospecting; deal 6 enters qualification before its first
    // prospecting entry (so that entry is no conversion); deal 8 is deleted.
    let history: [(i64, &str, &str); 13] = [
        (1, "prospecting", "2026-01-01 00:00:00"),
        (1, "qualification", "2026-01-03 00:00:00"),
        (1, "prospecting", "2026-01-04 00:00:00"),
        (2, "prospecting", "2026-01-02 00:00:00"),
        (2, "qualification", "2026-01-02 12:00:00"),
        (2, "proposal", "2026-01-05 00:00:00"),
        (4, "prospecting", "2026-01-04 00:00:00"),
        (4, "closed_won", "2026-01-14 00:00:00"),
        (6, "qualification", "2026-01-06 00:00:00"),
        (6, "prospecting", "2026-01-06 06:00:00"),
        (6, "closed_lost", "2026-01-07 12:00:00"),
        (8, "prospecting", "2026-03-01 00:00:00"),
        (8, "qualification", "2026-03-02 00:00:00"),
    ];
    let history = DataFrame::new_infer_height(vec![
        Column::new("deal_id".into(), history.iter().map(|h| h.0).collect::<Vec<_>>()),
        Column::new("to_stage".into(), history.iter().map(|h| h.1).collect::<Vec<_>>()),
        Column::new("changed_at".into(), history.iter().map(|h| ts(h.2)).collect::<Vec<_>>()),
    ])
    .unwrap();
    // Contact 7 is deleted; "Ads" sorts before "ads" in byte order.
    let contacts = DataFrame::new_infer_height(vec![
        Column::new("id".into(), [1i64, 2, 3, 4, 5, 6, 7, 8]),
        Column::new(
            "lead_source".into(),
            [Some("web"), Some("web"), Some("web"), None, Some("Ads"), Some("web"), Some("web"), Some("ads")],
        ),
        Column::new(
            "lifecycle_stage".into(),
            ["customer", "customer", "lead", "customer", "lead", "customer", "customer", "lead"],
        ),
        Column::new(
            "created_at".into(),
            [
                ts("2026-01-05 00:00:00"),
                ts("2026-01-10 00:00:00"),
                ts("2026-01-20 00:00:00"),
                ts("2026-01-21 00:00:00"),
                ts("2026-02-01 00:00:00"),
                ts("2026-02-02 00:00:00"),
                ts("2026-01-06 00:00:00"),
                ts("2026-02-03 00:00:00"),
            ],
        ),
        Column::new(
            "converted_at".into(),
            [
                Some(ts("2026-01-15 00:00:00")),
                Some(ts("2026-01-13 00:00:00")),
                None,
                None,
                None,
                Some(ts("2026-02-03 12:00:00")),
                Some(ts("2026-01-07 00:00:00")),
                None,
            ],
        ),
        Column::new("deleted_at".into(), [None, None, None, None, None, None, Some(ts("2026-01-08 00:00:00")), None]),
    ])
    .unwrap();
    // The window is [2025-10-09, 2026-01-07) with the default as_of.
    let interactions: [(i64, &str, &str); 12] = [
        (1, "call", "2026-01-01 00:00:00"),
        (1, "email", "2026-01-02 00:00:00"),
        (1, "call", "2026-01-07 00:00:00"),
        (2, "meeting", "2025-10-09 00:00:00"),
        (2, "note", "2025-12-01 00:00:00"),
        (7, "call", "2026-01-01 00:00:00"),
        (7, "call", "2026-01-01 00:00:00"),
        (7, "call", "2026-01-01 00:00:00"),
        (3, "email", "2025-10-08 23:59:59"),
        (2, "email", "2025-11-01 00:00:00"),
        (4, "note", "2026-01-03 00:00:00"),
        (4, "note", "2026-01-04 00:00:00"),
    ];
    let interactions = DataFrame::new_infer_height(vec![
        Column::new("id".into(), (1..=12i64).collect::<Vec<_>>()),
        Column::new("contact_id".into(), interactions.iter().map(|i| i.0).collect::<Vec<_>>()),
        Column::new("kind".into(), interactions.iter().map(|i| i.1).collect::<Vec<_>>()),
        Column::new("occurred_at".into(), interactions.iter().map(|i| ts(i.2)).collect::<Vec<_>>()),
    ])
    .unwrap();
    Tables(
        [
            ("companies", companies),
            ("deals", deals),
            ("deal_stage_history", history),
            ("contacts", contacts),
            ("interactions", interactions),
        ]
        .into_iter()
        .map(|(n, df)| (n.to_string(), df))
        .collect(),
    )
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

fn opt_floats(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    values(df, c).into_iter().map(|v| v.extract::<f64>()).collect()
}

fn close_opt(a: &[Option<f64>], b: &[Option<f64>]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-6, "{a:?} vs {b:?}"),
            (None, None) => {}
            _ => panic!("{a:?} vs {b:?}"),
        }
    }
}

#[test]
fn r4_stage_funnel() {
    let df = run("r4_stage_funnel");
    let cols: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(cols, ["stage", "deals_reached", "converted_to_next", "conversion_to_next", "median_days_in_stage"]);
    // Negotiation was never reached; deal 8's entries are out.
    assert_eq!(strs(&df, "stage"), s(&["prospecting", "qualification", "proposal", "closed_won", "closed_lost"]));
    assert_eq!(ints(&df, "deals_reached"), [Some(4), Some(3), Some(1), Some(1), Some(1)]);
    // Prospecting → qualification: deals 1 and 2 (deal 6 entered qualification first).
    // Qualification → proposal: deal 2. Proposal → negotiation: none.
    assert_eq!(ints(&df, "converted_to_next"), [Some(2), Some(1), Some(0), None, None]);
    close_opt(&opt_floats(&df, "conversion_to_next"), &[Some(0.5), Some(0.333333), Some(0.0), None, None]);
    // Prospecting: 2, 0.5, 10 and 1.25 days (deal 1's second entry has no successor)
    // → (1.25 + 2) / 2. Qualification: 1, 2.5, 0.25 → 1. Proposal: no successor.
    close_opt(&opt_floats(&df, "median_days_in_stage"), &[Some(1.625), Some(1.0), None, None, None]);
}

#[test]
fn r5_lead_conversion() {
    let df = run("r5_lead_conversion");
    let cols: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(cols, ["month", "lead_source", "created", "converted", "conversion_rate", "median_days_to_convert"]);
    assert_eq!(strs(&df, "month"), s(&["2026-01", "2026-01", "2026-02", "2026-02", "2026-02"]));
    // NULL last within the month; byte order puts "Ads" before "ads".
    assert_eq!(
        strs(&df, "lead_source"),
        [Some("web".to_string()), None, Some("Ads".to_string()), Some("ads".to_string()), Some("web".to_string())]
    );
    // Contact 7 (deleted) is not counted.
    assert_eq!(ints(&df, "created"), [Some(3), Some(1), Some(1), Some(1), Some(1)]);
    assert_eq!(ints(&df, "converted"), [Some(2), Some(1), Some(0), Some(0), Some(1)]);
    close(&floats(&df, "conversion_rate"), &[0.666667, 1.0, 0.0, 0.0, 1.0]);
    // 10 and 3 days → 6.5; contact 4 is a customer without converted_at.
    close_opt(&opt_floats(&df, "median_days_to_convert"), &[Some(6.5), None, None, None, Some(1.5)]);
}

#[test]
fn r7_contact_engagement() {
    let df = run("r7_contact_engagement");
    let cols: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(cols, ["contact_id", "total", "calls", "emails", "meetings", "notes", "last_interaction_at"]);
    // Contact 7 is deleted; contact 3's only interaction is a second before the window;
    // contact 1's call at as_of is outside it (the end is exclusive). 1 and 4 tie on 2.
    assert_eq!(ints(&df, "contact_id"), [Some(2), Some(1), Some(4)]);
    assert_eq!(ints(&df, "total"), [Some(3), Some(2), Some(2)]);
    assert_eq!(ints(&df, "calls"), [Some(0), Some(1), Some(0)]);
    assert_eq!(ints(&df, "emails"), [Some(1), Some(1), Some(0)]);
    assert_eq!(ints(&df, "meetings"), [Some(1), Some(0), Some(0)]);
    assert_eq!(ints(&df, "notes"), [Some(1), Some(0), Some(2)]);
    let last: Vec<String> = values(&df, "last_interaction_at").iter().map(|v| v.to_string()).collect();
    assert_eq!(last, ["2025-12-01 00:00:00", "2026-01-02 00:00:00", "2026-01-04 00:00:00"]);
    let narrow = Params { engagement_start: Some(ts("2026-01-02 00:00:00")), ..Default::default() };
    let df = report("r7_contact_engagement", &tables(), &narrow).unwrap();
    assert_eq!(ints(&df, "contact_id"), [Some(4), Some(1)]);
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
