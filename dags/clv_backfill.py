"""clv_backfill (manual): build a date range in an isolated SQLMesh environment, check it, and
promote it to prod only when clean. Wiring only; the steps are `clv.pipeline` functions."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from clv import dag_support as s


@dag(
    dag_id="clv_backfill",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=s.default_args(),
    tags=["clv", "manual", "backfill", "sqlmesh"],
    doc_md=s.BACKFILL_DOC,
    params={
        "start": Param(None, type=["null", "string"], description="YYYY-MM-DD; empty: the models' start"),
        "end": Param(None, type=["null", "string"], description="YYYY-MM-DD; empty: the latest loaded batch"),
        "models": Param([], type="array", description="model names or selectors such as marts.*; empty: all"),
        "environment": Param("backfill", type="string", pattern="^[A-Za-z0-9_]+$"),
        "promote": Param(False, type="boolean", description="swap prod to the checked versions when clean"),
    },
)
def clv_backfill():
    s.environment_tasks()


clv_backfill()
