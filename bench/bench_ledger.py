"""The prediction ledger's size: bytes per business date and per customer-day in DuckDB, and a
year of daily snapshots at 100,000 customers.

The ledger (intermediate.int_prediction_ledger) appends one row per customer per business date.
Its size depends on how well DuckDB compresses the values, so the rows measured are real ones: the
ledger rows of a warehouse the pipeline built (any size), resampled to `--customers` rows per day
(values drawn row-wise with replacement, customer ids C000000001 ..), written for `--days` business
dates into a fresh DuckDB file with the ledger's own column types (created from the warehouse's
table), checkpointed, and measured from the file and from DuckDB's storage info.

    python bench/bench_ledger.py --data-dir DIR [--customers 100000] [--days 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_section
from clv import settings

LEDGER = "intermediate.int_prediction_ledger"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="a data directory whose warehouse has the ledger")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    paths = settings.paths(args.data_dir)
    src = duckdb.connect(str(paths.warehouse), read_only=True)
    sample = src.execute(
        f"SELECT * FROM {LEDGER} WHERE business_date = (SELECT max(business_date) FROM {LEDGER})"
    ).df()
    types = src.execute(f"DESCRIBE SELECT * FROM {LEDGER}").fetchall()
    src.close()
    if sample.empty:
        raise SystemExit(f"{paths.warehouse} has no ledger rows: build it with this version first")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ledger.duckdb"
        con = duckdb.connect(str(db))
        cols = ", ".join(f'"{name}" {kind}' for name, kind, *_ in types)
        con.execute(f"CREATE TABLE ledger ({cols})")
        con.execute("CHECKPOINT")
        empty = db.stat().st_size
        first = dt.date(2025, 1, 1)
        t0 = time.perf_counter()
        sizes = []
        for i in range(args.days):
            day = sample.iloc[rng.integers(0, len(sample), args.customers)].reset_index(drop=True)
            day["business_date"] = first + dt.timedelta(days=i)
            day["customer_id"] = [f"C{j:09d}" for j in range(1, args.customers + 1)]
            con.register("day_rows", day)
            con.execute("INSERT INTO ledger SELECT * FROM day_rows")
            con.unregister("day_rows")
            con.execute("CHECKPOINT")
            sizes.append(db.stat().st_size)
        seconds = time.perf_counter() - t0
        used = con.execute(
            "SELECT sum(used_blocks) * max(block_size) FROM pragma_database_size()"
        ).fetchone()[0]
        rows = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
        con.close()
    per_day = (sizes[-1] - sizes[0]) / (args.days - 1)
    width = {"FLOAT": 4, "REAL": 4, "DOUBLE": 8, "DATE": 4, "BOOLEAN": 1, "INTEGER": 4, "BIGINT": 8}
    raw = sum(width.get(kind, 0) for _, kind, *_ in types) + sum(
        float(sample[name].astype(str).str.len().mean()) for name, kind, *_ in types if kind == "VARCHAR"
    )
    per_row = per_day / args.customers
    lines = [
        f"Machine: {machine()}. {len(types)} columns (the ledger's own types: REAL probabilities and values, "
        f"text model versions, DATE), real rows of `{paths.warehouse}` ({len(sample):,} customers on its latest "
        f"business date) resampled to {args.customers:,} customers a day, {args.days} business dates, "
        "each appended and checkpointed (as a daily run does). Resampling repeats the sample's values, "
        "which may compress better than a real 100,000-customer day: the uncompressed width bounds it.",
        "",
        "| | |",
        "| --- | ---: |",
        f"| rows | {rows:,} |",
        f"| file size after {args.days} days | {sizes[-1] / 2**20:,.1f} MiB (empty file {empty / 2**10:,.0f} KiB) |",
        f"| DuckDB's used blocks | {used / 2**20:,.1f} MiB |",
        f"| growth per business date (days 2..{args.days}) | {per_day / 2**20:,.2f} MiB |",
        f"| per customer-day | {per_row:,.1f} bytes (uncompressed width {raw:,.0f} bytes) |",
        f"| a year at the uncompressed width (an upper bound) | {365 * args.customers * raw / 2**30:,.2f} GiB |",
        f"| a year of daily snapshots at {args.customers:,} customers (365 x growth per day) | "
        f"{365 * per_day / 2**30:,.2f} GiB |",
        f"| time to append and checkpoint {args.days} days | {seconds:,.1f} s |",
    ]
    print("\n".join(lines))
    write_section(
        "ledger_size", "## Prediction ledger: size per business date (issue 19)\n\n" + "\n".join(lines)
    )


if __name__ == "__main__":
    main()
