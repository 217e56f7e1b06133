"""The reliability figures: run the scenario tests (tests/reliability), then sum up their own
records in bench/RELIABILITY.md.

Each scenario test keeps a ledger (tests/reliability/ledger.py) of the faults it injected, the
faults the generator injected into its data (from the generator's truth), where every landed row
went (raw, quarantine with a reason, a byte-for-byte redelivery, or lost), the recoveries it saw and
the alerts raised, and writes it as JSON to $CLV_RELIABILITY_OUT. This script points that variable
at bench/out/reliability/records, runs pytest, and writes the tables from those records only.

    python bench/reliability_report.py              # run the scenarios, write bench/RELIABILITY.md
    python bench/reliability_report.py -n 2         # the same on two pytest-xdist workers
    python bench/reliability_report.py --no-run     # rewrite the page from the last run's records

Exit code 1 when a test failed or a row was lost (the page is written either way).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine

OUT = ROOT / "bench" / "out" / "reliability"
PAGE = ROOT / "bench" / "RELIABILITY.md"
SCENARIOS = {
    1: "An extract fails transiently: retried with back-off, then succeeds; after the last retry, an alert",
    2: "A schema-drifted file: quarantined; the rest loads; an alert; downstream runs on the valid data",
    3: "A data-quality regression: downstream does not refresh; serving byte-identical; an alert names the check",
    4: "A whole batch replayed: zero duplicates in staging, facts and marts",
    5: "Late and out-of-order events: in facts and marts after the next run; a rebuild from raw agrees",
    6: "A transform killed mid-run (SIGKILL): the rerun completes; the marts equal a clean run's",
    7: "A load killed mid-file (SIGKILL): no partial file in raw; the rerun loads it; reconciliation exact",
    8: "Two writers at once: the second waits or stops with a clear message; nothing lost",
    9: "A bad backfill in a dev environment: prod untouched; after the fix, promotion works",
    10: "Garbage input files: quarantined with a reason; the rest of the batch loads",
    11: "Property-based fuzzing of malformed CSV rows: never a crash, every row accounted for",
    12: "Runaway work: a count guard refuses a batch far larger than expected",
    13: "Batch files before their manifest: extract waits for the whole day; a day processed early is restated; marts equal an on-time run",
    14: "A delivery that does not match its manifest: not loaded, retried; unlisted files quarantined",
    15: "Symlinks out of the landing folder and device files: quarantined whole, never read",
    16: "A transient I/O error while reading: the file is failed and retried, never quarantined",
    17: "Missed days catch up: the next run processes them; one landing after a later day ran is restated; marts equal on-time runs",
    18: "Two writer DAGs started together: one waits for the other, both finish",
    19: "Quarantine, correction, reprocess: rows exported, corrected and reloaded with lineage; marts equal a run without the faults",
    20: "A bad promotion rolled back: marts and serving equal the pre-promotion ones, nothing recomputed",
    21: "Backup, a day, restore (refused over a newer warehouse without --force), the day again: rows lost 0",
}


def run_tests(workers: int | None, extra: list[str]) -> tuple[int, float]:
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "records").mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests/reliability",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={(OUT / 'junit.xml').relative_to(ROOT)}",
        *(["-n", str(workers), "--dist", "loadgroup"] if workers else []),
        *extra,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CLV_RELIABILITY_OUT": str(OUT / "records"),
        "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
        "MAX_FORK_WORKERS": "1",
    }
    print("$", shlex.join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    seconds = time.perf_counter() - t0
    (OUT / "run.json").write_text(
        json.dumps(
            {
                "returncode": rc,
                "seconds": seconds,
                "command": shlex.join(["pytest", *cmd[3:]]),
                "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
                "machine": machine(),
            }
        )
    )
    return rc, seconds


def junit_totals() -> dict:
    root = ET.parse(OUT / "junit.xml").getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    out = Counter()
    for s in suites:
        for k in ("tests", "failures", "errors", "skipped"):
            out[k] += int(s.get(k, 0))
    out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
    return dict(out)


def load_records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((OUT / "records").glob("*.json"))]


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def n(x: int) -> str:
    return f"{x:,}"


def render(records: list[dict], totals: dict, run: dict) -> str:
    by = defaultdict(list)
    for r in records:
        by[r["scenario"]].append(r)
    lost = sum(r["rows_lost"] for r in records)
    failed = [r for r in records if r["outcome"] != "passed"]
    out = [
        "# Reliability figures",
        "",
        "Written by `python bench/reliability_report.py` (part of `make bench`) from an actual run of the",
        "scenario tests in `tests/reliability/`: every figure below is a counter a test kept while it ran",
        "(`tests/reliability/ledger.py`), not an estimate.",
        "",
        f"Machine: {run['machine']}. Run finished {run['finished_at']}; `{run['command']}` took "
        f"{run['seconds']:.0f} s. pytest: {totals['tests']} tests, {totals['passed']} passed, "
        f"{totals['failures'] + totals['errors']} failed, {totals['skipped']} skipped.",
        "",
        f"**Rows lost: {n(lost)}.** "
        + (
            "Every test that accounted for its rows found each landed row in raw, "
            "in quarantine with a reason, or in a byte-for-byte redelivery of a batch loaded before."
            if not lost
            else "SOME ROWS WERE LOST: see the table below."
        ),
        "",
        "## Scenarios run",
        "",
    ]
    rows = []
    for num in sorted(SCENARIOS):
        rs = by.get(num, [])
        rows.append(
            [
                num,
                SCENARIOS[num],
                "; ".join(sorted({r["chaos"] for r in rs})),
                len(rs),
                sum(r["outcome"] == "passed" for r in rs),
                n(sum(sum(r["faults"].values()) for r in rs)),
                n(sum(sum(r["recoveries"].values()) for r in rs)),
                n(sum(len(r["alerts"]) for r in rs)),
                f"{sum(r['seconds'] for r in rs):.0f} s",
            ]
        )
    out.append(
        table(
            [
                "#",
                "scenario",
                "data",
                "tests",
                "passed",
                "faults injected by the tests",
                "recoveries",
                "alerts",
                "time",
            ],
            rows,
            "rllrrrrrr",
        )
    )
    out += ["", "A test's time includes building the fixtures it was the first to need.", ""]
    if failed:
        out += ["**Failed tests:** " + ", ".join(f"`{r['test']}`" for r in failed), ""]

    out += ["## Faults injected", "", "By the tests themselves (per kind):", ""]
    kinds = defaultdict(Counter)
    for r in records:
        for k, v in r["faults"].items():
            kinds[k][r["scenario"]] += v
    out.append(
        table(
            ["fault", "count", "scenarios"],
            [[k, n(sum(c.values())), ", ".join(str(s) for s in sorted(c))] for k, c in sorted(kinds.items())],
            "lrl",
        )
    )
    out += [
        "",
        "By the generator, in the batches the tests ran on (the `data` column above says at which",
        "chaos level), from its truth files `truth/faults/*.csv`. A dataset shared by several tests",
        "counts once per test.",
        "",
    ]
    gen = defaultdict(Counter)
    for r in records:
        for k, v in r.get("generator_faults", {}).items():
            gen[k][r["scenario"]] += v
    out.append(
        table(
            ["fault", "count", "scenarios"],
            [[k, n(sum(c.values())), ", ".join(str(s) for s in sorted(c))] for k, c in sorted(gen.items())],
            "lrl",
        )
    )

    out += [
        "",
        "## Where every landed row went",
        "",
        "Counted independently of the loader: the lines of every landed file on disk, then each file's",
        "rows in raw and in quarantine. Rows lost = landed − raw − quarantined − redelivered.",
        "",
    ]
    rows = []
    for num in sorted(by):
        rs = [r for r in by[num] if r["accounted"]]
        rows.append(
            [
                num,
                len(rs),
                n(sum(r["rows_landed"] for r in rs)),
                n(sum(r["rows_in_raw"] for r in rs)),
                n(sum(r["rows_quarantined_total"] for r in rs)),
                n(sum(r["rows_redelivered"] for r in rs)),
                n(sum(r["rows_lost"] for r in rs)),
            ]
        )
    allr = [r for r in records if r["accounted"]]
    rows.append(
        [
            "all",
            len(allr),
            n(sum(r["rows_landed"] for r in allr)),
            n(sum(r["rows_in_raw"] for r in allr)),
            n(sum(r["rows_quarantined_total"] for r in allr)),
            n(sum(r["rows_redelivered"] for r in allr)),
            n(lost),
        ]
    )
    out.append(
        table(
            ["scenario", "tests", "rows landed", "in raw", "quarantined", "redelivered (skipped)", "lost"],
            rows,
        )
    )

    out += [
        "",
        "## Rows quarantined per reason",
        "",
        "A row that breaks several rules counts once under each reason; `file: …` rows were in a file",
        "quarantined whole.",
        "",
    ]
    reasons = defaultdict(Counter)
    for r in records:
        for k, v in r["rows_quarantined"].items():
            reasons[k][r["scenario"]] += v
    out.append(
        table(
            ["reason", "rows", "scenarios"],
            [
                [k, n(sum(c.values())), ", ".join(str(s) for s in sorted(c))]
                for k, c in sorted(reasons.items(), key=lambda kv: -sum(kv[1].values()))
            ],
            "lrl",
        )
    )

    out += ["", "## Recoveries", ""]
    rec = defaultdict(Counter)
    for r in records:
        for k, v in r["recoveries"].items():
            rec[k][r["scenario"]] += v
    out.append(
        table(
            ["recovery", "count", "scenarios"],
            [[k, n(sum(c.values())), ", ".join(str(s) for s in sorted(c))] for k, c in sorted(rec.items())],
            "lrl",
        )
    )

    out += ["", "## Alerts raised", ""]
    alerts = []
    for r in sorted(records, key=lambda r: r["scenario"]):
        for a in r["alerts"]:
            summary = " ".join((a.get("summary") or "").split())
            summary = re.sub(r"/\S*?/data/", "<data dir>/", summary)  # the tests' temporary folders
            summary = summary if len(summary) <= 160 else summary[:157] + "..."
            alerts.append([r["scenario"], a.get("severity"), a.get("task_id"), summary.replace("|", "\\|")])
    out.append(table(["scenario", "severity", "task", "summary"], alerts, "rlll"))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--workers", type=int, default=None, help="pytest-xdist workers (default: none)")
    p.add_argument("--no-run", action="store_true", help="rewrite the page from the last run's records")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = p.parse_args(argv)
    if not args.no_run:
        run_tests(args.workers, args.pytest_args)
    records = load_records()
    if not records:
        print("no records: run without --no-run first", file=sys.stderr)
        return 1
    run = json.loads((OUT / "run.json").read_text())
    totals = junit_totals()
    PAGE.write_text(render(records, totals, run))
    lost = sum(r["rows_lost"] for r in records)
    print(
        f"wrote {PAGE}: {totals['passed']}/{totals['tests']} tests passed, "
        f"{len({r['scenario'] for r in records})} scenarios, rows lost {lost}"
    )
    return 0 if run["returncode"] == 0 and not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
