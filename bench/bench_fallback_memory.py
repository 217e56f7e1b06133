"""Memory of the line-by-line reader (clv/csv_lines.py) against the file's size.

When DuckDB's parallel reader cannot map a file's rows to its lines one to one (a stray quote, a
line break inside a field, an empty line), the loader reads the file again line by line. That
reader streams: rows come out in Arrow tables of at most 200,000 lines. This benchmark shows that
its memory stays flat in the file's size: an orders file of ~100 MB and one of ~1 GB, each with one
bad line (an unterminated quote) in the middle, read to the end in a fresh process; peak RSS is
that process's own ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, and the baseline is the same
figure after the imports. For context, the whole `clv load` of each file (DuckDB's fast path, then
the fallback, into a fresh warehouse) is measured the same way: DuckDB holds the staged rows in its
buffer pool up to ``CLV_DUCKDB_MEMORY_LIMIT`` (default 4 GB), then spills to disk, so that figure
is bounded by the limit, not flat.

    python bench/bench_fallback_memory.py [--sizes-mb 100 1000] [--no-load]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, write_section
from clv.contract import SOURCES

HEADER = ",".join(SOURCES["orders"].column_names)
ROW = "O{},C000000001,2024-01-05 10:00:00,P010001,electronics,1,19.99,web,site,Berlin,DE,19\n"
BAD = 'O-BAD,C000000001,2024-01-05 10:00:00,P010001,"electronics,1,19.99,web,site,Berlin,DE,19\n'

READER = """
import json, resource, sys, time
from pathlib import Path
from clv import csv_lines
from clv.contract import SOURCES
width = len(SOURCES["orders"].column_names)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
rows = rejects = chunks = 0
for chunk in csv_lines.read(Path(sys.argv[1]), width):
    rows += chunk.rows.num_rows
    rejects += chunk.rejects.num_rows
    chunks += 1
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "rejects": rejects, "chunks": chunks, "seconds": seconds,
                  "base_mb": base / 1024, "peak_mb": peak / 1024}))
"""

LOAD = """
import json, resource, sys, time
from clv import ingest
import duckdb, pyarrow
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
summary = ingest.load(sys.argv[1])
seconds = time.perf_counter() - t0
(f,) = [x for x in summary.files if x.source == "orders"]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"status": f.status, "rows_in_file": f.rows_in_file, "rows_loaded": f.rows_loaded,
                  "rows_quarantined": f.rows_quarantined, "reasons": f.reasons, "seconds": seconds,
                  "base_mb": base / 1024, "peak_mb": peak / 1024}))
"""


def write_orders(path: Path, megabytes: int) -> int:
    """An orders file of about ``megabytes`` MB with one unterminated quote halfway; its rows."""
    block_rows = 10_000
    target = megabytes * 1_000_000
    written = rows = 0
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        bad_at = target // 2
        while written < target:
            block = "".join(ROW.format(rows + i) for i in range(block_rows))
            f.write(block)
            written += len(block)
            rows += block_rows
            if bad_at and written >= bad_at:
                f.write(BAD)
                rows += 1
                bad_at = 0
    return rows


def child(script: str, arg: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", script, str(arg)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    if r.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--no-load", action="store_true", help="measure the reader only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clv-bench-fallback-"))
    results = []
    try:
        for mb in args.sizes_mb:
            data = tmp / f"data-{mb}"
            batch = data / "landing" / "2024-01-05"
            batch.mkdir(parents=True)
            (batch / "_manifest.json").write_text(json.dumps({"batch_date": "2024-01-05"}))
            path = batch / "orders.csv"
            rows = write_orders(path, mb)
            size = path.stat().st_size
            reader = child(READER, path)
            assert (reader["rows"], reader["rejects"]) == (rows - 1, 1), reader
            print(
                f"{size / 1e6:,.0f} MB, {rows:,} rows: reader peak {reader['peak_mb']:,.0f} MB "
                f"(after imports {reader['base_mb']:,.0f} MB), {reader['seconds']:.1f} s",
                flush=True,
            )
            load = None
            if not args.no_load:
                load = child(LOAD, data)
                assert load["status"] == "loaded" and load["rows_loaded"] == rows - 1, load
                assert load["rows_quarantined"] == 1, load
                print(
                    f"  clv load: peak {load['peak_mb']:,.0f} MB (after imports {load['base_mb']:,.0f} MB), "
                    f"{load['seconds']:.1f} s, quarantined {load['reasons']}",
                    flush=True,
                )
            results.append((size, rows, reader, load))
            shutil.rmtree(data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        "## Line-by-line fallback: memory against the file's size",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_fallback_memory.py`.",
        "Data: an orders file with one unterminated quote halfway (so the loader reads it line by line).",
        "Peak RSS is the process's own `ru_maxrss` (`resource.getrusage`), in a fresh process per run;",
        '"reader" reads the file to the end with `clv.csv_lines.read` (chunks of 200,000 lines);',
        '"clv load" is the whole load of the file (DuckDB\'s fast path, then the fallback) into a fresh',
        "warehouse, under the default `CLV_DUCKDB_MEMORY_LIMIT` (4 GB).",
        "",
        "| file | rows | reader: peak RSS | reader: peak - after imports | reader: time "
        "| clv load: peak RSS | clv load: time |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, rows, reader, load in results:
        lines.append(
            f"| {size / 1e6:,.0f} MB | {rows:,} | {reader['peak_mb']:,.0f} MB "
            f"| {reader['peak_mb'] - reader['base_mb']:,.0f} MB | {reader['seconds']:.1f} s "
            + (f"| {load['peak_mb']:,.0f} MB | {load['seconds']:.1f} s |" if load else "| - | - |")
        )
    if len(results) >= 2:
        (s0, _, r0, l0), (s1, _, r1, l1) = results[0], results[-1]
        lines += [
            "",
            f"File {s1 / s0:.1f}x larger: the reader's peak grows by {r1['peak_mb'] - r0['peak_mb']:+,.0f} MB "
            f"({r1['peak_mb'] / r0['peak_mb']:.2f}x).",
        ]
        if l0 and l1:
            lines.append(
                f"The whole load's peak grows by {l1['peak_mb'] - l0['peak_mb']:+,.0f} MB "
                f"({l1['peak_mb'] / l0['peak_mb']:.2f}x): the staged rows live in DuckDB's buffer pool "
                "(bounded by its memory limit, spilled beyond it), not in the reader."
            )
    write_section("fallback-memory", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
