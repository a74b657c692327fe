//! The reports on a small data set whose answers are worked out by hand in the comments.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;

use super::overview::StageCount;
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
    analytics_tables([companies, deals, history, contacts, interactions])
}

/// Companies, deals, stage history, contacts and interactions as the analytics tables.
fn analytics_tables(frames: [DataFrame; 5]) -> Tables {
    let names = ["companies", "deals", "deal_stage_history", "contacts", "interactions"];
    Tables(names.into_iter().map(String::from).zip(frames).collect())
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
            // REPORTS.md's tolerance, as the benchmark's comparison reads it: two roundings
            // of a value half-way between two 6-decimal numbers may differ by one unit.
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-6 + 1e-9 || (x.is_nan() && y.is_nan()), "{a:?} vs {b:?}"),
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
    as_text(&mut t, &[("deals", &["id", "company_id", "owner_id"][..]), ("companies", &["id"][..])]);
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

// Custom reports, on the same tables.

fn custom_json(json: serde_json::Value) -> Result<DataFrame> {
    custom(&serde_json::from_value::<ReportSpec>(json).unwrap(), &tables())
}

fn field_errors(e: &Error) -> Vec<String> {
    e.field_errors().iter().map(|f| f.field.clone()).collect()
}

#[test]
fn custom_groups_a_join_and_leaves_deleted_companies_out() {
    // Won live deals: 4 (Acme, Tech, 9999), 5 (Beta, no industry, 5000) and 7, whose
    // company is deleted, so it is left out.
    let df = custom_json(serde_json::json!({
        "source": "deals", "join": ["companies"],
        "filter": "pipeline_stage[eq]:closed_won",
        "groupBy": ["companies.industry"],
        "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "amount_cents", "as": "revenue"}],
        "sort": "revenue[desc]"
    }))
    .unwrap();
    assert_eq!(names(&df), ["industry", "deals", "revenue"]);
    assert_eq!(strs(&df, "industry"), [Some("Tech".to_string()), None]);
    assert_eq!(ints(&df, "deals"), [Some(1), Some(1)]);
    assert_eq!(ints(&df, "revenue"), [Some(9999), Some(5000)]);
}

#[test]
fn custom_time_buckets() {
    // Live contacts: January 1, 2, 3, 4 (lead sources web ×3 and NULL); February 5, 6, 8
    // (Ads, web, ads). Contact 7 is deleted.
    let df = custom_json(serde_json::json!({
        "source": "contacts",
        "groupBy": [{"field": "created_at", "bucket": "month"}],
        "aggregates": [{"fn": "count"}, {"fn": "count_distinct", "field": "lead_source"}]
    }))
    .unwrap();
    assert_eq!(names(&df), ["created_at_month", "count", "count_distinct_lead_source"]);
    assert_eq!(strs(&df, "created_at_month"), s(&["2026-01", "2026-02"]));
    assert_eq!(ints(&df, "count"), [Some(4), Some(3)]);
    assert_eq!(ints(&df, "count_distinct_lead_source"), [Some(1), Some(3)]);

    // 2026-01-01 is a Thursday: deals 1–4 fall in the week of Monday 2025-12-29, 5–7 in
    // the week of 2026-01-05; deal 8 is deleted.
    let df = custom_json(serde_json::json!({
        "source": "deals",
        "groupBy": [{"field": "created_at", "bucket": "week", "as": "week"}],
        "aggregates": [{"fn": "count", "as": "n"}]
    }))
    .unwrap();
    assert_eq!(df.column("week").unwrap().dtype(), &DataType::Date);
    assert_eq!(strs(&df, "week"), s(&["2025-12-29", "2026-01-05"]));
    assert_eq!(ints(&df, "n"), [Some(4), Some(3)]);

    // Closed deals 4 (Jan 14), 5 (Feb 5), 6 (Jan 7), 7 (Jan 8); NULL closed_at groups as NULL,
    // first (NULL is the smallest value).
    let df = custom_json(serde_json::json!({
        "source": "deals",
        "groupBy": [{"field": "closed_at", "bucket": "quarter", "as": "q"}, {"field": "expected_close_date", "bucket": "year", "as": "y"}],
        "aggregates": [{"fn": "count", "as": "n"}]
    }))
    .unwrap();
    assert_eq!(strs(&df, "q"), [None, None, Some("2026-Q1".into())]);
    assert_eq!(ints(&df, "y"), [Some(2026), Some(2027), Some(2026)]);
    assert_eq!(ints(&df, "n"), [Some(2), Some(1), Some(4)]);
}

#[test]
fn custom_aggregates_over_all_rows() {
    // Live deals 1–7: amounts 1000, 2500, NULL, 9999, 5000, 700, 100000.
    let df = custom_json(serde_json::json!({
        "source": "deals",
        "aggregates": [
            {"fn": "count"}, {"fn": "count", "field": "amount_cents"},
            {"fn": "sum", "field": "amount_cents"}, {"fn": "avg", "field": "amount_cents"},
            {"fn": "min", "field": "amount_cents"}, {"fn": "max", "field": "amount_cents"},
            {"fn": "median", "field": "amount_cents"}, {"fn": "count_distinct", "field": "owner_id", "as": "owners"},
            {"fn": "max", "field": "closed_at", "as": "last_close"}
        ]
    }))
    .unwrap();
    assert_eq!(df.height(), 1);
    assert_eq!(ints(&df, "count"), [Some(7)]);
    assert_eq!(ints(&df, "count_amount_cents"), [Some(6)]);
    assert_eq!(ints(&df, "sum_amount_cents"), [Some(119_199)]);
    close(&floats(&df, "avg_amount_cents"), &[19_866.5]);
    assert_eq!(ints(&df, "min_amount_cents"), [Some(700)]);
    assert_eq!(ints(&df, "max_amount_cents"), [Some(100_000)]);
    close(&floats(&df, "median_amount_cents"), &[3750.0]);
    assert_eq!(ints(&df, "owners"), [Some(2)]);
    assert_eq!(values(&df, "last_close")[0].to_string(), "2026-02-05 00:00:00");
}

#[test]
fn custom_lists_rows_with_filter_sort_and_limit() {
    // Amount ≥ 5000: deals 4 (9999, Acme), 5 (5000, Beta), 7 (company deleted: left out).
    let spec = serde_json::json!({
        "source": "deals", "join": ["companies"],
        "filter": "amount_cents[gte]:5000",
        "fields": ["id", "amount_cents", "companies.name"],
        "sort": "-amount_cents"
    });
    let df = custom_json(spec.clone()).unwrap();
    assert_eq!(names(&df), ["id", "amount_cents", "companies.name"]);
    assert_eq!(ints(&df, "id"), [Some(4), Some(5)]);
    assert_eq!(strs(&df, "companies.name"), s(&["Acme", "Beta"]));
    let mut limited = spec;
    limited["limit"] = 1.into();
    assert_eq!(ints(&custom_json(limited).unwrap(), "id"), [Some(4)]);
    // Without a sort: the source's id order.
    let df =
        custom_json(serde_json::json!({"source": "deals", "filter": "owner_id[eq]:10", "fields": ["id"]})).unwrap();
    assert_eq!(ints(&df, "id"), [Some(1), Some(2), Some(4)]);
}

#[test]
fn custom_filters_follow_the_list_grammar() {
    let count = |source: &str, filter: &str| {
        let df = custom_json(serde_json::json!({"source": source, "filter": filter, "aggregates": [{"fn": "count"}]}))
            .unwrap();
        ints(&df, "count")[0].unwrap()
    };
    // neq keeps NULL; not() of eq too. Gone is deleted.
    assert_eq!(count("companies", "industry[neq]:Tech"), 1);
    assert_eq!(count("companies", "not(industry[eq]:Tech)"), 1);
    assert_eq!(count("companies", "industry[is]:null"), 1);
    // Byte order and case: Ads, ads.
    assert_eq!(count("contacts", "lead_source[ilike]:ads"), 2);
    assert_eq!(count("contacts", "lead_source[like]:A%"), 1);
    assert_eq!(count("contacts", "lead_source[like]:\"a_s\""), 1);
    assert_eq!(count("contacts", "lead_source[startsWith]:w"), 4);
    assert_eq!(count("contacts", "or(lead_source[eq]:Ads,lifecycle_stage[eq]:customer)"), 5);
    // Interactions of the deleted contact 7 do not exist: calls and emails of 1, 2, 3.
    assert_eq!(count("interactions", "kind[in]:[call,email]"), 5);
    // History of the deleted deal 8 does not exist.
    assert_eq!(count("deal_stage_history", "changed_at[gte]:2026-01-01"), 11);
    assert_eq!(count("deal_stage_history", "changed_at[gte]:\"2026-01-06T00:00:00Z\""), 4);
    assert_eq!(count("deals", "expected_close_date[lt]:2026-02-01"), 3);
    assert_eq!(count("deals", "and(owner_id[eq]:11,closed_at[is]:notnull)"), 3);
}

#[test]
fn custom_works_on_string_ids() {
    let mut t = tables();
    as_text(&mut t, &[("deals", &["id", "company_id", "owner_id"][..]), ("companies", &["id"][..])]);
    let spec: ReportSpec = serde_json::from_value(serde_json::json!({
        "source": "deals", "join": ["companies"], "filter": "owner_id[in]:[10,12]",
        "groupBy": ["companies.name"], "aggregates": [{"fn": "count"}]
    }))
    .unwrap();
    let df = custom(&spec, &t).unwrap();
    assert_eq!(strs(&df, "name"), s(&["Acme"]));
    assert_eq!(ints(&df, "count"), [Some(3)]);
    // A value that cannot be an integer id, on integer ids, is the caller's error.
    let spec: ReportSpec = serde_json::from_value(
        serde_json::json!({"source": "deals", "filter": "owner_id[eq]:abc", "aggregates": [{"fn": "count"}]}),
    )
    .unwrap();
    let e = custom(&spec, &tables()).unwrap_err();
    assert_eq!(field_errors(&e), ["filter"], "{e}");
}

#[test]
fn custom_specs_are_validated_field_by_field() {
    let e = custom_json(serde_json::json!({
        "source": "deals", "join": ["deals", "companies", "companies"],
        "filter": "stage[eq]:won",
        "groupBy": ["owner_id", {"field": "name", "bucket": "month"}, {"field": "nope"}, {"field": "owner_id"}],
        "aggregates": [{"fn": "sum", "field": "currency"}, {"fn": "avg"}, {"fn": "max", "field": "companies.nope"}],
        "sort": "revenue[desc],owner_id[sideways]",
        "limit": 0
    }))
    .unwrap_err();
    assert_eq!(
        field_errors(&e),
        [
            "join.0",
            "join.2",
            "filter",
            "groupBy.1.bucket",
            "groupBy.2.field",
            "groupBy.3",
            "aggregates.0.fn",
            "aggregates.1.field",
            "aggregates.2.field",
            "sort",
            "sort",
            "limit"
        ],
        "{e}"
    );
    let e = custom_json(serde_json::json!({"source": "leads", "aggregates": [{"fn": "count"}]})).unwrap_err();
    assert_eq!(field_errors(&e), ["source"]);
    let e = custom_json(serde_json::json!({"source": "deals"})).unwrap_err();
    assert_eq!(field_errors(&e), ["aggregates"]);
    let e = custom_json(serde_json::json!({"source": "deals", "fields": ["id"], "aggregates": [{"fn": "count"}]}))
        .unwrap_err();
    assert_eq!(field_errors(&e), ["fields"]);
    let e = custom_json(
        serde_json::json!({"source": "deals", "filter": "pipeline_stage[eq]:won", "aggregates": [{"fn": "count"}]}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("closed_won"), "{e}");
    // Malformed JSON, unknown keys and unknown functions name the problem, by field where
    // there is one.
    for (bad, field) in [
        (r#"{"source": "deals", "aggregates": [{"fn": "mode"}]}"#, "aggregates.0.fn"),
        (r#"{"source": "deals", "colour": 1}"#, "colour"),
        ("{", "spec"),
    ] {
        let e = ReportSpec::from_json(bad).unwrap_err();
        assert_eq!(field_errors(&e), [field], "{e}");
    }
    // A spec survives a round trip through JSON.
    let spec = ReportSpec::from_json(
        r#"{"source": "deals", "groupBy": ["owner_id", {"field": "created_at", "bucket": "month"}], "aggregates": [{"fn": "count"}]}"#,
    )
    .unwrap();
    assert_eq!(ReportSpec::from_json(&serde_json::to_string(&spec).unwrap()).unwrap(), spec);
}

// Exports.

fn sample() -> DataFrame {
    DataFrame::new_infer_height(vec![
        Column::new("name".into(), [Some("Acme, Inc."), Some("say \"hi\""), None]),
        Column::new("n".into(), [Some(1i64), None, Some(-3)]),
        Column::new("rate".into(), [Some(0.5f64), Some(1.0 / 3.0), None]),
        Column::new("day".into(), [Some(date("2026-01-05")), None, Some(date("2026-12-31"))]),
        Column::new("at".into(), [Some(ts("2026-01-05 10:11:12")), None, Some(ts("2026-02-01 00:00:00"))]),
    ])
    .unwrap()
}

#[test]
fn csv_export_is_the_canonical_form() {
    let out = String::from_utf8(export(&sample(), Format::Csv, &About::default()).unwrap()).unwrap();
    assert_eq!(
        out,
        "name,n,rate,day,at\n\
         \"Acme, Inc.\",1,0.500000,2026-01-05,2026-01-05 10:11:12\n\
         \"say \"\"hi\"\"\",,0.333333,,\n\
         ,-3,,2026-12-31,2026-02-01 00:00:00\n"
    );
}

#[test]
fn json_export_is_an_array_of_rows_in_column_order() {
    let out = String::from_utf8(export(&sample(), Format::Json, &About::default()).unwrap()).unwrap();
    assert!(out.starts_with("[{\"name\":\"Acme, Inc.\",\"n\":1,\"rate\":0.5,"), "{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        rows[0],
        serde_json::json!({"name": "Acme, Inc.", "n": 1, "rate": 0.5, "day": "2026-01-05", "at": "2026-01-05T10:11:12"})
    );
    assert_eq!(
        rows[1],
        serde_json::json!({"name": "say \"hi\"", "n": null, "rate": 1.0 / 3.0, "day": null, "at": null})
    );
    assert_eq!(rows.as_array().unwrap().len(), 3);
    let empty = export(&sample().head(Some(0)), Format::Json, &About::default()).unwrap();
    assert_eq!(String::from_utf8(empty).unwrap(), "[]\n");
}

#[test]
fn parquet_and_xlsx_exports() {
    let bytes = export(&sample(), Format::Parquet, &About::default()).unwrap();
    let back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().unwrap();
    assert!(back.equals_missing(&sample()));
    let about = About {
        title: Some("Sample".into()),
        parameters: vec![("as_of".into(), "2026-01-07".into())],
        ..Default::default()
    };
    let bytes = export(&sample(), Format::Xlsx, &about).unwrap();
    assert_eq!(&bytes[..2], b"PK", "an XLSX file is a zip");
}

#[test]
fn formats_by_name_and_extension() {
    assert_eq!(Format::parse("XLSX").unwrap(), Format::Xlsx);
    let e = Format::parse("docx").unwrap_err();
    assert_eq!(field_errors(&e), ["format"]);
    assert!(e.to_string().contains("csv, parquet, json, xlsx"), "{e}");
    assert_eq!(Format::from_path(std::path::Path::new("/tmp/r.parquet")).unwrap(), Format::Parquet);
    assert_eq!(field_errors(&Format::from_path(std::path::Path::new("/tmp/r")).unwrap_err()), ["format"]);
    let dir = std::env::temp_dir().join(format!("crm-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.csv");
    assert_eq!(export_to(&sample(), &path, None, &About::default()).unwrap(), Format::Csv);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("name,n,rate"));
    let e = export_to(&sample(), &dir.join("missing/r.csv"), None, &About::default()).unwrap_err();
    assert_eq!(field_errors(&e), ["path"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The purpose-built R4 against the general plan.
fn same_funnel(t: &Tables) {
    let fast = fast::r4_fast(t).unwrap().expect("the fast path takes these tables");
    let general = r4(t).unwrap().collect().unwrap();
    assert_eq!(fast.schema(), general.schema());
    assert_eq!(strs(&fast, "stage"), strs(&general, "stage"));
    assert_eq!(ints(&fast, "deals_reached"), ints(&general, "deals_reached"));
    assert_eq!(ints(&fast, "converted_to_next"), ints(&general, "converted_to_next"));
    close_opt(&opt_floats(&fast, "conversion_to_next"), &opt_floats(&general, "conversion_to_next"));
    close_opt(&opt_floats(&fast, "median_days_in_stage"), &opt_floats(&general, "median_days_in_stage"));
}

#[test]
fn r4_fast_path_answers_as_the_general_plan() {
    let mut t = tables();
    same_funnel(&t);
    // Sparse int ids (a hash map instead of a table), rows out of order, a stage outside
    // the six (it ends the time in the stage before it), a history row of no deal.
    let deals = t.0.get_mut("deals").unwrap();
    let sparse = deals.column("id").unwrap().i64().unwrap() * 1_000_000_007i64;
    deals.with_column(sparse.into_column()).unwrap();
    let history = t.0.get_mut("deal_stage_history").unwrap();
    let ids = history.column("deal_id").unwrap().i64().unwrap() * 1_000_000_007i64;
    history.with_column(ids.into_column()).unwrap();
    let extra = DataFrame::new_infer_height(vec![
        Column::new("deal_id".into(), [2_000_000_014i64, 99]),
        Column::new("to_stage".into(), ["on_hold", "proposal"]),
        Column::new("changed_at".into(), [ts("2026-01-03 00:00:00"), ts("2026-01-01 00:00:00")]),
    ])
    .unwrap();
    let mut reversed = history.reverse();
    reversed.vstack_mut(&extra).unwrap();
    *history = reversed;
    same_funnel(&t);
    // String ids.
    as_text(&mut t, &[("deals", &["id"][..]), ("deal_stage_history", &["deal_id"][..])]);
    same_funnel(&t);
    // NULLs go to the general plan.
    let history = t.0.get_mut("deal_stage_history").unwrap();
    let nulls = Column::new(
        "to_stage".into(),
        (0..history.height()).map(|i| (i > 0).then_some("prospecting")).collect::<Vec<_>>(),
    );
    history.with_column(nulls).unwrap();
    assert!(fast::r4_fast(&t).unwrap().is_none());
    assert_eq!(report("r4_stage_funnel", &t, &Params::default()).unwrap().height(), 1);
}

// Contact and company analytics.

fn overview_tables() -> Tables {
    let mut t = tables();
    let contacts = t.0.get_mut("contacts").unwrap();
    contacts
        .with_column(Column::new("first_name".into(), ["Ann", "Bob", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]))
        .unwrap();
    contacts
        .with_column(Column::new("last_name".into(), ["Ames", "Best", "Cole", "Dunn", "Eads", "Fox", "Gray", "Hart"]))
        .unwrap();
    let companies = t.0.get_mut("companies").unwrap();
    companies.with_column(Column::new("created_at".into(), [ts("2025-12-01 00:00:00"); 3])).unwrap();
    companies.with_column(Column::new("size_bucket".into(), ["1-10", "11-50", "1-10"])).unwrap();
    t
}

#[test]
fn contact_analytics_by_hand() {
    // As of 2026-01-20: contacts 1, 2, 3 exist (7 is deleted, the rest come later);
    // 1 and 2 are customers.
    let a = contact_analytics(&overview_tables(), ts("2026-01-20 00:00:00")).unwrap();
    assert_eq!((a.total, a.customers), (3, 2));
    close(&[a.conversion_rate.unwrap()], &[0.666667]);
    assert_eq!(
        a.by_lifecycle_stage,
        [StageCount { stage: "customer".into(), count: 2 }, StageCount { stage: "lead".into(), count: 1 }]
    );
    assert_eq!(a.by_lead_source.len(), 1);
    assert_eq!((a.by_lead_source[0].lead_source.as_deref(), a.by_lead_source[0].count), (Some("web"), 3));
    assert_eq!(a.new_per_month.len(), 12);
    assert_eq!(a.new_per_month[0].month, "2025-02");
    assert_eq!((a.new_per_month[11].month.as_str(), a.new_per_month[11].count), ("2026-01", 3));
    assert_eq!(a.new_per_month[10].count, 0);
    // Interactions of 1, 2, 3: the 30 days from 2025-12-21 hold 1's three; the 90 days
    // from 2025-10-22 add 2's note and email.
    let e = &a.engagement;
    assert_eq!((e.last_30_days, e.last_90_days, e.contacts_engaged_90_days), (3, 5, 2));
    let kinds: Vec<(&str, i64, i64, i64)> =
        e.by_kind.iter().map(|k| (k.kind.as_str(), k.total, k.last_30_days, k.last_90_days)).collect();
    assert_eq!(kinds, [("call", 2, 2, 2), ("email", 3, 1, 2), ("meeting", 1, 0, 0), ("note", 1, 0, 1)]);
    let top: Vec<(&str, &str, i64)> =
        e.most_engaged.iter().map(|c| (c.contact_id.as_str(), c.name.as_str(), c.interactions)).collect();
    assert_eq!(top, [("1", "Ann Ames", 3), ("2", "Bob Best", 2)]);
    assert_eq!(e.most_engaged[0].last_interaction_at.to_rfc3339(), "2026-01-07T00:00:00+00:00");

    // Later, everyone: web 4 (3 customers), then Ads, ads, none, one each.
    let a = contact_analytics(&overview_tables(), ts("2026-02-10 00:00:00")).unwrap();
    assert_eq!((a.total, a.customers), (7, 4));
    let sources: Vec<(Option<&str>, i64, i64)> =
        a.by_lead_source.iter().map(|s| (s.lead_source.as_deref(), s.count, s.customers)).collect();
    assert_eq!(sources, [(Some("web"), 4, 3), (Some("Ads"), 1, 0), (Some("ads"), 1, 0), (None, 1, 1)]);
    assert_eq!(a.new_per_month[10..].iter().map(|m| m.count).collect::<Vec<_>>(), [4, 3]);
}

#[test]
fn company_analytics_by_hand() {
    // Acme: deals 1, 2 (open: 1000 at 10%, 2500 at 40%), 4 (won 9999). Beta: 3 (open, no
    // amount), 5 (won 5000), 6 (lost 700). Deal 7's company is deleted, deal 8 is deleted.
    let a = company_analytics(&overview_tables(), ts("2026-03-01 00:00:00")).unwrap();
    assert_eq!((a.total, a.with_deals), (2, 2));
    assert_eq!((a.revenue_won, a.open_pipeline, a.weighted_pipeline), (14_999, 3500, 1100));
    assert_eq!((a.won_deals, a.lost_deals), (2, 1));
    close(&[a.win_rate.unwrap(), a.deals_per_company.unwrap()], &[0.666667, 3.0]);
    let top: Vec<(&str, i64, i64, i64)> =
        a.top_companies.iter().map(|c| (c.name.as_str(), c.deals, c.revenue_won, c.open_pipeline)).collect();
    assert_eq!(top, [("Acme", 3, 9999, 3500), ("Beta", 3, 5000, 0)]);
    let industries: Vec<(Option<&str>, i64, Option<f64>)> =
        a.by_industry.iter().map(|s| (s.name.as_deref(), s.revenue_won, s.win_rate)).collect();
    assert_eq!(industries, [(Some("Tech"), 9999, Some(1.0)), (None, 5000, Some(0.5))]);
    let sizes: Vec<(Option<&str>, i64)> = a.by_size.iter().map(|s| (s.name.as_deref(), s.companies)).collect();
    assert_eq!(sizes, [(Some("1-10"), 1), (Some("11-50"), 1)]);
    // Before anything: no companies, no rates.
    let a = company_analytics(&overview_tables(), ts("2025-01-01 00:00:00")).unwrap();
    assert_eq!((a.total, a.revenue_won, a.win_rate, a.deals_per_company), (0, 0, None, None));
    assert!(a.top_companies.is_empty() && a.by_industry.is_empty());
}

fn names(df: &DataFrame) -> Vec<&str> {
    df.get_column_names().into_iter().map(|n| n.as_str()).collect()
}

/// Two report outputs are the same: schema, and values (floats within 1e-6).
fn same_output(fast: &DataFrame, general: &DataFrame) {
    assert_eq!(fast.schema(), general.schema());
    for name in names(general) {
        let (a, b) = (fast.column(name).unwrap(), general.column(name).unwrap());
        if a.dtype().is_float() {
            close_opt(&opt_floats(fast, name), &opt_floats(general, name));
        } else {
            assert!(a.as_materialized_series().equals_missing(b.as_materialized_series()), "{name}: {a:?} vs {b:?}");
        }
    }
}

fn r5_r7_both_ways(t: &Tables) {
    let fast = fast::r5_fast(t).unwrap().expect("the fast R5 takes these tables");
    same_output(&fast, &r5(t).unwrap().collect().unwrap());
    let p = Params::default().resolve(t).unwrap();
    let fast = fast::r7_fast(t, &p).unwrap().expect("the fast R7 takes these tables");
    same_output(&fast, &r7(t, &p).unwrap().collect().unwrap());
}

#[test]
fn r5_and_r7_fast_paths_answer_as_the_general_plans() {
    let mut t = tables();
    r5_r7_both_ways(&t);
    // A wider window, so that every contact counts, and ties on the total order by id.
    let wide = Params { engagement_start: Some(ts("2000-01-01 00:00:00")), ..Params::default() }.resolve(&t).unwrap();
    same_output(&fast::r7_fast(&t, &wide).unwrap().unwrap(), &r7(&t, &wide).unwrap().collect().unwrap());
    // Sparse ids (a hash map), a contact created in another year, a kind outside the four.
    let contacts = t.0.get_mut("contacts").unwrap();
    let sparse = contacts.column("id").unwrap().i64().unwrap() * 1_000_000_007i64;
    contacts.with_column(sparse.into_column()).unwrap();
    let interactions = t.0.get_mut("interactions").unwrap();
    let sparse = interactions.column("contact_id").unwrap().i64().unwrap() * 1_000_000_007i64;
    interactions.with_column(sparse.into_column()).unwrap();
    let kinds = Column::new(
        "kind".into(),
        (0..interactions.height()).map(|i| if i == 3 { "sms" } else { "call" }).collect::<Vec<_>>(),
    );
    interactions.with_column(kinds).unwrap();
    r5_r7_both_ways(&t);
    // String ids.
    as_text(&mut t, &[("contacts", &["id"][..]), ("interactions", &["contact_id"][..])]);
    r5_r7_both_ways(&t);
    assert_eq!(fast::year_month(0), (1970, 1));
    assert_eq!(fast::year_month(-1), (1969, 12));
    assert_eq!(fast::year_month(19_782), (2024, 2));
}

/// Makes these id columns strings (the store's UUID text).
fn as_text(t: &mut Tables, columns: &[(&str, &[&str])]) {
    for (name, cols) in columns {
        let df = t.0.get_mut(*name).unwrap();
        for c in *cols {
            let text = df.column(c).unwrap().cast(&DataType::String).unwrap();
            df.with_column(text).unwrap();
        }
    }
}

/// Every standard report draws its default chart (its columns exist and are numeric), as
/// SVG and PNG, and exports as a PDF with it.
#[test]
fn standard_charts_fit_their_reports() {
    let t = tables();
    for &name in REPORTS {
        let df = report(name, &t, &Params::default()).unwrap();
        let spec = chart::standard(name).unwrap_or_else(|| panic!("{name} has a chart"));
        let svg = chart::render(&df, &spec, name, chart::ImageFormat::Svg, (600, 300)).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains(name), "{name}");
        let png = chart::render(&df, &spec, name, chart::ImageFormat::Png, (600, 300)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        let about = About { title: Some(name.into()), chart: Some(spec), ..Default::default() };
        let pdf = export(&df, Format::Pdf, &about).unwrap();
        assert!(pdf.starts_with(b"%PDF-") && pdf.trim_ascii_end().ends_with(b"%%EOF"), "{name}");
        assert!(pdf.windows(4).any(|w| w == b"/Im1"), "{name}: the chart is on the page");
    }
}

#[test]
fn charts_name_what_they_cannot_draw() {
    let df = sample();
    let bad = crate::model::report::ChartSpec {
        kind: crate::model::report::ChartKind::Bar,
        x: "nope".into(),
        y: vec!["name".into(), "missing".into(), "rate".into()],
        title: None,
    };
    let e = chart::render(&df, &bad, "t", chart::ImageFormat::Svg, (300, 200)).unwrap_err();
    assert_eq!(field_errors(&e), ["chart.x", "chart.y.0", "chart.y.1"]);
    // A report without numbers has no guessed chart, and its PDF has no image.
    let words = df.select(["name"]).unwrap();
    assert!(chart::guess(&words).is_none());
    let pdf = export(&words, Format::Pdf, &About::default()).unwrap();
    assert!(!pdf.windows(4).any(|w| w == b"/Im1"));
    // Guessed: the first label column and the numeric ones.
    let guessed = chart::guess(&df).unwrap();
    assert_eq!((guessed.x.as_str(), guessed.y.clone()), ("name", vec!["n".to_string(), "rate".to_string()]));
    // An empty report still draws (a note instead of bars).
    let empty = df.head(Some(0));
    let svg = chart::render(&empty, &guessed, "Nothing", chart::ImageFormat::Svg, (300, 200)).unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("no rows"));
}

#[test]
fn long_pdfs_page() {
    let n = 400;
    let df = DataFrame::new_infer_height(vec![
        Column::new("name".into(), (0..n).map(|i| format!("row {i}")).collect::<Vec<_>>()),
        Column::new("value".into(), (0..n).map(|i| i as f64 / 3.0).collect::<Vec<_>>()),
    ])
    .unwrap();
    let pdf = export(&df, Format::Pdf, &About::default()).unwrap();
    let pages = pdf.windows(11).filter(|w| w == b"/Type /Page").count();
    // `/Type /Pages` once, `/Type /Page` per page: 400 rows at ~40 a page.
    assert!(pages > 9, "{pages}");
}

/// A standard report over the fixture cut to a dashboard's date range, as the snapshot
/// runs it.
fn in_period(name: &str, from: &str, to: &str) -> DataFrame {
    let which: StandardReport = name.parse().unwrap();
    let period = Period::days(Some(date(from)), Some(date(to))).unwrap();
    let t = tables();
    let cut = period.cut_for(which, &t).unwrap().unwrap_or(t);
    let params = period.window(which, Params::default());
    let full = params.resolve(&cut).unwrap();
    let full = Params {
        as_of: Some(full.as_of),
        forecast_end: Some(full.forecast_end),
        engagement_start: Some(full.engagement_start),
    };
    period.answer_of(which, report(name, &cut, &full).unwrap()).unwrap()
}

#[test]
fn a_period_keeps_what_happened_in_it_by_each_reports_date() {
    // R1: the open deals created on Jan 2 (deal 2).
    let r1 = in_period("r1_pipeline_by_stage", "2026-01-02", "2026-01-02");
    assert_eq!((strs(&r1, "stage"), ints(&r1, "deal_count")), (s(&["proposal"]), vec![Some(1)]));
    // R3: the deals closed Jan 5 to 31: 4 (owner 10, won), 6 (11, lost), 7 (11, won);
    // deal 5 closed in February.
    let r3 = in_period("r3_win_rate_by_owner", "2026-01-05", "2026-01-31");
    assert_eq!(ints(&r3, "owner_id"), [Some(11), Some(10)]);
    assert_eq!(ints(&r3, "won"), [Some(1), Some(1)]);
    assert_eq!(ints(&r3, "lost"), [Some(1), Some(0)]);
    // R2 forecasts from the range's start to its end: deal 1 closes Feb 10, deal 2 in March.
    let r2 = in_period("r2_forecast_by_month", "2026-02-01", "2026-02-28");
    assert_eq!((strs(&r2, "month"), ints(&r2, "total_amount")), (s(&["2026-02"]), vec![Some(1000)]));
    // R8: February's new customer, the running total still counting January's.
    let r8 = in_period("r8_customer_acquisition", "2026-02-01", "2026-02-28");
    assert_eq!(strs(&r8, "month"), s(&["2026-02"]));
    assert_eq!((ints(&r8, "new_customers"), ints(&r8, "cumulative_customers")), (vec![Some(1)], vec![Some(2)]));
    // R4: the funnel of the deals created in it, with their history only.
    let r4 = in_period("r4_stage_funnel", "2026-01-04", "2026-01-04");
    assert_eq!(strs(&r4, "stage"), s(&["prospecting", "closed_won"]));
    // A range's end before its start is named on `to`; either end may be open.
    let e = Period::days(Some(date("2026-02-01")), Some(date("2026-01-31"))).unwrap_err();
    assert_eq!(field_errors(&e), ["to"]);
    let open = Period::days(None, Some(date("2026-01-31"))).unwrap();
    assert_eq!((open.start, open.end), (None, Some(ts("2026-02-01 00:00:00"))), "to is the whole day");
}

/// A small deterministic random source (xorshift64*), so the tables below are the same on
/// every run and a failure names its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }

    /// A time in 2025–2026, to the second.
    fn time(&mut self) -> NaiveDateTime {
        ts("2025-01-01 00:00:00") + chrono::Duration::seconds(self.below(2 * 365 * 86_400) as i64)
    }
}

/// Random tables with what the data may hold: NULLs where the schema allows them, stages
/// outside the six and NULL stages, deleted rows, deals of missing or deleted companies,
/// negative amounts, closings before creation, history rows of no deal, ties in every
/// order (no two history entries of a deal share a time: REPORTS.md's data never does).
fn random_tables(seed: u64) -> Tables {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (n_companies, n_deals, n_contacts) = (20 + r.below(30), 50 + r.below(150), 30 + r.below(60));
    let maybe_time = |r: &mut Rng, percent| r.chance(percent).then(|| r.time());
    let companies = DataFrame::new_infer_height(vec![
        Column::new("id".into(), (1..=n_companies as i64).collect::<Vec<_>>()),
        Column::new("name".into(), (1..=n_companies).map(|i| format!("Company {}", i % 7)).collect::<Vec<_>>()),
        Column::new(
            "industry".into(),
            (0..n_companies).map(|_| r.chance(70).then(|| r.pick(&["Tech", "Retail"]))).collect::<Vec<_>>(),
        ),
        Column::new("deleted_at".into(), (0..n_companies).map(|_| maybe_time(&mut r, 15)).collect::<Vec<_>>()),
    ])
    .unwrap();
    let stages = ["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost", "on_hold"];
    let created: Vec<NaiveDateTime> = (0..n_deals).map(|_| r.time()).collect();
    let deals = DataFrame::new_infer_height(vec![
        Column::new("id".into(), (1..=n_deals as i64).collect::<Vec<_>>()),
        Column::new(
            "company_id".into(),
            (0..n_deals).map(|_| r.chance(95).then(|| 1 + r.below(n_companies + 3) as i64)).collect::<Vec<_>>(),
        ),
        Column::new("owner_id".into(), (0..n_deals).map(|_| 1 + r.below(6) as i64).collect::<Vec<_>>()),
        Column::new(
            "pipeline_stage".into(),
            (0..n_deals).map(|_| r.chance(97).then(|| r.pick(&stages))).collect::<Vec<_>>(),
        ),
        Column::new(
            "amount_cents".into(),
            (0..n_deals).map(|_| r.chance(80).then(|| r.below(20_000) as i64 - 8_000)).collect::<Vec<_>>(),
        ),
        Column::new(
            "expected_close_date".into(),
            (0..n_deals)
                .map(|_| r.chance(97).then(|| date("2025-06-01") + chrono::Duration::days(r.below(900) as i64)))
                .collect::<Vec<_>>(),
        ),
        Column::new("created_at".into(), created.clone()),
        Column::new(
            "closed_at".into(),
            created
                .iter()
                .map(|c| r.chance(70).then(|| *c + chrono::Duration::seconds(r.below(9_000_000) as i64 - 86_400)))
                .collect::<Vec<_>>(),
        ),
        Column::new("deleted_at".into(), (0..n_deals).map(|_| maybe_time(&mut r, 10)).collect::<Vec<_>>()),
    ])
    .unwrap();
    let (mut deal_id, mut to_stage, mut changed_at) = (Vec::new(), Vec::new(), Vec::new());
    for deal in 1..=n_deals as i64 + 5 {
        let mut at = r.time();
        for _ in 0..r.below(6) {
            deal_id.push(deal);
            to_stage.push(r.pick(&stages));
            changed_at.push(at);
            at += chrono::Duration::seconds(1 + r.below(30 * 86_400) as i64);
        }
    }
    // Out of order, as a table may be.
    let n_history = deal_id.len() as u64;
    for i in (1..deal_id.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        deal_id.swap(i, j);
        to_stage.swap(i, j);
        changed_at.swap(i, j);
    }
    let history = DataFrame::new_infer_height(vec![
        Column::new("deal_id".into(), deal_id),
        Column::new("to_stage".into(), to_stage),
        Column::new("changed_at".into(), changed_at),
    ])
    .unwrap();
    assert_eq!(history.height() as u64, n_history);
    let contact_created: Vec<NaiveDateTime> = (0..n_contacts).map(|_| r.time()).collect();
    let contacts = DataFrame::new_infer_height(vec![
        Column::new("id".into(), (1..=n_contacts as i64).collect::<Vec<_>>()),
        Column::new(
            "lead_source".into(),
            (0..n_contacts).map(|_| r.chance(85).then(|| r.pick(&["web", "ads", "Ads", "event"]))).collect::<Vec<_>>(),
        ),
        Column::new(
            "lifecycle_stage".into(),
            (0..n_contacts).map(|_| r.pick(&["lead", "customer", "customer", "subscriber"])).collect::<Vec<_>>(),
        ),
        Column::new("created_at".into(), contact_created.clone()),
        Column::new(
            "converted_at".into(),
            contact_created
                .iter()
                .map(|c| r.chance(60).then(|| *c + chrono::Duration::seconds(r.below(5_000_000) as i64)))
                .collect::<Vec<_>>(),
        ),
        Column::new("deleted_at".into(), (0..n_contacts).map(|_| maybe_time(&mut r, 10)).collect::<Vec<_>>()),
    ])
    .unwrap();
    let n_interactions = 4 * n_contacts;
    let interactions = DataFrame::new_infer_height(vec![
        Column::new("id".into(), (1..=n_interactions as i64).collect::<Vec<_>>()),
        Column::new(
            "contact_id".into(),
            (0..n_interactions).map(|_| 1 + r.below(n_contacts + 2) as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "kind".into(),
            (0..n_interactions).map(|_| r.pick(&["call", "email", "meeting", "note", "sms"])).collect::<Vec<_>>(),
        ),
        Column::new("occurred_at".into(), (0..n_interactions).map(|_| r.time()).collect::<Vec<_>>()),
    ])
    .unwrap();
    analytics_tables([companies, deals, history, contacts, interactions])
}

/// Every purpose-built path against its general plan on these tables.
fn every_fast_path_agrees(t: &Tables, seed: u64) {
    let p = Params::default().resolve(t).unwrap();
    let general = t.live("deals").unwrap().select([col("created_at").max()]).collect().unwrap();
    let general = general.column("created_at").unwrap().get(0).unwrap().into_static();
    assert_eq!(AnyValue::Datetime(p.as_of.and_utc().timestamp_micros(), TimeUnit::Microseconds, None), general);
    let cases: [(&str, Option<DataFrame>, LazyFrame); 8] = [
        ("r1", fast::r1_fast(t).unwrap(), r1(t).unwrap()),
        ("r2", fast::r2_fast(t, &p).unwrap(), r2(t, &p).unwrap()),
        ("r3", fast::r3_fast(t).unwrap(), r3(t).unwrap()),
        ("r4", fast::r4_fast(t).unwrap(), r4(t).unwrap()),
        ("r5", fast::r5_fast(t).unwrap(), r5(t).unwrap()),
        ("r6", fast::r6_fast(t).unwrap(), r6(t).unwrap()),
        ("r7", fast::r7_fast(t, &p).unwrap(), r7(t, &p).unwrap()),
        ("r8", fast::r8_fast(t).unwrap(), r8(t).unwrap()),
    ];
    for (name, fast, general) in cases {
        let fast = fast.unwrap_or_else(|| panic!("seed {seed}: the fast {name} declined these tables"));
        let general = general.collect().unwrap();
        let same = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| same_output(&fast, &general)));
        assert!(same.is_ok(), "seed {seed}, {name}:\nfast {fast}\ngeneral {general}");
    }
}

#[test]
fn every_fast_path_answers_as_its_general_plan_on_random_tables() {
    for seed in 0..24 {
        let mut t = random_tables(seed);
        every_fast_path_agrees(&t, seed);
        // Sparse ids (hash maps instead of tables).
        for (table, columns) in [
            ("companies", &["id"][..]),
            ("deals", &["id", "company_id"][..]),
            ("deal_stage_history", &["deal_id"][..]),
            ("contacts", &["id"][..]),
            ("interactions", &["contact_id"][..]),
        ] {
            let df = t.0.get_mut(table).unwrap();
            for c in columns {
                let sparse = df.column(c).unwrap().i64().unwrap() * 1_000_000_007i64;
                df.with_column(sparse.into_column()).unwrap();
            }
        }
        every_fast_path_agrees(&t, seed);
        // The store's ids: text.
        as_text(
            &mut t,
            &[
                ("companies", &["id"][..]),
                ("deals", &["id", "company_id", "owner_id"][..]),
                ("deal_stage_history", &["deal_id"][..]),
                ("contacts", &["id"][..]),
                ("interactions", &["contact_id"][..]),
            ],
        );
        every_fast_path_agrees(&t, seed);
    }
}

#[test]
fn fast_paths_leave_what_they_do_not_handle_to_the_general_plans() {
    // A live id that repeats: the general plans' joins count its rows twice.
    let mut t = random_tables(7);
    let companies = t.0.get_mut("companies").unwrap();
    let twice = companies.slice(0, 1);
    companies.vstack_mut(&twice).unwrap();
    companies.with_column(Column::new("deleted_at".into(), vec![None::<NaiveDateTime>; companies.height()])).unwrap();
    assert!(fast::r6_fast(&t).unwrap().is_none());
    assert!(fast::r8_fast(&t).unwrap().is_none());
    let general = r6(&t).unwrap().collect().unwrap();
    same_output(&report("r6_top_companies_by_revenue", &t, &Params::default()).unwrap(), &general);
    // A closed deal's owner that is NULL, amounts and dates of another type.
    let mut t = random_tables(8);
    fn deals(t: &mut Tables) -> &mut DataFrame {
        t.0.get_mut("deals").unwrap()
    }
    let won = deals(&mut t).column("pipeline_stage").unwrap().str().unwrap().equal("closed_won");
    let owners = deals(&mut t).column("owner_id").unwrap().i64().unwrap().set(&won, None).unwrap();
    deals(&mut t).with_column(owners.into_column()).unwrap();
    assert!(fast::r3_fast(&t).unwrap().is_none());
    let amounts = deals(&mut t).column("amount_cents").unwrap().cast(&DataType::Int32).unwrap();
    deals(&mut t).with_column(amounts).unwrap();
    assert!(fast::r1_fast(&t).unwrap().is_none());
    assert!(fast::r6_fast(&t).unwrap().is_none());
    let dates = deals(&mut t).column("expected_close_date").unwrap();
    let dates = dates.cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap();
    deals(&mut t).with_column(dates).unwrap();
    let p = Params::default().resolve(&t).unwrap();
    assert!(fast::r2_fast(&t, &p).unwrap().is_none());
    for name in REPORTS {
        report(name, &t, &Params::default()).unwrap();
    }
}
