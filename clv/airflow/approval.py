"""The approval task of a deploy or a backfill: Airflow's human-in-the-loop ``ApprovalOperator``
whose page (the task's "Required actions") shows the candidate's review (``clv.review``,
rendered by the plan task and read from its XCom), and whose answer decides the promotion.

- **Approve**: the downstream ``promote`` and ``publish`` run.
- **Reject**: the operator skips ``promote``, so ``publish`` is skipped too; prod, the serving file
  and the environment are left as they are.
- **No answer** within ``CLV_APPROVAL_TIMEOUT_MINUTES``: the scheduler answers with the default,
  Reject.
- A restatement (the ``restate`` param) is reviewed before anything runs: SQLMesh restates
  unchanged models in prod only, so the page says the restatement is in place, and prod's checks
  after it decide the publish; ``promote`` approves it without asking.
- With the ``promote`` param set, the task approves without asking and says so in its log: the
  unattended path. It only gets that far when every check passed — a candidate with a failed
  error-level check never reaches this task: the plan task fails (the review is in its log and
  beside the reports), as every failed check stops what comes after it. Warnings do not block,
  as everywhere in the pipeline; a person reviewing sees them first.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator

from clv import settings

PLAN_TASK = "plan_and_check_environment"
_STAGED = "ti.xcom_pull(task_ids='" + PLAN_TASK + "')"

SUBJECT = (
    "{% if params.get('restate') %}Restate {{ (" + _STAGED + " or {}).get('restate', []) | join(', ') }} "
    "in prod, in place, for {{ (" + _STAGED + " or {}).get('start') }}.."
    "{{ (" + _STAGED + " or {}).get('end') }}?{% else %}"
    "Promote {{ params.environment }} to prod? "
    "{{ (" + _STAGED + " or {}).get('changed', []) | length }} models differ from prod{% endif %}"
)
FOOTER = """
---
{{% if params.get('restate') %}}
**Approve** restates in prod, in place: the intervals above are cleared and recomputed by a prod run,
every layer's checks run on prod, and the serving file is republished only if they pass. **Reject**,
or no answer within {minutes:g} minutes, leaves prod and the serving file as they are.
{{% else %}}

**Approve** promotes `{{{{ params.environment }}}}` to prod — a SQLMesh virtual update: prod's views
are pointed at the tables checked above, nothing is recomputed — and republishes the serving file.
**Reject**, or no answer within {minutes:g} minutes, leaves prod and the serving file as they are and
keeps `{{{{ params.environment }}}}` for inspection (`marts__{{{{ params.environment }}}}`, ...). Undo a
promotion with the `clv_rollback` DAG.
{{% endif %}}
While this task waits, the run holds the warehouse: other writer DAGs wait behind it.
"""


class ReviewApproval(ApprovalOperator):
    """Ask a person to approve the promotion, unless the ``promote`` param asks for an
    unattended promotion and every check passed."""

    def execute(self, context):
        staged = context["ti"].xcom_pull(task_ids=PLAN_TASK) or {}
        if context["params"].get("promote") and staged.get("in_place"):
            self.log.info(
                "promote is set: restating in prod without asking; prod's checks after the "
                "restatement decide whether the serving file is republished"
            )
            return {"chosen_options": [self.APPROVE], "responded_by_user": None, "unattended": True}
        if context["params"].get("promote") and staged.get("ok"):
            warned = staged.get("warned") or 0
            self.log.info(
                "promote is set and every check passed: promoting without asking%s",
                f" ({warned} checks warned: see the review above)" if warned else "",
            )
            return {"chosen_options": [self.APPROVE], "responded_by_user": None, "unattended": True}
        return super().execute(context)


def approval_task() -> ReviewApproval:
    """The approval task (task id ``approve``), for the DAG being defined."""
    minutes = settings.approval_timeout_minutes()
    return ReviewApproval(
        task_id="approve",
        subject=SUBJECT,
        body="{{ (" + _STAGED + " or {}).get('review_markdown', '') }}" + FOOTER.format(minutes=minutes),
        defaults=ApprovalOperator.REJECT,
        response_timeout=dt.timedelta(minutes=minutes),
        retries=0,
    )
