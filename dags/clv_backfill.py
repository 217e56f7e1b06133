"""
### CLV backfill (manual)
Builds the local models for a date range in an **isolated SQLMesh virtual environment**
(`environment`, default `backfill`), runs every layer's Soda checks against that environment,
reviews it against prod and stops for approval; approving swaps prod to the checked versions (a
virtual update: the seed's blue-green swap) and republishes. Prod is untouched otherwise; inspect
the environment's schemas (`marts__backfill`, ...). SQLMesh backfills models whose definition
differs from prod.

**Restate mode** (`restate` on, `models` required): reprocess unchanged models for [`start`,
`end`] after a source correction. SQLMesh restates unchanged models only in prod (in a dev
environment they share prod's version and are skipped), so this is a restatement **in place**: the
approval page says so and lists what is recomputed; after approval `promote` recomputes prod's
tables and runs every layer's checks on prod, and `publish` republishes the serving file only if
they passed.

**Params** — `start`, `end` (YYYY-MM-DD, optional: default the models' whole history),
`models` (list of model names or SQLMesh selectors such as `marts.*`, `+model`, `tag:x`; empty:
all), `environment` (never `prod`), `promote` (promote without asking, only when every check
passed), `restate` (the restate mode). The first task refuses a bad param with one line.

Tasks (`clv.airflow.tasks`, each calling one `clv.pipeline` step): check the params → wait for
other writers → the business date (`end`, else the latest loaded batch) → plan, check and review
the environment → **approve** (the review on the task's "Required actions" page; Reject or no
answer leaves prod untouched) → promote → publish. Undo a promotion with `clv_rollback`.
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
        tasks.approve(),
        tasks.promote(day),
        tasks.publish(day),
    )


clv_backfill()
