"""
### CLV backfill (manual)
Builds the local models for a date range in an **isolated SQLMesh virtual environment**
(`environment`, default `backfill`), runs every layer's Soda checks against that environment,
and — only if `promote` is set and everything passed — swaps prod to the checked versions (a
virtual update: the seed's blue-green swap). Prod is untouched otherwise; inspect the environment's
schemas (`marts__backfill`, ...) first. SQLMesh backfills models whose definition differs from
prod; to reprocess unchanged models, restate them in prod (`sqlmesh plan --restate-model`).

**Params** — `start`, `end` (YYYY-MM-DD, optional: default the models' whole history),
`models` (list of model names or SQLMesh selectors such as `marts.*`, `+model`, `tag:x`; empty:
all), `environment` (never `prod`), `promote`. The first task refuses a bad param with one line.

Tasks (`clv.airflow.tasks`, each calling one `clv.pipeline` step): check the params → wait for
other writers → the business date (`end`, else the latest loaded batch) → plan and check the
environment → (if `promote`) promote → publish. Undo a promotion with `clv_rollback`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import chain, dag

from clv.airflow import params, policy, tasks
from clv.names import BACKFILL_DAG


@dag(
    dag_id=BACKFILL_DAG,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=policy.default_args(),
    tags=["clv", "manual", "backfill", "sqlmesh"],
    doc_md=__doc__,
    params=params.backfill(),
)
def clv_backfill():
    end = tasks.environment_params()
    day = tasks.business_date(end)
    chain(
        end,
        tasks.wait_for_other_writers(),
        day,
        tasks.plan_and_check_environment(day),
        tasks.promotion_requested(),
        tasks.promote(day),
        tasks.publish(day),
    )


clv_backfill()
