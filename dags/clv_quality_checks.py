"""
### CLV quality checks
At 03:30 (UTC), after the refresh: SQLMesh's unit tests, SQLMesh audits for the latest intervals,
a full Soda scan of every layer, and the load reconciliation — summed up in one morning report
(`reports/<date>-quality/summary.md` in the data directory). The report task fails when anything
failed, which raises an alert.

**Params** — `business_date` (YYYY-MM-DD, optional): default the latest loaded batch.

Each part calls one `clv.quality_run` function through `clv.airflow.tasks.run_step`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, task

from clv.airflow import params, policy, tasks
from clv.names import POOL, QUALITY_DAG


@dag(
    dag_id=QUALITY_DAG,
    schedule="30 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "daily", "quality", "soda", "sqlmesh"],
    doc_md=__doc__,
    params=params.quality_checks(),
)
def clv_quality_checks():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        """The date to check; forgets an earlier attempt's report parts."""
        from clv import business_date, quality_run

        day = tasks.latest_loaded_or_param(context, "business_date")
        quality_run.reset_report(business_date.parse(day))
        return day

    @task(pool=POOL)
    def sqlmesh_unit_tests(business_date: str, **context):
        from clv import quality_run

        return tasks.run_step(quality_run.sqlmesh_tests, context, business_date)

    @task(pool=POOL)
    def sqlmesh_audits(business_date: str, **context):
        from clv import quality_run

        return tasks.run_step(quality_run.sqlmesh_audits, context, business_date)

    @task(pool=POOL)
    def soda_full_scan(business_date: str, **context):
        from clv import quality_run

        return tasks.run_step(quality_run.full_scan, context, business_date)

    @task(pool=POOL)
    def reconcile_loads(business_date: str, **context):
        from clv import quality_run

        return tasks.run_step(quality_run.reconcile_loads, context, business_date)

    @task(pool=POOL, trigger_rule="all_done", retries=0)
    def morning_report(business_date: str, **context):
        from clv import quality_run

        return tasks.run_step(quality_run.report, context, business_date)

    day = resolve_business_date()
    parts = [sqlmesh_unit_tests(day), sqlmesh_audits(day), soda_full_scan(day), reconcile_loads(day)]
    chain(day, tasks.wait_for_other_writers(), parts, morning_report(day))


clv_quality_checks()
