"""Airflow for this project, on one machine: its home under the data directory, its settings,
and the bootstrap (metadata database, the warehouse pool, the UI login).

Everything is set through ``AIRFLOW__*`` environment variables on the Airflow processes we start,
so nothing outside the data directory is touched. A variable already set in the environment wins
(that is how the team deployment points Airflow at PostgreSQL).

The team deployment (``CLV_DEPLOYMENT=team``, set by docker-compose.yaml) runs ``clv bootstrap``
before anything else starts; it refuses a missing, short or placeholder secret first
(``TEAM_SECRETS``, ``clv.settings.secret_problem``), so a stack started with the example's values
never comes up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from clv import settings
from clv.errors import UserError
from clv.names import POOL, SUMMARY_PREFIX

POOL_DESCRIPTION = "One slot: every task that opens the DuckDB warehouse (one writer at a time)"
ADMIN = "admin"
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
GENERATE_FERNET = "python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"


class Secret(NamedTuple):
    """A secret of the team deployment as bootstrap sees it."""

    variable: str  # what the process reads
    env_file: str  # where docker-compose.yaml takes it from: the variable in .env
    kind: str = "text"  # text | url (the password of a URL) | fernet
    required: bool = False  # the others are checked when set (a URL may have no password)


# Every secret docker-compose.yaml hands to airflow-init (tests/deploy hold the table to the file).
TEAM_SECRETS = (
    Secret("CLV_AIRFLOW_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", required=True),
    Secret("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET", required=True),
    Secret("AIRFLOW__API__SECRET_KEY", "AIRFLOW_API_SECRET_KEY", required=True),
    Secret("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY", "fernet"),
    Secret("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW_DB_PASSWORD", "url"),
    Secret("AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW_DB_PASSWORD", "url"),
    Secret("AIRFLOW__CELERY__BROKER_URL", "REDIS_PASSWORD", "url"),
    Secret("CLV_SQLMESH_STATE_PASSWORD", "SQLMESH_DB_PASSWORD"),
    Secret("METABASE_DB_PASSWORD", "METABASE_DB_PASSWORD"),
    Secret("POSTGRES_PASSWORD", "POSTGRES_PASSWORD"),
)


def home(data_dir: Path | None = None) -> Path:
    return settings.airflow_home(data_dir)


def environ(data_dir: Path | None = None) -> dict[str, str]:
    """The environment for every Airflow process of this project."""
    paths = settings.paths(data_dir)
    h = home(paths.data_dir)
    env = dict(os.environ)
    defaults = {
        "AIRFLOW_HOME": str(h),
        # Named here, not left to the airflow.cfg Airflow writes on first start: that file keeps
        # the absolute path it was written with, so a copied or moved data directory would go on
        # using the original's metadata database.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _home_db(h),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.PROJECT_ROOT / "plugins"),  # the run notes
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
    defaults.update(sizing())
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


def sizing(cpus: int | None = None) -> dict[str, str]:
    """Airflow's processes sized to this machine rather than to Airflow's defaults (32 executor
    workers, about 1.6 GB idle): as many task slots as cores (at least 2: a sensor waits while
    one warehouse task runs; the warehouse pool has one slot anyway), one API worker, at most
    two DAG-parsing processes, and a task's calls to the API server given 30 s rather than 5: on
    a busy small machine with SQLite (one writer) a task's first call waited longer, and the task
    failed before it started."""
    cpus = max(1, cpus or os.cpu_count() or 1)
    return {
        "AIRFLOW__CORE__PARALLELISM": str(max(2, cpus)),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(min(2, cpus)),
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }


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

    Idempotent; a stamp file skips the work when nothing changed. Returns the Airflow home. In the
    team deployment, refuses weak secrets before it writes anything (``check_team_secrets``).
    """
    if settings.deployment() == "team":
        check_team_secrets()
    h = home(data_dir)
    h.mkdir(parents=True, exist_ok=True)
    pw_file = h / "passwords.json"
    logins = json.loads(pw_file.read_text()) if pw_file.exists() else {}  # keeps other users' too
    password = settings.airflow_password() or logins.get(ADMIN) or secrets.token_urlsafe(12)
    _write_private(pw_file, json.dumps({**logins, ADMIN: password}))
    env = environ(data_dir)
    stamp = h / ".bootstrapped"
    key = _stamp_key(env)
    if not force and stamp.exists() and stamp.read_text() == key:
        return h
    logs = h / "logs"
    _step(["db", "migrate"], data_dir, logs / "bootstrap-db-migrate.log")
    _step(["pools", "set", POOL, "1", POOL_DESCRIPTION], data_dir, logs / "bootstrap-pool.log")
    stamp.write_text(key)
    return h


def check_team_secrets() -> None:
    """Refuse, in one line naming each variable (never its value), every secret of
    ``TEAM_SECRETS`` that is required and missing, or set but short, a placeholder or malformed."""
    problems: dict[str, str] = {}
    for secret in TEAM_SECRETS:
        raw = settings.secret(secret.variable)
        value = (urlsplit(raw).password or "") if secret.kind == "url" else raw
        name = secret.env_file
        if secret.variable != secret.env_file:
            where = "the password in " if secret.kind == "url" else ""
            name += f" ({where}{secret.variable})"
        if not value:
            if secret.required:
                problems.setdefault(secret.env_file, f"{name} is not set")
            continue
        problem = settings.secret_problem(value)
        if problem is None and secret.kind == "fernet" and not _is_fernet_key(value):
            problem = f"is not a Fernet key (generate one with {GENERATE_FERNET})"
        if problem:
            problems.setdefault(secret.env_file, f"{name} {problem}")
    if problems:
        raise UserError(
            "; ".join(problems.values())
            + f". Set strong secrets in .env, each generated with {GENERATE}"
            + " (docker-compose.yaml; README: The team deployment)"
        )


def _is_fernet_key(value: str) -> bool:
    from cryptography.fernet import Fernet

    try:
        Fernet(value)
    except (ValueError, TypeError):
        return False
    return True


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner may read, from its first byte whatever the umask: a
    new file created with mode 0600, renamed over ``path`` (an older file keeps no say)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _home_db(h: Path) -> str:
    """The embedded metadata database: SQLite in the Airflow home."""
    return f"sqlite:///{h / 'airflow.db'}"


def _stamp_key(env: dict[str, str]) -> str:
    """What the metadata database was bootstrapped for; bootstrap redoes the work when it changes
    (a copied data directory keeps its stamp: its database is the home's own SQLite file)."""
    db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return json.dumps(
        {
            "db": "sqlite" if db == _home_db(Path(env["AIRFLOW_HOME"])) else db,
            "dags": env["AIRFLOW__CORE__DAGS_FOLDER"],
            "pool": POOL,
        }
    )


def _step(args: list[str], data_dir: Path | None, log: Path) -> None:
    result = airflow(args, data_dir, log=log, check=False)
    if result.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise UserError(f"`airflow {' '.join(args)}` failed (log: {log}):\n{tail}")


def dags_test_environ(data_dir: Path | None = None) -> dict[str, str]:
    """The environment of an ``airflow dags test`` process: the project's, flagged so that the
    daily DAG leaves its deadline alert off (``clv.settings.in_dags_test``)."""
    return {**environ(data_dir), settings.DAGS_TEST_FLAG: "1"}


def dags_test(
    dag_id: str,
    business_date: dt.date,
    data_dir: Path | None = None,
    conf: dict | None = None,
    echo: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> tuple[int, Path]:
    """Run a DAG end to end in this machine's Airflow (``airflow dags test``); return the exit
    code and the log file. ``echo`` receives a line as each task starts and ends (``Progress``).

    The run carries the time it really ran (its logical date is now), so the UI shows its true
    start, end and duration; the business date it processes is in its conf, its log and its note.
    A run that stops at an approval task waits for its answer (through the UI or the API);
    ``timeout`` (seconds) bounds the wait: the run is killed and ``subprocess.TimeoutExpired`` raised.
    """
    if conf is None:
        conf = {"business_date": business_date.isoformat()}
    log = home(data_dir) / "logs" / f"dags-test-{dag_id}-{business_date.isoformat()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(echo) if echo else None
    command = [airflow_bin(), "dags", "test", dag_id, "--conf", json.dumps(conf)]
    with (
        log.open("w") as f,
        subprocess.Popen(
            command,
            env=dags_test_environ(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc,
    ):
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            proc.kill()

        timer = threading.Timer(timeout, stop) if timeout else None
        if timer:
            timer.start()
        try:
            for line in proc.stdout:
                f.write(line)
                if progress:
                    progress.feed(line)
        finally:
            if timer:
                timer.cancel()
    if fired.is_set():
        raise subprocess.TimeoutExpired(command, timeout)
    return proc.returncode, log


class Progress:
    """Turns the output of ``airflow dags test`` into one line per task start and end, with its
    time, rows and checks (from the task's ``clv summary:`` line, ``clv.airflow.tasks``)."""

    START = "[DAG TEST] starting task_id="
    END = "[DAG TEST] end task task_id="

    def __init__(self, echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.echo, self.clock = echo, clock
        self.started: dict[str, float] = {}
        self.summaries: dict[str, str] = {}
        self.failed: set[str] = set()

    def feed(self, line: str) -> None:
        if self.START in line:
            task_id = line.split(self.START, 1)[1].split()[0]
            self.started[task_id] = self.clock()
            self.echo(f"  {task_id} ...")
        elif SUMMARY_PREFIX in line:
            text = line.split(SUMMARY_PREFIX, 1)[1].split(" [clv.dags]", 1)[0].strip()
            self.summaries[text.split()[0]] = text
        elif "Task failed" in line or "AirflowFailException" in line or "Marking task as FAILED" in line:
            self.failed.update(t for t in self.started if t not in self.summaries)
        elif self.END in line:
            task_id = line.split(self.END, 1)[1].split()[0]
            if task_id in self.summaries:
                self.echo(f"  {self.summaries[task_id]}")
            else:
                now = self.clock()
                seconds = now - self.started.get(task_id, now)
                outcome = "FAILED after" if task_id in self.failed else "done in"
                self.echo(f"  {task_id} {outcome} {seconds:,.1f} s")


def pool_slots(data_dir: Path | None = None) -> int | None:
    """The warehouse pool's slots as the metadata database has them (None: no such pool)."""
    result = airflow(["pools", "get", POOL, "--output", "json"], data_dir, check=False, capture_output=True)
    if result.returncode != 0:
        return None
    rows = json.loads(result.stdout or "[]")
    return int(rows[0]["slots"]) if rows else None
