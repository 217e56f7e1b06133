"""Behaviour of the whole model graph: late events reach facts and marts after the next run, and
a rebuild from raw in one plan reproduces the marts the daily runs built."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from clv import ingest, transform
from clv.settings import Paths
from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)


def test_late_events_land_in_facts_and_marts(project):
    _, ctx, _ = project
    late = ctx.engine_adapter.fetchall(f"""
        SELECT o.order_id, o.customer_id, o.order_datetime::DATE
        FROM raw.orders o JOIN core.dim_customers c ON c.customer_id = o.customer_id AND c.valid_to IS NULL
        WHERE o._batch_date > DATE '{END}' AND o.order_datetime::DATE < o._batch_date AND o.quantity > 0""")
    assert late, "heavy chaos delivers some orders late"
    ids = ", ".join(f"'{r[0]}'" for r in late)
    in_fact = ctx.engine_adapter.fetchone(
        f"SELECT count(*) FROM core.fct_revenue WHERE revenue_event_id IN ({ids})"
    )[0]
    assert in_fact == len(late)
    # the marts' historical value of those customers includes them
    mismatch = ctx.engine_adapter.fetchone(f"""
        SELECT count(*) FROM marts.mart_clv m
        JOIN (SELECT customer_id, sum(revenue_usd) AS total FROM core.fct_revenue
              WHERE revenue_date <= DATE '{DAY2}' GROUP BY 1) f USING (customer_id)
        WHERE abs(m.historical_clv_usd - f.total) > 0.005""")[0]
    assert mismatch == 0


def test_daily_snapshots_start_with_the_warehouse(project):
    _, ctx, _ = project
    days = [
        r[0]
        for r in ctx.engine_adapter.fetchall(
            "SELECT DISTINCT snapshot_date FROM core.fct_customer_snapshot ORDER BY 1"
        )
    ]
    assert days == [END, END + dt.timedelta(days=1), DAY2]


def test_a_rebuild_from_raw_reproduces_the_marts(project, tmp_path):
    paths, ctx, _ = project
    ctx.close()
    fresh = Paths(tmp_path / "data")
    shutil.copytree(paths.data_dir, fresh.data_dir, ignore=shutil.ignore_patterns("warehouse.duckdb*"))
    ingest.load(fresh.data_dir)
    rebuilt = transform.context(fresh.data_dir)
    transform.plan_prod(rebuilt, DAY2)
    # compare against a copy: another connection of this test session may still hold the original
    daily = tmp_path / "daily.duckdb"
    for suffix in ("", ".wal"):
        if paths.warehouse.with_name(paths.warehouse.name + suffix).exists():
            shutil.copy(
                paths.warehouse.with_name(paths.warehouse.name + suffix), daily.with_name(daily.name + suffix)
            )
    rebuilt.engine_adapter.execute(f"ATTACH '{daily}' AS daily (READ_ONLY)")
    try:
        for mart in (
            "mart_clv",
            "mart_churn_risk",
            "mart_customer_360",
            "mart_retention_cohorts",
            "mart_category_ltv",
            "mart_churn_support_analysis",
            "mart_customer_segments",
        ):
            a = rebuilt.engine_adapter.fetchone(f"SELECT count(*) FROM marts.{mart}")[0]
            # doubles are compared to 9 decimals: parallel aggregation may change the last bits
            cols = ", ".join(
                f"round({name}, 9)" if typ in ("DOUBLE", "FLOAT") else name
                for name, typ, *_ in rebuilt.engine_adapter.fetchall(f"DESCRIBE marts.{mart}")
            )
            diff = rebuilt.engine_adapter.fetchone(f"""
                SELECT count(*) FROM ((SELECT {cols} FROM marts.{mart} EXCEPT SELECT {cols} FROM daily.marts.{mart})
                                      UNION ALL
                                      (SELECT {cols} FROM daily.marts.{mart} EXCEPT SELECT {cols} FROM marts.{mart}))""")[
                0
            ]
            assert a > 0 and diff == 0, mart
    finally:
        rebuilt.engine_adapter.execute("DETACH daily")
        rebuilt.close()


def test_calendar_attributes(project):
    _, ctx, _ = project
    rows = ctx.engine_adapter.fetchall("""
        SELECT date_day, fiscal_year, fiscal_quarter, is_weekend, is_month_end, iso_day_of_week
        FROM core.dim_time WHERE date_day IN (DATE '2024-03-31', DATE '2024-04-01', DATE '2024-12-31')
        ORDER BY 1""")
    assert rows == [
        (dt.date(2024, 3, 31), 2024, 4, True, True, 7),
        (dt.date(2024, 4, 1), 2025, 1, False, False, 1),
        (dt.date(2024, 12, 31), 2025, 3, False, True, 2),
    ]
    assert ctx.engine_adapter.fetchone("SELECT count(*), count(DISTINCT date_day) FROM core.dim_time") == (
        7670,
        7670,
    )


def test_a_replayed_batch_leaves_no_duplicates(project, tmp_path):
    """The day batch arrives again re-exported (same rows, other order, so other bytes): raw holds
    every row twice, staging, facts and marts do not change."""
    paths, ctx, _ = project
    ctx.close()
    copy = Paths(tmp_path / "data")
    shutil.copytree(paths.data_dir, copy.data_dir)
    day = END + dt.timedelta(days=2)
    src, replay = copy.landing / day.isoformat(), copy.landing / f"{day.isoformat()}-replay"
    shutil.copytree(src, replay)
    for f in replay.glob("*.csv"):
        header, *rows = f.read_text().splitlines()
        f.write_text("\n".join([header, *reversed(rows)]) + "\n")
    ctx2 = transform.context(copy.data_dir)
    before = {
        t: ctx2.engine_adapter.fetchone(f"SELECT count(*) FROM {t}")[0]
        for t in ("staging.stg_orders", "core.fct_revenue", "marts.mart_customer_360")
    }
    ctx2.close()
    summary = ingest.load(copy.data_dir)
    assert summary.rows_loaded > 0  # new bytes: loaded as delivered
    ctx2 = transform.context(copy.data_dir)
    try:
        assert transform.run(ctx2, day + dt.timedelta(days=1))
        raw_dupes = ctx2.engine_adapter.fetchone(
            "SELECT count(*) FROM (SELECT order_id FROM raw.orders GROUP BY 1 HAVING count(*) > 1)"
        )[0]
        assert raw_dupes > 0
        for table in before:
            key = {
                "staging.stg_orders": "order_id",
                "core.fct_revenue": "revenue_event_id",
                "marts.mart_customer_360": "customer_id",
            }[table]
            count, distinct = ctx2.engine_adapter.fetchone(
                f"SELECT count(*), count(DISTINCT {key}) FROM {table}"
            )
            assert count == distinct, table
        assert (
            ctx2.engine_adapter.fetchone("SELECT count(*) FROM staging.stg_orders")[0]
            == before["staging.stg_orders"]
        )
    finally:
        ctx2.close()
