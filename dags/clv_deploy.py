"""
### CLV deploy (manual)
The path for model changes: `plan` the local models into an isolated environment (`deploy` by
default), run every layer's checks there, review the candidate against prod, and — once approved —
promote it to prod and republish the serving file. Waits while another writer DAG's run holds the
warehouse, so a deploy and the scheduled refresh never overlap.

**Params** — `environment` (never `prod`), `promote` (off by default: the run stops at the approval
page; on: promote without asking, only when every check passed). The first task refuses a bad param with one line.

Tasks (`clv.airflow.tasks`, each calling one `clv.pipeline` step): check the params → wait for
other writers → the business date (the latest loaded batch) → plan, check and review the
environment → **approve** (the review on the task's "Required actions" page: plan, data diff of
the changed marts, checks failures first, business figures prod vs candidate; Reject or no answer
leaves prod untouched) → promote → publish. Undo a promotion with `clv_rollback`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag

from clv.airflow import params, policy, tasks
from clv.names import DEPLOY_DAG


@dag(
    dag_id=DEPLOY_DAG,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "manual", "deploy", "sqlmesh"],
    doc_md=__doc__,
    params=params.deploy(),
)
def clv_deploy():
    end = tasks.environment_params()
    day = tasks.business_date(end)
    chain(
        end,
        tasks.wait_for_other_writers(),
        day,
        tasks.plan_and_check_environment(day),
        tasks.approve(),
        tasks.promote(day),
        tasks.publish(day),
    )


clv_deploy()
