"""
### CLV rollback (manual)
Undoes the latest promotion (from `clv_backfill`, `clv_deploy` or the CLI): prod goes back to the
model versions it served before it — a SQLMesh virtual update to those versions' tables, nothing
recomputed — and the serving file is republished. Run it again to undo the promotion before.

Refused with a one-line reason when there is nothing to roll back, when prod changed since the
promotion by other means, or when SQLMesh's janitor has already dropped the previous versions
(`snapshot_ttl` after they left prod: one week by default).

Tasks: check the params → wait for other writers → the business date (the latest loaded batch) →
roll back (`clv.rollback.roll_back`) → publish.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, task

from clv.airflow import policy, tasks
from clv.names import POOL, ROLLBACK_DAG


@dag(
    dag_id=ROLLBACK_DAG,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "manual", "rollback", "sqlmesh"],
    doc_md=__doc__,
)
def clv_rollback():
    @task(pool=POOL, retries=0)
    def roll_back(business_date: str, **context):
        from clv import rollback

        return tasks.run_step(rollback.roll_back, context, business_date)

    end = tasks.environment_params()
    day = tasks.business_date(end)
    chain(end, tasks.wait_for_other_writers(), day, roll_back(day), tasks.publish(day))


clv_rollback()
