"""Raw-zone load benchmark (issue targets: 100k-customer history at >= 1 M rows/s, a day batch <= 3 s).

In one run, on the same files: the floor (a bare DuckDB read_csv of every history file into
memory), the full load of the history into a fresh warehouse (`clv load`, a real process), and the
load of one day batch on top of it. Medians of several runs; writes bench/RESULTS.md.

    python bench/bench_ingest.py [--customers 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import generate, machine, median, run, write_section

PY = sys.executable
FLOOR = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
for i, f in enumerate(sys.argv[1:]):
    con.execute(f"CREATE TEMP TABLE t{i} AS SELECT * FROM read_csv('{f}')")
print(time.perf_counter() - t0)
"""


CEILING = """
import os, sys, time, duckdb
path = sys.argv[1]
if os.path.exists(path):
    os.remove(path)
con = duckdb.connect(path)
con.execute("SET enable_progress_bar = false")
con.execute("SET preserve_insertion_order = false")
t0 = time.perf_counter()
for i, f in enumerate(sys.argv[2:]):
    con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{f}', store_rejects = true)")
con.execute("CHECKPOINT")
print(time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clv-bench-ingest-"))
    try:
        data = tmp / "data"
        parked = generate(data, args.customers)
        history = data / "landing" / "2024-12-31"
        manifest = json.loads((history / "_manifest.json").read_text())
        rows = sum(f["rows"] for f in manifest["files"].values())
        day_rows = sum(
            f["rows"] for f in json.loads((parked / "_manifest.json").read_text())["files"].values()
        )
        csvs = [str(history / f["file"]) for f in manifest["files"].values()]
        floor = [float(run([PY, "-c", FLOOR, *csvs]).stdout) for _ in range(args.repeats)]
        print(f"floor: bare read_csv of {rows:,} rows into memory: {median(floor):.2f} s", flush=True)
        ceiling = [
            float(run([PY, "-c", CEILING, str(tmp / "ceiling.duckdb"), *csvs]).stdout)
            for _ in range(args.repeats)
        ]
        print(f"ceiling: read_csv straight into a database file: {median(ceiling):.2f} s", flush=True)

        day_dir = data / "landing" / "2025-01-01"
        hist_in, hist_wall, hist_mem, day_in, day_wall = [], [], [], [], []
        for i in range(args.repeats):
            wh = data / "warehouse.duckdb"
            for p in data.glob("warehouse.duckdb*"):
                p.unlink()
            if day_dir.exists():
                shutil.move(day_dir, parked)
            r = run([PY, "-m", "clv.cli", "load", "--data-dir", str(data), "--json"])
            out = json.loads(r.stdout)
            assert out["rows_loaded"] + out["rows_quarantined"] == rows, out
            hist_in.append(out["seconds"])
            hist_wall.append(r.seconds)
            hist_mem.append(r.peak_rss_mb)
            shutil.move(parked, day_dir)
            d = run([PY, "-m", "clv.cli", "load", "--data-dir", str(data), "--json"])
            day_in.append(json.loads(d.stdout)["seconds"])
            day_wall.append(d.seconds)
            print(
                f"run {i + 1}: history {hist_in[-1]:.2f} s in-process ({hist_wall[-1]:.2f} s process), "
                f"day {day_in[-1]:.2f} s ({day_wall[-1]:.2f} s process), peak {hist_mem[-1]:.0f} MB",
                flush=True,
            )
            assert wh.exists()
        rec = run([PY, "-m", "clv.cli", "reconcile", "--data-dir", str(data)]).stdout.strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    h, hw, f = median(hist_in), median(hist_wall), median(floor)
    lines = [
        "## Raw-zone load",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_ingest.py` (part of `make bench`).",
        f"Data: the {args.customers:,}-customer history (seed 42, realistic chaos): {rows:,} rows in 7 files,",
        f"then one day batch ({day_rows:,} rows). Median of {args.repeats} runs, each into a fresh warehouse.",
        "",
        "| measure | time | rows/s |",
        "| --- | ---: | ---: |",
        f"| floor: bare `read_csv` of the history files into memory | {f:.2f} s | {rows / f / 1e6:.2f} M |",
        f"| ceiling: `read_csv` straight into tables of a database file, nothing else | {median(ceiling):.2f} s "
        f"| {rows / median(ceiling) / 1e6:.2f} M |",
        f"| `clv load` of the history, inside the process | {h:.2f} s | {rows / h / 1e6:.2f} M |",
        f"| `clv load` of the history, whole process (imports, connect) | {hw:.2f} s | {rows / hw / 1e6:.2f} M |",
        f"| `clv load` of one day batch, inside the process | {median(day_in):.2f} s | |",
        f"| `clv load` of one day batch, whole process | {median(day_wall):.2f} s | |",
        "",
        f"Load / floor: {h / f:.1f}x; load / ceiling: {h / median(ceiling):.1f}x. Peak memory of the history "
        f"load (PSS): {max(hist_mem):,.0f} MB.",
        "",
        "The 1 M rows/s target is not met. The ceiling row shows why: on this machine DuckDB alone needs",
        "that long to parse the files and write them to a database file, before any of the loader's work.",
        "The loader adds a second pass (parse into a staging table first, so each row's position in the",
        "file is known and rejected lines can be accounted for), the contract's row rules, the quarantine,",
        "lineage columns and one transaction per file.",
        f"Reconciliation after the runs: `{rec}`",
    ]
    write_section("ingest", "\n".join(lines))
    print("\n".join(lines[6:]))


if __name__ == "__main__":
    main()
