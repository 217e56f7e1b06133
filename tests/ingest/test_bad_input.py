"""Bad input the loader handles besides garbage (tests/reliability/test_s10_garbage_files.py): an
unreadable file, additive columns, a batch still arriving, and the CLI's errors and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import duckdb

from clv.settings import PROJECT_ROOT
from tests.ingest.helpers import GOOD, HEADER, by_file, load, make_batch


def test_an_unreadable_file_fails_alone_and_is_retried(tmp_path):
    paths = make_batch(tmp_path, {})
    incoming = paths.landing / ".incoming"  # a link to a file not there yet, inside the landing folder
    (paths.landing / "2024-01-05" / "orders.csv").symlink_to(incoming / "orders.csv")
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert f.status == "failed" and "cannot read file" in f.message
    assert by_file(summary)["customers.csv"].status == "loaded"
    con.close()
    incoming.mkdir()
    (incoming / "orders.csv").write_text(HEADER + "\n" + GOOD + "\n")  # the file arrives
    summary, con = load(paths)
    assert [(os.path.basename(x.path), x.status, x.rows_loaded) for x in summary.files] == [
        ("orders.csv", "loaded", 1)
    ]


def test_additive_columns_load_only_when_allowed(tmp_path):
    data = (HEADER + ",coupon_code\n" + GOOD + ",SPRING\n").encode()
    paths = make_batch(tmp_path, {"orders.csv": data})
    summary, con = load(paths)
    assert by_file(summary)["orders.csv"].status == "quarantined"
    assert con.sql("SELECT found_columns[-1], reason FROM raw_invalid.files").fetchone() == (
        "coupon_code",
        "schema drift: unexpected coupon_code",
    )
    con.close()
    other = make_batch(tmp_path / "b", {"orders.csv": data})
    summary, con = load(other, allow_additive_columns=True)
    f = by_file(summary)["orders.csv"]
    assert (f.status, f.rows_loaded, f.message) == ("loaded", 1, "additive columns dropped: coupon_code")


def test_a_batch_without_manifest_waits(tmp_path):
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + GOOD + "\n").encode()})
    late = paths.landing / "2024-01-06"
    shutil.copytree(paths.landing / "2024-01-05", late)
    (late / "_manifest.json").unlink()
    summary, _ = load(paths)
    assert summary.incomplete_batches == ["2024-01-06"]
    assert {x.batch for x in summary.files} == {"2024-01-05"}


def clv(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clv.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        timeout=120,
    )


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    r = clv("load", "--data-dir", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "landing directory" in r.stderr and r.stderr.count("\n") == 1
    r = clv("reconcile", "--data-dir", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no warehouse" in r.stderr
    paths = make_batch(tmp_path / "x", {"orders.csv": (HEADER + "\n" + (GOOD + "\n") * 20).encode()})
    r = clv("load", "--data-dir", str(paths.data_dir), "--max-rows-per-file", "5")
    assert r.returncode == 2 and "more than the guard of 5" in r.stderr
    r = clv("load", "--data-dir", str(paths.data_dir), env={"CLV_DUCKDB_MEMORY_LIMIT": "lots"})
    assert r.returncode == 2 and "CLV_DUCKDB_MEMORY_LIMIT='lots'" in r.stderr and r.stderr.count("\n") == 1


def test_the_warehouse_memory_limit_is_applied(tmp_path, monkeypatch):
    """Writers open the warehouse under CLV_DUCKDB_MEMORY_LIMIT (then DuckDB spills to disk)."""
    from clv.warehouse import connect

    monkeypatch.setenv("CLV_DUCKDB_MEMORY_LIMIT", "300MB")
    con = connect(tmp_path / "w.duckdb")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.close()
    assert limit == "286.1 MiB", limit  # 300 MB in DuckDB's units


def test_cli_load_and_reconcile(tmp_path):
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + GOOD + "\nbad,line\n").encode()})
    r = clv("load", "--data-dir", str(paths.data_dir), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows_loaded"] == 2 and out["rows_quarantined"] == 1
    r = clv("reconcile", "--data-dir", str(paths.data_dir))
    assert r.returncode == 0 and "0 mismatched" in r.stdout
    con = duckdb.connect(str(paths.warehouse))
    con.execute("DELETE FROM raw_data.orders WHERE order_id = 'O1'")  # something goes missing
    con.close()
    r = clv("reconcile", "--data-dir", str(paths.data_dir))
    assert r.returncode == 1 and "MISMATCH" in r.stdout and "orders.csv" in r.stdout
