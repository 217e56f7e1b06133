"""The reliability scenarios' ledger: what each test injected, what it found, and the proof that no
landed row was lost.

Each scenario test gets a ``Ledger`` (the ``ledger`` fixture) and records the faults it met — the
generator's own (``truth/faults/*.csv``) and the ones the test injected —, the recoveries it saw
(retries that succeeded, reruns that completed) and the alerts raised. ``Ledger.account`` counts
every landed row independently of the loader (line by line, from the files on disk) and finds it in
the warehouse: in raw, in quarantine (with the reason), or in a redelivered batch that is a
byte-for-byte copy of one loaded before. Rows lost = landed − raw − quarantined − redelivered; the
tests assert it is 0.

At teardown the record is written as JSON to ``$CLV_RELIABILITY_OUT`` (a temporary folder when it
is unset); ``bench/reliability_report.py`` sums the records up in ``bench/RELIABILITY.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv

from clv.contract import SOURCES
from clv.settings import Paths
from generator.chaos import FAULT_FIELDS

OUT_ENV = "CLV_RELIABILITY_OUT"
MANIFEST = "_manifest.json"


def count_rows(path: Path) -> int:
    """Data rows of a landed file as the contract counts them: lines after the header (a last line
    without a line break counts). Independent of the loader's own count."""
    data = path.read_bytes()
    if not data:
        return 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return max(lines - 1, 0)


def landed_files(landing: Path) -> list[Path]:
    """Every file of every complete batch (a folder with its manifest) that can hold landed rows:
    regular files, and links to regular files inside the landing folder. Anything else (a link
    out of the folder, a device, a FIFO) is refused whole and unread by the loader, holds no landed
    row, and is never opened here either (a link to /dev/zero would be read for ever)."""
    out = []
    if not landing.is_dir():
        return out
    root = landing.resolve()
    for batch in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (batch / MANIFEST).exists():
            out += sorted(
                p for p in batch.iterdir() if not p.name.startswith((".", "_")) and _holds_rows(p, root)
            )
    return out


def _holds_rows(path: Path, root: Path) -> bool:
    target = path.resolve()
    if not (target.is_relative_to(root) and target.exists()):
        return False
    return stat.S_ISREG(os.stat(target).st_mode)


def normalise_reason(reason: str) -> list[str]:
    """A quarantine reason as the load summary groups it: 'invalid gender' without the allowed
    values, a parser reject without DuckDB's message, one entry per distinct reason."""
    head = reason.split(" (", 1)[0] if "(" in reason else reason
    out = []
    for part in head.split("; "):
        part = part.strip()
        if part.startswith(("invalid ", "out of range ")):
            part = re.sub(r": .*", "", part)
        if part and part not in out:
            out.append(part)
    return out or [reason]


@dataclass
class Accounting:
    """Where every landed row went."""

    files: int = 0
    rows_landed: int = 0
    rows_in_raw: int = 0
    rows_quarantined: int = 0
    rows_redelivered: int = 0
    reasons: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    unknown_rows: int = 0  # rows in raw or quarantine that no landed file accounts for

    @property
    def rows_lost(self) -> int:
        return self.rows_landed - self.rows_in_raw - self.rows_quarantined - self.rows_redelivered


def account(paths: Paths, con: duckdb.DuckDBPyConnection | None = None) -> Accounting:
    """Follow every landed row into the warehouse (a read-only look unless ``con`` is given)."""
    own = con is None
    if own:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return _account(paths, con)
    finally:
        if own:
            con.close()


def _account(paths: Paths, con) -> Accounting:
    acct = Accounting()
    manifest = con.execute(
        "SELECT load_id, batch, source_file, source, status, file_sha256 FROM ops.load_manifest "
        "ORDER BY load_id"
    ).fetchall()
    # Files are known by batch and name: a copied data directory keeps its manifest's old paths.
    by_file: dict[tuple[str, str], list[tuple]] = {}
    for row in manifest:
        by_file.setdefault((row[1], Path(row[2]).name), []).append(row)
    loaded_ids: set[int] = set()
    for path in landed_files(paths.landing):
        n = count_rows(path)
        acct.files += 1
        acct.rows_landed += n
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        done = [r for r in by_file.get((path.parent.name, path.name), []) if r[5] == sha]
        loaded = [r for r in done if r[4] in ("loaded", "quarantined")]
        if not loaded:
            if any(r[4] == "duplicate" for r in done):
                acct.rows_redelivered += n
            else:
                acct.mismatches.append(f"{path}: {n} rows, not loaded")
            continue
        load_id, source = loaded[0][0], loaded[0][3]
        loaded_ids.add(load_id)
        in_raw = in_bad = 0
        if source in SOURCES:
            in_raw = con.execute(
                f"SELECT count(*) FROM raw_data.{source} WHERE _load_id = ?", [load_id]
            ).fetchone()[0]
            for reason, k in con.execute(
                f"SELECT _reason, count(*) FROM raw_invalid.{source} WHERE _load_id = ? GROUP BY 1",
                [load_id],
            ).fetchall():
                in_bad += k
                for r in normalise_reason(reason):
                    acct.reasons[r] += k
        for reason, k in con.execute(
            "SELECT reason, coalesce(rows_in_file, 0) FROM raw_invalid.files WHERE load_id = ?", [load_id]
        ).fetchall():
            in_bad += k
            acct.reasons[f"file: {reason.split(':')[0]}"] += k
        acct.rows_in_raw += in_raw
        acct.rows_quarantined += in_bad
        if in_raw + in_bad != n:
            acct.mismatches.append(f"{path}: {n} rows in file, {in_raw} in raw, {in_bad} quarantined")
    ids = ", ".join(str(i) for i in sorted(loaded_ids)) or "NULL"
    for source in SOURCES:
        for table in (f"raw_data.{source}", f"raw_invalid.{source}"):
            acct.unknown_rows += con.execute(
                f"SELECT count(*) FROM {table} WHERE _load_id NOT IN ({ids})"
            ).fetchone()[0]
    return acct


def read_faults(paths: Paths, batches: list[str] | None = None) -> list[dict]:
    """The generator's fault log (``truth/faults/<batch>.csv``), of some batches or all."""
    opts = pcsv.ConvertOptions(column_types={f.name: f.type for f in FAULT_FIELDS})
    out: list[dict] = []
    for f in sorted((paths.truth / "faults").glob("*.csv")):
        if batches is None or f.stem in batches:
            table: pa.Table = pcsv.read_csv(f, convert_options=opts)
            out += table.to_pylist()
    return out


def truth_faults(paths: Paths, batches: list[str] | None = None) -> Counter:
    """Faults the generator injected, per kind."""
    return Counter(f["fault"] for f in read_faults(paths, batches))


def alerts(paths: Paths, run_id: str | None = None) -> list[dict]:
    """The alerts in ``ops.alerts`` (of one run, or all)."""
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        sql = "SELECT severity, dag_id, task_id, run_id, summary FROM ops.alerts"
        rows = con.execute(
            sql + (" WHERE run_id = ?" if run_id else ""), [run_id] if run_id else []
        ).fetchall()
    except duckdb.CatalogException:
        rows = []
    finally:
        con.close()
    keys = ("severity", "dag_id", "task_id", "run_id", "summary")
    return [dict(zip(keys, r)) for r in rows]


class Ledger:
    """One scenario test's record."""

    def __init__(self, scenario: int, name: str, test: str, chaos: str = "heavy"):
        self.record: dict = {
            "scenario": scenario,
            "name": name,
            "test": test,
            "chaos": chaos,
            "faults": Counter(),  # injected by the test
            "generator_faults": Counter(),  # injected by the generator, from its truth
            "rows_landed": 0,
            "rows_in_raw": 0,
            "rows_redelivered": 0,
            "rows_quarantined_total": 0,
            "rows_quarantined": Counter(),
            "rows_lost": 0,
            "recoveries": Counter(),
            "alerts": [],
        }
        self._t0 = time.perf_counter()
        self.accounted = False

    def fault(self, kind: str, n: int = 1) -> None:
        """A fault the test injected itself."""
        if n:
            self.record["faults"][kind] += n

    def faults_from_truth(self, paths: Paths, batches: list[str] | None = None) -> Counter:
        found = truth_faults(paths, batches)
        self.record["generator_faults"].update(found)
        return found

    def recovery(self, kind: str, n: int = 1) -> None:
        if n:
            self.record["recoveries"][kind] += n

    def alert(self, alert: dict) -> None:
        self.record["alerts"].append(
            {k: alert.get(k) for k in ("severity", "dag_id", "task_id", "summary")}
            | {"summary": (alert.get("summary") or "")[:240]}
        )

    def account(self, paths: Paths, con=None) -> Accounting:
        """Count where every landed row went, add it to the record, and prove none was lost."""
        acct = account(paths, con)
        r = self.record
        r["rows_landed"] += acct.rows_landed
        r["rows_in_raw"] += acct.rows_in_raw
        r["rows_redelivered"] += acct.rows_redelivered
        r["rows_quarantined_total"] += acct.rows_quarantined
        r["rows_quarantined"].update(acct.reasons)
        r["rows_lost"] += acct.rows_lost
        self.accounted = True
        assert not acct.mismatches, acct.mismatches[:5]
        assert acct.unknown_rows == 0, f"{acct.unknown_rows} rows in the warehouse come from no landed file"
        assert acct.rows_lost == 0, f"{acct.rows_lost} landed rows are neither in raw nor in quarantine"
        assert sum(acct.reasons.values()) >= acct.rows_quarantined  # a row may carry several reasons
        return acct

    def write(self, outcome: str, folder: Path) -> Path:
        r = dict(self.record)
        r["outcome"] = outcome
        r["accounted"] = self.accounted
        r["seconds"] = round(time.perf_counter() - self._t0, 1)
        r["finished_at"] = dt.datetime.now().isoformat(timespec="seconds")
        for k in ("faults", "generator_faults", "rows_quarantined", "recoveries"):
            r[k] = dict(sorted(r[k].items()))
        folder.mkdir(parents=True, exist_ok=True)
        slug = hashlib.sha1(r["test"].encode()).hexdigest()[:10]
        out = folder / f"scenario-{r['scenario']:02d}-{slug}.json"
        out.write_text(json.dumps(r, indent=2, default=str) + "\n")
        return out


def out_dir(default: Path) -> Path:
    value = os.environ.get(OUT_ENV)
    return Path(value) if value else default
