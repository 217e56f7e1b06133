"""Scenario 4: a whole batch replayed. Re-exported batches (same rows, another order, so other
bytes: the loader takes them as new deliveries) land in raw as delivered, and leave no duplicate in
staging, facts or marts: the layers equal a run that never saw the replays. (Byte-for-byte
redeliveries, which heavy chaos makes, load nothing: tests/ingest/test_load.py.)"""

from __future__ import annotations

import json
import shutil

import pytest

from clv import ingest, transform
from clv.contract import SOURCES
from tests.reliability.compare import (
    FACTS,
    MARTS,
    duplicate_grains,
    layer_diff,
    physical,
    snapshot_copy,
    table_diff,
)
from tests.reliability.conftest import HEAVY_DAYS, copy_data, day

# one worker builds the shared warehouse fixture (with `--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability-heavy")]
LINEAGE = {"loaded_batch_date", "loaded_at"}


def replay(paths, batch: str, name: str, batch_date: str) -> int:
    """Deliver ``batch`` again as ``name``: every file re-exported with its rows reversed."""
    src, dst = paths.landing / batch, paths.landing / name
    shutil.copytree(src, dst)
    rows = 0
    for f in dst.glob("*.csv"):
        header, *lines = f.read_bytes().split(b"\n")
        lines = [x for x in lines if x]
        rows += len(lines)
        f.write_bytes(b"\n".join([header, *reversed(lines)]) + b"\n")
    manifest = json.loads((dst / "_manifest.json").read_text())
    manifest["batch_date"] = batch_date
    manifest.pop("files", None)  # re-exported: other bytes than the original manifest says
    (dst / "_manifest.json").write_text(json.dumps(manifest))
    return rows


@pytest.mark.scenario(4, "whole batch replayed")
def test_replayed_batches_leave_no_duplicates(next_day_loaded, next_day_clean, tmp_path, ledger):
    today = day(HEAVY_DAYS + 1)
    paths = copy_data(next_day_loaded, tmp_path / "data")
    # today's batch replayed the same day, and an already processed batch replayed later
    same_day = replay(paths, today.isoformat(), f"{today.isoformat()}-replay", today.isoformat())
    past = day(HEAVY_DAYS - 1).isoformat()
    later = replay(paths, past, f"{past}-replay", past)
    ledger.fault("whole batch replayed (re-exported), same day", 1)
    ledger.fault("whole batch replayed (re-exported), after it was processed", 1)
    summary = ingest.load(paths.data_dir)
    # every replayed row is loaded again as delivered (a file of one row keeps its bytes when
    # reversed: that one is recognised as a redelivery instead)
    replays = [f for f in summary.files if f.batch.endswith("-replay")]
    assert {f.status for f in replays} <= {"loaded", "quarantined", "duplicate"}
    assert sum(f.rows_in_file for f in replays) == same_day + later
    assert sum(f.rows_loaded for f in replays) > (same_day + later) // 2

    ctx = transform.context(paths.data_dir)
    clean = snapshot_copy(next_day_clean.warehouse, tmp_path / "clean.duckdb")
    try:
        assert transform.run(ctx, today)
        con = ctx.engine_adapter.connection
        raw_dupes = con.execute(
            "SELECT count(*) FROM (SELECT order_id FROM raw.orders GROUP BY 1 HAVING count(*) > 1)"
        ).fetchone()[0]
        assert raw_dupes > 0  # raw is the faithful record
        dupes = duplicate_grains(ctx, ("staging", "core", "marts"))
        assert len(dupes) > 20 and not any(dupes.values()), {k: v for k, v in dupes.items() if v}
        con.execute(f"ATTACH '{clean}' AS clean (READ_ONLY)")
        for name in SOURCES:
            table = f"staging.stg_{name}"
            cols = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()]
            keep = ", ".join(c for c in cols if c not in LINEAGE)
            con.execute(
                f"CREATE TEMP VIEW a_{name} AS SELECT {keep} FROM {physical(con, 'warehouse', table)}"
            )
            con.execute(f"CREATE TEMP VIEW b_{name} AS SELECT {keep} FROM {physical(con, 'clean', table)}")
            n, diff = table_diff(con, f"a_{name}", f"b_{name}")
            assert n > 0 and diff == 0, (table, n, diff)
        for table in (*(f"core.{f}" for f in FACTS), *(f"marts.{m}" for m in MARTS)):
            n, diff = layer_diff(con, table, "warehouse", "clean")
            assert n > 0 and diff == 0, (table, n, diff)
        con.execute("DETACH clean")
        ledger.recovery("replayed batches absorbed: layers equal a run without them")
        ledger.faults_from_truth(paths)
        ledger.account(paths, con)
    finally:
        ctx.close()
