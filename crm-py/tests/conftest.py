"""Shared fixtures: the benchmark generator's tables at a small scale, and the DuckDB
reference of REPORTS.md (both from benches/analytics)."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benches" / "analytics"))

import generate  # noqa: E402


@pytest.fixture(scope="session")
def tables():
    # 2,000 deals, 1,000 contacts, 10,000 interactions: every report has rows to compare.
    return generate.generate(scale=0.002, seed=7)


@pytest.fixture(scope="session")
def string_id_tables(tables):
    import polars as pl

    out = {}
    for name, df in tables.items():
        ids = [c for c in df.columns if c == "id" or c.endswith("_id")]
        out[name] = df.with_columns([pl.col(c).cast(pl.String) for c in ids])
    return out
