"""The writer exclusion: a DAG run waits while another warehouse-writing DAG runs."""

from __future__ import annotations

from clv.names import WRITER_DAGS


def other_writers_running(context) -> int:
    """Running runs of the other DAGs that write the warehouse (deploy, backfill, daily, quality)."""
    ti = context["ti"]
    return sum(ti.get_dr_count(dag_id=d, states=["running"]) for d in WRITER_DAGS if d != ti.dag_id)
