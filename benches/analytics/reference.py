"""The eight standard reports of REPORTS.md written independently in DuckDB SQL, the
reference the engine is checked against (by crm-py's tests and by the benchmark harness),
and the comparison REPORTS.md defines: int/str/ts exact, floats within 1e-6, NULL = NULL."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl

STAGES = """stages(stage, ord, prob, next_stage) AS (VALUES
    ('prospecting', 0, 10, 'qualification'), ('qualification', 1, 20, 'proposal'),
    ('proposal', 2, 40, 'negotiation'), ('negotiation', 3, 60, 'closed_won'),
    ('closed_won', 4, 100, NULL), ('closed_lost', 5, 0, NULL))"""

DAYS = "(epoch({later}) - epoch({earlier})) / 86400.0"

SQL = {
    "r1_pipeline_by_stage": f"""
        WITH {STAGES}
        SELECT d.pipeline_stage AS stage, count(*)::BIGINT AS deal_count,
               coalesce(sum(d.amount_cents), 0)::BIGINT AS total_amount,
               (coalesce(sum(d.amount_cents), 0) // count(d.amount_cents))::BIGINT AS avg_amount,
               (sum(coalesce(d.amount_cents, 0) * s.prob) // 100)::BIGINT AS weighted_amount
        FROM deals d JOIN stages s ON s.stage = d.pipeline_stage
        WHERE d.deleted_at IS NULL AND s.ord < 4
        GROUP BY d.pipeline_stage, s.ord ORDER BY s.ord""",
    "r2_forecast_by_month": f"""
        WITH {STAGES}
        SELECT strftime(d.expected_close_date, '%Y-%m') AS month, count(*)::BIGINT AS deal_count,
               coalesce(sum(d.amount_cents), 0)::BIGINT AS total_amount,
               (sum(coalesce(d.amount_cents, 0) * s.prob) // 100)::BIGINT AS weighted_amount
        FROM deals d JOIN stages s ON s.stage = d.pipeline_stage
        WHERE d.deleted_at IS NULL AND s.ord < 4
          AND d.expected_close_date >= $as_of_date AND d.expected_close_date < $forecast_end
        GROUP BY 1 ORDER BY 1""",
    "r3_win_rate_by_owner": f"""
        SELECT owner_id,
               count(*) FILTER (WHERE pipeline_stage = 'closed_won')::BIGINT AS won,
               count(*) FILTER (WHERE pipeline_stage = 'closed_lost')::BIGINT AS lost,
               round(won / (won + lost), 6) AS win_rate,
               coalesce(sum(amount_cents) FILTER (WHERE pipeline_stage = 'closed_won'), 0)::BIGINT AS won_amount,
               round(avg({DAYS.format(later="closed_at", earlier="created_at")}), 6) AS avg_days_to_close
        FROM deals
        WHERE deleted_at IS NULL AND pipeline_stage IN ('closed_won', 'closed_lost')
        GROUP BY owner_id ORDER BY won_amount DESC, owner_id""",
    "r4_stage_funnel": f"""
        WITH {STAGES},
        h AS (SELECT h.deal_id, h.to_stage, h.changed_at,
                     lead(h.changed_at) OVER (PARTITION BY h.deal_id ORDER BY h.changed_at) AS next_at
              FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id WHERE d.deleted_at IS NULL),
        e AS (SELECT deal_id, to_stage, min(changed_at) AS first_in, max(changed_at) AS last_in
              FROM h GROUP BY deal_id, to_stage),
        reached AS (SELECT to_stage, count(*) AS n FROM e GROUP BY to_stage),
        converted AS (SELECT e.to_stage, count(*) AS n FROM e
                      JOIN stages s ON s.stage = e.to_stage
                      JOIN e nx ON nx.deal_id = e.deal_id AND nx.to_stage = s.next_stage
                      WHERE nx.last_in > e.first_in GROUP BY e.to_stage),
        medians AS (SELECT to_stage, median({DAYS.format(later="next_at", earlier="changed_at")}) AS m
                    FROM h WHERE next_at IS NOT NULL GROUP BY to_stage)
        SELECT s.stage, r.n::BIGINT AS deals_reached,
               CASE WHEN s.ord < 4 THEN coalesce(c.n, 0) END::BIGINT AS converted_to_next,
               CASE WHEN s.ord < 4 THEN round(coalesce(c.n, 0) / r.n, 6) END AS conversion_to_next,
               round(m.m, 6) AS median_days_in_stage
        FROM stages s JOIN reached r ON r.to_stage = s.stage
        LEFT JOIN converted c ON c.to_stage = s.stage LEFT JOIN medians m ON m.to_stage = s.stage
        ORDER BY s.ord""",
    "r5_lead_conversion": f"""
        SELECT strftime(created_at, '%Y-%m') AS month, lead_source, count(*)::BIGINT AS created,
               count(*) FILTER (WHERE lifecycle_stage = 'customer')::BIGINT AS converted,
               round(converted / created, 6) AS conversion_rate,
               round(median({DAYS.format(later="converted_at", earlier="created_at")})
                     FILTER (WHERE lifecycle_stage = 'customer' AND converted_at IS NOT NULL), 6)
                 AS median_days_to_convert
        FROM contacts WHERE deleted_at IS NULL
        GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST""",
    "r6_top_companies_by_revenue": """
        WITH w AS (
            SELECT c.id AS company_id, c.name, c.industry, count(*)::BIGINT AS won_deals,
                   coalesce(sum(d.amount_cents), 0)::BIGINT AS revenue
            FROM deals d JOIN companies c ON c.id = d.company_id
            WHERE d.deleted_at IS NULL AND c.deleted_at IS NULL AND d.pipeline_stage = 'closed_won'
            GROUP BY c.id, c.name, c.industry)
        SELECT *, round(revenue / sum(revenue) OVER (), 6) AS revenue_share
        FROM w ORDER BY revenue DESC, company_id LIMIT 100""",
    "r7_contact_engagement": """
        SELECT i.contact_id, count(*)::BIGINT AS total,
               count(*) FILTER (WHERE i.kind = 'call')::BIGINT AS calls,
               count(*) FILTER (WHERE i.kind = 'email')::BIGINT AS emails,
               count(*) FILTER (WHERE i.kind = 'meeting')::BIGINT AS meetings,
               count(*) FILTER (WHERE i.kind = 'note')::BIGINT AS notes,
               max(i.occurred_at) AS last_interaction_at
        FROM interactions i JOIN contacts c ON c.id = i.contact_id
        WHERE c.deleted_at IS NULL AND i.occurred_at >= $engagement_start AND i.occurred_at < $as_of
        GROUP BY i.contact_id ORDER BY total DESC, i.contact_id LIMIT 1000""",
    "r8_customer_acquisition": """
        WITH f AS (
            SELECT c.id, min(d.closed_at) AS first_won
            FROM deals d JOIN companies c ON c.id = d.company_id
            WHERE d.deleted_at IS NULL AND c.deleted_at IS NULL AND d.pipeline_stage = 'closed_won'
              AND d.closed_at IS NOT NULL
            GROUP BY c.id)
        SELECT strftime(first_won, '%Y-%m') AS month, count(*)::BIGINT AS new_customers,
               (sum(count(*)) OVER (ORDER BY strftime(first_won, '%Y-%m')))::BIGINT AS cumulative_customers
        FROM f GROUP BY 1 ORDER BY 1""",
}

PARAMS = {
    "r2_forecast_by_month": ("as_of_date", "forecast_end"),
    "r7_contact_engagement": ("engagement_start", "as_of"),
}


def connect(tables: dict[str, pl.DataFrame], threads: int | None = None):
    """A DuckDB connection with the tables registered (zero-copy, from Arrow)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name, df in tables.items():
        con.register(name, df.to_arrow())
    return con


def params(con, as_of=None, forecast_end=None, engagement_start=None) -> dict[str, Any]:
    """REPORTS.md's parameters with their defaults, worked out in SQL."""
    if as_of is None:
        as_of = con.execute("SELECT max(created_at) FROM deals WHERE deleted_at IS NULL").fetchone()[0]
    as_of_date = as_of.date()
    if forecast_end is None:
        y, m = as_of_date.year + 1, as_of_date.month
        last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
        forecast_end = dt.date(y, m, min(as_of_date.day, last))
    if engagement_start is None:
        engagement_start = as_of - dt.timedelta(days=90)
    return {
        "as_of": as_of,
        "as_of_date": as_of_date,
        "forecast_end": forecast_end,
        "engagement_start": engagement_start,
    }


def run(con, name: str, p: dict[str, Any]) -> pl.DataFrame:
    """One report through DuckDB."""
    args = {k: p[k] for k in PARAMS.get(name, ())}
    return con.execute(SQL[name], args).pl()


def differences(ours: pl.DataFrame, reference: pl.DataFrame, limit: int = 5) -> list[str]:
    """How two report outputs differ, by REPORTS.md's comparison; empty when equal."""
    if ours.columns != reference.columns:
        return [f"columns {ours.columns} != {reference.columns}"]
    if ours.height != reference.height:
        return [f"{ours.height} rows != {reference.height} rows"]
    out: list[str] = []
    for name in ours.columns:
        a, b = ours[name], reference[name]
        floats = a.dtype.is_float() or b.dtype.is_float()
        for i, (x, y) in enumerate(zip(a.to_list(), b.to_list())):
            if x is None or y is None:
                same = x is None and y is None
            elif floats:
                same = math.isclose(float(x), float(y), rel_tol=0, abs_tol=1e-6 + 1e-9)
            else:
                same = x == y
            if not same:
                out.append(f"row {i} {name}: {x!r} != {y!r}")
                if len(out) >= limit:
                    return out
    return out
