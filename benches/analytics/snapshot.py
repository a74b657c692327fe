"""Snapshot load: crm's store snapshot (`crm.connect(url).tables()`) against connectorx
reading the same live rows of the same tables into Arrow, side by side, on SQLite and
PostgreSQL.

    python snapshot.py --contacts 100000 --backends sqlite postgres

Seeds each CRM once with crm-server's demo data (`crm.seed_demo`; kept under --dir and
reused when it is there), then times, with --repeat runs each (medians): a cold snapshot
(a new connection, so nothing is cached) and connectorx's `read_sql` of the six tables'
live rows. Rows per second count every row read of the six tables; opening crm's
connection (a pool, the migrations check) is not timed. Figures go to
--out (default target/crm-bench/snapshot.md). Build crm-py with --release first.
"""

from __future__ import annotations

import argparse
import pathlib

import crm
from harness import _median_time as median_time

# The live rows connectorx reads: the columns the snapshot reads, from the CRM's own tables.
QUERIES = {
    "companies": "SELECT id, name, industry, size, country, owner_id, created_at, deleted_at FROM companies WHERE deleted_at IS NULL",
    "contacts": "SELECT id, company_id, owner_id, name, email, lead_source, lifecycle_stage, created_at, converted_at, deleted_at FROM contacts WHERE deleted_at IS NULL",
    "deals": "SELECT id, name, company_id, contact_ids, owner_id, stage, amount, currency, expected_close_date, created_at, closed_at, deleted_at FROM deals WHERE deleted_at IS NULL",
    "deal_stage_history": "SELECT deal_id, from_stage, to_stage, changed_at FROM deal_stage_history",
    "interactions": "SELECT id, contact_id, deal_id, owner_id, kind, occurred_at FROM interactions WHERE deleted_at IS NULL",
    "tasks": "SELECT id, owner_id, status, priority, due_date, completed_at, deleted_at FROM tasks WHERE deleted_at IS NULL",
}


def seed(url: str, marker: pathlib.Path, contacts: int) -> None:
    if marker.exists():
        return
    made = crm.seed_demo(url, companies=max(contacts // 10, 1), contacts=contacts, deals=contacts // 2)
    print("seeded", url.split("@")[-1], made, flush=True)
    marker.write_text(str(made))


def run(url: str, repeat: int) -> dict:
    import connectorx as cx

    # Each run a new connection (an empty snapshot cache), opened before the clock starts:
    # connectorx's connection is as cheap, crm's opens a pool and checks the migrations.
    times, tables = [], None
    for _ in range(repeat):
        client = crm.connect(url)
        t, tables = median_time(client.tables, 1)
        times.append(t)
    t_crm = sorted(times)[len(times) // 2]
    rows = sum(df.height for df in tables.values())
    def connectorx():
        return {name: cx.read_sql(url, q, return_type="arrow") for name, q in QUERIES.items()}

    t_cx, theirs = median_time(connectorx, repeat)
    cx_rows = sum(t.num_rows for t in theirs.values())
    return {"crm": t_crm, "cx": t_cx, "rows": rows, "cx_rows": cx_rows, "per_table": {n: df.height for n, df in tables.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    ap.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("target/crm-bench/snapshot"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("target/crm-bench/snapshot.md"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"Snapshot load, {args.contacts:,} demo contacts (medians of {args.repeat})\n",
        "| backend | rows | crm snapshot | rows/s | connectorx → Arrow | rows/s | crm / connectorx speed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend in args.backends:
        if backend == "sqlite":
            url = f"sqlite://{(args.dir / f'crm-{args.contacts}.db').resolve()}"
        else:
            import psycopg  # noqa: F401  (only to fail early with a clear message when missing)

            db = f"crm_snapshot_{args.contacts}"
            url = f"{args.postgres}/{db}"
            with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as c:
                if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                    c.execute(f'CREATE DATABASE "{db}"')
        seed(url, args.dir / f"{backend}-{args.contacts}.seeded", args.contacts)
        r = run(url, args.repeat)
        speed = (r["rows"] / r["crm"]) / (r["cx_rows"] / r["cx"])
        lines.append(
            f"| {backend} | {r['rows']:,} | {r['crm'] * 1000:.0f} ms | {r['rows'] / r['crm']:,.0f} | "
            f"{r['cx'] * 1000:.0f} ms | {r['cx_rows'] / r['cx']:,.0f} | {speed:.2f} |"
        )
        print(lines[-1], r["per_table"], flush=True)
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
