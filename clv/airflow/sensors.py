"""The writer exclusion: a DAG run passes its gate (``wait_for_other_writers``) only when no run of
another warehouse-writing DAG holds the warehouse and no waiting one goes first.

A run *holds* the warehouse from the moment its gate succeeds until the run ends; a run whose gate
has not succeeded yet is only *waiting* and holds nothing. Counting waiting runs as holders (as a
plain "is another writer DAG running?" does) deadlocks two runs that start together: each sees the
other and both wait until their sensors time out. Instead, waiting runs go in the fixed order of
``clv.names.WRITER_DAGS``: among the waiting runs, the first DAG in that order passes once nobody
holds, the others wait for it. Every DAG has ``max_active_runs=1``, so there is at most one run
per DAG and the order is total: some waiting run can always pass, so there is no deadlock.

What each gate sees comes from the metadata database through the Task SDK: how many runs of a DAG
are running (``get_dr_count``) and the state of their gate tasks (``get_task_states``, all runs of
the DAG). The residual race: a gate's poke that returned True is seen by others as still waiting
until its success is recorded (milliseconds); a higher-priority gate that pokes in that instant
passes too. The one-slot pool still keeps their warehouse tasks apart (README, "Known limits").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clv.names import WRITER_DAGS

GATE = "wait_for_other_writers"
# A gate task in one of these states is done deciding: the run holds the warehouse (success) or is
# about to end (failed upstream).
DECIDED = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})

log = logging.getLogger("clv.dags")


@dataclass(frozen=True)
class WriterRuns:
    """The running runs of one writer DAG, as its gate tasks show them."""

    dag_id: str
    holding: int  # running runs whose gate succeeded
    waiting: int  # running runs whose gate has not decided yet


def writer_runs(ti, dag_id: str) -> WriterRuns:
    """Count another DAG's running runs that hold the warehouse and those that wait for it."""
    running = ti.get_dr_count(dag_id=dag_id, states=["running"])
    if not running:
        return WriterRuns(dag_id, 0, 0)
    gates = ti.get_task_states(dag_id=dag_id, task_ids=[GATE])
    # Runs whose gate has not decided: few (at most one is running), unlike the DAG's whole history.
    undecided = [run_id for run_id, states in gates.items() if states.get(GATE) not in DECIDED]
    waiting = ti.get_dr_count(dag_id=dag_id, run_ids=undecided, states=["running"]) if undecided else 0
    return WriterRuns(dag_id, running - waiting, waiting)


def blocker(dag_id: str, others: list[WriterRuns]) -> str | None:
    """Why a run of ``dag_id`` must keep waiting (None: it may pass), given the other writer
    DAGs' runs: another run holds the warehouse, or a waiting run of a DAG earlier in
    ``WRITER_DAGS`` goes first."""
    rank = WRITER_DAGS.index(dag_id)
    for other in others:
        if other.dag_id == dag_id:
            continue
        if other.holding:
            return f"a {other.dag_id} run holds the warehouse"
        if other.waiting and WRITER_DAGS.index(other.dag_id) < rank:
            return f"a waiting {other.dag_id} run goes first"
    return None


def may_write(context) -> bool:
    """The gate's poke: True when this run may take the warehouse."""
    ti = context["ti"]
    reason = blocker(ti.dag_id, [writer_runs(ti, d) for d in WRITER_DAGS if d != ti.dag_id])
    if reason:
        log.info("waiting for the warehouse: %s", reason)
        return False
    log.info("no other writer DAG holds the warehouse or goes first: taking it")
    return True
