"""The team deployment is closed by default, read from docker-compose.yaml as compose would resolve
it (tests/deploy/compose_file.py): the UIs listen on this machine only, compose refuses to start
without every secret, the readers see the serving file and nothing else, every database has its
own role, and the Celery broker wants a password."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from clv.settings import PROJECT_ROOT, secret_problem
from tests.deploy.compose_file import (
    COMPOSE,
    MissingVariable,
    env_of,
    load,
    read_env_file,
    resolve,
    secret_names,
    strong_env,
)

AIRFLOW = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor")
AIRFLOW += ("airflow-triggerer", "airflow-worker")
READERS = ("dashboard", "metabase")
INIT_DIR = "/docker-entrypoint-initdb.d/"


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of every port a service publishes."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).rsplit(":", 2)
        out.append(tuple([""] * (3 - len(parts)) + parts))
    return out


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read only) of every volume a service mounts."""
    out = []
    for mount in service.get("volumes", []):
        if isinstance(mount, dict):
            out.append((mount["source"], mount["target"], bool(mount.get("read_only"))))
            continue
        source, target, *mode = mount.split(":")
        out.append((source, target, "ro" in ",".join(mode).split(",")))
    return out


# -- the UIs listen on this machine only ---------------------------------------------------------


def test_every_published_port_is_bound_to_localhost_unless_the_operator_opts_in(compose):
    by_default = resolve(compose, strong_env())["services"]
    ports = {name: published(svc) for name, svc in by_default.items() if svc.get("ports")}
    assert set(ports) == {"airflow-apiserver", "dashboard", "metabase"}  # no database, no broker
    for name, entries in ports.items():
        for address, host_port, _ in entries:
            assert address == "127.0.0.1", f"{name} publishes {host_port} on {address or 'every interface'}"
    opted_in = resolve(compose, {**strong_env(), "CLV_BIND_ADDRESS": "0.0.0.0"})["services"]
    for name in ports:
        assert {address for address, _, _ in published(opted_in[name])} == {"0.0.0.0"}, name
    assert read_env_file()["CLV_BIND_ADDRESS"] == "127.0.0.1"


# -- compose refuses to start without every secret -----------------------------------------------


def test_compose_requires_every_secret_and_offers_no_default(compose):
    names = secret_names()
    assert len(names) >= 9, names  # postgres x4, Airflow x4, Redis
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{?([A-Z0-9_]+)", text))
    assert {n for n in used if re.search(r"(PASSWORD|SECRET|_KEY)$", n)} == set(names)
    for name in names:
        uses = re.findall(rf"(?<!\$)\$\{{?{name}\b([^}}]*)", text)
        assert uses, f"{name} is in .env.example but never used"
        for tail in uses:
            assert tail.startswith(":?") and len(tail) > 2, f"${{{name}{tail}}}: use ${{{name}:?message}}"
        # Empty (the example's value) or missing: compose refuses to start, naming the variable.
        for env in ({**strong_env(), name: ""}, {k: v for k, v in strong_env().items() if k != name}):
            with pytest.raises(MissingVariable) as refused:
                resolve(compose, env)
            assert refused.value.name == name
    resolve(compose, strong_env())  # filled in: it resolves


def test_an_unedited_env_example_is_refused_by_compose_and_by_the_placeholder_rule(compose):
    example = read_env_file()
    with pytest.raises(MissingVariable):
        resolve(compose, example)
    for name in secret_names():
        value = example[name]
        assert value == "" or secret_problem(value), f".env.example's {name} would be accepted"


# -- the readers see the serving file and nothing else -------------------------------------------


def test_readers_mount_only_the_serving_directory_read_only(compose, monkeypatch):
    from clv import settings

    services = resolve(compose, strong_env())["services"]
    for writer in ("airflow-scheduler", "airflow-worker", "airflow-init"):
        env = env_of(services[writer])
        for key in ("CLV_DATA_DIR", "CLV_SERVING_DIR"):
            monkeypatch.setenv(key, env[key])
        paths = settings.paths()  # where the writer's pipeline puts the serving file, for real
        by_target = {Path(target): (source, ro) for source, target, ro in mounts(services[writer])}
        assert by_target.get(paths.serving.parent) == ("clv-serving", False), writer
        assert by_target.get(paths.data_dir) == ("clv-data", False), writer
        assert not paths.warehouse.is_relative_to(paths.serving.parent)
        assert not paths.serving.parent.is_relative_to(paths.data_dir)
    readme = (PROJECT_ROOT / "README.md").read_text()
    for reader in READERS:
        ((source, target, read_only),) = mounts(services[reader])
        assert (source, read_only) == ("clv-serving", True), reader
        if reader == "dashboard":  # the app finds the file through clv.settings
            assert env_of(services[reader])["CLV_SERVING_DIR"] == target
        else:  # Metabase is pointed at it by hand, as the README says
            assert f"`{target}/serving.duckdb`" in readme
    # A new named volume takes the owner of the image's folder: the image's user must own it.
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"mkdir -p [^\n]*/serving\b", dockerfile)
    assert re.search(r"chown [^\n]*/serving\b", dockerfile)


def test_publish_replaces_the_serving_file_inside_its_own_directory(tmp_path, monkeypatch):
    """Why the readers mount a directory: each publish renames a new file over the old one (a new
    inode), so a single-file bind mount would keep showing the first file it saw."""
    import duckdb

    from clv import settings
    from clv.publish import publish

    monkeypatch.setenv("CLV_SERVING_DIR", str(tmp_path / "serving"))
    data = tmp_path / "data"
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.mart_clv AS SELECT 1 AS customer_id")
    publish(con, dt.date(2024, 6, 1), data)
    first = os.stat(tmp_path / "serving" / "serving.duckdb").st_ino
    con.execute("INSERT INTO marts.mart_clv VALUES (2)")
    publish(con, dt.date(2024, 6, 2), data)
    assert settings.paths(data).serving == tmp_path / "serving" / "serving.duckdb"
    assert os.listdir(tmp_path / "serving") == ["serving.duckdb"]  # nothing else, no leftovers
    assert not (data / "serving.duckdb").exists()
    assert os.stat(tmp_path / "serving" / "serving.duckdb").st_ino != first
    reader = duckdb.connect(str(tmp_path / "serving" / "serving.duckdb"), read_only=True)
    assert reader.execute("SELECT count(*) FROM mart_clv").fetchone() == (2,)
    reader.close()


def test_without_clv_serving_dir_the_serving_file_stays_in_the_data_directory(tmp_path, monkeypatch):
    from clv import settings

    monkeypatch.delenv("CLV_SERVING_DIR", raising=False)
    assert settings.paths(tmp_path).serving == tmp_path.resolve() / "serving.duckdb"


# -- every database has its own role -------------------------------------------------------------


def connections(services: dict) -> dict[str, tuple[str, str, str]]:
    """(user, password, database) of every PostgreSQL client in the stack."""
    out = {}
    for name in AIRFLOW:
        env = env_of(services[name])
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            u = urlparse(env[key])
            out[f"{name} {key}"] = (u.username, u.password, u.path.lstrip("/"))
        out[f"{name} sqlmesh"] = tuple(
            env[f"CLV_SQLMESH_STATE_{k}"] for k in ("USER", "PASSWORD", "DATABASE")
        )
    mb = env_of(services["metabase"])
    out["metabase"] = (mb["MB_DB_USER"], mb["MB_DB_PASS"], mb["MB_DB_DBNAME"])
    return out


def test_each_database_has_its_own_role_with_a_password_from_env(compose):
    env = strong_env()
    services = resolve(compose, env)["services"]
    expected = {
        "airflow": ("airflow", env["AIRFLOW_DB_PASSWORD"], "airflow"),
        "sqlmesh": ("sqlmesh", env["SQLMESH_DB_PASSWORD"], "sqlmesh"),
        "metabase": ("metabase", env["METABASE_DB_PASSWORD"], "metabase"),
    }
    for client, used in connections(services).items():
        assert used in expected.values(), f"{client} connects as {used[0]} to {used[2]}"
        assert used == expected[used[2]], client  # the database's own role and password
    assert {c[0] for c in connections(services).values()} == set(expected)  # all three in use
    assert len({p for _, p, _ in expected.values()} | {env["POSTGRES_PASSWORD"]}) == 4

    # The server creates the roles on its first start, from the same variables.
    pg = services["postgres"]
    pg_env = env_of(pg)
    for var in ("POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "SQLMESH_DB_PASSWORD", "METABASE_DB_PASSWORD"):
        assert pg_env[var] == env[var], var
    scripts = [(s, t) for s, t, _ in mounts(pg) if t.startswith(INIT_DIR)]
    assert len(scripts) == 1 and scripts[0][1].endswith(".sh"), scripts
    script = PROJECT_ROOT / scripts[0][0]
    assert os.access(script, os.X_OK), f"{script} must be executable (the image runs it, not sources it)"
    sql = script.read_text()
    for role, _, database in expected.values():
        var = f"{role.upper()}_DB_PASSWORD"
        assert re.search(rf"CREATE ROLE {role} LOGIN PASSWORD :'(\w+)'", sql), role
        psql_var = re.search(rf"CREATE ROLE {role} LOGIN PASSWORD :'(\w+)'", sql)[1]
        assert re.search(rf'-v {psql_var}="\${var}"', sql), f"{role}'s password must come from {var}"
        assert f"CREATE DATABASE {database} OWNER {role};" in sql
        assert f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;" in sql
    assert "GRANT" not in sql.upper() and "SUPERUSER" not in sql.replace("NOSUPERUSER", "")


# -- the Celery broker wants a password ----------------------------------------------------------


def test_the_celery_broker_requires_the_redis_password(compose):
    env = strong_env()
    services = resolve(compose, env)["services"]
    redis = services["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--requirepass") + 1] == env["REDIS_PASSWORD"]
    # The healthcheck authenticates (REDISCLI_AUTH) and wants PONG, not a NOAUTH error.
    assert env_of(redis)["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]
    assert "PONG" in " ".join(redis["healthcheck"]["test"])
    for name in AIRFLOW:
        broker = urlparse(env_of(services[name])["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.password) == ("redis", "redis", env["REDIS_PASSWORD"])
