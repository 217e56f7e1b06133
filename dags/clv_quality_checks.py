"""clv_quality_checks: SQLMesh unit tests, audits, a full Soda scan and the load reconciliation,
summed up in one morning report. Wiring only; the steps are `clv.pipeline` functions."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from clv import dag_support as s


@dag(
    dag_id="clv_quality_checks",
    schedule="30 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=s.default_args(),
    tags=["clv", "daily", "quality", "soda", "sqlmesh"],
    doc_md=s.QUALITY_DOC,
    params={
        "business_date": Param(
            None, type=["null", "string"], description="YYYY-MM-DD; empty: the latest loaded batch"
        )
    },
)
def clv_quality_checks():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return s.resolve_quality_date(context)

    @task.sensor(poke_interval=15, timeout=4 * 3600, mode="poke", retries=0)
    def wait_for_other_writers(**context) -> bool:
        return s.other_writers_running(context) == 0

    @task(pool=s.POOL)
    def sqlmesh_unit_tests(business_date: str, **context):
        return s.call("sqlmesh_tests", context, business_date)

    @task(pool=s.POOL)
    def sqlmesh_audits(business_date: str, **context):
        return s.call("sqlmesh_audits", context, business_date)

    @task(pool=s.POOL)
    def soda_full_scan(business_date: str, **context):
        return s.call("full_scan", context, business_date)

    @task(pool=s.POOL)
    def reconcile_loads(business_date: str, **context):
        return s.call("reconcile_loads", context, business_date)

    @task(pool=s.POOL, trigger_rule="all_done", retries=0)
    def morning_report(business_date: str, **context):
        return s.call("quality_report", context, business_date)

    day = resolve_business_date()
    wait = wait_for_other_writers()
    parts = [sqlmesh_unit_tests(day), sqlmesh_audits(day), soda_full_scan(day), reconcile_loads(day)]
    day >> wait >> parts >> morning_report(day)


clv_quality_checks()
