"""Scenario 21: back up, lose a day, restore, run it again. `clv backup` copies the warehouse (and
SQLMesh's state inside it) and the serving file under the warehouse's lock; a heavy-chaos day is
run; `clv restore` refuses to overwrite the now newer warehouse, then with --force puts the backup
back: marts, serving file and load manifest are exactly as backed up. The same day is run again
from the landed files and comes out as it did the first time; every landed row is accounted for."""

from __future__ import annotations

import json
import math

import pytest

from generator import runner
from tests.airflow.helpers import clv, explain, query, sha256
from tests.reliability import ledger as ledger_mod
from tests.reliability.conftest import copy_data, day
from tests.reliability.test_s20_rollback import tables

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-base")]


def state(data) -> dict:
    return {
        "marts": tables(data, "marts", "warehouse.duckdb"),
        "serving": tables(data, "main", "serving.duckdb"),
        "serving_date": query(data, "SELECT business_date FROM serving_info", db="serving.duckdb"),
        "loads": query(data, "SELECT load_id, batch, source_file, status FROM ops.load_manifest ORDER BY 1"),
    }


def same(a: dict, b: dict) -> bool:
    """Equal tables, floats to 1e-9 relative: DuckDB sums floats in parallel, in no fixed order,
    so two runs over the same rows may differ in the last bits of an average."""
    assert a.keys() == b.keys()
    for name, (cols, rows) in a.items():
        assert cols == b[name][0] and len(rows) == len(b[name][1]), name
        for x, y in zip(rows, b[name][1]):
            for col, u, v in zip(cols, x, y):
                close = isinstance(u, float) and isinstance(v, float) and math.isclose(u, v, rel_tol=1e-9)
                assert u == v or close, f"{name}.{col}: {u!r} != {v!r}"
    return True


@pytest.mark.scenario(21, "backup and restore", chaos="a heavy-chaos day on a realistic history")
def test_restore_a_backup_then_run_the_lost_day_again(base, tmp_path, ledger):
    paths = copy_data(base, tmp_path / "data")
    data, folder, d1 = paths.data_dir, tmp_path / "backup", day(1)
    backed_up = state(data)

    made = clv("backup", "--data-dir", str(data), "--out", str(folder))
    assert made.returncode == 0, explain(made)
    manifest = json.loads((folder / "backup.json").read_text())
    assert set(manifest["files"]) == {"warehouse.duckdb", "serving.duckdb"}
    assert manifest["sqlmesh_state_included"] is True
    assert query(folder, "SELECT count(*) FROM sqlmesh._environments WHERE name = 'prod'")[0][0] == 1

    runner.day(paths, d1, chaos="heavy")
    first = clv("run", "--data-dir", str(data), "--business-date", d1.isoformat(), "--no-airflow")
    assert first.returncode == 0, explain(first)
    ran = state(data)
    assert ran["serving_date"] == [(d1,)] and len(ran["loads"]) > len(backed_up["loads"])
    ledger.fault("warehouse lost after a day's run: restored from the backup taken before it")

    warehouse = sha256(paths.warehouse)
    refused = clv("restore", str(folder), "--data-dir", str(data))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, explain(refused)
    assert "the warehouse is newer than the backup" in refused.stderr and "later loads" in refused.stderr
    assert sha256(paths.warehouse) == warehouse  # untouched
    restored = clv("restore", str(folder), "--data-dir", str(data), "--force")
    assert restored.returncode == 0, explain(restored)
    assert state(data) == backed_up
    assert not list(data.glob("*.restoring")) and not list(data.glob("warehouse.duckdb.wal"))
    ledger.recovery("clv restore put the backup back")

    again = clv("run", "--data-dir", str(data), "--business-date", d1.isoformat(), "--no-airflow")
    assert again.returncode == 0, explain(again)
    rerun = state(data)
    assert same(rerun["marts"], ran["marts"]) and same(rerun["serving"], ran["serving"])
    assert [r[1:] for r in rerun["loads"]] == [r[1:] for r in ran["loads"]]
    ledger.recovery("the lost day ran again from its landed files, as it ran the first time")
    ledger.faults_from_truth(paths, [d1.isoformat()])
    for a in ledger_mod.alerts(paths):
        ledger.alert(a)
    ledger.account(paths)
