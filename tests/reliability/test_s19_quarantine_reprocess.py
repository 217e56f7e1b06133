"""Scenario 19: quarantine → correction → reprocess. A day's batch arrives with rows that break the
contract (orders with a device type that does not exist or a date that does not parse, a customer
with an impossible gender): they are quarantined and the marts miss them. A data steward lists
what is quarantined and exports the rows with their original lines (`clv quarantine list` and
`export`), corrects them, and hands them back (`clv quarantine reprocess --no-run` for the
customer, the manually triggered ``clv_quarantine_reprocess`` DAG, in real Airflow, for the
orders). The corrections load as new batches that reference the original, with lineage to the
rows they replace; reconciliation shows each quarantined row as reprocessed or still quarantined;
the day is restated and every mart equals a run where the rows had been right from the start."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest

from clv import ingest, quarantine
from clv.airflow import home as airflow_home
from clv.contract import SOURCES
from clv.errors import UserError
from clv.names import QUARANTINE_DAG
from clv.settings import Paths
from tests.airflow.helpers import clv, explain, query, sha256
from tests.reliability import ledger as ledger_mod
from tests.reliability.compare import MARTS, layer_diff, snapshot_copy
from tests.reliability.conftest import copy_data, day, run_models
from tests.reliability.test_s13_landing_manifest import assert_marts_equal, deliver, on_time_day_1

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]
D = day(1)
BATCH = D.isoformat()
#: what the sender got wrong: (source, column, bad value, how many rows)
FAULTS = (
    ("orders", "device_type", "smart-fridge", 2),
    ("orders", "order_datetime", "yesterday", 1),
    ("customers", "gender", "robot", 1),
)


@pytest.fixture(scope="module")
def on_time(base, tmp_path_factory) -> Paths:
    """The reference: ``base`` with day D delivered right, and run."""
    return on_time_day_1(base, tmp_path_factory)


def split(line: bytes) -> list[str]:
    return next(csv.reader([line.decode()]))


def join(fields: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue().encode()


def clean_rows(reference: Paths, source: str, n: int, prefer_new: bool = False) -> list[int]:
    """Rows of the day's file that loaded into raw in the reference, whose key the batch delivered
    once (so which delivery wins never depends on the load order); new customers first."""
    src = SOURCES[source]
    key = src.primary_key[0]
    order = "CAST(signup_datetime AS DATE) = _batch_date DESC, " if prefer_new else ""
    rows = query(
        reference.data_dir,
        f"""SELECT _row_number FROM raw.{source} r WHERE _batch = ? AND
               (SELECT count(*) FROM raw.{source} x WHERE x.{key} = r.{key}) = 1
            ORDER BY {order}_row_number LIMIT ?""",
        [BATCH, n],
    )
    assert len(rows) == n, (source, rows)
    return [r for (r,) in rows]


def inject(paths: Paths, reference: Paths) -> dict[tuple[str, int], dict[str, str]]:
    """Break the chosen rows of the delivered files; return each broken row's right values."""
    folder = paths.landing / BATCH
    manifest = json.loads((folder / ledger_mod.MANIFEST).read_text())
    right: dict[tuple[str, int], dict[str, str]] = {}
    for source in {f[0] for f in FAULTS}:
        path = folder / SOURCES[source].filename
        lines = path.read_bytes().split(b"\n")
        header = split(lines[0])
        faults = [f for f in FAULTS if f[0] == source]
        rows = iter(clean_rows(reference, source, sum(f[3] for f in faults), source == "customers"))
        for _, column, bad, n in faults:
            for _ in range(n):
                rn = next(rows)
                fields = split(lines[rn])
                right[(source, rn)] = dict(zip(header, fields))
                fields[header.index(column)] = bad
                lines[rn] = join(fields)
        path.write_bytes(b"\n".join(lines))
        entry = manifest["files"][source]
        entry["sha256"], entry["bytes"] = sha256(path), path.stat().st_size
    (folder / ledger_mod.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return right


def marts_differing(paths: Paths, reference: Paths, tmp_path) -> list[str]:
    other = snapshot_copy(reference.warehouse, tmp_path / "reference-before.duckdb")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        con.execute(f"ATTACH '{other}' AS reference (READ_ONLY)")
        return [m for m in MARTS if layer_diff(con, f"marts.{m}", "warehouse", "reference")[1]]
    finally:
        con.close()


def rewrite(src: Path, dst: Path, change) -> Path:
    """``src`` (a CSV) to ``dst`` with ``change(rows)`` applied to its rows (a list of dicts)."""
    rows = list(csv.DictReader(io.StringIO(src.read_text())))
    change(rows)
    with dst.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return dst


def correct(export: str, right: dict, source: str) -> tuple[str, int]:
    """The steward's work: the broken rows get their right values back; rows the steward cannot
    fix (quarantined by the generator's own faults) are left out."""
    reader = csv.DictReader(io.StringIO(export))
    out = io.StringIO()
    writer = csv.DictWriter(out, reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    kept = 0
    for row in reader:
        rn = int(row["_corrects"].split(":")[1])
        if (source, rn) in right:
            row.update(right[(source, rn)])
            writer.writerow(row)
            kept += 1
    return out.getvalue(), kept


@pytest.mark.scenario(19, "quarantine, correction and reprocess", chaos="realistic")
def test_quarantined_rows_are_corrected_reprocessed_and_reach_the_marts(
    airflow_base, on_time, tmp_path, ledger
):
    paths = copy_data(airflow_base, tmp_path / "data")
    data = str(paths.data_dir)
    batches = deliver(on_time, paths, D)
    right = inject(paths, on_time)
    for source, column, _, n in FAULTS:
        ledger.fault(f"{source}: wrong {column}", n)
    ingest.load(paths.data_dir)
    run_models(paths, D)
    assert marts_differing(paths, on_time, tmp_path), "the quarantined rows should change the marts"

    listed = clv("quarantine", "list", "--data-dir", data, "--batch", BATCH, "--json")
    assert listed.returncode == 0, explain(listed)
    groups = {(g["source"], g["reason"]): g for g in json.loads(listed.stdout)}
    assert groups[("orders", "invalid device_type: not one of web/ios/android")]["rows_quarantined"] >= 2
    assert groups[("orders", "unparseable order_datetime")]["rows_quarantined"] >= 1
    assert groups[("customers", "invalid gender: not one of M/F/Other/Unknown")]["rows_quarantined"] >= 1
    assert all(g["rows_reprocessed"] == 0 for g in groups.values())

    load_of = dict(
        query(paths.data_dir, "SELECT source, load_id FROM ops.load_manifest WHERE batch = ?", [BATCH])
    )
    corrected = {}
    for source in ("customers", "orders"):
        out = tmp_path / f"{source}-export.csv"
        if source == "orders":
            exported = clv(
                "quarantine", "export", "--data-dir", data, "--batch", BATCH, "--source", source, "--out", str(out)
            )  # fmt: skip
            assert exported.returncode == 0, explain(exported)
        else:  # the same function, in this process
            quarantine.export(BATCH, source, out, paths.data_dir)
        text = out.read_text()
        rows = {r["_corrects"]: r for r in csv.DictReader(io.StringIO(text))}
        landed = (paths.landing / BATCH / SOURCES[source].filename).read_bytes().split(b"\n")
        for s, rn in right:
            if s == source:  # each broken row, with its original line byte for byte
                row = rows[f"{load_of[source]}:{rn}"]
                assert row["_original_line"].encode() == landed[rn]
        fixed, kept = correct(text, right, source)
        corrected[source] = tmp_path / f"{source}-corrected.csv"
        corrected[source].write_text(fixed)
        assert kept == sum(1 for s, _ in right if s == source)

    written = clv("quarantine", "reprocess", str(corrected["customers"]), "--data-dir", data, "--no-run")
    assert written.returncode == 0, explain(written)
    fix = paths.landing / f"{BATCH}-fix-1"
    manifest = json.loads((fix / ledger_mod.MANIFEST).read_text())
    assert manifest["corrects"] == BATCH and manifest["batch_date"] == BATCH
    entry = manifest["files"]["customers"]
    assert entry["rows"] == 1 and entry["sha256"] == sha256(fix / "customers.csv")
    ledger.recovery("customers correction written as a new batch (clv quarantine reprocess)")

    rc, log = airflow_home.dags_test(
        QUARANTINE_DAG, D, paths.data_dir, conf={"file": str(corrected["orders"])}
    )
    assert rc == 0, log.read_text()[-4000:]
    assert (paths.landing / f"{BATCH}-fix-2" / "orders.csv").exists()
    ledger.recovery("orders correction written, loaded and restated by the clv_quarantine_reprocess DAG")

    # lineage: each corrected row names the quarantined row it replaces
    lineage = query(
        paths.data_dir,
        """SELECT m0.source, c.row_number, m1.batch, c.corrected_row_number
           FROM ops.quarantine_corrections c
           JOIN ops.load_manifest m0 ON m0.load_id = c.load_id JOIN ops.load_manifest m1 ON m1.load_id = c.corrected_by_load_id""",
    )
    assert sorted((s, rn) for s, rn, _, _ in lineage) == sorted(right)
    assert {b for _, _, b, _ in lineage} == {f"{BATCH}-fix-1", f"{BATCH}-fix-2"}
    status = dict(
        ((s, rn), st)
        for s, rn, st in query(
            paths.data_dir,
            "SELECT source, row_number, status FROM ops.quarantine_reconciliation WHERE batch = ?",
            [BATCH],
        )
    )
    assert all(status[k] == "reprocessed" for k in right), status
    assert all(st == "quarantined" for k, st in status.items() if k not in right)
    lines = quarantine.summary_lines(quarantine.summary(paths.data_dir, batch=BATCH))
    assert f"{len(right)} reprocessed" in lines[-1], lines

    assert_marts_equal(paths, on_time, tmp_path)
    ledger.recovery("every mart equals a run with the rows right from the start")
    assert query(paths.data_dir, "SELECT business_date FROM serving_info", db="serving.duckdb")[0][0] == D
    warned = [
        a for a in ledger_mod.alerts(paths) if a["dag_id"] == QUARANTINE_DAG and a["severity"] == "warning"
    ]
    assert len(warned) == 1 and BATCH in warned[0]["summary"] and "restating" in warned[0]["summary"], warned
    ledger.alert(warned[0])
    assert not [a for a in ledger_mod.alerts(paths) if a["severity"] == "error"]

    # the same file again is the batch already written; other values for rows already reprocessed,
    # a file that is not an export, a row never quarantined: refused with one line, nothing written
    again = quarantine.reprocess(corrected["orders"], paths.data_dir)
    assert again["batch"] == f"{BATCH}-fix-2" and not again["written"]
    for change, message in (
        (lambda rows: rows[0].update(city="Elsewhere"), "already reprocessed"),
        (lambda rows: [r.update(_corrects="999999:1") for r in rows[:1]], "is not a quarantined row"),
        (lambda rows: [r.update(corrects=r.pop("_corrects")) for r in rows], "no _corrects column"),
    ):
        with pytest.raises(UserError, match=message):
            quarantine.reprocess(rewrite(corrected["orders"], tmp_path / "other.csv", change), paths.data_dir)
    assert sorted(p.name for p in paths.landing.glob(f"{BATCH}-fix-*")) == [
        f"{BATCH}-fix-1",
        f"{BATCH}-fix-2",
    ]
    ledger.faults_from_truth(paths, batches)
    ledger.account(paths)
