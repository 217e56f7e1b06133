"""clv_deploy (manual): the path for model changes — plan into an isolated environment, check,
promote to prod, republish. Wiring only; the steps are `clv.pipeline` functions."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from clv import dag_support as s


@dag(
    dag_id="clv_deploy",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=s.default_args(),
    tags=["clv", "manual", "deploy", "sqlmesh"],
    doc_md=s.DEPLOY_DOC,
    params={
        "environment": Param("deploy", type="string", pattern="^[A-Za-z0-9_]+$"),
        "promote": Param(True, type="boolean", description="swap prod to the checked versions when clean"),
    },
)
def clv_deploy():
    s.environment_tasks()


clv_deploy()
