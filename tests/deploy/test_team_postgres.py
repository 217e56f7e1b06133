"""The team configuration for real: Airflow's metadata database and SQLMesh's state on a
PostgreSQL server, with clv_daily_refresh run end to end against them.

Needs a reachable server (``CLV_TEST_POSTGRES``, default postgresql://clv:clv@localhost:5432/postgres,
a role allowed to create databases); `.ci/run` installs and starts Debian's PostgreSQL and sets
``CLV_REQUIRE_POSTGRES=1`` so that CI fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

import pytest

from tests.airflow.helpers import query, small_run

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("CLV_TEST_POSTGRES", "postgresql://clv:clv@localhost:5432/postgres")


@pytest.fixture
def databases():
    import psycopg2

    try:
        admin = psycopg2.connect(PG_URL, connect_timeout=5)
    except psycopg2.OperationalError as e:
        reason = f"no PostgreSQL server at {PG_URL} ({str(e).strip().splitlines()[0]}); .ci/run starts one"
        if os.environ.get("CLV_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    admin.autocommit = True
    suffix = uuid.uuid4().hex[:8]
    names = {"airflow": f"clv_airflow_{suffix}", "sqlmesh": f"clv_sqlmesh_{suffix}"}
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f"CREATE DATABASE {name}")
    try:
        yield names
    finally:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def pg_rows(dbname: str, sql: str) -> list[tuple]:
    import psycopg2

    u = urlparse(PG_URL)
    con = psycopg2.connect(
        host=u.hostname, port=u.port or 5432, user=u.username, password=u.password, dbname=dbname
    )
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def test_daily_refresh_with_airflow_and_sqlmesh_state_on_postgresql(tmp_path, databases):
    u = urlparse(PG_URL)
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://{u.username}:{u.password}@{u.hostname}:{u.port or 5432}/{databases['airflow']}"
        ),
        "CLV_SQLMESH_STATE_HOST": u.hostname,
        "CLV_SQLMESH_STATE_PORT": str(u.port or 5432),
        "CLV_SQLMESH_STATE_USER": u.username,
        "CLV_SQLMESH_STATE_PASSWORD": u.password,
        "CLV_SQLMESH_STATE_DATABASE": databases["sqlmesh"],
    }
    data = tmp_path / "data"
    result = small_run(data, 800, "2024-06-01", env=env)
    assert "High-value customers most at risk:" in result.stdout

    # Airflow's metadata is in PostgreSQL: the run, its tasks and the pool.
    runs = pg_rows(databases["airflow"], "SELECT state FROM dag_run WHERE dag_id = 'clv_daily_refresh'")
    assert runs == [("success",)]
    states = pg_rows(
        databases["airflow"],
        "SELECT DISTINCT state FROM task_instance WHERE dag_id = 'clv_daily_refresh'",
    )
    assert states == [("success",)]
    assert pg_rows(databases["airflow"], "SELECT slots FROM slot_pool WHERE pool = 'clv_warehouse'") == [(1,)]
    assert not (data / "airflow" / "airflow.db").exists()

    # SQLMesh's state is in PostgreSQL, not in the DuckDB warehouse.
    envs = pg_rows(databases["sqlmesh"], "SELECT name FROM sqlmesh._environments")
    assert ("prod",) in envs
    in_duckdb = query(data, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sqlmesh'")[
        0
    ][0]
    assert in_duckdb == 0
    assert query(data, "SELECT count(*) FROM marts.mart_customer_360")[0][0] > 700
