"""
### CLV backup
Every day at 04:30 (UTC), after the refresh and the quality checks: a consistent copy of the
warehouse (with SQLMesh's state, when it lives there) and of the serving file, taken while no
other writer DAG runs and under the warehouse's lock, into `backups/<time>` in the data directory.
The newest `clv.backup.KEEP` scheduled backups are kept. Restore one with `clv restore <folder>`.

Tasks: wait for other writers → back up (`clv.backup.scheduled`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag, task

from clv.airflow import policy, tasks
from clv.names import BACKUP_DAG, POOL


@dag(
    dag_id=BACKUP_DAG,
    schedule="30 4 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "daily", "backup"],
    doc_md=__doc__,
)
def clv_backup():
    @task(pool=POOL)
    def back_up(**context):
        from clv import backup
        from clv import business_date as bd

        return tasks.run_step(backup.scheduled, context, bd.from_run_after(context["dag_run"].run_after))

    chain(tasks.wait_for_other_writers(), back_up())


clv_backup()
