"""Which business date a run processes (clv.pipeline.resolve_business_date and the daily DAG's first
task), the mapping to Airflow's calendar (clv.business_date), and what the runs show a person: the
task summary line, the run note, `clv run`'s progress, Airflow sized to the machine and SQLMesh's
SQL kept at debug level. Real files and real loggers; the real-Airflow runs are in
tests/airflow/test_calendar.py."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest

from clv import business_date as bd
from clv import pipeline, transform
from clv.airflow import home, notes, tasks
from clv.errors import UserError
from clv.names import DEFAULT_HISTORY_END, SUMMARY_PREFIX


def land(data, *days: dt.date) -> None:
    for d in days:
        folder = data / "landing" / d.isoformat()
        folder.mkdir(parents=True)
        (folder / "_manifest.json").write_text("{}")


def test_the_calendar_mapping_round_trips():
    for d in (dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2024, 2, 29)):
        start, end = bd.data_interval(d)
        assert (start.isoformat(), end - start) == (f"{d.isoformat()}T02:30:00+00:00", dt.timedelta(days=1))
        assert bd.logical_date(d) == start and bd.run_after(d) == end
        assert bd.from_data_interval(start) == d and bd.from_run_after(end) == d
    # A data interval given in another time zone is read in UTC.
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert bd.from_data_interval(dt.datetime(2025, 1, 2, 11, 30, tzinfo=tokyo)) == dt.date(2025, 1, 2)


def test_the_data_interval_decides_not_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SOURCE", "generator")
    data = tmp_path / "data"
    land(data, dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    start = bd.logical_date(dt.date(2025, 1, 2))
    assert pipeline.resolve_business_date(None, start, data_dir=data) == dt.date(2025, 1, 2)
    land(data, dt.date(2025, 1, 3))  # a later batch landed: the same run still means the same day
    assert pipeline.resolve_business_date(None, start, data_dir=data) == dt.date(2025, 1, 2)
    # Explicit choices: a date, or the next simulated day (asked for).
    assert pipeline.resolve_business_date("2024-06-30", start, data_dir=data) == dt.date(2024, 6, 30)
    assert pipeline.resolve_business_date(None, start, next_day=True, data_dir=data) == dt.date(2025, 1, 4)
    with pytest.raises(UserError, match="not both"):
        pipeline.resolve_business_date("2025-01-05", start, next_day=True, data_dir=data)
    # No data interval (a manual run without a logical date): the day before the run started.
    after = dt.datetime(2025, 1, 3, 9, 0, tzinfo=dt.UTC)
    assert pipeline.resolve_business_date(None, None, run_after=after, data_dir=data) == dt.date(2025, 1, 2)


def test_a_date_far_past_the_simulated_calendar_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SOURCE", "generator")
    data = tmp_path / "data"
    land(data, dt.date(2025, 1, 1))
    ok = dt.date(2025, 1, 1) + dt.timedelta(days=pipeline.MAX_SIMULATED_CATCH_UP_DAYS)
    assert pipeline.resolve_business_date(None, bd.logical_date(ok), data_dir=data) == ok
    with pytest.raises(UserError) as e:
        pipeline.resolve_business_date(None, bd.logical_date(ok + dt.timedelta(days=1)), data_dir=data)
    assert "is 32 days after the latest generated batch 2025-01-01" in str(e.value) and "\n" not in str(
        e.value
    )
    # Delivered files: Airflow's calendar is the calendar; the next simulated day means nothing.
    monkeypatch.setenv("CLV_SOURCE", "landing")
    far = dt.date(2026, 6, 1)
    assert pipeline.resolve_business_date(None, bd.logical_date(far), data_dir=data) == far
    with pytest.raises(UserError, match="needs the synthetic generator"):
        pipeline.resolve_business_date(None, None, next_day=True, data_dir=data)


def test_the_next_simulated_day_is_chosen_once_per_run(tmp_path, monkeypatch):
    """The daily DAG's first task with the toggle: the first attempt chooses the day after the
    latest batch and records it for the run; a cleared run (new batches landed since) gets the
    same day. Another run chooses anew. (The context holds what the task reads from Airflow's.)"""
    data = tmp_path / "data"
    monkeypatch.setenv("CLV_DATA_DIR", str(data))
    monkeypatch.setenv("CLV_SOURCE", "generator")
    land(data, dt.date(2025, 1, 1))

    def context(run_id):
        return {
            "params": {"business_date": None, "next_simulated_day": True},
            "ti": SimpleNamespace(dag_id="clv_daily_refresh", run_id=run_id, task_id="resolve_business_date"),
            "dag_run": SimpleNamespace(run_after=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
            "data_interval_start": None,
        }

    assert tasks.resolve_business_date(context("manual__1")) == "2025-01-02"
    land(data, dt.date(2025, 1, 2))  # the run's extract generated its day; then it was cleared
    assert tasks.resolve_business_date(context("manual__1")) == "2025-01-02"
    assert tasks.resolve_business_date(context("manual__2")) == "2025-01-03"
    recorded = json.loads(
        (data / "state" / "airflow_runs" / "clv_daily_refresh" / "manual__1.json").read_text()
    )
    assert recorded == {"run_id": "manual__1", "business_date": "2025-01-02"}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"business_date": "2024-13-45"}, "invalid business_date date '2024-13-45': use YYYY-MM-DD"),
        ({"next_simulated_day": "yes"}, "invalid next_simulated_day 'yes': use true or false"),
        ({"environment": "prod", "promote": True}, "environment 'prod' is prod"),
        ({"start": "tomorrow"}, "invalid start date 'tomorrow'"),
    ],
)
def test_the_first_task_refuses_with_one_line_and_no_retry(params, reason):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as e:
        tasks.check_params({"params": params})
    assert reason in str(e.value) and "\n" not in str(e.value)


def test_the_summary_line_names_warnings_and_the_report():
    checks = {
        "passed": 30,
        "warned": 2,
        "failed": 0,
        "warned_checks": ["a is fresh", "b volume"],
        "report": "/r/core.md",
    }
    line = tasks.summary_line("transform_core", 12.34, 45678, checks)
    assert line == (
        f"{SUMMARY_PREFIX} transform_core done in 12.3 s | 45,678 rows | checks 30 passed, 2 warned, 0 failed"
        " | WARNED: a is fresh; b volume | report /r/core.md"
    )
    assert tasks.summary_line("extract", 1.0, None, None) == f"{SUMMARY_PREFIX} extract done in 1.0 s"


def test_the_run_note():
    results = {
        "resolve_business_date": "2025-01-02",
        "load_raw": {"rows_loaded": 1200, "lines": []},
        "scan_raw": {"checks": {"passed": 60, "warned": 1, "failed": 0, "warned_checks": ["orders fresh"]}},
        "transform_core": {"checks": {"passed": 7, "warned": 0, "failed": 0, "warned_checks": []}},
        "publish": {
            "tables": {"mart_clv": 10},
            "figures": [
                {"name": "customers", "value": 10.0, "unit": "count"},
                {"name": "revenue at risk", "value": 1234.56, "unit": "usd"},
                {"name": "value already lost", "value": None, "unit": "usd"},
            ],
        },
    }
    assert notes.note_text("success", results, []) == (
        "**Business date 2025-01-02** · success\n- rows loaded: 1,200\n"
        "- checks: 67 passed, 1 warned, 0 failed\n- warned in scan_raw: orders fresh\n"
        "- published: customers 10 · revenue at risk $1,235"
    )
    # A backfill's date comes from its business_date task; a run refused at once has none.
    assert notes.note_text(
        "success", {"resolve_business_date": None, "business_date": "2025-01-03"}, []
    ).startswith("**Business date 2025-01-03** · success")
    assert notes.note_text("failed", {}, ["resolve_business_date"]) == (
        "**Business date: not chosen** · failed\n- failed: resolve_business_date"
    )


def test_progress_prints_each_task_as_it_starts_and_ends():
    lines, clock = [], iter([0.0, 5.0, 6.0, 6.0, 9.5]).__next__
    progress = home.Progress(lines.append, clock=clock)
    out = [
        "2026-01-01T00:00:00Z [info ] [DAG TEST] starting task_id=resolve_business_date map_index=-1 [x]",
        "2026-01-01T00:00:05Z [info ] [DAG TEST] end task task_id=resolve_business_date map_index=-1 [x]",
        "[DAG TEST] starting task_id=load_raw map_index=-1",
        f"2026 [info ] {SUMMARY_PREFIX} load_raw done in 3.1 s | 44,308 rows [clv.dags] loc=tasks.py:64",
        "[DAG TEST] end task task_id=load_raw map_index=-1",
        "[DAG TEST] starting task_id=scan_raw map_index=-1",
        "2026 [error ] Task failed with exception [task]",
        "[DAG TEST] end task task_id=scan_raw map_index=-1",
    ]
    for line in out:
        progress.feed(line)
    assert lines == [
        "  resolve_business_date ...",
        "  resolve_business_date done in 5.0 s",
        "  load_raw ...",
        "  load_raw done in 3.1 s | 44,308 rows",
        "  scan_raw ...",
        "  scan_raw FAILED after 3.5 s",
    ]


def test_airflow_is_sized_to_the_machine():
    assert home.sizing(2) == {
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }
    assert home.sizing(1)["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert home.sizing(16)["AIRFLOW__CORE__PARALLELISM"] == "16"
    env = home.environ()
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) < 32
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"].endswith("/plugins")


def test_sqlmesh_sql_is_logged_at_debug_level(caplog):
    engine_log = logging.getLogger("sqlmesh.core.engine_adapter.base")
    transform._sql_at_debug()
    transform._sql_at_debug()  # once, however many contexts are opened
    assert sum(isinstance(f, transform._SqlAtDebugLevel) for f in engine_log.filters) == 1
    with caplog.at_level(logging.INFO):
        engine_log.info("Executing SQL: %s", 'COMMENT ON COLUMN "marts"."x"."y" IS \'...\'')
        engine_log.info("Creating table x")
    assert [r.getMessage() for r in caplog.records] == ["Creating table x"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        engine_log.info("Executing SQL: %s", "SELECT 1")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("DEBUG", "Executing SQL: SELECT 1")]


def test_the_default_history_end_is_the_first_simulated_day(tmp_path):
    assert pipeline.next_simulated_day(tmp_path / "nothing") == DEFAULT_HISTORY_END
