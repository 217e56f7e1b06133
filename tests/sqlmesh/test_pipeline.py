"""Behaviour of the whole model graph over daily runs. Late events, rebuilds from raw and replayed
batches are reliability scenarios: tests/reliability/test_s05_late_events.py and
test_s04_replayed_batch.py."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import END

pytestmark = pytest.mark.slow
DAY2 = END + dt.timedelta(days=2)


def test_daily_snapshots_start_with_the_warehouse(project):
    _, ctx, _ = project
    days = [
        r[0]
        for r in ctx.engine_adapter.fetchall(
            "SELECT DISTINCT snapshot_date FROM core.fct_customer_snapshot ORDER BY 1"
        )
    ]
    assert days == [END, END + dt.timedelta(days=1), DAY2]


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
