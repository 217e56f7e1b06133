"""`clv backup` and `clv restore` on small real warehouse files: the backup waits for the writer's
lock (and stops with one line, leaving nothing half-made, when it does not come), folds a pending
write-ahead log into the copy, and a restore checks the copy's checksums, puts a lost warehouse
back and refuses a newer one or a damaged copy. (The whole pipeline around a restore:
tests/reliability/test_s21_backup_restore.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb

from clv import backup
from clv.settings import Paths
from tests.airflow.helpers import clv, explain, query, sha256

BUSY = "in use by another process"


def small_warehouse(data, loads: int = 2) -> Paths:
    paths = Paths(data)
    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.warehouse))
    con.execute("CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.load_manifest (load_id INTEGER, batch VARCHAR)")
    con.execute("INSERT INTO ops.load_manifest SELECT i, '2025-01-0' || i FROM range(1, ?) t(i)", [loads + 1])
    con.close()
    serving = duckdb.connect(str(paths.serving))
    serving.execute("CREATE TABLE serving_info AS SELECT DATE '2025-01-02' AS business_date")
    serving.close()
    return paths


def add_load(paths: Paths, load_id: int) -> None:
    con = duckdb.connect(str(paths.warehouse))
    con.execute("INSERT INTO ops.load_manifest VALUES (?, 'later')", [load_id])
    con.close()


def test_a_backup_waits_for_the_writer_then_stops_with_one_line(tmp_path):
    paths = small_warehouse(tmp_path / "data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(60)",
            str(paths.warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = tmp_path / "bk"
        r = clv(
            "backup", "--data-dir", str(paths.data_dir), "--out", str(out), env={"CLV_LOCK_WAIT_SECONDS": "1"}
        )
        assert r.returncode == 2 and BUSY in r.stderr and r.stderr.count("\n") == 1, explain(r)
        assert not out.exists() and not list(tmp_path.glob("bk*"))  # nothing half-made
    finally:
        holder.kill()
        holder.wait()
    r = clv("backup", "--data-dir", str(paths.data_dir), "--out", str(out))
    assert r.returncode == 0, explain(r)
    assert query(out, "SELECT count(*) FROM ops.load_manifest")[0][0] == 2


def test_a_pending_write_ahead_log_is_in_the_copy(tmp_path):
    """A writer killed before its checkpoint leaves its last rows in the write-ahead log only:
    the backup folds them in, so the copied file alone holds them."""
    paths = small_warehouse(tmp_path / "data")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute(\"INSERT INTO ops.load_manifest VALUES (3, 'in the log')\"); os._exit(0)",
            str(paths.warehouse),
        ],
        check=True,
    )
    wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
    assert wal.exists() and wal.stat().st_size > 0
    out = backup.backup(out=tmp_path / "bk", data_dir=paths.data_dir)
    assert not (tmp_path / "bk" / "warehouse.duckdb.wal").exists()
    assert query(tmp_path / "bk", "SELECT batch FROM ops.load_manifest WHERE load_id = 3") == [
        ("in the log",)
    ]
    assert out["watermark"]["last_load_id"] == 3
    manifest = json.loads((tmp_path / "bk" / "backup.json").read_text())
    assert manifest["files"]["warehouse.duckdb"]["sha256"] == sha256(tmp_path / "bk" / "warehouse.duckdb")
    assert manifest["sqlmesh_state_included"] is False  # no SQLMesh state in this small warehouse
    assert any("SQLMesh's state is not in the warehouse" in line for line in out["lines"])


def test_restore_puts_a_lost_warehouse_back(tmp_path):
    paths = small_warehouse(tmp_path / "data")
    backup.backup(out=tmp_path / "bk", data_dir=paths.data_dir)
    kept = sha256(tmp_path / "bk" / "warehouse.duckdb")
    paths.warehouse.unlink()
    paths.serving.unlink()
    # the backup says it holds no SQLMesh state: restoring needs --force (see the module)
    r = clv("restore", str(tmp_path / "bk"), "--data-dir", str(paths.data_dir))
    assert r.returncode == 2 and "holds no SQLMesh state" in r.stderr, explain(r)
    r = clv("restore", str(tmp_path / "bk"), "--data-dir", str(paths.data_dir), "--force")
    assert r.returncode == 0, explain(r)
    assert sha256(paths.warehouse) == kept
    assert query(paths.data_dir, "SELECT business_date::VARCHAR FROM serving_info", db="serving.duckdb") == [
        ("2025-01-02",)
    ]


def test_restore_refuses_a_newer_warehouse_and_a_damaged_backup(tmp_path):
    paths = small_warehouse(tmp_path / "data")
    con = duckdb.connect(str(paths.warehouse))  # a warehouse that holds SQLMesh's state
    con.execute("CREATE SCHEMA sqlmesh")
    con.execute("CREATE TABLE sqlmesh._environments (name VARCHAR, finalized_ts BIGINT)")
    con.execute("INSERT INTO sqlmesh._environments VALUES ('prod', 1000)")
    con.close()
    assert clv("backup", "--data-dir", str(paths.data_dir), "--out", str(tmp_path / "bk")).returncode == 0
    add_load(paths, 3)
    newer = sha256(paths.warehouse)
    r = clv("restore", str(tmp_path / "bk"), "--data-dir", str(paths.data_dir))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, explain(r)
    assert "the warehouse is newer than the backup" in r.stderr and "(later loads)" in r.stderr
    assert sha256(paths.warehouse) == newer and not list(paths.data_dir.glob("*.restoring"))

    damaged = tmp_path / "bk" / "warehouse.duckdb"
    raw = bytearray(damaged.read_bytes())
    raw[-100] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    r = clv("restore", str(tmp_path / "bk"), "--data-dir", str(paths.data_dir), "--force")
    assert r.returncode == 2 and "does not match its checksum: the backup is damaged" in r.stderr, explain(r)
    assert sha256(paths.warehouse) == newer
    r = clv("restore", str(tmp_path), "--data-dir", str(paths.data_dir))
    assert r.returncode == 2 and "is not a backup (no backup.json)" in r.stderr, explain(r)
