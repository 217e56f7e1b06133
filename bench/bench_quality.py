"""Soda scan benchmark (issue target: all five layers' scans on the 100k warehouse <= 20 s together).

Needs a built warehouse: `make run` (or CLV_DATA_DIR pointing at one). Scans each layer on one
connection, three times, and records the medians in bench/RESULTS.md.

    python bench/bench_quality.py [--data-dir data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median, write_section
from clv.names import CHECKED_LAYERS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import duckdb

    from clv import quality
    from clv.pipeline import latest_loaded_date
    from clv.settings import paths as make_paths

    paths = make_paths(args.data_dir)
    day = latest_loaded_date(paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    customers = con.sql("SELECT count(*) FROM marts.mart_customer_360").fetchone()[0]
    per_layer: dict[str, list[float]] = {layer: [] for layer in CHECKED_LAYERS}
    totals, checks = [], {}
    for _ in range(args.repeats):
        total = 0.0
        for layer in CHECKED_LAYERS:
            t0 = time.perf_counter()
            result = quality.scan(con, layer, day, data_dir=paths.data_dir, raise_on_failure=False)
            seconds = time.perf_counter() - t0
            per_layer[layer].append(seconds)
            checks[layer] = len(result.checks)
            total += seconds
        totals.append(total)
        print(f"all five layers: {total:.1f} s", flush=True)
    con.close()
    lines = [
        "## Soda scans",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_quality.py` (part of `make bench`, after `make run`).",
        f"Warehouse: {customers:,} customers in the marts, business date {day}. Median of {args.repeats} runs, "
        "each layer scanned on one open connection (as the pipeline does).",
        "",
        "| layer | checks | median |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {layer} | {checks[layer]} | {median(t):.2f} s |" for layer, t in per_layer.items()]
    lines.append(f"| **all five** | {sum(checks.values())} | **{median(totals):.2f} s** |")
    write_section("quality", "\n".join(lines))
    print("\n".join(lines[5:]))


if __name__ == "__main__":
    main()
