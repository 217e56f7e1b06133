"""Shared benchmark plumbing: run a command, time it, sample the whole process tree's memory,
and keep one section per benchmark in bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, interval: float = 0.02) -> Run:
    """Run ``cmd`` to completion; peak memory is the largest sum of PSS over the process tree,
    sampled every ``interval`` seconds (reading PSS costs CPU: long runs sample less often)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [p, *p.children(recursive=True)]
                total = sum(_pss(q) for q in procs)
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(interval)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}\n{err[-3000:]}"
        )
    return Run(seconds, peak / 1e6, out)


def _pss(p: psutil.Process) -> int:
    """Proportional set size: shared pages (a forked worker's copy-on-write memory, libraries)
    are split between the processes sharing them, so the sum over a tree is its real footprint."""
    try:
        return p.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return p.memory_info().rss


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {sys.version.split()[0]}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between this benchmark's markers in RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by `make bench`.\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def generate(data: Path, customers: int, day: str = "2025-01-01") -> Path:
    """A history at the given scale plus one day batch, the day batch parked aside (returned)."""
    import shutil

    py = sys.executable
    run([py, "-m", "generator", "history", "--customers", str(customers), "--data-dir", str(data), "--quiet"])
    run([py, "-m", "generator", "day", day, "--data-dir", str(data)])
    parked = data.parent / f"parked-{day}"
    shutil.move(data / "landing" / day, parked)
    return parked
