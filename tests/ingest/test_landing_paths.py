"""Landing paths stay in the landing folder. A link out of it, a FIFO, a device or a folder inside a
batch is quarantined whole from its metadata, never read; a folder whose name holds glob characters
or quotes loads exactly its own files, and a data directory named ``it's [x]`` publishes and exports
to Spark like any other."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import duckdb
import pytest

from clv import ingest, publish, spark, sql_text
from clv.settings import PROJECT_ROOT, Paths
from tests.ingest.helpers import GOOD, HEADER, by_file, load, make_batch, make_delivery

SECRET = "root:x:0:0:the-secret-first-line"


def orders(*ids: str) -> bytes:
    return (HEADER + "\n" + "".join(GOOD.replace("O1,", f"{i},") + "\n" for i in ids)).encode()


def clv_load(data_dir, timeout: float = 60) -> subprocess.CompletedProcess:
    """`clv load` in its own process, so that a read that would never end fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "clv.cli", "load", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=timeout,
    )


def test_a_link_out_of_the_landing_folder_is_quarantined_unread(tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(SECRET + "\n" + "x\n" * 5)
    paths = make_batch(tmp_path / "data", {})
    link = paths.landing / "2024-01-05" / "orders.csv"
    link.symlink_to(outside)
    summary, con = load(paths)
    f = by_file(summary)["orders.csv"]
    assert (
        f.status == "quarantined" and f.message == f"symlink out of the landing folder: points to {outside}"
    )
    assert (f.rows_in_file, f.rows_quarantined) == (0, 0)  # not read: nothing counted
    assert "secret" not in repr(con.sql("SELECT * FROM raw_invalid.files").fetchall())
    assert "secret" not in " ".join(summary.lines())
    assert by_file(summary)["customers.csv"].rows_loaded == 1  # the rest of the batch loads
    assert all(r["reconciled"] for r in ingest.reconcile(con))
    con.close()
    again, con = load(paths)  # quarantined once, not again on every run
    assert again.files == [] and con.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0] == 2
    con.close()


def test_links_inside_the_landing_folder_load(tmp_path):
    paths = make_batch(tmp_path, {})
    stash = paths.landing / ".incoming"
    stash.mkdir()
    (stash / "orders.csv").write_bytes(orders("O1", "O2"))
    (paths.landing / "2024-01-05" / "orders.csv").symlink_to("../.incoming/orders.csv")
    summary, con = load(paths)
    assert (by_file(summary)["orders.csv"].status, by_file(summary)["orders.csv"].rows_loaded) == (
        "loaded",
        2,
    )
    con.close()


def test_devices_fifos_and_folders_are_quarantined_without_hanging(tmp_path):
    paths = make_batch(tmp_path, {})
    batch = paths.landing / "2024-01-05"
    (batch / "orders.csv").symlink_to("/dev/zero")  # endless: reading it would never finish
    os.mkfifo(batch / "subscriptions.csv")  # no writer: opening it would block for ever
    pipes = paths.landing / ".pipes"
    pipes.mkdir()
    os.mkfifo(pipes / "fifo")
    (batch / "support_tickets.csv").symlink_to("../.pipes/fifo")  # inside the folder, still a FIFO
    (batch / "device_sessions.csv").mkdir()
    r = clv_load(paths.data_dir)
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(paths.warehouse))
    got = dict(
        con.sql("SELECT regexp_extract(source_file, '[^/]+$'), reason FROM raw_invalid.files").fetchall()
    )
    con.close()
    assert got == {
        "orders.csv": "symlink out of the landing folder: points to /dev/zero",
        "subscriptions.csv": "not a regular file: a FIFO",
        "support_tickets.csv": "not a regular file: a FIFO (through a symlink)",
        "device_sessions.csv": "not a regular file: a directory",
    }
    assert "4 quarantined" in r.stdout and "file: not a regular file" in r.stdout


GLOBBY = ["2024-01-05", "2024-01-05 [5]", "2024-01-05 *", "2024-01-05 ?", "2024-01-05 it's"]


def test_folder_names_with_glob_characters_and_quotes_load_their_own_files(tmp_path):
    """DuckDB expands ``*``, ``?`` and ``[...]`` even in a quoted path; each batch must still load
    exactly its own file. A decoy beside the data directory is what ``[x]`` would match: a file of
    as many rows, so that no row count gives the mix-up away."""
    root = tmp_path / "it's [x]"
    for name in GLOBBY:
        make_batch(root, {"orders.csv": orders(*(f"{name}#{i}" for i in range(3)))}, batch=name)
    decoy = make_batch(tmp_path / "it's x", {"orders.csv": orders(*(f"decoy#{i}" for i in range(3)))})
    assert decoy.landing.exists()
    summary, con = load(Paths(root))
    try:
        assert not summary.failed and summary.rows_quarantined == 0
        got = con.sql(
            "SELECT _batch, list(order_id ORDER BY _row_number) FROM raw.orders GROUP BY 1"
        ).fetchall()
        assert dict(got) == {name: [f"{name}#{i}" for i in range(3)] for name in GLOBBY}
    finally:
        con.close()


def test_the_same_folders_load_line_by_line_too(tmp_path):
    """An empty line sends a file to the line-by-line reader: the same paths, read by Python."""
    root = tmp_path / "it's [x]"
    for name in GLOBBY[:3]:
        data = orders(f"{name}#1") + b"\n" + orders(f"{name}#2").split(b"\n", 1)[1]
        make_batch(root, {"orders.csv": data}, batch=name)
    summary, con = load(Paths(root))
    try:
        assert {f.reasons.get("empty line") for f in summary.files if f.source == "orders"} == {1}
        got = dict(
            con.sql(
                "SELECT _batch, list(order_id ORDER BY _row_number) FROM raw.orders GROUP BY 1"
            ).fetchall()
        )
        assert got == {name: [f"{name}#1", f"{name}#2"] for name in GLOBBY[:3]}
    finally:
        con.close()


def warehouse_with_marts(data_dir) -> Paths:
    """A real warehouse: a delivery loaded by the loader, and a mart built from its raw zone."""
    paths = make_delivery(data_dir, {"orders.csv": orders("O1", "O2", "O3")})
    summary, con = load(paths)
    assert summary.rows_loaded == 4
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.mart_orders AS SELECT order_id, customer_id FROM raw.orders")
    con.close()
    return paths


def test_publish_and_the_spark_export_in_a_folder_named_its_x(tmp_path):
    paths = warehouse_with_marts(tmp_path / "it's [x]" / "data")
    con = duckdb.connect(str(paths.warehouse))
    counts = publish.publish(con, dt.date(2024, 1, 5), data_dir=paths.data_dir)
    con.close()
    assert counts == {"mart_orders": 3}
    serving = duckdb.connect(str(paths.serving), read_only=True)
    assert serving.sql("SELECT list(order_id ORDER BY order_id) FROM mart_orders").fetchone()[0] == [
        "O1",
        "O2",
        "O3",
    ]
    serving.close()
    summary = spark.export_raw(paths.data_dir)
    assert summary.exported["orders"] == 1 and summary.exported["customers"] == 1
    (parquet,) = (paths.spark / "raw" / "orders").glob("*.parquet")
    rows = duckdb.sql(
        f"SELECT order_id FROM read_parquet({sql_text.literal(sql_text.exact_file(parquet))})"
    ).fetchall()
    assert sorted(rows) == [("O1",), ("O2",), ("O3",)]


def test_a_stale_wal_beside_the_serving_file_is_not_replayed(tmp_path):
    """A reader that opened the serving file for writing and died leaves a WAL beside it: the next
    publish must not let DuckDB replay it onto the new file."""
    paths = warehouse_with_marts(tmp_path / "data")
    con = duckdb.connect(str(paths.warehouse))
    publish.publish(con, dt.date(2024, 1, 5), data_dir=paths.data_dir)
    crash = f"""
import duckdb, os
con = duckdb.connect({str(paths.serving)!r})
con.execute("SET checkpoint_threshold = '10GB'")
con.execute("PRAGMA disable_checkpoint_on_shutdown")
con.execute("DELETE FROM mart_orders")
con.execute("INSERT INTO mart_orders VALUES ('STALE', 'C0')")
con.execute("CREATE TABLE scribbles AS SELECT 1 AS x")
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", crash], check=True, timeout=60)
    wal = paths.serving.with_name(paths.serving.name + ".wal")
    assert wal.stat().st_size > 0
    con.execute("INSERT INTO marts.mart_orders VALUES ('O4', 'C000000001')")
    publish.publish(con, dt.date(2024, 1, 6), data_dir=paths.data_dir)
    con.close()
    serving = duckdb.connect(str(paths.serving), read_only=True)
    try:
        assert serving.sql("SELECT list(order_id ORDER BY order_id) FROM mart_orders").fetchone()[0] == [
            "O1",
            "O2",
            "O3",
            "O4",
        ]
        assert "scribbles" not in {t for (t,) in serving.sql("SHOW TABLES").fetchall()}
        assert str(serving.sql("SELECT business_date FROM serving_info").fetchone()[0]) == "2024-01-06"
    finally:
        serving.close()


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_reads_the_export_of_a_folder_named_its_x(tmp_path):
    """Spark's raw tables over the export folders (``spark.register_raw``), in a real session."""
    try:
        from pyspark.sql import SparkSession

        spark.require_java()
    except (ImportError, spark.SparkSyncError) as e:
        if os.environ.get("CLV_REQUIRE_SPARK"):
            pytest.fail(f"Spark cannot run here: {e} (CLV_REQUIRE_SPARK is set)")
        pytest.skip(f"Spark cannot run here: {e}")
    paths = warehouse_with_marts(tmp_path / "it's [x]" / "data")
    spark.export_raw(paths.data_dir)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("clv-test-paths")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(tmp_path / "spark-warehouse"))
        .getOrCreate()
    )
    try:
        session.sparkContext.setLogLevel("ERROR")
        spark.register_raw(session, paths.data_dir)
        rows = session.sql("SELECT order_id FROM raw.orders ORDER BY order_id").collect()
        assert [r.order_id for r in rows] == ["O1", "O2", "O3"]
        session.sql("DROP DATABASE raw CASCADE")
    finally:
        session.stop()
