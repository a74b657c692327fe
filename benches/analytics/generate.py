"""Generates the six analytics tables of REPORTS.md at a given scale.

Two shapes of data, the same tables and semantics (the reports must be fast on both):

- `skewed` (the default): at scale 1 about 50k companies, 500k contacts, 1M deals, ~3.6M
  stage-history rows, 5M interactions and 500k tasks; a few owners and a few large
  companies hold most rows (Pareto/Zipf-like), 2% soft-deleted rows, 3% NULL amounts,
  short stage histories (deals mostly advance), six lead sources, three years of
  activity growing towards the end.
- `flat`: many small companies (250k) and 2,000 evenly loaded owners, 10% soft-deleted
  rows, 25% NULL amounts, long stage histories (deals slip back often: ~6.9M history rows),
  40 lead sources with 30% NULL, five years of even activity, interactions spread evenly.

NULLs where the schema allows them and deals that slip back a stage in both.
Deterministic for a seed.

    python generate.py --scale 1 --out target/analytics-data                  # skewed
    python generate.py --scale 1 --shape flat --out target/analytics-data-flat
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import polars as pl

START = np.datetime64("2023-01-01T00:00:00", "s")
STAGES = ["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"]

# What differs between the two data sets (see the module's doc).
SHAPES = {
    "skewed": {
        "companies": 50_000,
        "owners": 200,
        "skew": True,
        "years": 3,
        "recent_bias": 1.6,
        "deleted": 0.02,
        "null_amount": 0.03,
        # Each step of a deal's walk: advance, slip back, be lost (the rest stops).
        "walk": (0.70, 0.11, 0.10),
        "bounce": False,  # a slip back from the first stage advances instead (else stops)
        "steps": 12,
        "sources": ["web", "referral", "event", "ads", "partner", "Cold Call"],
        "source_weights": [35, 20, 12, 18, 8, 7],
        "null_source": 0.12,
    },
    "flat": {
        "companies": 250_000,
        "owners": 2_000,
        "skew": False,
        "years": 5,
        "recent_bias": 1.0,
        "deleted": 0.10,
        "null_amount": 0.25,
        "walk": (0.50, 0.40, 0.03),
        "bounce": True,
        "steps": 40,
        "sources": [f"source-{i:02d}" for i in range(38)] + ["Web", "web"],
        "source_weights": [1] * 40,
        "null_source": 0.30,
    },
}


class _Draws:
    """The random draws of one shape."""

    def __init__(self, rng: np.random.Generator, shape: dict):
        self.rng, self.shape = rng, shape
        self.span_s = shape["years"] * 365 * 86400

    def ids(self, n: int, k: int, a: float = 1.2) -> np.ndarray:
        """n draws from 1..k: heavy-tailed (a few values get most of the rows) when the
        shape is skewed, else even."""
        if not self.shape["skew"]:
            return self.rng.integers(1, k + 1, n)
        rng = self.rng
        return (np.minimum(rng.pareto(a, n) * k / 20, k - 1).astype(np.int64) + rng.integers(0, 2, n)) % k + 1

    def times(self, n: int, recent_bias: float | None = None) -> np.ndarray:
        """n timestamps in the shape's years, more of them recent (growth) for a bias > 1."""
        bias = self.shape["recent_bias"] if recent_bias is None or not self.shape["skew"] else recent_bias
        u = self.rng.random(n) ** (1 / bias)
        return START + (u * self.span_s).astype("timedelta64[s]")


def _deleted(rng: np.random.Generator, created: np.ndarray, share: float) -> np.ndarray:
    gone = rng.random(len(created)) < share
    when = created + rng.integers(3600, 200 * 86400, len(created)).astype("timedelta64[s]")
    out = when.astype("datetime64[us]")
    return np.where(gone, out, np.datetime64("NaT"))


def _ts(a: np.ndarray) -> pl.Series:
    return pl.Series(a.astype("datetime64[us]")).cast(pl.Datetime("us"))


def _nullable(rng: np.random.Generator, values: list, weights: list, n: int, null_share: float) -> list:
    w = np.array(weights, dtype=float)
    picks = rng.choice(len(values), n, p=w / w.sum())
    out = np.array(values, dtype=object)[picks]
    out[rng.random(n) < null_share] = None
    return out.tolist()


def generate(scale: float = 1.0, seed: int = 42, shape_name: str = "skewed") -> dict[str, pl.DataFrame]:
    shape = SHAPES[shape_name]
    rng = np.random.default_rng(seed)
    draw = _Draws(rng, shape)
    deleted = shape["deleted"]
    n_comp = max(int(shape["companies"] * scale), 10)
    n_cont = max(int(500_000 * scale), 50)
    n_deal = max(int(1_000_000 * scale), 100)
    n_int = max(int(5_000_000 * scale), 500)
    n_task = max(int(500_000 * scale), 50)
    n_owner = max(int(shape["owners"] * min(scale, 1) ** 0.5), 5)

    created = draw.times(n_comp)
    companies = pl.DataFrame(
        {
            "id": np.arange(1, n_comp + 1, dtype=np.int64),
            "name": [f"Company {i}" for i in range(1, n_comp + 1)],
            "industry": _nullable(
                rng,
                ["Software", "Retail", "Finance", "Health", "Manufacturing", "Education", "Media"],
                [30, 15, 15, 12, 12, 8, 8],
                n_comp,
                0.08,
            ),
            "size_bucket": _nullable(
                rng, ["1-10", "11-50", "51-200", "201-1000", "1001+"], [40, 30, 17, 9, 4], n_comp, 0
            ),
            "country": _nullable(rng, ["US", "DE", "GB", "FR", "IN", "BR", "JP"], [40, 12, 12, 8, 12, 8, 8], n_comp, 0),
            "created_at": _ts(created),
            "deleted_at": _ts(_deleted(rng, created, deleted)),
        }
    )

    created = draw.times(n_cont)
    stage_names = [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
    ]
    lifecycle = np.array(stage_names, dtype=object)[rng.choice(7, n_cont, p=[0.15, 0.35, 0.15, 0.1, 0.08, 0.15, 0.02])]
    is_customer = lifecycle == "customer"
    converted = created + (rng.exponential(40 * 86400, n_cont)).astype("timedelta64[s]")
    converted = np.where(
        is_customer & (rng.random(n_cont) > 0.05), converted.astype("datetime64[us]"), np.datetime64("NaT")
    )
    company_of_contact = draw.ids(n_cont, n_comp, 1.1).astype(object)
    company_of_contact[rng.random(n_cont) < 0.1] = None
    contacts = pl.DataFrame(
        {
            "id": np.arange(1, n_cont + 1, dtype=np.int64),
            "company_id": pl.Series(company_of_contact.tolist(), dtype=pl.Int64),
            "owner_id": draw.ids(n_cont, n_owner),
            "first_name": [f"First{i % 997}" for i in range(n_cont)],
            "last_name": [f"Last{i % 1999}" for i in range(n_cont)],
            "email": [f"contact{i}@example.com" for i in range(1, n_cont + 1)],
            "lead_source": _nullable(
                rng, shape["sources"], shape["source_weights"], n_cont, shape["null_source"]
            ),
            "lifecycle_stage": lifecycle.tolist(),
            "created_at": _ts(created),
            "converted_at": _ts(converted),
            "deleted_at": _ts(_deleted(rng, created, deleted)),
        }
    )

    # Deals walk the pipeline: each step advances, slips back one stage, is lost, or stops.
    created = draw.times(n_deal)
    p_advance, p_back, p_lose = shape["walk"]
    ids = np.arange(1, n_deal + 1, dtype=np.int64)
    stage = np.zeros(n_deal, dtype=np.int64)
    now = created.copy()
    h_deal, h_from, h_to, h_at = [ids], [np.full(n_deal, -1)], [stage.copy()], [now.copy()]
    active = np.ones(n_deal, dtype=bool)
    for _ in range(shape["steps"]):
        idx = np.nonzero(active)[0]
        if len(idx) == 0:
            break
        r = rng.random(len(idx))
        cur = stage[idx]
        advance = r < p_advance
        back = (r >= p_advance) & (r < p_advance + p_back) & (cur > 0)
        lose = (r >= p_advance + p_back) & (r < p_advance + p_back + p_lose)
        if shape["bounce"]:
            advance |= (r < p_advance + p_back) & (cur == 0)
        moving = advance | back | lose
        new = np.where(advance, cur + 1, np.where(back, cur - 1, np.where(lose, 5, cur)))
        step = idx[moving]
        wait = rng.exponential(9 * 86400, len(step)).astype("timedelta64[s]") + np.timedelta64(60, "s")
        now[step] = now[step] + wait
        h_deal.append(ids[step])
        h_from.append(cur[moving])
        h_to.append(new[moving])
        h_at.append(now[step].copy())
        stage[step] = new[moving]
        active[idx[~moving]] = False  # stopped: stays open in its stage
        active[stage >= 4] = False
    closed = stage >= 4
    amount = np.round(rng.lognormal(12.5, 1.1, n_deal)).astype(np.int64).astype(object)
    amount[rng.random(n_deal) < shape["null_amount"]] = None
    contact_of_deal = draw.ids(n_deal, n_cont, 1.3).astype(object)
    contact_of_deal[rng.random(n_deal) < 0.2] = None
    expected = (created + rng.integers(7, 240, n_deal).astype("timedelta64[D]")).astype("datetime64[D]")
    deals = pl.DataFrame(
        {
            "id": ids,
            "name": [f"Deal {i}" for i in ids],
            "company_id": draw.ids(n_deal, n_comp, 1.05),
            "contact_id": pl.Series(contact_of_deal.tolist(), dtype=pl.Int64),
            "owner_id": draw.ids(n_deal, n_owner),
            "pipeline_stage": np.array(STAGES, dtype=object)[stage].tolist(),
            "amount_cents": pl.Series(amount.tolist(), dtype=pl.Int64),
            "currency": _nullable(rng, ["USD", "EUR", "GBP"], [80, 15, 5], n_deal, 0),
            "expected_close_date": pl.Series(expected).cast(pl.Date),
            "created_at": _ts(created),
            "closed_at": _ts(np.where(closed, now.astype("datetime64[us]"), np.datetime64("NaT"))),
            "deleted_at": _ts(_deleted(rng, created, deleted)),
        }
    )
    order = np.lexsort((np.concatenate(h_at), np.concatenate(h_deal)))
    frm = np.concatenate(h_from)[order]
    history = pl.DataFrame(
        {
            "deal_id": np.concatenate(h_deal)[order],
            "from_stage": pl.Series([STAGES[s] if s >= 0 else None for s in frm], dtype=pl.String),
            "to_stage": np.array(STAGES, dtype=object)[np.concatenate(h_to)[order]].tolist(),
            "changed_at": _ts(np.concatenate(h_at)[order]),
        }
    )

    interactions = pl.DataFrame(
        {
            "id": np.arange(1, n_int + 1, dtype=np.int64),
            "contact_id": draw.ids(n_int, n_cont, 1.15),
            "kind": np.array(["call", "email", "meeting", "note"], dtype=object)[
                rng.choice(4, n_int, p=[0.25, 0.45, 0.12, 0.18])
            ].tolist(),
            "occurred_at": _ts(draw.times(n_int, 2.2)),
        }
    )

    due = draw.times(n_task)
    done = rng.random(n_task) < 0.6
    completed = due - rng.integers(-5 * 86400, 5 * 86400, n_task).astype("timedelta64[s]")
    tasks = pl.DataFrame(
        {
            "id": np.arange(1, n_task + 1, dtype=np.int64),
            "owner_id": draw.ids(n_task, n_owner),
            "status": np.where(
                done, "done", np.array(["todo", "in_progress"], dtype=object)[rng.integers(0, 2, n_task)]
            ).tolist(),
            "priority": np.array(["low", "medium", "high", "urgent"], dtype=object)[
                rng.choice(4, n_task, p=[0.3, 0.45, 0.2, 0.05])
            ].tolist(),
            "due_at": _ts(due),
            "completed_at": _ts(np.where(done, completed.astype("datetime64[us]"), np.datetime64("NaT"))),
            "deleted_at": _ts(_deleted(rng, due, deleted)),
        }
    )
    return {
        "companies": companies,
        "contacts": contacts,
        "deals": deals,
        "deal_stage_history": history,
        "interactions": interactions,
        "tasks": tasks,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="skewed")
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    started = time.perf_counter()
    tables = generate(args.scale, args.seed, args.shape)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.write_parquet(args.out / f"{name}.parquet")
        print(f"{name}: {df.height:,} rows")
    print(f"generated in {time.perf_counter() - started:.1f} s into {args.out}")


if __name__ == "__main__":
    main()
