"""
### CLV daily refresh
Every morning at 02:30 (UTC): the business day's batch is **extracted** (generated, or waited for
in the landing folder), **loaded** into the warehouse's raw zone (bad rows quarantined, every row
reconciled), **checked** (Soda, raw), then each SQLMesh layer — **staging, core, intermediate,
marts** — is **run and checked** in its own task, and the marts are **published** to
`serving.duckdb` for the dashboard.

A failed error-level check stops the layers below it: the marts and the serving file keep the
last good data, and an alert lands in `ops.alerts`. Every task records its status, duration and
rows in `ops.pipeline_runs`. Rerunning a failed task redoes only that step (SQLMesh tracks which
intervals are done).

**Which day a run processes** follows Airflow's calendar: each data interval runs from 02:30 to
02:30 (UTC) and stands for the business day it starts on — the run for 2025-01-01 has the logical
date 2025-01-01 02:30 and starts on 2025-01-02 at 02:30 (its run id says so:
`scheduled__2025-01-02T02:30:00+00:00`), when that day's batch has landed; its note names the
business date. A backfill from D1 to D3 processes D1, D2, D3 in order;
clearing a run or a task processes the same day again (same marts).

**Params** — `business_date` (YYYY-MM-DD, optional): process this day instead.
`next_simulated_day` (toggle, the demo with the synthetic generator): process the day after the
latest generated batch; the day is chosen once per run and kept when the run is cleared.

The run's note (in the grid) names the business date, the rows loaded, the checks passed,
warned and failed and what it published (customers, predicted value, revenue at risk); each
task's log ends with a `clv summary:` line. Every SQLMesh model is an Asset: each layer task
produces its models (their events carry rows, seconds and audits) from the layer below.

Each task calls one `clv.pipeline` step through `clv.airflow.tasks.run_step`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, chain, dag, task

from clv.airflow import params, policy, tasks
from clv.airflow.assets import mart_assets, raw_assets, serving_asset
from clv.names import DAILY_DAG, POOL


@dag(
    dag_id=DAILY_DAG,
    # Data intervals [D 02:30, D + 1 02:30): the logical date is business date D (clv.business_date).
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    deadline=policy.daily_deadline(),  # serving published by 06:00 (CLV_DEADLINE_MINUTES), or an alert
    tags=["clv", "daily", "sqlmesh", "soda"],
    doc_md=__doc__,
    params=params.daily_refresh(),
)
def clv_daily_refresh():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return tasks.resolve_business_date(context)

    @task(pool=POOL, **policy.INGEST_RETRIES)
    def extract(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.extract, context, business_date)

    @task(pool=POOL, outlets=raw_assets(), **policy.INGEST_RETRIES)
    def load_raw(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.load, context, business_date)

    @task(pool=POOL)
    def scan_raw(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.scan_raw, context, business_date)

    @task(pool=POOL, inlets=mart_assets(), outlets=[serving_asset()])
    def publish(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.publish, context, business_date)

    day = resolve_business_date()
    chain(
        day,
        tasks.wait_for_other_writers(),
        extract(day),
        load_raw(day),
        scan_raw(day),
        tasks.transform_layer("staging")(day),
        tasks.transform_layer("core")(day),
        tasks.transform_layer("intermediate")(day),
        tasks.transform_layer("marts")(day),
        publish(day),
    )


clv_daily_refresh()
