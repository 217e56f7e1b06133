"""The SQLMesh project on a real DuckDB warehouse: first plan backfills, a daily run adds only the
new batch, the latest delivery wins, and a profile change becomes a new SCD-2 version."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil

import duckdb
import pytest

from clv import settings
from clv.contract import SOURCES
from tests.conftest import END
from tests.sqlmesh.conftest import _counts

pytestmark = pytest.mark.slow


def _raw_distinct(ctx, source: str) -> int:
    key = ", ".join(SOURCES[source].primary_key)
    return ctx.engine_adapter.fetchone(f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM raw.{source})")[0]


def test_staging_holds_one_row_per_key_of_everything_loaded(project):
    _, ctx, _ = project
    for source in SOURCES:
        assert _counts(ctx)[source] == _raw_distinct(ctx, source), source


def test_the_daily_run_added_only_the_new_batches(project):
    _, ctx, after_plan = project
    now = _counts(ctx)
    for source in ("orders", "device_sessions"):
        new_keys = ctx.engine_adapter.fetchone(
            f"SELECT count(DISTINCT {SOURCES[source].primary_key[0]}) FROM raw.{source} "
            f"WHERE _batch_date > DATE '{END}'"
        )[0]
        assert now[source] - after_plan[source] == new_keys > 0


def test_latest_delivery_wins(project):
    _, ctx, _ = project
    stale = ctx.engine_adapter.fetchone("""
        SELECT count(*) FROM staging.stg_support_tickets s
        JOIN (SELECT ticket_id, max(_batch_date) AS last_batch FROM raw.support_tickets GROUP BY 1) r USING (ticket_id)
        WHERE s.loaded_batch_date <> r.last_batch""")[0]
    assert stale == 0


def test_profile_changes_become_scd2_versions(project):
    _, ctx, _ = project
    versions = ctx.engine_adapter.fetchall("""
        SELECT customer_id, valid_from, valid_to FROM core.dim_customers
        WHERE customer_id IN (SELECT customer_id FROM core.dim_customers WHERE valid_to IS NOT NULL)
        ORDER BY customer_id, valid_from""")
    assert versions, "a day batch changed some profiles"
    by_customer: dict = {}
    for cid, start, end in versions:
        by_customer.setdefault(cid, []).append((start, end))
    for rows in by_customer.values():
        assert rows[-1][1] is None  # exactly one current version, the last
        for (_, e1), (s2, _) in itertools.pairwise(rows):
            assert e1 == s2  # closed exactly when the next one opens
        # a change delivered on business date D is valid from D + 1 (the run's execution time)
        assert rows[-1][0] in (dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3))
    current = ctx.engine_adapter.fetchone("SELECT count(*) FROM core.dim_customers WHERE valid_to IS NULL")[0]
    assert current == _counts(ctx)["customers"]


def test_plain_sqlmesh_cli_works_from_the_project_folder(project):
    paths, ctx, _ = project
    ctx.close()
    import os
    import subprocess
    import sys

    env = {**os.environ, "CLV_WAREHOUSE": str(paths.warehouse), "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1"}
    sqlmesh = shutil.which("sqlmesh", path=os.path.dirname(sys.executable))
    r = subprocess.run(
        [sqlmesh, "info"], cwd=settings.SQLMESH_PROJECT, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "Models: " in r.stdout
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    assert con.sql("SELECT count(*) FROM staging.stg_orders").fetchone()[0] > 0
    con.close()


def test_staging_keeps_exactly_the_latest_delivery_of_every_key(project):
    """@latest_deliveries ranks only keys delivered more than once; the result must equal ranking
    every row (the plain window over all of raw), row for row."""
    _, ctx, _ = project
    for source in SOURCES:
        keys = SOURCES[source].primary_key
        raw_keys = ", ".join(f"TRIM(CAST({k} AS VARCHAR))" for k in keys)
        reference = f"""
            SELECT {raw_keys}, _batch_date, _loaded_at FROM raw.{source}
            QUALIFY ROW_NUMBER() OVER (PARTITION BY {", ".join(keys)}
                                       ORDER BY _batch_date DESC, _load_id DESC, _row_number DESC) = 1"""
        staged = f"SELECT {raw_keys}, loaded_batch_date, loaded_at FROM staging.stg_{source}"
        for a, b in ((reference, staged), (staged, reference)):
            missing = ctx.engine_adapter.fetchone(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})")[0]
            assert missing == 0, source
