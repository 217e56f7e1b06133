"""Behaviour of the whole model graph over daily runs, and of the daily steps around it. Late
events, rebuilds from raw, replayed batches, batches completing late and missed days are
reliability scenarios: tests/reliability/test_s05_late_events.py, test_s04_replayed_batch.py,
test_s13_landing_manifest.py and test_s17_missed_days.py."""

from __future__ import annotations

import datetime as dt

import pytest

from clv import pipeline, transform
from clv.contract import SOURCES
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


def test_the_context_times_every_model_it_evaluates(project):
    """`clv transform` and the pipeline's steps report the slowest models from these timings."""
    _, ctx, _ = project
    timings = transform.slowest_models(ctx, n=1000)
    names = [name for name, _ in timings]
    models = {name.replace('"', "").split(".", 1)[1] for name in ctx.models}
    assert set(names) <= models
    assert {f"staging.stg_{source}" for source in SOURCES} <= set(names)  # the run evaluated them
    seconds = [sec for _, sec in timings]
    assert seconds == sorted(seconds, reverse=True) and all(sec >= 0 for sec in seconds)
    assert [name for name, _ in transform.slowest_models(ctx, n=3)] == names[:3]


def test_landing_mode_extracts_a_day_only_once_all_of_it_has_landed(tmp_path, monkeypatch):
    """Every folder of the business date must carry its manifest: files without one are a batch
    still arriving, and loading half a day would let its interval run without the rest."""
    monkeypatch.setenv("CLV_SOURCE", "landing")
    day = dt.date(2025, 1, 31)
    landing = tmp_path / "landing"
    landing.mkdir()

    def extract():
        return pipeline.extract(day, data_dir=tmp_path)

    with pytest.raises(pipeline.SourceNotReady, match="no batch for 2025-01-31"):
        extract()
    for name in ("2025-01-30", "2025-01-31", "2025-01-31-late", "2025-02-01"):
        (landing / name).mkdir()
        (landing / name / "orders.csv").write_text("order_id\n")
    (landing / "2025-01-30" / "_manifest.json").write_text("{}")
    with pytest.raises(pipeline.SourceNotReady, match="still arriving: 2025-01-31, 2025-01-31-late"):
        extract()
    (landing / "2025-01-31" / "_manifest.json").write_text("{}")
    with pytest.raises(pipeline.SourceNotReady, match="still arriving: 2025-01-31-late in"):
        extract()
    (landing / "2025-01-31-late" / "_manifest.json").write_text("{}")
    assert extract()["batches"] == ["2025-01-31", "2025-01-31-late"]  # 2025-02-01 is another day
