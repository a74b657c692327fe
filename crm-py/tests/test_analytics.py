"""crm.analytics: the standard reports against the DuckDB reference, parameters, errors
and Parquet input."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import crm
import reference

COLUMNS = {
    "r1_pipeline_by_stage": ["stage", "deal_count", "total_amount", "avg_amount", "weighted_amount"],
    "r2_forecast_by_month": ["month", "deal_count", "total_amount", "weighted_amount"],
    "r3_win_rate_by_owner": ["owner_id", "won", "lost", "win_rate", "won_amount", "avg_days_to_close"],
    "r4_stage_funnel": ["stage", "deals_reached", "converted_to_next", "conversion_to_next", "median_days_in_stage"],
    "r5_lead_conversion": [
        "month",
        "lead_source",
        "created",
        "converted",
        "conversion_rate",
        "median_days_to_convert",
    ],
    "r6_top_companies_by_revenue": ["company_id", "name", "industry", "won_deals", "revenue", "revenue_share"],
    "r7_contact_engagement": [
        "contact_id",
        "total",
        "calls",
        "emails",
        "meetings",
        "notes",
        "last_interaction_at",
    ],
    "r8_customer_acquisition": ["month", "new_customers", "cumulative_customers"],
}


def test_the_eight_reports_are_listed():
    assert crm.analytics.REPORTS == tuple(COLUMNS)
    assert set(crm.analytics.TABLES) == {
        "companies",
        "contacts",
        "deals",
        "deal_stage_history",
        "interactions",
        "tasks",
    }


@pytest.mark.parametrize("name", list(COLUMNS))
def test_reports_equal_duckdb(name, tables):
    con = reference.connect(tables)
    expected = reference.run(con, name, reference.params(con))
    got = crm.analytics.report(name, tables)
    assert isinstance(got, pl.DataFrame)
    assert got.columns == COLUMNS[name]
    assert got.height > 0, "the data set should give every report rows"
    assert reference.differences(got, expected) == []


@pytest.mark.parametrize("name", list(COLUMNS))
def test_string_ids_give_the_same_answers(name, tables, string_id_tables):
    con = reference.connect(string_id_tables)
    expected = reference.run(con, name, reference.params(con))
    got = crm.analytics.report(name, string_id_tables)
    assert reference.differences(got, expected) == []
    if name in ("r3_win_rate_by_owner", "r6_top_companies_by_revenue", "r7_contact_engagement"):
        assert got[COLUMNS[name][0]].dtype == pl.String


@pytest.mark.parametrize("name", ["r2_forecast_by_month", "r7_contact_engagement"])
def test_explicit_parameters(name, tables):
    as_of = dt.datetime(2025, 6, 15, 12, 0, 0)
    forecast_end = dt.date(2025, 9, 1)
    engagement_start = dt.datetime(2025, 5, 1)
    con = reference.connect(tables)
    p = reference.params(con, as_of=as_of, forecast_end=forecast_end, engagement_start=engagement_start)
    got = crm.analytics.report(name, tables, as_of=as_of, forecast_end=forecast_end, engagement_start=engagement_start)
    assert reference.differences(got, reference.run(con, name, p)) == []
    if name == "r2_forecast_by_month":
        assert got["month"].to_list() == ["2025-06", "2025-07", "2025-08"]


def test_parameter_defaults_follow_reports_md(tables):
    live = tables["deals"].filter(pl.col("deleted_at").is_null())
    as_of = live["created_at"].max()
    p = crm.analytics.resolve_params(tables)
    assert p["as_of"] == as_of
    assert p["engagement_start"] == as_of - dt.timedelta(days=90)
    assert p["forecast_end"] == dt.date(as_of.year + 1, as_of.month, as_of.day)
    leap = crm.analytics.resolve_params(tables, as_of=dt.datetime(2028, 2, 29, 8, 0))
    assert leap["forecast_end"] == dt.date(2029, 2, 28)


def test_aware_and_iso_parameters_are_taken(tables):
    naive = crm.analytics.report("r7_contact_engagement", tables, as_of=dt.datetime(2025, 6, 15, 12))
    aware = crm.analytics.report(
        "r7_contact_engagement",
        tables,
        as_of=dt.datetime(2025, 6, 15, 14, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    text = crm.analytics.report("r7_contact_engagement", tables, as_of="2025-06-15T12:00:00")
    assert naive.equals(aware) and naive.equals(text)


def test_lazy_frames_are_collected(tables):
    lazy = {name: df.lazy() for name, df in tables.items()}
    assert crm.analytics.report("r1_pipeline_by_stage", lazy).equals(
        crm.analytics.report("r1_pipeline_by_stage", tables)
    )


def test_unknown_report_is_a_validation_error(tables):
    with pytest.raises(crm.ValidationError) as e:
        crm.analytics.report("r9_revenue_magic", tables)
    assert isinstance(e.value, crm.CrmError) and isinstance(e.value, ValueError)
    assert e.value.code == "validation_failed"
    assert e.value.fields[0]["field"] == "name"
    assert "r1_pipeline_by_stage" in str(e.value)


def test_missing_table_and_column_are_named(tables):
    with pytest.raises(crm.ValidationError, match="deal_stage_history"):
        crm.analytics.report("r4_stage_funnel", {"deals": tables["deals"]})
    broken = dict(tables, deals=tables["deals"].drop("amount_cents"))
    with pytest.raises(crm.ValidationError, match="amount_cents"):
        crm.analytics.report("r1_pipeline_by_stage", broken)


@pytest.mark.parametrize(
    "kwargs",
    [{"as_of": "yesterday"}, {"as_of": 17}, {"forecast_end": "2025-13-01"}, {"forecast_end": dt.datetime(2025, 1, 1)}],
)
def test_bad_parameters_are_refused(kwargs, tables):
    with pytest.raises(crm.ValidationError) as e:
        crm.analytics.report("r2_forecast_by_month", tables, **kwargs)
    assert e.value.fields[0]["field"] == next(iter(kwargs))


def test_tables_must_be_dataframes(tables):
    with pytest.raises(crm.ValidationError):
        crm.analytics.report("r1_pipeline_by_stage", [tables["deals"]])
    with pytest.raises(crm.ValidationError, match="deals"):
        crm.analytics.report("r1_pipeline_by_stage", {"deals": tables["deals"].to_dicts()})


def test_the_input_frames_are_not_changed(tables):
    before = {name: df.clone() for name, df in tables.items()}
    for name in COLUMNS:
        crm.analytics.report(name, tables)
    assert all(before[name].equals(tables[name]) for name in tables)


def test_read_parquet_round_trip(tmp_path, tables):
    for name, df in tables.items():
        df.write_parquet(tmp_path / f"{name}.parquet")
    read = crm.analytics.read_parquet(tmp_path)
    assert set(read) == set(tables)
    for name in tables:
        assert read[name].equals(tables[name]), name
    assert crm.analytics.report("r4_stage_funnel", read).equals(crm.analytics.report("r4_stage_funnel", tables))


def test_read_parquet_errors(tmp_path):
    with pytest.raises(crm.ValidationError, match="not a directory"):
        crm.analytics.read_parquet(tmp_path / "nowhere")
    with pytest.raises(crm.ValidationError, match="holds none"):
        crm.analytics.read_parquet(tmp_path)
    (tmp_path / "deals.parquet").write_text("not parquet")
    with pytest.raises(crm.ValidationError, match="Parquet"):
        crm.analytics.read_parquet(tmp_path)
