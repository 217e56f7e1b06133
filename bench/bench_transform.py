"""SQLMesh benchmark (issue targets: full backfill of the 100k history <= 60 s, aim 30 s; a one-day
incremental run <= 15 s including SQLMesh's start-up; peak memory <= 4 GB).

Each measured step runs in its own process (SQLMesh's start-up included) on a fresh copy of the
same loaded warehouse. Afterwards every model's query is profiled with DuckDB's EXPLAIN ANALYZE on
the built warehouse: per-model time, and the slowest five with their hottest operators.

    python bench/bench_transform.py [--customers 100000] [--repeats 2]
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
STEP = """
import datetime as dt, sys, time
from pathlib import Path
from clv import transform
data, mode, day = Path(sys.argv[1]), sys.argv[2], dt.date.fromisoformat(sys.argv[3])
t0 = time.perf_counter()
ctx = transform.context(data)
if mode == "plan":
    transform.plan_prod(ctx, day)
else:
    assert transform.run(ctx, day)
ctx.close()
print(time.perf_counter() - t0)
"""
PROFILE = """
import json, re, sys
from pathlib import Path
from clv import transform
data, start, end, exe = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = transform.context(data)
out = []
for name in ctx.dag.sorted:
    model = ctx.models[name]
    if model.kind.is_seed or model.kind.is_external or model.kind.is_scd_type_2 or not model.is_sql:
        continue  # Python models (the CLV and churn fits) have no query to profile
    sql = ctx.render(name, start=start, end=end, execution_time=exe).sql(dialect="duckdb")
    plan = ctx.engine_adapter.fetchall("EXPLAIN ANALYZE " + sql)[0][1]
    total = re.search(r"Total Time: ([0-9.]+)s", plan)
    seconds = float(total.group(1)) if total else float("nan")
    ops = []
    for block in plan.split("┌"):
        m = re.search(r"│\\s*([A-Z_]+(?: [A-Z_]+)*)\\s*│", block)
        t = re.search(r"([0-9.]+)s\\s*│", block)
        if m and t:
            ops.append((float(t.group(1)), m.group(1).strip()))
    ops.sort(reverse=True)
    out.append({"model": model.name, "seconds": seconds, "hot": ops[:3]})
ctx.close()
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clv-bench-transform-"))
    try:
        data = tmp / "data"
        parked = generate(data, args.customers)
        run([PY, "-m", "clv.cli", "load", "--data-dir", str(data)])
        loaded = tmp / "loaded.duckdb"
        shutil.copy(data / "warehouse.duckdb", loaded)

        plans, plan_mem = [], []
        for _ in range(args.repeats):
            shutil.copy(loaded, data / "warehouse.duckdb")
            r = run([PY, "-c", STEP, str(data), "plan", "2024-12-31"])
            plans.append(float(r.stdout.strip().splitlines()[-1]))
            plan_mem.append(r.peak_rss_mb)
            print(f"backfill: {plans[-1]:.1f} s, peak {plan_mem[-1]:.0f} MB", flush=True)
        planned = tmp / "planned.duckdb"
        shutil.copy(data / "warehouse.duckdb", planned)
        shutil.move(parked, data / "landing" / "2025-01-01")
        run([PY, "-m", "clv.cli", "load", "--data-dir", str(data)])
        day_loaded = tmp / "day-loaded.duckdb"
        shutil.copy(data / "warehouse.duckdb", day_loaded)
        days, day_wall, day_mem = [], [], []
        for _ in range(args.repeats + 1):
            shutil.copy(day_loaded, data / "warehouse.duckdb")
            r = run([PY, "-c", STEP, str(data), "run", "2025-01-01"])
            days.append(float(r.stdout.strip().splitlines()[-1]))
            day_wall.append(r.seconds)
            day_mem.append(r.peak_rss_mb)
            print(f"daily run: {days[-1]:.1f} s in-process, {r.seconds:.1f} s process", flush=True)
        profile = json.loads(
            run([PY, "-c", PROFILE, str(data), "2022-01-01", "2024-12-31", "2025-01-01"])
            .stdout.strip()
            .splitlines()[-1]
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    profile.sort(key=lambda p: -p["seconds"])
    lines = [
        "## SQLMesh transform",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_transform.py` (part of `make bench`).",
        f"Data: the {args.customers:,}-customer history (seed 42, realistic chaos), loaded; then one day batch.",
        "",
        "| measure | median | runs | peak memory (PSS) |",
        "| --- | ---: | ---: | ---: |",
        f"| first plan: create every model, backfill 2022-01-01..2024-12-31 (in-process, SQLMesh start-up included) "
        f"| {median(plans):.1f} s | {len(plans)} | {max(plan_mem):,.0f} MB |",
        f"| daily run for 2025-01-01 after loading its batch (in-process) | {median(days):.1f} s | {len(days)} "
        f"| {max(day_mem):,.0f} MB |",
        f"| daily run, whole process (imports included) | {median(day_wall):.1f} s | {len(days)} | |",
        "",
        "Per-model query time over the full history (each model's rendered query re-run under EXPLAIN ANALYZE",
        "on the built warehouse, DuckDB's total time; SCD-2, seed and Python models excluded), slowest first:",
        "",
        "| model | seconds | hottest operators (seconds) |",
        "| --- | ---: | --- |",
    ]
    for p in profile:
        hot = ", ".join(f"{name} {t:.2f}" for t, name in p["hot"])
        lines.append(f"| {p['model']} | {p['seconds']:.2f} | {hot} |")
    write_section("transform", "\n".join(lines))
    print("\n".join(lines[5:]))


if __name__ == "__main__":
    main()
