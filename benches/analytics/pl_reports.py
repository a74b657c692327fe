"""The eight standard reports written directly in Python polars (lazy), the benchmark's
third engine. Same semantics as REPORTS.md; checked against DuckDB by the harness."""

from __future__ import annotations

import datetime as dt

import polars as pl

STAGES = pl.DataFrame(
    {
        "stage": ["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"],
        "stage_order": [0, 1, 2, 3, 4, 5],
        "prob_pct": [10, 20, 40, 60, 100, 0],
        "next_stage": ["qualification", "proposal", "negotiation", "closed_won", None, None],
    }
).lazy()


def _live(t, name):
    return t[name].lazy().filter(pl.col("deleted_at").is_null())


def _days(later, earlier):
    return (later - earlier).dt.total_seconds().cast(pl.Float64) / 86400.0


def _open(t):
    return _live(t, "deals").join(STAGES, left_on="pipeline_stage", right_on="stage").filter(pl.col("stage_order") < 4)


def _amount():
    return pl.col("amount_cents").fill_null(0)


def r1(t, p):
    return (
        _open(t)
        .group_by(pl.col("pipeline_stage").alias("stage"), "stage_order")
        .agg(
            deal_count=pl.len().cast(pl.Int64),
            total_amount=_amount().sum(),
            n=pl.col("amount_cents").count(),
            weighted_amount=(_amount() * pl.col("prob_pct")).sum() // 100,
        )
        .with_columns(avg_amount=pl.col("total_amount") // pl.col("n"))
        .sort("stage_order")
        .select("stage", "deal_count", "total_amount", "avg_amount", "weighted_amount")
    )


def r2(t, p):
    d = pl.col("expected_close_date")
    return (
        _open(t)
        .filter((d >= p["as_of_date"]) & (d < p["forecast_end"]))
        .group_by(d.dt.strftime("%Y-%m").alias("month"))
        .agg(
            deal_count=pl.len().cast(pl.Int64),
            total_amount=_amount().sum(),
            weighted_amount=(_amount() * pl.col("prob_pct")).sum() // 100,
        )
        .sort("month")
    )


def r3(t, p):
    won = pl.col("pipeline_stage") == "closed_won"
    return (
        _live(t, "deals")
        .filter(pl.col("pipeline_stage").is_in(["closed_won", "closed_lost"]))
        .group_by("owner_id")
        .agg(
            won=won.cast(pl.Int64).sum(),
            lost=(~won).cast(pl.Int64).sum(),
            won_amount=pl.when(won).then(_amount()).otherwise(0).sum(),
            avg_days_to_close=_days(pl.col("closed_at"), pl.col("created_at")).mean().round(6),
        )
        .with_columns(win_rate=(pl.col("won") / (pl.col("won") + pl.col("lost"))).round(6))
        .sort(["won_amount", "owner_id"], descending=[True, False])
        .select("owner_id", "won", "lost", "win_rate", "won_amount", "avg_days_to_close")
    )


def r4(t, p):
    live = _live(t, "deals").select(pl.col("id").alias("deal_id"))
    h = (
        t["deal_stage_history"]
        .lazy()
        .select("deal_id", "to_stage", "changed_at")
        .join(live, on="deal_id")
        .sort("deal_id", "changed_at")
        .with_columns(days=_days(pl.col("changed_at").shift(-1).over("deal_id"), pl.col("changed_at")))
    )
    e = h.group_by("deal_id", "to_stage").agg(first_in=pl.col("changed_at").min(), last_in=pl.col("changed_at").max())
    conv = (
        e.join(STAGES.select(pl.col("stage").alias("to_stage"), "next_stage"), on="to_stage")
        .join(
            e.select("deal_id", pl.col("to_stage").alias("next_stage"), pl.col("last_in").alias("next_in")),
            on=["deal_id", "next_stage"],
        )
        .filter(pl.col("next_in") > pl.col("first_in"))
        .group_by("to_stage")
        .agg(converted=pl.len().cast(pl.Int64))
    )
    reached = e.group_by("to_stage").agg(deals_reached=pl.len().cast(pl.Int64))
    med = h.group_by("to_stage").agg(median_days_in_stage=pl.col("days").median())
    is_open = pl.col("stage_order") < 4
    return (
        STAGES.join(reached, left_on="stage", right_on="to_stage")
        .join(conv, left_on="stage", right_on="to_stage", how="left")
        .join(med, left_on="stage", right_on="to_stage", how="left")
        .with_columns(converted_to_next=pl.when(is_open).then(pl.col("converted").fill_null(0)))
        .with_columns(
            conversion_to_next=pl.when(is_open).then((pl.col("converted_to_next") / pl.col("deals_reached")).round(6)),
            median_days_in_stage=pl.col("median_days_in_stage").round(6),
        )
        .sort("stage_order")
        .select("stage", "deals_reached", "converted_to_next", "conversion_to_next", "median_days_in_stage")
    )


def r5(t, p):
    customer = pl.col("lifecycle_stage") == "customer"
    return (
        _live(t, "contacts")
        .group_by(pl.col("created_at").dt.strftime("%Y-%m").alias("month"), "lead_source")
        .agg(
            created=pl.len().cast(pl.Int64),
            converted=customer.cast(pl.Int64).sum(),
            median_days_to_convert=pl.when(customer & pl.col("converted_at").is_not_null())
            .then(_days(pl.col("converted_at"), pl.col("created_at")))
            .median(),
        )
        .with_columns(
            conversion_rate=(pl.col("converted") / pl.col("created")).round(6),
            median_days_to_convert=pl.col("median_days_to_convert").round(6),
        )
        .sort(["month", "lead_source"], nulls_last=True)
        .select("month", "lead_source", "created", "converted", "conversion_rate", "median_days_to_convert")
    )


def _won_companies(t):
    companies = _live(t, "companies").select(pl.col("id").alias("company_id"), "name", "industry")
    return (
        _live(t, "deals")
        .filter(pl.col("pipeline_stage") == "closed_won")
        .select("company_id", "amount_cents", "closed_at")
        .join(companies, on="company_id")
    )


def r6(t, p):
    return (
        _won_companies(t)
        .group_by("company_id", "name", "industry")
        .agg(won_deals=pl.len().cast(pl.Int64), revenue=_amount().sum())
        .with_columns(revenue_share=(pl.col("revenue") / pl.col("revenue").sum()).round(6))
        .sort(["revenue", "company_id"], descending=[True, False])
        .head(100)
    )


def r7(t, p):
    live = _live(t, "contacts").select(pl.col("id").alias("contact_id"))
    kind = lambda k: (pl.col("kind") == k).cast(pl.Int64).sum()  # noqa: E731
    return (
        t["interactions"]
        .lazy()
        .filter((pl.col("occurred_at") >= p["engagement_start"]) & (pl.col("occurred_at") < p["as_of"]))
        .join(live, on="contact_id")
        .group_by("contact_id")
        .agg(
            total=pl.len().cast(pl.Int64),
            calls=kind("call"),
            emails=kind("email"),
            meetings=kind("meeting"),
            notes=kind("note"),
            last_interaction_at=pl.col("occurred_at").max(),
        )
        .sort(["total", "contact_id"], descending=[True, False])
        .head(1000)
    )


def r8(t, p):
    return (
        _won_companies(t)
        .filter(pl.col("closed_at").is_not_null())
        .group_by("company_id")
        .agg(first_won=pl.col("closed_at").min())
        .group_by(pl.col("first_won").dt.strftime("%Y-%m").alias("month"))
        .agg(new_customers=pl.len().cast(pl.Int64))
        .sort("month")
        .with_columns(cumulative_customers=pl.col("new_customers").cum_sum())
    )


REPORTS = {
    "r1_pipeline_by_stage": r1,
    "r2_forecast_by_month": r2,
    "r3_win_rate_by_owner": r3,
    "r4_stage_funnel": r4,
    "r5_lead_conversion": r5,
    "r6_top_companies_by_revenue": r6,
    "r7_contact_engagement": r7,
    "r8_customer_acquisition": r8,
}


def run(tables: dict[str, pl.DataFrame], name: str, params: dict[str, dt.datetime]) -> pl.DataFrame:
    return REPORTS[name](tables, params).collect()
