"""What a day costs after the first run (issue 22): the next business day through Airflow and a
second `make run` with nothing new, with the refit cadence, the shared SQLMesh context and the
confirmation of a published day switched on (the defaults) and off.

"Off" reproduces the behaviour before issue 22 with today's code: ``CLV_FORCE_REFIT=1`` (the churn
and renewal models refit every day), ``CLV_REUSE_SQLMESH_CONTEXT=0`` (every layer task loads
SQLMesh) and, for a second run of a published day, ``clv run --rerun``. The days run on one
warehouse, alternating on/off, so the two settings see the same sizes; each run's per-task time
comes from ``ops.pipeline_runs``, each model's from the layer steps' ``model_seconds``. Wall time
and the CPU time of the whole process tree (user + system, from ``getrusage`` of the children) are
both reported: on a shared machine the CPU time is the steadier of the two.

    python bench/bench_daily_cost.py [--customers 20000] [--repeats 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from bench.common import machine, median, run, write_section

PY = sys.executable
OFF = {"CLV_FORCE_REFIT": "1", "CLV_REUSE_SQLMESH_CONTEXT": "0"}
ON = {"CLV_FORCE_REFIT": "0", "CLV_REUSE_SQLMESH_CONTEXT": "1"}
LAYER_TASKS = ("transform_staging", "transform_core", "transform_intermediate", "transform_marts")


def clv_run(data: Path, env: dict, *args: str) -> dict:
    """One `clv run`: wall seconds, CPU seconds of its process tree, the tree's peak memory (PSS,
    sampled once a second: reading a large process's PSS every 20 ms took half a core of this
    2-core machine), load average before."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = run([PY, "-m", "clv.cli", "run", "--data-dir", str(data), *args], env=env, interval=1.0)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "load": load, "out": done.stdout, "peak_mb": done.peak_rss_mb}


def last_run(data: Path, business_date: dt.date) -> dict:
    """Per-task seconds, the SQLMesh context's load line and the slowest models of the latest
    daily run for the business date."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        (run_id,) = con.execute(
            "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = 'clv_daily_refresh' AND business_date = ? "
            "ORDER BY finished_at DESC LIMIT 1",
            [business_date],
        ).fetchone()
        rows = con.execute(
            "SELECT task_id, duration_seconds, detail FROM ops.pipeline_runs WHERE run_id = ? AND status = 'success'",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    tasks, contexts, models, metrics = {}, {}, {}, 0.0
    for task, seconds, detail in rows:
        tasks[task] = seconds
        d = json.loads(detail) if detail else {}
        if "sqlmesh_context" in d:
            contexts[task] = d["sqlmesh_context"]
        models.update(d.get("model_seconds") or {})  # every model the step evaluated
        # recording and judging the layer's metric history (the anomaly detectors' cost)
        metrics += sum(v["seconds"] for k, v in d.items() if k.startswith("metrics_"))
    return {"tasks": tasks, "contexts": contexts, "models": models, "metrics": metrics}


def latest_batch(data: Path) -> dt.date:
    return max(dt.date.fromisoformat(p.name[:10]) for p in (data / "landing").iterdir() if p.is_dir())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="a data directory `clv run` built (else built)"
    )
    ap.add_argument("--section", default="daily_cost", help="the bench/RESULTS.md section to write")
    ap.add_argument(
        "--on-only",
        action="store_true",
        help="next days with the defaults only (no `off` days, no second runs): for large scales",
    )
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-daily-")) / "data"
    first = None
    if not (data / "serving.duckdb").exists():
        first = clv_run(data, ON, "--customers", str(args.customers))
        print(f"first run: {first['wall']:.1f} s wall, {first['cpu']:.1f} s CPU (load {first['load']:.2f})")

    days: dict[str, list[dict]] = {"on": [], "off": []}
    for i in range(2 * args.repeats):
        name, env = ("on", ON) if i % 2 == 0 else ("off", OFF)
        if args.on_only and name == "off":
            continue
        r = clv_run(data, env, "--next-day")
        day = latest_batch(data)
        r.update(last_run(data, day), day=day)
        days[name].append(r)
        print(f"next day {day} ({name}): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU (load {r['load']:.2f})")

    again: dict[str, list[dict]] = {"on": [], "off": []}
    for i in range(0 if args.on_only else 2 * args.repeats):
        name = "off" if i % 2 == 0 else "on"  # --rerun first: it publishes again, the confirmation follows
        r = clv_run(data, OFF if name == "off" else ON, *(["--rerun"] if name == "off" else []))
        assert ("is already published" in r["out"]) == (name == "on"), r["out"][-2000:]
        again[name].append(r)
        print(f"again ({name}): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU (load {r['load']:.2f})")

    def med(rows: list[dict], key: str) -> float:
        return median([r[key] for r in rows]) if rows else math.nan  # --on-only: no `off` runs

    def task_med(rows: list[dict], task: str) -> float:
        return median([r["tasks"].get(task, 0.0) for r in rows]) if rows else math.nan

    def model_med(rows: list[dict], model: str) -> str:
        """A model missing from a run's steps had nothing due that day."""
        times = [r["models"][model] for r in rows if model in r["models"]]
        return f"{median(times):.2f} s" if times else "not evaluated"

    lines = [
        f"## Daily cost at {args.customers:,} customers: refit cadence, one SQLMesh context, confirming "
        "a published day (issue 22)",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_daily_cost.py --customers {args.customers} "
        f"--repeats {args.repeats}{' --on-only' if args.on_only else ''}"
        f"{'' if args.section == 'daily_cost' else ' --section ' + args.section}`. {args.customers:,} customers; days alternate on/off on one warehouse.",
        "**on** = the defaults (refit every `model_refit_days` = 7, one SQLMesh context per process, a "
        "published day confirmed); **off** = `CLV_FORCE_REFIT=1 CLV_REUSE_SQLMESH_CONTEXT=0` and "
        "`--rerun` (the behaviour before issue 22). Medians; CPU = user + system of the process tree; "
        "load = 1-minute load average before each run (the machine is shared).",
        "",
    ]
    if first:
        lines.append(
            f"First `clv run` (generate, load, build, publish): {first['wall']:.1f} s wall, "
            f"{first['cpu']:.1f} s CPU, peak memory {first['peak_mb']:,.0f} MB (PSS, process tree), "
            f"load {first['load']:.2f}."
        )
        lines.append("")
    lines += [
        "| measure | on | off | runs each |",
        "| --- | ---: | ---: | ---: |",
        f"| next business day through Airflow, wall | {med(days['on'], 'wall'):.1f} s | "
        f"{med(days['off'], 'wall'):.1f} s | {args.repeats} |",
        f"| next business day, CPU | {med(days['on'], 'cpu'):.1f} s | {med(days['off'], 'cpu'):.1f} s | |",
        f"| `clv run` again with nothing new, wall | {med(again['on'], 'wall'):.1f} s | "
        f"{med(again['off'], 'wall'):.1f} s | {args.repeats} |",
        f"| again with nothing new, CPU | {med(again['on'], 'cpu'):.1f} s | {med(again['off'], 'cpu'):.1f} s | |",
        f"| next business day, peak memory (PSS, process tree) | {med(days['on'], 'peak_mb'):,.0f} MB | "
        f"{med(days['off'], 'peak_mb'):,.0f} MB | |",
        f"| next day: metric history and anomaly verdicts, every layer | {med(days['on'], 'metrics'):.2f} s | "
        f"{med(days['off'], 'metrics'):.2f} s | |",
    ]
    for task in ("load_raw", "scan_raw", *LAYER_TASKS, "publish"):
        lines.append(
            f"| next day: {task} | {task_med(days['on'], task):.1f} s | {task_med(days['off'], task):.1f} s | |"
        )
    for model in (
        "intermediate.int_churn_model",
        "intermediate.int_subscription_model_fit",
        "intermediate.int_clv_model_fit",
    ):
        lines.append(
            f"| next day: model {model.split('.')[1]} | {model_med(days['on'], model)} | "
            f"{model_med(days['off'], model)} | |"
        )
    loads = [r["load"] for rows in (*days.values(), *again.values()) for r in rows]
    lines += [
        "",
        f"Load average before the runs: {min(loads):.2f} to {max(loads):.2f}.",
        " ".join(
            f"SQLMesh context per layer task, last `{name}` day: "
            + "; ".join(f"{t}: {days[name][-1]['contexts'].get(t, '?')}" for t in LAYER_TASKS)
            + "."
            for name in ("on", "off")
            if days[name]
        ),
    ]
    body = re.sub(r"\bnan (s|MB)\b", "not run", "\n".join(lines))
    print(body)
    write_section(args.section, body)


if __name__ == "__main__":
    main()
