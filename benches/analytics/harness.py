"""Runs every standard report through crm.analytics, DuckDB and Python polars on the same
in-memory tables, in the same run, checks the outputs are identical (REPORTS.md's
comparison, DuckDB as the reference) and prints medians and ratios.

    python harness.py --data target/analytics-data --threads 1 2 --repeat 5
    python harness.py --data target/analytics-data target/analytics-data-flat   # per data set

Each data set and thread count runs in a child process (polars fixes its pool size at start-up via
POLARS_MAX_THREADS; DuckDB is told with SET threads). Figures are written to
--out (default target/crm-bench/analytics.md) as a Markdown table. Build crm-py with
--release first (`maturin develop --release -m crm-py/Cargo.toml` or pip install).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _median_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def child(data: pathlib.Path, threads: int, repeat: int) -> dict:
    import polars as pl

    import crm
    import pl_reports
    import reference

    tables = crm.analytics.read_parquet(data)
    tables = {name: df.rechunk() for name, df in tables.items()}
    con = reference.connect(tables, threads=threads)
    p = reference.params(con)
    rows = {}
    for name in crm.analytics.REPORTS:
        t_crm, ours = _median_time(lambda: crm.analytics.report(name, tables), repeat)
        t_duck, duck = _median_time(lambda: reference.run(con, name, p), repeat)
        t_pl, theirs = _median_time(lambda: pl_reports.run(tables, name, p), repeat)
        rows[name] = {
            "crm": t_crm,
            "duckdb": t_duck,
            "polars": t_pl,
            "rows": ours.height,
            "crm_vs_duckdb": reference.differences(ours, duck),
            "polars_vs_duckdb": reference.differences(theirs, duck),
        }
    return {"threads": threads, "polars_threads": pl.thread_pool_size(), "reports": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=pathlib.Path, nargs="+", required=True, help="one directory per data set")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("target/crm-bench/analytics.md"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.data[0], args.threads[0], args.repeat)))
        return
    results = []
    for data in args.data:
        for n in args.threads:
            env = dict(os.environ, POLARS_MAX_THREADS=str(n))
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--data",
                str(data),
                "--threads",
                str(n),
                "--repeat",
                str(args.repeat),
            ]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            results.append(dict(json.loads(out.strip().splitlines()[-1]), data=data.name))
    lines = []
    identical = True
    for r in results:
        lines.append(f"\n### {r['data']}, {r['threads']} thread(s) (polars pool: {r['polars_threads']})\n")
        lines.append(
            "| report | rows | crm | DuckDB | Python polars | crm / DuckDB | identical to DuckDB (crm, polars) |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---|")
        ratios = []
        for name, x in r["reports"].items():
            ratio = x["crm"] / x["duckdb"]
            ratios.append(ratio)
            same = (
                ("yes" if not x["crm_vs_duckdb"] else "NO: " + "; ".join(x["crm_vs_duckdb"][:2]))
                + ", "
                + ("yes" if not x["polars_vs_duckdb"] else "NO: " + "; ".join(x["polars_vs_duckdb"][:2]))
            )
            identical &= not x["crm_vs_duckdb"]
            lines.append(
                f"| {name} | {x['rows']} | {x['crm'] * 1000:.1f} ms | {x['duckdb'] * 1000:.1f} ms | "
                f"{x['polars'] * 1000:.1f} ms | {ratio:.2f} | {same} |"
            )
        geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
        total = {k: sum(x[k] for x in r["reports"].values()) for k in ("crm", "duckdb", "polars")}
        lines.append(
            f"| **all** | | {total['crm'] * 1000:.0f} ms | {total['duckdb'] * 1000:.0f} ms | "
            f"{total['polars'] * 1000:.0f} ms | geomean {geo:.2f} | |"
        )
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"\nwritten to {args.out}; outputs identical to DuckDB: {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    main()
