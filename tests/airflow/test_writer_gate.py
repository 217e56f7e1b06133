"""The writer gate's rule (clv.airflow.sensors.blocker) on every arrangement of the writer DAGs'
runs: a run that only waits holds nothing, waiting runs go in the order of WRITER_DAGS, and some
waiting run can always pass. (Two real DAG runs started together: tests/reliability/test_s18_*.)"""

from __future__ import annotations

import itertools

from clv.airflow.sensors import WriterRuns, blocker
from clv.names import BACKUP_DAG, DAG_IDS, DAILY_DAG, DEPLOY_DAG, ROLLBACK_DAG, WRITER_DAGS


def runs(holding=(), waiting=()) -> list[WriterRuns]:
    return [WriterRuns(d, int(d in holding), int(d in waiting)) for d in WRITER_DAGS]


def test_every_dag_is_a_writer_once():
    assert sorted(WRITER_DAGS) == sorted(DAG_IDS) and len(set(WRITER_DAGS)) == len(WRITER_DAGS)


def test_waiting_runs_hold_nothing():
    # The deadlock the gate used to have: two runs waiting at once, each counting the other.
    assert blocker(DAILY_DAG, runs(waiting={DAILY_DAG, BACKUP_DAG})) is None
    assert (
        blocker(BACKUP_DAG, runs(waiting={DAILY_DAG, BACKUP_DAG}))
        == "a waiting clv_daily_refresh run goes first"
    )


def test_a_holder_blocks_everyone_else():
    for holder, other in itertools.permutations(WRITER_DAGS, 2):
        assert (
            blocker(other, runs(holding={holder}, waiting={other})) == f"a {holder} run holds the warehouse"
        )


def test_the_order_of_the_writer_dags_decides_among_waiting_runs():
    assert blocker(ROLLBACK_DAG, runs(waiting=set(WRITER_DAGS))) is None  # first in the order
    assert blocker(DEPLOY_DAG, runs(waiting={DEPLOY_DAG, BACKUP_DAG})) is None
    assert blocker(BACKUP_DAG, runs(waiting={DEPLOY_DAG, BACKUP_DAG})) is not None


def test_exactly_one_waiting_run_passes_when_nobody_holds():
    """No deadlock, no stampede: for every set of waiting runs (at most one per DAG, as
    max_active_runs=1 makes it), exactly one may pass — the earliest in WRITER_DAGS."""
    for k in range(1, len(WRITER_DAGS) + 1):
        for waiting in itertools.combinations(WRITER_DAGS, k):
            passing = [d for d in waiting if blocker(d, runs(waiting=set(waiting))) is None]
            assert passing == [min(waiting, key=WRITER_DAGS.index)], waiting
