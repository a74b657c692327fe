"""crm.analytics.custom: custom reports against the same questions asked of DuckDB in SQL,
on int64 and string ids, and the spec's validation."""

from __future__ import annotations

import json

import polars as pl
import pytest

import crm
import reference

# Each case: a spec, and the SQL that answers it by REPORTS.md's rules (deleted rows do not
# exist; a row whose joined record is deleted goes with it; NULL sorts first ascending).
CASES = {
    "revenue_by_industry": (
        {
            "source": "deals",
            "join": ["companies"],
            "filter": "pipeline_stage[eq]:closed_won",
            "groupBy": ["companies.industry"],
            "aggregates": [
                {"fn": "count", "as": "deals"},
                {"fn": "sum", "field": "amount_cents", "as": "revenue"},
                {"fn": "avg", "field": "amount_cents", "as": "mean"},
                {"fn": "median", "field": "amount_cents", "as": "median"},
            ],
            "sort": "revenue[desc]",
        },
        """
        SELECT c.industry, count(*) AS deals, coalesce(sum(d.amount_cents), 0) AS revenue,
               avg(d.amount_cents) AS mean, median(d.amount_cents) AS median
        FROM deals d LEFT JOIN (SELECT * FROM companies WHERE deleted_at IS NULL) c ON c.id = d.company_id
        WHERE d.deleted_at IS NULL AND d.pipeline_stage = 'closed_won'
          AND (d.company_id IS NULL OR c.id IS NOT NULL)
        GROUP BY c.industry ORDER BY revenue DESC, c.industry ASC NULLS FIRST
        """,
    ),
    "contacts_by_month_and_source": (
        {
            "source": "contacts",
            "filter": "lifecycle_stage[neq]:customer",
            "groupBy": [{"field": "created_at", "bucket": "month", "as": "month"}, "lead_source"],
            "aggregates": [{"fn": "count"}, {"fn": "count_distinct", "field": "owner_id", "as": "owners"}],
        },
        """
        SELECT strftime(created_at, '%Y-%m') AS month, lead_source, count(*) AS count,
               count(DISTINCT owner_id) AS owners
        FROM contacts WHERE deleted_at IS NULL AND lifecycle_stage IS DISTINCT FROM 'customer'
        GROUP BY ALL ORDER BY month ASC NULLS FIRST, lead_source ASC NULLS FIRST
        """,
    ),
    "deals_by_quarter": (
        {
            "source": "deals",
            "filter": "and(closed_at[is]:notnull,amount_cents[gte]:100000)",
            "groupBy": [{"field": "closed_at", "bucket": "quarter", "as": "quarter"}],
            "aggregates": [
                {"fn": "min", "field": "amount_cents", "as": "smallest"},
                {"fn": "max", "field": "closed_at", "as": "last_close"},
            ],
            "sort": "quarter[desc]",
            "limit": 6,
        },
        """
        SELECT concat(year(closed_at), '-Q', quarter(closed_at)) AS quarter, min(amount_cents) AS smallest,
               max(closed_at) AS last_close
        FROM deals WHERE deleted_at IS NULL AND closed_at IS NOT NULL AND amount_cents >= 100000
        GROUP BY ALL ORDER BY quarter DESC LIMIT 6
        """,
    ),
    "interactions_by_week_and_kind": (
        {
            "source": "interactions",
            "join": ["contacts"],
            "filter": "or(kind[in]:[call,meeting],contacts.lead_source[ilike]:\"%WEB%\",contacts.lead_source[startsWith]:Cold)",
            "groupBy": [{"field": "occurred_at", "bucket": "week", "as": "week"}, "kind"],
            "aggregates": [{"fn": "count"}],
            "sort": "count[desc]",
            "limit": 50,
        },
        """
        SELECT CAST(date_trunc('week', i.occurred_at) AS DATE) AS week, i.kind, count(*) AS count
        FROM interactions i JOIN (SELECT * FROM contacts WHERE deleted_at IS NULL) c ON c.id = i.contact_id
        WHERE i.kind IN ('call', 'meeting') OR lower(c.lead_source) LIKE '%web%' OR starts_with(c.lead_source, 'Cold')
        GROUP BY ALL ORDER BY count DESC, week ASC, kind ASC LIMIT 50
        """,
    ),
    "history_by_stage_and_year": (
        {
            "source": "deal_stage_history",
            "join": ["deals"],
            "filter": "deals.pipeline_stage[in]:[closed_won,closed_lost]",
            "groupBy": ["to_stage", {"field": "changed_at", "bucket": "year"}],
            "aggregates": [{"fn": "count", "as": "entries"}, {"fn": "count_distinct", "field": "deal_id"}],
        },
        """
        SELECT h.to_stage, CAST(year(h.changed_at) AS BIGINT) AS changed_at_year, count(*) AS entries,
               count(DISTINCT h.deal_id) AS count_distinct_deal_id
        FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id
        WHERE d.deleted_at IS NULL AND d.pipeline_stage IN ('closed_won', 'closed_lost')
        GROUP BY ALL ORDER BY to_stage, changed_at_year
        """,
    ),
    "won_deals_listed": (
        {
            "source": "deals",
            "join": ["contacts"],
            "filter": "and(pipeline_stage[eq]:closed_won,expected_close_date[lt]:2026-01-01)",
            "fields": ["id", "amount_cents", "contacts.lead_source", "closed_at"],
            "sort": "amount_cents[desc]",
            "limit": 25,
        },
        """
        SELECT d.id, d.amount_cents, c.lead_source AS "contacts.lead_source", d.closed_at
        FROM deals d LEFT JOIN (SELECT * FROM contacts WHERE deleted_at IS NULL) c ON c.id = d.contact_id
        WHERE d.deleted_at IS NULL AND (d.contact_id IS NULL OR c.id IS NOT NULL)
          AND d.pipeline_stage = 'closed_won' AND d.expected_close_date < DATE '2026-01-01'
        ORDER BY d.amount_cents DESC NULLS LAST, d.id LIMIT 25
        """,
    ),
    "everything_at_once": (
        {"source": "tasks", "aggregates": [{"fn": "count"}, {"fn": "max", "field": "due_at"}]},
        "SELECT count(*) AS count, max(due_at) AS max_due_at FROM tasks WHERE deleted_at IS NULL",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("ids", ["int", "string"])
def test_custom_reports_equal_duckdb(case, ids, tables, string_id_tables):
    t = tables if ids == "int" else string_id_tables
    spec, sql = CASES[case]
    got = crm.analytics.custom(spec, t)
    expected = reference.connect(t).execute(sql).pl()
    assert got.height > 0, "the data set should give every case rows"
    assert reference.differences(got, expected) == []
    # The spec as JSON text gives the same.
    assert crm.analytics.custom(json.dumps(spec), t).equals(got)


def test_snake_case_group_by_is_accepted(tables):
    spec = {"source": "deals", "group_by": ["pipeline_stage"], "aggregates": [{"fn": "count"}]}
    got = crm.analytics.custom(spec, tables)
    assert got.columns == ["pipeline_stage", "count"]
    assert got["count"].sum() == tables["deals"].filter(pl.col("deleted_at").is_null()).height


def test_bad_specs_name_every_field(tables):
    with pytest.raises(crm.ValidationError) as e:
        crm.analytics.custom(
            {
                "source": "deals",
                "join": ["tasks"],
                "groupBy": [{"field": "amount_cents", "bucket": "month"}],
                "aggregates": [{"fn": "sum", "field": "pipeline_stage"}],
                "limit": 0,
            },
            tables,
        )
    assert [f["field"] for f in e.value.fields] == ["join.0", "groupBy.0.bucket", "aggregates.0.fn", "limit"]
    assert isinstance(e.value, ValueError)
    with pytest.raises(crm.ValidationError, match="'mode' is not allowed") as e:
        crm.analytics.custom({"source": "deals", "aggregates": [{"fn": "mode"}]}, tables)
    assert [(f["field"], f["code"]) for f in e.value.fields] == [("aggregates.0.fn", "invalid_value")]
    with pytest.raises(crm.ValidationError, match="unknown field"):
        crm.analytics.custom({"source": "deals", "aggregate": []}, tables)
    with pytest.raises(crm.ValidationError, match="not plain JSON"):
        crm.analytics.custom({"source": "deals", "limit": object()}, tables)
    with pytest.raises(crm.ValidationError, match="a dict"):
        crm.analytics.custom(["deals"], tables)
    with pytest.raises(crm.ValidationError, match="companies table is needed"):
        crm.analytics.custom(
            {"source": "deals", "join": ["companies"], "aggregates": [{"fn": "count"}]},
            {"deals": tables["deals"]},
        )
    with pytest.raises(crm.ValidationError, match="closed_won"):
        crm.analytics.custom({"source": "deals", "filter": "pipeline_stage[eq]:won", "aggregates": [{"fn": "count"}]}, tables)
