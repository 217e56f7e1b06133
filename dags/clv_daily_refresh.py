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

**Params** — `business_date` (YYYY-MM-DD, optional): the business day to process. Empty: with the
synthetic generator, the day after the latest batch; with your own files (`CLV_SOURCE=landing`),
the day before the run's logical date.

Each task calls one `clv.pipeline` step through `clv.airflow.tasks.run_step`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, chain, dag, task

from clv.airflow import policy, tasks
from clv.airflow.assets import mart_assets, serving_asset
from clv.names import DAILY_DAG, POOL


@dag(
    dag_id=DAILY_DAG,
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    deadline=policy.daily_deadline(),  # serving published by 06:00 (CLV_DEADLINE_MINUTES), or an alert
    tags=["clv", "daily", "sqlmesh", "soda"],
    doc_md=__doc__,
    params={
        "business_date": Param(
            None, type=["null", "string"], description="YYYY-MM-DD; empty: the next business day"
        )
    },
)
def clv_daily_refresh():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return tasks.resolve_business_date(context)

    @task(pool=POOL, **policy.INGEST_RETRIES)
    def extract(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.extract, context, business_date)

    @task(pool=POOL, **policy.INGEST_RETRIES)
    def load_raw(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.load, context, business_date)

    @task(pool=POOL)
    def scan_raw(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.scan_raw, context, business_date)

    def transform(layer: str, outlets=()):
        @task(
            task_id=f"transform_{layer}",
            pool=POOL,
            outlets=list(outlets),
            doc_md=f"SQLMesh run of the {layer} models, then the {layer} Soda checks.",
        )
        def transform_layer(business_date: str, **context):
            from clv import pipeline

            return tasks.run_step(pipeline.transform_layer, context, business_date, layer)

        return transform_layer

    @task(pool=POOL, outlets=[serving_asset()])
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
        transform("staging")(day),
        transform("core")(day),
        transform("intermediate")(day),
        transform("marts", outlets=mart_assets())(day),
        publish(day),
    )


clv_daily_refresh()
