"""
### CLV quarantine reprocess (manual)
A data steward's corrected rows go back in. Start from `clv quarantine list` and
`clv quarantine export --batch B --source S --out FILE.csv`, correct the values (keep the
`_corrects` column), then trigger this DAG with the corrected file's path: the file is written to
the landing folder as a new batch `<B>-fix-<n>` that references the original one, **loaded**
(checked against the contract again; the lineage of each corrected row goes to
`ops.quarantine_corrections`), the raw zone is **checked**, each SQLMesh layer is **run and
checked** — the staging step restates the original batch date, so every layer downstream is
recomputed with the corrections — and the marts are **published**.

`ops.quarantine_reconciliation` then shows each quarantined row as `reprocessed` or still
`quarantined`. The same as `clv quarantine reprocess FILE.csv`.

**Params** — `file` (path of the corrected CSV, as the workers see it); `business_date`
(YYYY-MM-DD, optional): the date the layers run for, default the latest loaded batch.

Each task calls one `clv.pipeline` step through `clv.airflow.tasks.run_step`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, task

from clv.airflow import params, policy, tasks
from clv.airflow.assets import mart_assets, raw_assets, serving_asset
from clv.names import POOL, QUARANTINE_DAG


@dag(
    dag_id=QUARANTINE_DAG,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "manual", "quarantine"],
    doc_md=__doc__,
    params=params.quarantine_reprocess(),
)
def clv_quarantine_reprocess():
    @task(retries=0)
    def resolve_business_date(**context) -> str:
        return tasks.latest_loaded_or_param(context, "business_date")

    @task(pool=POOL, retries=0)
    def write_correction(business_date: str, **context):
        from clv import pipeline

        return tasks.run_step(pipeline.write_correction, context, business_date, context["params"]["file"])

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
        write_correction(day),
        load_raw(day),
        scan_raw(day),
        tasks.transform_layer("staging")(day),
        tasks.transform_layer("core")(day),
        tasks.transform_layer("intermediate")(day),
        tasks.transform_layer("marts")(day),
        publish(day),
    )


clv_quarantine_reprocess()
