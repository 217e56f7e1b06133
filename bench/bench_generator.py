"""Generator benchmark (issue: targets 100k-customer history <= 20 s, <= 2 GB, memory flat in size).

Runs the real CLI in a subprocess for each size, samples the whole process tree's memory, times a
day batch, and compares, in the same run, a plain per-row mimesis loop writing the customers file
with our vectorised path writing the same file. Prints a table and writes bench/RESULTS.md.

    python bench/bench_generator.py [--sizes 10000,100000,1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median, run, write_section

PY = sys.executable


def _history(data_dir: Path, n: int) -> tuple[float, float, dict]:
    r = run(
        [
            PY,
            "-m",
            "generator",
            "history",
            "--customers",
            str(n),
            "--data-dir",
            str(data_dir),
            "--force",
            "--quiet",
        ]
    )
    m = json.loads((data_dir / "landing" / "2024-12-31" / "_manifest.json").read_text())
    return r.seconds, r.peak_rss_mb, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=3, help="runs per size up to 100k (1M runs once)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="clv-bench-gen-"))
    rows_out = []
    try:
        for n in sizes:
            reps = args.repeats if n <= 100_000 else 1
            times, mems = [], []
            manifest = {}
            for _ in range(reps):
                s, mb, manifest = _history(tmp / f"n{n}", n)
                times.append(s)
                mems.append(mb)
            files = manifest["files"]
            rows = sum(f["rows"] for f in files.values())
            size_mb = sum(f["bytes"] for f in files.values()) / 1e6
            rows_out.append((n, median(times), max(mems), rows, size_mb, files, reps))
            print(
                f"history {n:>9,} customers: {median(times):6.1f} s (median of {reps}), "
                f"peak {max(mems):7.0f} MB, {rows:,} rows, {size_mb:,.0f} MB",
                flush=True,
            )
            if n != 100_000:
                shutil.rmtree(tmp / f"n{n}")
        day_times = []
        ref = tmp / "n100000"
        if ref.exists():
            for _ in range(args.repeats):
                day_times.append(
                    run([PY, "-m", "generator", "day", "2025-01-01", "--data-dir", str(ref)]).seconds
                )
            print(f"day batch at 100,000 customers: {median(day_times):.2f} s (median of {len(day_times)})")
        n_base = 100_000
        base_runs = [
            run([PY, "bench/mimesis_baseline.py", str(tmp / "base.csv"), str(n_base)])
            for _ in range(args.repeats)
        ]
        ours_runs = [
            run([PY, "bench/vectorised_customers.py", str(tmp / "ours.csv"), str(n_base)])
            for _ in range(args.repeats)
        ]
        base = [r.seconds for r in base_runs]
        ours = [r.seconds for r in ours_runs]
        base_in = median([float(r.stdout) for r in base_runs])
        ours_in = median([float(r.stdout) for r in ours_runs])
        print(
            f"customers file, {n_base:,} rows: per-row mimesis loop {median(base):.2f} s "
            f"({base_in:.2f} s in-process), vectorised {median(ours):.2f} s ({ours_in:.2f} s in-process); "
            f"ratio {median(base) / median(ours):.1f}x process, {base_in / ours_in:.1f}x in-process"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        "## Generator",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_generator.py` (part of `make bench`).",
        "Wall time of the real CLI process; peak memory = largest sum of PSS (proportional set size)",
        "over the process tree (parent and worker processes), sampled every 20 ms.",
        "",
        "| customers | history wall (median) | runs | peak memory | rows written | CSV size |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, t, mb, rows, size_mb, _, reps in rows_out:
        lines.append(f"| {n:,} | {t:.1f} s | {reps} | {mb:,.0f} MB | {rows:,} | {size_mb:,.0f} MB |")
    lines += [
        "",
        "Rows per source:",
        "",
        "| customers | " + " | ".join(rows_out[0][5]) + " |",
        "| ---: | " + " | ".join("---:" for _ in rows_out[0][5]) + " |",
    ]
    for n, *_rest in rows_out:
        files = _rest[4]
        lines.append(f"| {n:,} | " + " | ".join(f"{files[k]['rows']:,}" for k in files) + " |")
    if day_times:
        lines += [
            "",
            f"One day batch (`day 2025-01-01`) on the 100,000-customer history: "
            f"{median(day_times):.2f} s median of {len(day_times)}.",
        ]
    lines += [
        "",
        f"Customers file ({n_base:,} rows, same columns), same run, median of {args.repeats}: a plain "
        f"per-row mimesis loop (`bench/mimesis_baseline.py`) {median(base):.2f} s; the generator's "
        f"vectorised path (`bench/vectorised_customers.py`: mimesis pools sampled with numpy, strings "
        f"built in Arrow) {median(ours):.2f} s; ratio {median(base) / median(ours):.1f}x. Those are whole "
        f"process times including imports; inside the process (generation and writing only) "
        f"{base_in:.2f} s vs {ours_in:.2f} s, ratio {base_in / ours_in:.1f}x.",
    ]
    write_section("generator", "\n".join(lines))
    print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
