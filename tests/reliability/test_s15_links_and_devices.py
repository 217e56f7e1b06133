"""Scenario 15: symlinks out of the landing folder and device files. A delivery in which some entries
are links to elsewhere (a file whose first line is a secret, the endless ``/dev/zero``, a folder)
or are not regular files (a FIFO no one writes to, a folder): each is quarantined whole with its
reason from its metadata alone, never read — no content reaches a message or an alert, and the load
does not hang —, the rest of the batch loads, and the next run does not quarantine them again."""

from __future__ import annotations

import os
import threading

import duckdb
import pytest

from clv import ingest, pipeline
from tests.conftest import DAYS
from tests.ingest.helpers import copy_batch
from tests.reliability import ledger as ledger_mod

SECRET = "root:x:0:0:the-first-line-of-a-file-out-of-reach"


def load_in_time(day, data_dir, seconds: float = 120) -> dict:
    """The daily DAG's load step, given a deadline: a read of /dev/zero or of a FIFO never ends."""
    out: dict = {}

    def run():
        try:
            out["result"] = pipeline.load(day, data_dir=data_dir)
        except Exception as e:  # reported below
            out["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"the load did not finish in {seconds:.0f} s: it is reading an endless file"
    assert "error" not in out, out["error"]
    return out["result"]


@pytest.mark.scenario(
    15, "symlinks out of the landing folder and device files", chaos="heavy (one day batch)"
)
def test_links_out_of_the_landing_folder_and_devices_are_quarantined_unread(heavy_data, tmp_path, ledger):
    day = DAYS[1]
    paths = copy_batch(heavy_data, tmp_path / "data", day.isoformat())
    folder = paths.landing / day.isoformat()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "passwd").write_text(SECRET + "\n" + "x\n" * 10)

    injected = {
        # name in the batch -> (what it is, the reason expected)
        "subscriptions.csv": (
            lambda p: p.symlink_to(elsewhere / "passwd"),
            f"symlink out of the landing folder: points to {elsewhere / 'passwd'}",
        ),
        "loyalty_balances.csv": (
            lambda p: p.symlink_to("/dev/zero"),
            "symlink out of the landing folder: points to /dev/zero",
        ),
        "device_sessions.csv": (os.mkfifo, "not a regular file: a FIFO"),
        "archive": (
            lambda p: p.symlink_to(elsewhere),
            f"symlink out of the landing folder: points to {elsewhere}",
        ),
        "exports": (lambda p: p.mkdir(), "not a regular file: a directory"),
    }
    for name, (make, _) in injected.items():
        target = folder / name
        if target.exists():
            target.unlink()  # the delivery's own file is replaced by the link or device
        make(target)
        ledger.fault(f"not a regular file in the landing folder: {name}")

    result = load_in_time(day, paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    try:
        got = {
            name: (reason, rows)
            for name, reason, rows in con.sql(
                "SELECT regexp_extract(source_file, '[^/]+$'), reason, rows_in_file FROM raw_invalid.files"
            ).fetchall()
        }
        refused = {name: got.pop(name, None) for name in injected}
        assert refused == {name: (reason, 0) for name, (_, reason) in injected.items()}, refused
        assert all(reason.startswith("schema drift") for reason, _ in got.values())  # heavy chaos's own
        status = dict(
            con.sql("SELECT regexp_extract(source_file, '[^/]+$'), status FROM ops.load_manifest").fetchall()
        )
        drifted = {f["source"] for f in ledger_mod.read_faults(paths) if f["fault"] == "schema_drift"}
        for name in ("customers.csv", "financial_profiles.csv", "orders.csv", "support_tickets.csv"):
            assert status[name] == ("quarantined" if name[:-4] in drifted else "loaded"), (name, status)
        assert all(r["reconciled"] and not r["pending_retry"] for r in ingest.reconcile(con))
        manifest_rows = con.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0]
    finally:
        con.close()
    alerts = ledger_mod.alerts(paths)
    assert any("quarantined whole" in a["summary"] for a in alerts), alerts
    for a in alerts:
        ledger.alert(a)
    text = repr(result) + repr(alerts) + (paths.data_dir / "alerts.jsonl").read_text()
    assert "first-line-of-a-file-out-of-reach" not in text  # nothing of a target was read

    load_in_time(day, paths.data_dir)  # the next run: nothing new, nothing quarantined again
    con = duckdb.connect(str(paths.warehouse))
    try:
        assert con.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0] == manifest_rows
        # The refused entries stay in place: the ledger never opens them (they hold no landed row).
        ledger.faults_from_truth(paths)
        ledger.account(paths, con)
    finally:
        con.close()
