"""Bad input: each case is loaded correctly or quarantined with a reason; the rest of the batch loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from clv import ingest
from clv.contract import SOURCES
from clv.settings import PROJECT_ROOT, Paths

HEADER = ",".join(SOURCES["orders"].column_names)
GOOD = "O1,C000000001,2024-01-05 10:00:00,P010001,electronics,1,19.99,web,site,Berlin,DE,19"


def make_batch(root, files: dict[str, bytes], batch="2024-01-05") -> Paths:
    """A landed batch holding the given files plus a good customers file."""
    paths = Paths(root)
    d = paths.landing / batch
    d.mkdir(parents=True)
    customers = (
        ",".join(SOURCES["customers"].column_names)
        + "\n"
        + "C000000001,Ada,Lovelace,ada@example.com,F,1990-01-01,2023-01-01 00:00:00,Berlin,DE,true\n"
    )
    (d / "customers.csv").write_text(customers)
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "_manifest.json").write_text(json.dumps({"batch_date": batch}))
    return paths


def load(paths: Paths, **kw):
    summary = ingest.load(paths.data_dir, **kw)
    con = duckdb.connect(str(paths.warehouse))
    return summary, con


def by_file(summary) -> dict[str, ingest.FileResult]:
    return {os.path.basename(f.path): f for f in summary.files}


@pytest.mark.parametrize(
    "name,data,status,reason",
    [
        ("orders.csv", b"", "quarantined", "empty file: no header"),
        ("orders.csv", os.urandom(4096) + b"\xff\xfe", "quarantined", "header is not valid UTF-8"),
        ("orders.csv", b"\x00\x01garbage,more\n1,2\n", "quarantined", "schema drift"),
        ("orders.csv", (HEADER + "\n").encode(), "loaded", ""),
        ("notes.csv", b"hello\n", "quarantined", "not a file of the source contract"),
    ],
)
def test_whole_file_cases(tmp_path, name, data, status, reason):
    paths = make_batch(tmp_path, {name: data})
    summary, con = load(paths)
    f = by_file(summary)[name]
    assert f.status == status and f.message.startswith(reason)
    assert by_file(summary)["customers.csv"].rows_loaded == 1  # the rest of the batch loads
    assert all(r["reconciled"] for r in ingest.reconcile(con))


def test_row_level_garbage_is_quarantined_and_the_good_rows_load(tmp_path):
    lines = [
        HEADER,
        GOOD,
        GOOD.replace("O1,", "O2,").replace("Berlin", "Berl\xff\xfe"),  # not UTF-8 once encoded as latin-1
        "O3,C000000001,2024-01-05 10:00:00,P1,electronics",  # too few fields
        GOOD.replace("O1,", "O4,") + ",extra",  # too many fields
        "O5," + "x" * 3_000_000,  # a 3 MB line
        GOOD.replace("O1,", "O6,"),
        'O7,C000000001,2024-01-05 10:00:00,P1,"unterminated',  # truncated last line, no newline
    ]
    data = "\n".join(lines).encode("latin-1")
    paths = make_batch(tmp_path, {"orders.csv": data})
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_quarantined) == ("loaded", 7, 2, 5)
    got = dict(con.sql("SELECT _row_number, _reason FROM raw_invalid.orders ORDER BY 1").fetchall())
    assert set(got) == {2, 3, 4, 5, 7}
    assert "not UTF-8" in got[2]
    assert "too few fields" in got[3]
    assert "too many fields" in got[4]
    assert "line longer than" in got[5]
    assert "unterminated quote" in got[7] or "too few fields" in got[7]
    assert con.sql(
        "SELECT list(order_id ORDER BY _row_number), list(_row_number ORDER BY _row_number) FROM raw.orders"
    ).fetchone() == (["O1", "O6"], [1, 6])
    assert all(r["reconciled"] for r in ingest.reconcile(con))


def test_an_unreadable_file_fails_alone_and_is_retried(tmp_path):
    paths = make_batch(tmp_path, {})
    (paths.landing / "2024-01-05" / "orders.csv").symlink_to(tmp_path / "not-there.csv")
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert f.status == "failed" and "cannot read file" in f.message
    assert by_file(summary)["customers.csv"].status == "loaded"
    con.close()
    (tmp_path / "not-there.csv").write_text(HEADER + "\n" + GOOD + "\n")  # the file arrives
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


def test_count_guard_refuses_a_runaway_file(tmp_path):
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + (GOOD + "\n") * 50).encode()})
    with pytest.raises(ingest.RunawayBatch, match="more than the guard of 10"):
        ingest.load(paths.data_dir, max_rows_per_file=10)


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


def test_a_second_writer_gets_a_clear_message(tmp_path):
    paths = make_batch(tmp_path, {"orders.csv": (HEADER + "\n" + GOOD + "\n").encode()})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)",
            str(paths.warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = clv("load", "--data-dir", str(paths.data_dir), env={"CLV_LOCK_WAIT_SECONDS": "1"})
        assert r.returncode == 2
        assert "in use by another process" in r.stderr and "nothing was changed" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    r = clv("load", "--data-dir", str(paths.data_dir))
    assert r.returncode == 0 and "2 loaded" in r.stdout
