"""Scenario 14: a delivery that does not match its manifest. Files whose bytes or sha256 differ from
what the batch's ``_manifest.json`` lists (one still being written, a truncated copy, a copy with a
corrupted byte) are not loaded and not quarantined: the load step fails them and raises a retriable
error; once the delivery matches, the retry loads them whole. Files the manifest does not list are
quarantined whole with that reason. Reconciliation shows both."""

from __future__ import annotations

import duckdb
import pytest

from clv import ingest, pipeline
from tests.conftest import DAYS
from tests.ingest.helpers import copy_batch
from tests.reliability import ledger as ledger_mod


@pytest.mark.scenario(14, "delivery not matching its manifest", chaos="heavy (one day batch)")
def test_a_delivery_that_does_not_match_its_manifest(heavy_data, tmp_path, ledger):
    day = DAYS[0]
    paths = copy_batch(heavy_data, tmp_path / "data", day.isoformat())
    folder = paths.landing / day.isoformat()
    complete = {
        name: (folder / name).read_bytes() for name in ("orders.csv", "customers.csv", "device_sessions.csv")
    }

    data = complete["orders.csv"]
    (folder / "orders.csv").write_bytes(data[: len(data) // 2])
    ledger.fault("file still being written (half of it landed)")
    data = complete["device_sessions.csv"]
    (folder / "device_sessions.csv").write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1])
    ledger.fault("truncated copy (last line missing)")
    data = bytearray(complete["customers.csv"])
    at = data.index(b"\n", len(data) // 2) + 1  # the first byte of a line: its customer id's "C"
    data[at] = ord("c")
    (folder / "customers.csv").write_bytes(bytes(data))
    ledger.fault("corrupted copy (one byte changed, same size)")
    orders, subscriptions = complete["orders.csv"], (folder / "subscriptions.csv").read_bytes()
    unlisted = {  # other bytes than any listed file (a byte-for-byte copy would be a redelivery)
        "orders_resent.csv": orders[: orders.index(b"\n", 5000) + 1],
        "subscriptions (old).csv": subscriptions.rsplit(b"\n", 2)[0] + b"\n",
    }
    for name, data in unlisted.items():
        (folder / name).write_bytes(data)
        ledger.fault("file not listed in the manifest")

    # The daily DAG's load step: the rest of the batch loads, the mismatched files fail, and the
    # step raises a retriable error (Airflow retries it with back-off).
    with pytest.raises(pipeline.SourceNotReady, match="does not match its manifest"):
        pipeline.load(day, data_dir=paths.data_dir)
    con = duckdb.connect(str(paths.warehouse))
    try:
        status = dict(
            con.sql("SELECT regexp_extract(source_file, '[^/]+$'), status FROM ops.load_manifest").fetchall()
        )
        assert status == {
            "customers.csv": "failed",
            "financial_profiles.csv": "loaded",
            "orders.csv": "failed",
            "loyalty_balances.csv": "loaded",
            "subscriptions.csv": "loaded",
            "support_tickets.csv": "loaded",
            "device_sessions.csv": "failed",
            "orders_resent.csv": "quarantined",
            "subscriptions (old).csv": "quarantined",
        }, status
        for source in ("customers", "orders", "device_sessions"):  # not loaded, not quarantined
            assert con.sql(f"SELECT count(*) FROM raw_data.{source}").fetchone()[0] == 0
            assert con.sql(f"SELECT count(*) FROM raw_invalid.{source}").fetchone()[0] == 0
        reasons = dict(
            con.sql("SELECT regexp_extract(source_file, '[^/]+$'), reason FROM raw_invalid.files").fetchall()
        )
        assert set(reasons) == set(unlisted)
        assert all(r.startswith("not listed in the batch manifest") for r in reasons.values())
        shown = {r["source_file"].rsplit("/", 1)[-1]: r for r in ingest.reconcile(con)}
        pending = {name for name, r in shown.items() if r["pending_retry"]}
        assert pending == {"customers.csv", "orders.csv", "device_sessions.csv"}
        assert all(shown[n]["message"].startswith("does not match its manifest") for n in pending)
        for name, data in unlisted.items():
            assert (
                shown[name]["status"] == "quarantined"
                and shown[name]["rows_quarantined"] == data.count(b"\n") - 1
            )
        assert all(r["reconciled"] for r in shown.values())
        first_run = con.sql("SELECT max(load_id) FROM ops.load_manifest").fetchone()[0]
    finally:
        con.close()
    for a in ledger_mod.alerts(paths):
        ledger.alert(a)

    # The delivery completes: the retry takes exactly the three failed files, each judged on its
    # content now (heavy chaos may have drifted one of them: then it is quarantined for that).
    for name, data in complete.items():
        (folder / name).write_bytes(data)
    result = pipeline.load(day, data_dir=paths.data_dir)
    ledger.recovery("load retried once the delivery matched its manifest")
    drifted = {f["source"] for f in ledger_mod.read_faults(paths) if f["fault"] == "schema_drift"}
    con = duckdb.connect(str(paths.warehouse))
    try:
        retried = dict(
            con.sql(
                "SELECT regexp_extract(source_file, '[^/]+$'), status FROM ops.load_manifest WHERE load_id > ?",
                params=[first_run],
            ).fetchall()
        )
        assert retried == {
            f"{s}.csv": "quarantined" if s in drifted else "loaded"
            for s in ("customers", "orders", "device_sessions")
        }, (retried, result)
        rows = ingest.reconcile(con)
        assert all(r["reconciled"] and not r["pending_retry"] for r in rows)
        assert all(r["rows_delivered"] == r["rows_in_file"] for r in rows if r["rows_delivered"] is not None)
        ledger.faults_from_truth(paths)
        ledger.account(paths, con)
    finally:
        con.close()
