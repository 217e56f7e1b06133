"""`make run` through Airflow, end to end (issue targets: 100,000 customers <= 120 s after setup,
aim 60 s; a daily increment through Airflow <= 30 s), and where the time goes.

Each repeat starts from an empty data directory and runs exactly what `make run` runs (`clv run`:
generate the history, bootstrap Airflow, `airflow dags test clv_daily_refresh`), then the next
business day (`clv run --business-date <end + 1>`). Per-task durations come from the pipeline's
own ``ops.pipeline_runs``; Airflow's overhead is the DAG run's wall time minus its tasks' time.

    python bench/bench_airflow.py [--customers 100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from bench.common import machine, median, run, write_section
from clv.names import DEFAULT_HISTORY_END

PY = sys.executable
END = DEFAULT_HISTORY_END
GENERATED = re.compile(r"^history batch .* in ([0-9.]+) s", re.M)


def task_seconds(data: Path, business_date: dt.date) -> dict[str, float]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        (run_id,) = con.execute(
            "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = 'clv_daily_refresh' AND business_date = ? "
            "ORDER BY finished_at DESC LIMIT 1",
            [business_date],
        ).fetchone()
        rows = con.execute(
            "SELECT task_id, sum(duration_seconds) FROM ops.pipeline_runs WHERE run_id = ? "
            "AND status = 'success' GROUP BY task_id",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


PARSE = """
import sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(time.perf_counter() - t1, t1 - t0)
"""


def parse_seconds(root: Path) -> tuple[float, float]:
    """Seconds to parse the four DAG files (after Airflow itself is imported), and Airflow's import."""
    from clv.airflow import home as airflow_home

    env = airflow_home.environ(root / "parse")
    out = run([PY, "-c", PARSE, str(Path(__file__).resolve().parent.parent / "dags")], env=env).stdout
    parse, imp = (float(x) for x in out.strip().splitlines()[-1].split())
    return parse, imp


def one(customers: int, root: Path) -> dict:
    data = root / "data"
    env = {"CLV_CUSTOMERS": str(customers), "CLV_DATA_DIR": str(data)}
    t0 = time.perf_counter()
    first = run([PY, "-m", "clv.cli", "run", "--data-dir", str(data)], env=env)
    full = time.perf_counter() - t0
    gen = float(GENERATED.search(first.stdout).group(1))
    tasks_full = task_seconds(data, END)
    day = END + dt.timedelta(days=1)
    second = run(
        [PY, "-m", "clv.cli", "run", "--data-dir", str(data), "--business-date", day.isoformat()], env=env
    )
    tasks_day = task_seconds(data, day)
    return {
        "full": full,
        "full_peak_mb": first.peak_rss_mb,
        "generate": gen,
        "tasks_full": tasks_full,
        "day": second.seconds,
        "day_peak_mb": second.peak_rss_mb,
        "tasks_day": tasks_day,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    results = []
    for i in range(args.repeats):
        root = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
        try:
            r = one(args.customers, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        results.append(r)
        print(f"repeat {i + 1}: make run {r['full']:.1f} s, next day {r['day']:.1f} s", flush=True)

    def med(key: str) -> float:
        return median([r[key] for r in results])

    def med_task(which: str, task: str) -> float:
        return median([r[which].get(task, 0.0) for r in results])

    with tempfile.TemporaryDirectory() as tmp:
        parses = [parse_seconds(Path(tmp)) for _ in range(3)]
    tasks = list(results[0]["tasks_full"])
    full, day = med("full"), med("day")
    tasks_full = sum(med_task("tasks_full", t) for t in tasks)
    tasks_day = sum(med_task("tasks_day", t) for t in tasks)
    # `clv run` = history generation + Airflow bootstrap/startup + the DAG's tasks + the summary.
    lines = [
        "## Airflow: `make run` end to end and the daily increment",
        "",
        f"Machine: {machine()}. {args.customers:,} customers, medians of {args.repeats} runs, each from an "
        "empty data directory, after `make setup`. Command: `python bench/bench_airflow.py`.",
        "",
        "| measure | median | target |",
        "| --- | ---: | ---: |",
        f"| `make run` (`clv run`: generate + Airflow + the whole DAG + summary) | {full:.1f} s | ≤ 120 s (aim 60 s) |",
        f"| the next business day through Airflow (`clv run --business-date`) | {day:.1f} s | ≤ 30 s |",
        f"| peak memory of `make run` (PSS, whole process tree) | {med('full_peak_mb'):,.0f} MB | |",
        f"| peak memory of the daily increment | {med('day_peak_mb'):,.0f} MB | |",
        "",
        "Where the time goes (task times from `ops.pipeline_runs`):",
        "",
        "| step | first run (s) | next day (s) |",
        "| --- | ---: | ---: |",
        f"| generate the history (before the DAG) | {med('generate'):.1f} | – |",
    ]
    for t in tasks:
        lines.append(f"| task `{t}` | {med_task('tasks_full', t):.1f} | {med_task('tasks_day', t):.1f} |")
    lines += [
        f"| Airflow and CLI overhead (bootstrap, `dags test` start-up, scheduling, summary) | "
        f"{full - med('generate') - tasks_full:.1f} | {day - tasks_day:.1f} |",
        "",
        "The overhead row is wall time minus the tasks' own time (and minus generation on the first run).",
        "",
        f"Parsing the four DAG files (a DagBag, after Airflow is imported): {median([p[0] for p in parses]):.2f} s "
        f"(median of 3; importing Airflow itself: {median([p[1] for p in parses]):.2f} s). The DAG files import "
        "no DuckDB, SQLMesh, Soda, pandas or generator code (tests/airflow/test_dag_definitions.py).",
    ]
    body = "\n".join(lines)
    print(body)
    write_section("airflow", body)


if __name__ == "__main__":
    main()
