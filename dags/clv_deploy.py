"""
### CLV deploy (manual)
The path for model changes: `plan` the local models into an isolated environment (`deploy` by
default), run every layer's checks there, then promote to prod and republish the serving file.
Waits while another warehouse-writing DAG runs, so a deploy and the scheduled refresh never
overlap.

**Params** — `environment`, `promote` (default on: promote when every check passed).

Tasks (`clv.airflow.tasks`, each calling one `clv.pipeline` step): resolve the business date →
wait for other writers → plan and check the environment → (if `promote`) promote → publish.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, chain, dag

from clv.airflow import policy, tasks
from clv.names import DEPLOY_DAG, ENVIRONMENT_PATTERN


@dag(
    dag_id=DEPLOY_DAG,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "manual", "deploy", "sqlmesh"],
    doc_md=__doc__,
    params={
        "environment": Param("deploy", type="string", pattern=ENVIRONMENT_PATTERN),
        "promote": Param(True, type="boolean", description="swap prod to the checked versions when clean"),
    },
)
def clv_deploy():
    day = tasks.environment_business_date()
    chain(
        day,
        tasks.wait_for_other_writers(),
        tasks.plan_and_check_environment(day),
        tasks.promotion_requested(),
        tasks.promote(day),
        tasks.publish(day),
    )


clv_deploy()
