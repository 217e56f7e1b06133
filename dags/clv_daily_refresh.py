"""clv_daily_refresh: extract → load → scan raw → each SQLMesh layer run + checked → publish.

Wiring only; the steps are `clv.pipeline` functions (see clv/dag_support.py).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from clv import dag_support as s

LAYERS = ("staging", "core", "intermediate", "marts")


@dag(
    dag_id="clv_daily_refresh",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=s.default_args(),
    tags=["clv", "daily", "sqlmesh", "soda"],
    doc_md=s.DAILY_DOC,
    params={
        "business_date": Param(
            None, type=["null", "string"], description="YYYY-MM-DD; empty: the next business day"
        )
    },
)
def clv_daily_refresh():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return s.resolve_business_date(context)

    @task.sensor(poke_interval=15, timeout=4 * 3600, mode="poke", retries=0)
    def wait_for_other_writers(**context) -> bool:
        return s.other_writers_running(context) == 0

    @task(pool=s.POOL, **s.INGEST_RETRIES)
    def extract(business_date: str, **context):
        return s.call("extract", context, business_date)

    @task(pool=s.POOL, **s.INGEST_RETRIES)
    def load_raw(business_date: str, **context):
        return s.call("load", context, business_date)

    @task(pool=s.POOL)
    def scan_raw(business_date: str, **context):
        return s.call("scan_raw", context, business_date)

    def layer_task(layer: str):
        outlets = s.mart_assets() if layer == "marts" else []

        @task(
            task_id=f"transform_{layer}",
            pool=s.POOL,
            outlets=outlets,
            doc_md=f"SQLMesh run of the {layer} models, then the {layer} Soda checks.",
        )
        def transform(business_date: str, **context):
            return s.call("transform_layer", context, business_date, layer)

        return transform

    @task(pool=s.POOL, outlets=[s.serving_asset()])
    def publish(business_date: str, **context):
        return s.call("publish", context, business_date)

    day = resolve_business_date()
    previous = wait_for_other_writers()
    day >> previous
    for step in (extract(day), load_raw(day), scan_raw(day)):
        previous >> step
        previous = step
    for layer in LAYERS:
        step = layer_task(layer)(day)
        previous >> step
        previous = step
    previous >> publish(day)


clv_daily_refresh()
