"""Deliveries are checked against their manifest: a listed file whose bytes or sha256 differ from
the manifest's (still being written, a truncated copy) is failed and retried, never loaded; a file
the manifest does not list is quarantined whole; a corrupt manifest is reported as corrupt."""

from __future__ import annotations

import json

import duckdb
import pytest

from clv import ingest, pipeline
from tests.ingest.helpers import GOOD, HEADER, by_file, load, make_batch, make_delivery

ORDERS = (HEADER + "\n" + "".join(GOOD.replace("O1,", f"O{i},") + "\n" for i in range(1, 41))).encode()


def loaded_orders(con) -> int:
    return con.sql("SELECT count(*) FROM raw_data.orders").fetchone()[0]


def quarantined_orders(con) -> int:
    return con.sql(
        "SELECT (SELECT count(*) FROM raw_invalid.orders) + "
        "(SELECT count(*) FROM raw_invalid.files WHERE source_file LIKE '%orders.csv')"
    ).fetchone()[0]


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b[:-1] + b"8", lambda b: b + b"O99,late,row\n"],
    ids=["half-written", "same-size-corrupt", "longer"],
)
def test_a_file_that_does_not_match_its_manifest_is_failed_then_retried(tmp_path, damage):
    paths = make_delivery(tmp_path, {"orders.csv": ORDERS})
    target = paths.landing / "2024-01-05" / "orders.csv"
    target.write_bytes(damage(ORDERS))
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert f.status == "failed" and f.message.startswith("does not match its manifest"), f
    assert "retried on the next run" in f.message
    assert by_file(summary)["customers.csv"].status == "loaded"
    assert loaded_orders(con) == 0 and quarantined_orders(con) == 0  # not loaded, not quarantined
    rows = {r["source_file"].rsplit("/", 1)[-1]: r for r in ingest.reconcile(con)}
    assert rows["orders.csv"]["status"] == "failed" and rows["orders.csv"]["pending_retry"]
    assert rows["orders.csv"]["message"] == f.message and rows["orders.csv"]["rows_delivered"] == 40
    assert all(r["reconciled"] for r in rows.values())
    con.close()

    summary, con = load(paths)  # still damaged: failed again, still nothing of it loaded
    assert [(x.path.rsplit("/", 1)[-1], x.status) for x in summary.files] == [("orders.csv", "failed")]
    assert loaded_orders(con) == 0
    con.close()

    target.write_bytes(ORDERS)  # the delivery completes
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert (f.status, f.rows_loaded, f.rows_quarantined) == ("loaded", 40, 0)
    rows = {r["source_file"].rsplit("/", 1)[-1]: r for r in ingest.reconcile(con)}
    assert rows["orders.csv"]["status"] == "loaded" and not rows["orders.csv"]["pending_retry"]
    assert rows["orders.csv"]["rows_in_raw"] == 40 == loaded_orders(con)
    con.close()


def test_files_the_manifest_does_not_list_are_quarantined_whole(tmp_path):
    paths = make_delivery(tmp_path, {"orders.csv": ORDERS})
    batch = paths.landing / "2024-01-05"
    (batch / "subscriptions.csv").write_bytes(b"subscription_id\nS1\nS2\n")  # a contract file, unlisted
    (batch / "orders (yesterday's).csv").write_bytes(ORDERS.rsplit(b"\n", 2)[0] + b"\n")
    summary, con = load(paths)
    results = by_file(summary)
    assert (results["orders.csv"].status, results["orders.csv"].rows_loaded) == ("loaded", 40)
    for name, rows in (("subscriptions.csv", 2), ("orders (yesterday's).csv", 39)):
        f = results[name]
        assert f.status == "quarantined" and f.message.startswith("not listed in the batch manifest"), f
        assert (f.rows_in_file, f.rows_quarantined, f.rows_loaded) == (rows, rows, 0)
    assert con.sql("SELECT count(*) FROM raw_data.subscriptions").fetchone()[0] == 0
    rows = {r["source_file"].rsplit("/", 1)[-1]: r for r in ingest.reconcile(con)}
    assert rows["subscriptions.csv"]["status"] == "quarantined" and rows["subscriptions.csv"]["reconciled"]
    assert rows["subscriptions.csv"]["message"].startswith("not listed in the batch manifest")
    assert rows["orders (yesterday's).csv"]["rows_quarantined"] == 39
    con.close()
    again, con = load(paths)  # quarantined once: the next run skips them
    assert again.files == [] and con.sql("SELECT count(*) FROM raw_invalid.files").fetchone()[0] == 2
    con.close()


def test_a_manifest_without_a_file_list_still_loads_its_files(tmp_path):
    """Hand-made batches (and replays) carry a manifest without ``files``: nothing to check."""
    paths = make_batch(tmp_path, {"orders.csv": ORDERS})
    summary, con = load(paths)
    assert {x.status for x in summary.files} == {"loaded"} and loaded_orders(con) == 40
    con.close()


CORRUPT = {
    "half-written": b'{"batch_date": "2024-01-05", "files": {"orders": {"file": "orders.csv", "ro',
    "not-an-object": b'["orders.csv"]',
    "files-not-an-object": b'{"batch_date": "2024-01-05", "files": "orders.csv"}',
    "bad-sha256": b'{"files": {"orders": {"file": "orders.csv", "sha256": "n/a"}}}',
    "binary": b"\xff\xfe\x00garbage",
    "empty": b"",
}


@pytest.mark.parametrize("text", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_manifest_is_reported_as_corrupt_not_taken_as_empty(tmp_path, text):
    paths = make_delivery(tmp_path, {"orders.csv": ORDERS})
    manifest = paths.landing / "2024-01-05" / "_manifest.json"
    good = manifest.read_bytes()
    manifest.write_bytes(text)
    # the daily DAG's load step: nothing of the batch loads, and a retriable error names the cause
    with pytest.raises(pipeline.SourceNotReady, match=r"manifest .* is corrupt") as raised:
        pipeline.load(None, data_dir=paths.data_dir)
    assert str(manifest) in str(raised.value) and len(str(raised.value).splitlines()) == 1
    con = duckdb.connect(str(paths.warehouse))
    statuses = con.sql("SELECT DISTINCT status FROM ops.load_manifest").fetchall()
    assert statuses == [("failed",)]
    assert loaded_orders(con) == 0 and con.sql("SELECT count(*) FROM raw_data.customers").fetchone()[0] == 0
    pending = [r for r in ingest.reconcile(con) if r["pending_retry"]]
    assert len(pending) == 2 and all("is corrupt" in r["message"] for r in pending)
    con.close()
    manifest.write_bytes(good)  # redelivered
    summary, con = load(paths)
    assert {x.status for x in summary.files} == {"loaded"} and loaded_orders(con) == 40
    assert not [r for r in ingest.reconcile(con) if r["pending_retry"]]
    con.close()


def test_the_load_command_says_which_files_failed_and_why(tmp_path):
    """`clv load` exits 1 and prints the manifest mismatch (the daily DAG retries `load_raw`)."""
    from tests.ingest.test_bad_input import clv

    paths = make_delivery(tmp_path, {"orders.csv": ORDERS})
    (paths.landing / "2024-01-05" / "orders.csv").write_bytes(ORDERS[:100])
    r = clv("load", "--data-dir", str(paths.data_dir))
    assert r.returncode == 1, r.stderr
    assert "FAILED" in r.stdout and "orders.csv: does not match its manifest" in r.stdout
    r = clv("load", "--data-dir", str(paths.data_dir), "--json")
    out = json.loads(r.stdout)
    assert out["files_by_status"]["failed"] == 1 and out["rows_loaded"] == 0
    # reconciliation names the file that waits for its retry (none of its rows counted yet)
    r = clv("reconcile", "--data-dir", str(paths.data_dir))
    assert r.returncode == 0, r.stderr
    assert "1 waiting for a retry" in r.stdout
    assert "PENDING" in r.stdout and "orders.csv (batch 2024-01-05)" in r.stdout
    out = json.loads(clv("reconcile", "--data-dir", str(paths.data_dir), "--json").stdout)
    assert [p["source_file"].rsplit("/", 1)[-1] for p in out["pending_retry"]] == ["orders.csv"]
