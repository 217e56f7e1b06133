"""Scale benchmark (issue targets: the whole pipeline grows linearly or better with the customer
base; 1,000,000 customers end to end <= 15 minutes on 2 cores with peak memory <= 8 GB).

At each scale the whole pipeline runs, one stage per process through the `clv` CLI, on a fresh
data folder: generate the history -> load raw -> scan raw -> transform (the first build of every
SQLMesh model, all four layers) -> scan staging, core, intermediate, marts -> publish. Per stage:
wall time (process start included), peak memory (PSS of the process tree) and rows processed.

The floor is DuckDB reading every landed file once (`count(*)` over `read_csv` of each file, in
one process, timed inside it): no pipeline can take less. Cost growth is the fitted exponent k of
time ~ customers^k (least squares on log-log over all scales, and between the two largest).

    python bench/bench_scale.py [--scales 10000 100000 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, run, write_section
from clv.pipeline import LAYERS

PY = sys.executable
CLV = [PY, "-m", "clv.cli"]
OUT = ROOT / "bench" / "out"
TARGET_SECONDS, TARGET_MB = 15 * 60, 8 * 1024

FLOOR = """
import sys, time, duckdb
from pathlib import Path
files = sorted(str(p) for p in Path(sys.argv[1]).glob("*/*.csv"))
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
rows = sum(
    con.execute("SELECT count(*) FROM read_csv(?, header=true, all_varchar=true, strict_mode=false, "
                "ignore_errors=true, null_padding=true)", [f]).fetchone()[0]
    for f in files
)
print(time.perf_counter() - t0, rows, len(files))
"""

ROWS = """
import sys, duckdb
from clv.pipeline import layer_rows
con = duckdb.connect(sys.argv[1], read_only=True)
for schema in sys.argv[2:]:
    print(schema, layer_rows(con, schema))
"""


def stage_rows(data: Path) -> dict[str, int]:
    out = run([PY, "-c", ROWS, str(data / "warehouse.duckdb"), "raw", *LAYERS]).stdout
    return {schema: int(n) for schema, n in (line.split() for line in out.splitlines())}


def pipeline(customers: int) -> dict:
    """The whole pipeline at one scale; returns per-stage seconds, MB, rows and the floor."""
    data = OUT / f"scale-{customers}"
    shutil.rmtree(data, ignore_errors=True)
    d = ["--data-dir", str(data)]
    stages: list[tuple[str, list[str]]] = [
        ("generate", [PY, "-m", "generator", "history", "--customers", str(customers), *d, "--quiet"]),
        ("load", [*CLV, "load", *d]),
        ("scan raw", [*CLV, "scan", "--layer", "raw", *d]),
        ("transform (4 layers)", [*CLV, "transform", "--plan", *d]),
        *((f"scan {layer}", [*CLV, "scan", "--layer", layer, *d]) for layer in LAYERS),
        ("publish", [*CLV, "publish", *d]),
    ]
    result: dict = {"customers": customers, "stages": {}}
    for name, cmd in stages:
        r = run(cmd, interval=0.25)
        result["stages"][name] = {"seconds": r.seconds, "mb": r.peak_rss_mb, "out": r.stdout}
        print(f"  {customers:>9,} {name:<22} {r.seconds:8.1f} s {r.peak_rss_mb:8,.0f} MB", flush=True)
        for line in r.stdout.splitlines():
            if line.startswith("slowest models"):
                print(f"      {line}", flush=True)
    rows = stage_rows(data)
    floor = run([PY, "-c", FLOOR, str(data / "landing")]).stdout.strip().splitlines()[-1].split()
    result["floor_seconds"], result["landed_rows"], result["files"] = (
        float(floor[0]),
        int(floor[1]),
        int(floor[2]),
    )
    published = re.search(r"\(([\d,]+) rows\)", result["stages"]["publish"]["out"])
    result["rows"] = {
        "generate": result["landed_rows"],
        "load": result["landed_rows"],
        "scan raw": rows["raw"],
        "transform (4 layers)": sum(rows[layer] for layer in LAYERS),
        **{f"scan {layer}": rows[layer] for layer in LAYERS},
        "publish": int(published.group(1).replace(",", "")) if published else 0,
    }
    result["warehouse_mb"] = (data / "warehouse.duckdb").stat().st_size / 1e6
    (OUT / f"scale-{customers}.json").write_text(json.dumps(result, indent=1))  # kept for a re-report
    return result


def exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def report(results: list[dict], load_avg: tuple[float, float]) -> str:
    scales = [r["customers"] for r in results]
    names = list(results[0]["stages"])
    head = (
        "| stage | "
        + " | ".join(f"{n:,} customers" for n in scales)
        + " | exponent (all) | exponent (last two) |"
    )
    lines = [
        "## Scale: the whole pipeline at growing customer counts",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_scale.py` (part of `make bench`).",
        "Each stage is one `clv` (or generator) process on a fresh data folder, realistic chaos, seed 42,",
        "history 2022-01-01..2024-12-31; time includes process start-up; memory is the peak PSS of the",
        "process tree. One run per scale (the 1M run takes most of the benchmark's time).",
        f"Load average before / after: {load_avg[0]:.2f} / {load_avg[1]:.2f}.",
        "",
        "Wall time per stage (seconds), and the fitted exponent k of time ~ customers^k:",
        "",
        head,
        "| --- |" + " ---: |" * (len(scales) + 2),
    ]
    for name in [*names, "total"]:
        secs = [
            sum(s["seconds"] for s in r["stages"].values())
            if name == "total"
            else r["stages"][name]["seconds"]
            for r in results
        ]
        k_all = exponent(scales, secs) if len(scales) > 1 else float("nan")
        k_last = exponent(scales[-2:], secs[-2:]) if len(scales) > 1 else float("nan")
        label = f"**{name}**" if name == "total" else name
        lines.append(
            f"| {label} | " + " | ".join(f"{s:,.1f}" for s in secs) + f" | {k_all:.2f} | {k_last:.2f} |"
        )
    lines += [
        "",
        "Peak memory per stage (MB, PSS) and rows processed:",
        "",
        "| stage | " + " | ".join(f"{n:,}: MB | rows" for n in scales) + " |",
        "| --- |" + " ---: | ---: |" * len(scales),
    ]
    for name in names:
        cells = [f"{r['stages'][name]['mb']:,.0f} | {r['rows'][name]:,}" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Against the floor (DuckDB reading every landed file once, in one process):",
        "",
        "| customers | landed rows | files | floor | pipeline total | total / floor | without generate | peak memory | warehouse file |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        total = sum(s["seconds"] for s in r["stages"].values())
        no_gen = total - r["stages"]["generate"]["seconds"]
        peak = max(s["mb"] for s in r["stages"].values())
        lines.append(
            f"| {r['customers']:,} | {r['landed_rows']:,} | {r['files']} | {r['floor_seconds']:.1f} s | "
            f"{total:,.1f} s | {total / r['floor_seconds']:.1f}x | {no_gen / r['floor_seconds']:.1f}x | "
            f"{peak:,.0f} MB | {r['warehouse_mb']:,.0f} MB |"
        )
    biggest = results[-1]
    total = sum(s["seconds"] for s in biggest["stages"].values())
    peak = max(s["mb"] for s in biggest["stages"].values())
    verdict = "met" if total <= TARGET_SECONDS and peak <= TARGET_MB else "NOT met"
    lines += [
        "",
        f"Target at {biggest['customers']:,} customers (end to end <= 15 min, peak <= 8 GB): {verdict} "
        f"({total / 60:.1f} min, {peak / 1024:.2f} GB).",
    ]
    lines += [
        "",
        "Slowest models in the first build (SQLMesh's evaluation time per model, audits included):",
        "",
    ]
    for r in results:
        slowest = next(
            (
                line
                for line in r["stages"]["transform (4 layers)"]["out"].splitlines()
                if line.startswith("slowest")
            ),
            "slowest models: (not reported)",
        )
        lines.append(f"- {r['customers']:,} customers: {slowest.split(': ', 1)[1]}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--keep", action="store_true", help="keep the data folders under bench/out")
    args = p.parse_args()
    import os

    before = os.getloadavg()[0]
    results = []
    t0 = time.perf_counter()
    for customers in sorted(args.scales):
        results.append(pipeline(customers))
        if not args.keep:
            shutil.rmtree(OUT / f"scale-{customers}", ignore_errors=True)
    body = report(results, (before, os.getloadavg()[0]))
    print(body)
    print(f"(benchmark took {time.perf_counter() - t0:,.0f} s)")
    write_section("scale", body)


if __name__ == "__main__":
    main()
