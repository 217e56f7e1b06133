"""Airflow for this project, on one machine: its home under the data directory, its settings,
and the bootstrap (metadata database, the warehouse pool, the UI login).

Everything is set through ``AIRFLOW__*`` environment variables on the Airflow processes we start,
so nothing outside the data directory is touched. A variable already set in the environment wins
(that is how the team deployment points Airflow at PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from clv import settings
from clv.business_date import logical_date
from clv.errors import UserError
from clv.names import POOL

POOL_DESCRIPTION = "One slot: every task that opens the DuckDB warehouse (one writer at a time)"
ADMIN = "admin"


def home(data_dir: Path | None = None) -> Path:
    return settings.airflow_home(data_dir)


def environ(data_dir: Path | None = None) -> dict[str, str]:
    """The environment for every Airflow process of this project."""
    paths = settings.paths(data_dir)
    h = home(paths.data_dir)
    env = dict(os.environ)
    defaults = {
        "AIRFLOW_HOME": str(h),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(h / "passwords.json"),
        "AIRFLOW__API__PORT": str(settings.airflow_port()),
        "AIRFLOW__API__HOST": "127.0.0.1",  # this machine only; the docker-compose stack opens it
        "AIRFLOW__API__BASE_URL": f"http://localhost:{settings.airflow_port()}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{settings.airflow_port()}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    for k, v in defaults.items():
        env.setdefault(k, v)
    # The pipeline's own settings, inherited by every task process.
    env["CLV_DATA_DIR"] = str(paths.data_dir)
    env.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")
    env.setdefault("MAX_FORK_WORKERS", "1")
    env.setdefault("PYTHONPATH", str(settings.PROJECT_ROOT))
    # `airflow standalone` starts its components as `airflow ...` from PATH: ours comes first.
    env["PATH"] = os.pathsep.join([str(Path(airflow_bin()).parent), env.get("PATH", "")])
    return env


def airflow_bin() -> str:
    exe = Path(sys.executable).with_name("airflow")
    return str(exe) if exe.exists() else (shutil.which("airflow") or "airflow")


def airflow(
    args: list[str], data_dir: Path | None = None, log: Path | None = None, check: bool = True, **kw
) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command with the project's environment."""
    env = environ(data_dir)
    if log is None:
        return subprocess.run([airflow_bin(), *args], env=env, check=check, text=True, **kw)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        return subprocess.run(
            [airflow_bin(), *args], env=env, check=check, stdout=f, stderr=subprocess.STDOUT, **kw
        )


def admin_password(data_dir: Path | None = None) -> str:
    """The UI login's password: ``CLV_AIRFLOW_PASSWORD``, else one generated at bootstrap."""
    path = home(data_dir) / "passwords.json"
    if settings.airflow_password():
        return settings.airflow_password()
    if path.exists():
        return json.loads(path.read_text())[ADMIN]
    return ""


def bootstrap(data_dir: Path | None = None, force: bool = False) -> Path:
    """Create (or migrate) the metadata database, the warehouse pool and the admin login.

    Idempotent; a stamp file skips the work when nothing changed. Returns the Airflow home.
    """
    h = home(data_dir)
    h.mkdir(parents=True, exist_ok=True)
    pw_file = h / "passwords.json"
    password = settings.airflow_password() or (
        json.loads(pw_file.read_text())[ADMIN] if pw_file.exists() else secrets.token_urlsafe(12)
    )
    pw_file.write_text(json.dumps({ADMIN: password}))
    pw_file.chmod(0o600)
    env = environ(data_dir)
    stamp = h / ".bootstrapped"
    key = json.dumps(
        {
            "db": env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite"),
            "dags": env["AIRFLOW__CORE__DAGS_FOLDER"],
            "pool": POOL,
        }
    )
    if not force and stamp.exists() and stamp.read_text() == key:
        return h
    logs = h / "logs"
    _step(["db", "migrate"], data_dir, logs / "bootstrap-db-migrate.log")
    _step(["pools", "set", POOL, "1", POOL_DESCRIPTION], data_dir, logs / "bootstrap-pool.log")
    stamp.write_text(key)
    return h


def _step(args: list[str], data_dir: Path | None, log: Path) -> None:
    result = airflow(args, data_dir, log=log, check=False)
    if result.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise UserError(f"`airflow {' '.join(args)}` failed (log: {log}):\n{tail}")


def dags_test(
    dag_id: str, business_date: dt.date, data_dir: Path | None = None, conf: dict | None = None
) -> tuple[int, Path]:
    """Run a DAG end to end in this machine's Airflow (``airflow dags test``); return the exit
    code and the log file."""
    if conf is None:
        conf = {"business_date": business_date.isoformat()}
    log = home(data_dir) / "logs" / f"dags-test-{dag_id}-{business_date.isoformat()}.log"
    result = airflow(
        ["dags", "test", dag_id, logical_date(business_date).isoformat(), "--conf", json.dumps(conf)],
        data_dir,
        log=log,
        check=False,
    )
    return result.returncode, log


def pool_slots(data_dir: Path | None = None) -> int | None:
    """The warehouse pool's slots as the metadata database has them (None: no such pool)."""
    result = airflow(["pools", "get", POOL, "--output", "json"], data_dir, check=False, capture_output=True)
    if result.returncode != 0:
        return None
    rows = json.loads(result.stdout or "[]")
    return int(rows[0]["slots"]) if rows else None
