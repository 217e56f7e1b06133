"""Every setting in one place, read from environment variables with defaults that work from a clone.

Paths derive from one data directory (``CLV_DATA_DIR``, default ``./data`` under the working
directory) so that a whole deployment can be relocated by one variable. Every variable the
project reads is read here, when it is needed (never at import, so a malformed value never breaks
`clv --help`), and a malformed value is a ``SettingError``: one line naming the variable, exit
code 2 in the CLI, no retry in Airflow. (SQLMesh's ``config.yaml`` reads the variables this
project sets for it: ``CLV_WAREHOUSE``, ``CLV_SPARK_DIR``, ``CLV_DUCKDB_MEMORY_LIMIT`` and the
team deployment's ``CLV_SQLMESH_STATE_*``.)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from clv.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQLMESH_PROJECT = PROJECT_ROOT / "sqlmesh_project"
SEEDS_DIR = SQLMESH_PROJECT / "seeds"


@dataclass(frozen=True)
class Paths:
    """The places the pipeline reads and writes, all under one data directory."""

    data_dir: Path

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    @property
    def truth(self) -> Path:
        return self.data_dir / "truth"

    @property
    def state(self) -> Path:
        return self.data_dir / "state"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def serving(self) -> Path:
        return serving_dir(self.data_dir) / "serving.duckdb"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"

    @property
    def spark(self) -> Path:
        """The Spark gateway's files: warehouse, metastore, raw zone export, SQLMesh state."""
        return self.data_dir / "spark"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: an explicit override, else ``CLV_DATA_DIR``, else ``./data``."""
    raw = override if override is not None else os.environ.get("CLV_DATA_DIR", "data")
    return Path(raw).expanduser().resolve()


def paths(override: str | os.PathLike[str] | None = None) -> Paths:
    return Paths(data_dir(override))


class SettingError(UserError):
    """An environment variable holds a value the pipeline cannot use."""


def _get(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _number(name: str, default: str, kind=float, minimum: float = 0, what: str = "a number"):
    raw = _get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not {what}") from None
    if not value >= minimum:
        raise SettingError(f"{name}={raw!r} is not {what}")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (_get(name, default) or default).lower()
    if value not in choices:
        raise SettingError(f"{name}={os.environ.get(name)!r} is not one of {', '.join(choices)}")
    return value


GATEWAYS = ("duckdb", "spark")


def sqlmesh_gateway() -> str:
    """The SQLMesh gateway the models run on (``CLV_SQLMESH_GATEWAY``, default duckdb)."""
    gateway = os.environ.get("CLV_SQLMESH_GATEWAY", "").strip().lower() or "duckdb"
    if gateway not in GATEWAYS:
        raise SettingError(
            f"CLV_SQLMESH_GATEWAY={gateway!r} is not a gateway; use one of {', '.join(GATEWAYS)}"
        )
    return gateway


def customers() -> int:
    """Customers in the generated history (``CLV_CUSTOMERS``, default 100,000; `make run
    CUSTOMERS=…` sets it)."""
    return _number("CLV_CUSTOMERS", "100000", int, 1, "a number of customers (1 or more)")


def source_mode() -> str:
    """``CLV_SOURCE``: ``generator`` (default, the synthetic sources produce each business day's
    batch) or ``landing`` (files are delivered into the landing directory by someone else)."""
    return _choice("CLV_SOURCE", "generator", ("generator", "landing"))


def chaos() -> str:
    """Fault injection of a history the daily DAG generates (``CLV_CHAOS``, default realistic)."""
    return _choice("CLV_CHAOS", "realistic", ("none", "realistic", "heavy"))


def lock_wait_seconds() -> float:
    """How long a writer waits for the warehouse held by another process (``CLV_LOCK_WAIT_SECONDS``,
    default 30)."""
    return _number("CLV_LOCK_WAIT_SECONDS", "30", float, 0, "a number of seconds >= 0")


def max_rows_per_file() -> int | None:
    """The loader's count guard (``CLV_MAX_ROWS_PER_FILE``; unset: no limit)."""
    if _get("CLV_MAX_ROWS_PER_FILE") is None:
        return None
    return _number("CLV_MAX_ROWS_PER_FILE", "0", int, 1, "a number of rows (1 or more)")


def retry_delay_seconds() -> float:
    """The first retry delay of extract and load (``CLV_RETRY_DELAY_SECONDS``, default 20 s).
    Read when the DAG files are parsed; tests shorten it to watch a real retry in seconds."""
    return _number("CLV_RETRY_DELAY_SECONDS", "20", float, 0, "a number of seconds >= 0")


def deadline_minutes() -> float:
    """``CLV_DEADLINE_MINUTES`` (default 210): the daily refresh must have published the serving
    file this long after its scheduled 02:30 start (06:00), or a deadline alert goes out while the
    run is still going. Read when the DAG files are parsed."""
    return _number("CLV_DEADLINE_MINUTES", "210", float, 1, "a number of minutes >= 1")


DAGS_TEST_FLAG = "CLV_IN_DAGS_TEST"


def in_dags_test() -> bool:
    """Set (``CLV_IN_DAGS_TEST=1``) by ``clv.airflow.home.dags_test`` for the ``airflow dags test``
    process and its DAG parsing: Airflow 3.3.2's ``dag.test`` fails at the end of a run of a DAG
    with a deadline alert (it looks the alert up by the unsaved definition), so those runs go
    without one."""
    return _get(DAGS_TEST_FLAG) == "1"


def force_refit() -> bool:
    """``CLV_FORCE_REFIT=1``: the fitted models (the churn model, the renewal model) refit on this
    run whatever the age of their stored fit (the variable ``model_refit_days`` sets the cadence,
    sqlmesh_project/macros/refit.py). Read when the models run, so it needs no plan."""
    value = (_get("CLV_FORCE_REFIT", "0") or "0").lower()
    if value not in ("0", "1", "false", "true"):
        raise SettingError(f"CLV_FORCE_REFIT={value!r} is not 0 or 1")
    return value in ("1", "true")


def reuse_sqlmesh_context() -> bool:
    """``CLV_REUSE_SQLMESH_CONTEXT`` (default 1): the layer steps of one process share one loaded
    SQLMesh context (``clv.transform.shared_context``); 0 loads one per step."""
    value = (_get("CLV_REUSE_SQLMESH_CONTEXT", "1") or "1").lower()
    if value not in ("0", "1", "false", "true"):
        raise SettingError(f"CLV_REUSE_SQLMESH_CONTEXT={value!r} is not 0 or 1")
    return value in ("1", "true")


def approval_timeout_minutes() -> float:
    """How long a deploy's or backfill's approval task waits for an answer before it counts as a
    reject (``CLV_APPROVAL_TIMEOUT_MINUTES``, default 120). Read when the DAG files are parsed."""
    return _number("CLV_APPROVAL_TIMEOUT_MINUTES", "120", float, 1, "a number of minutes >= 1")


def health_history_days() -> int:
    """How many business dates of check outcomes, metric history, anomaly verdicts and model run
    times the serving file keeps for the dashboard's data-health page (``CLV_HEALTH_HISTORY_DAYS``,
    default 60). Read at each publish."""
    return _number("CLV_HEALTH_HISTORY_DAYS", "60", int, 1, "a number of business dates (1 or more)")


def alert_hook() -> str | None:
    """``CLV_ALERT_HOOK=package.module:function``: called with every alert (a dict)."""
    return _get("CLV_ALERT_HOOK")


SMTP_SECURITY = {"starttls": 587, "ssl": 465, "none": 25}  # mode -> default port


@dataclass(frozen=True)
class Notify:
    """Where alerts are sent (``clv.notify``); read by ``notify_settings``. Nothing is set by
    default, and then nothing is sent."""

    slack_webhook_url: str | None  # CLV_SLACK_WEBHOOK_URL: the default Slack incoming webhook
    slack_conn_id: str | None  # CLV_SLACK_CONN_ID: ... or an Airflow connection (slackwebhook)
    smtp_host: str | None  # CLV_SMTP_HOST
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_security: str  # starttls | ssl | none
    smtp_from: str
    smtp_conn_id: str | None  # CLV_SMTP_CONN_ID: an Airflow connection (smtp) instead of CLV_SMTP_*
    email_to: tuple[str, ...]  # CLV_NOTIFY_EMAIL_TO: the default owners' addresses
    owners_file: Path | None  # CLV_NOTIFY_OWNERS: who gets which alert (YAML)
    level: str  # CLV_NOTIFY_LEVEL: warning (warnings and errors) or error
    remind_hours: float  # CLV_NOTIFY_REMIND_HOURS: an open problem is sent again at most this often
    resolved: bool  # CLV_NOTIFY_RESOLVED: one message when a problem clears
    timeout_seconds: float  # CLV_NOTIFY_TIMEOUT_SECONDS: the longest an alert waits for delivery
    reports_url: str | None  # CLV_REPORTS_URL: where <data dir>/reports is served

    @property
    def slack(self) -> bool:
        return bool(self.slack_webhook_url or self.slack_conn_id)

    @property
    def smtp(self) -> bool:
        return bool(self.smtp_host or self.smtp_conn_id)

    @property
    def configured(self) -> bool:
        """A channel is set up, or an owners file names recipients of its own."""
        return self.slack or self.smtp or self.owners_file is not None


def _flag(name: str, default: str) -> bool:
    value = (_get(name, default) or default).lower()
    if value not in ("0", "1", "false", "true"):
        raise SettingError(f"{name}={value!r} is not 0 or 1")
    return value in ("1", "true")


def _url(name: str) -> str | None:
    value = _get(name)
    if value is not None and not re.match(r"https?://[^/\s]+", value):
        raise SettingError(f"{name}={value!r} is not an http(s):// URL")
    return value


def notify_settings() -> Notify:
    """The notifiers' settings (``clv.notify``, README "Alerts that reach people")."""
    security = _choice("CLV_SMTP_SECURITY", "starttls", tuple(SMTP_SECURITY))
    owners = _get("CLV_NOTIFY_OWNERS")
    if owners is not None and not Path(owners).expanduser().is_file():
        raise SettingError(f"CLV_NOTIFY_OWNERS={owners!r} is not a file; point it at an owners YAML file")
    email_to = tuple(a.strip() for a in re.split(r"[,;]", _get("CLV_NOTIFY_EMAIL_TO") or "") if a.strip())
    bad = [a for a in email_to if not re.fullmatch(r"[^@\s]+@[^@\s]+", a)]
    if bad:
        raise SettingError(f"CLV_NOTIFY_EMAIL_TO holds {bad[0]!r}, which is not an e-mail address")
    return Notify(
        slack_webhook_url=_url("CLV_SLACK_WEBHOOK_URL"),
        slack_conn_id=_get("CLV_SLACK_CONN_ID"),
        smtp_host=_get("CLV_SMTP_HOST"),
        smtp_port=_port("CLV_SMTP_PORT", str(SMTP_SECURITY[security])),
        smtp_user=_get("CLV_SMTP_USER"),
        smtp_password=_get("CLV_SMTP_PASSWORD"),
        smtp_security=security,
        smtp_from=_get("CLV_SMTP_FROM", "clv-alerts@localhost"),
        smtp_conn_id=_get("CLV_SMTP_CONN_ID"),
        email_to=email_to,
        owners_file=Path(owners).expanduser() if owners else None,
        level=_choice("CLV_NOTIFY_LEVEL", "warning", ("warning", "error")),
        remind_hours=_number("CLV_NOTIFY_REMIND_HOURS", "24", float, 0, "a number of hours >= 0"),
        resolved=_flag("CLV_NOTIFY_RESOLVED", "1"),
        timeout_seconds=_number("CLV_NOTIFY_TIMEOUT_SECONDS", "10", float, 0.1, "a number of seconds > 0"),
        reports_url=_url("CLV_REPORTS_URL"),
    )


def sqlmesh_project() -> Path:
    """The SQLMesh project: the repository's, or ``CLV_SQLMESH_PROJECT`` (a changed copy, say)."""
    return Path(_get("CLV_SQLMESH_PROJECT") or SQLMESH_PROJECT)


def airflow_home(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Airflow home (``CLV_AIRFLOW_HOME``, default ``<data dir>/airflow``)."""
    return Path(_get("CLV_AIRFLOW_HOME") or paths(data_dir).data_dir / "airflow")


def airflow_port() -> int:
    """Port of Airflow's web UI (``CLV_AIRFLOW_PORT``, default 8080)."""
    return _port("CLV_AIRFLOW_PORT", "8080")


def airflow_password() -> str | None:
    """The UI login's password (``CLV_AIRFLOW_PASSWORD``; unset: one generated at bootstrap)."""
    return _get("CLV_AIRFLOW_PASSWORD")


def secret(name: str) -> str:
    """A deployment secret's raw value ("" when unset); `clv bootstrap` checks it in team mode."""
    return os.environ.get(name, "").strip()


def java_home() -> str | None:
    """``JAVA_HOME``, where the Spark gateway looks for Java besides the PATH."""
    return _get("JAVA_HOME")


DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit for the warehouse (``CLV_DUCKDB_MEMORY_LIMIT``, default 4GB): past it,
    DuckDB spills to a temp folder beside the warehouse instead of growing. The SQLMesh gateway
    reads the same variable (sqlmesh_project/config.yaml)."""
    raw = os.environ.get("CLV_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"(?i)\d+(\.\d+)?\s*[KMGT]i?B", raw) or float(re.match(r"[\d.]+", raw)[0]) == 0:
        raise SettingError(f"CLV_DUCKDB_MEMORY_LIMIT={raw!r} is not a memory size such as 4GB or 512MB")
    return raw


def _port(name: str, default: str) -> int:
    raw = _get(name, default)
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SettingError(f"{name}={raw!r} is not a port number (1-65535)")
    return port


def serving_dir(data_dir: Path) -> Path:
    """The serving file's folder (``CLV_SERVING_DIR``, default the data directory). The team
    deployment gives it a volume of its own, so that the dashboard and Metabase mount the serving
    file and nothing else: a folder, because publish renames a new file over the old one, and a
    single-file mount would keep showing the old one."""
    raw = _get("CLV_SERVING_DIR")
    return Path(raw).expanduser() if raw else data_dir


def deployment() -> str:
    """``CLV_DEPLOYMENT``: ``local`` (default: this machine, SQLite, a generated login) or ``team``
    (docker-compose.yaml sets it): `clv bootstrap` then refuses a missing, short or placeholder
    secret (``secret_problem``)."""
    return _choice("CLV_DEPLOYMENT", "local", ("local", "team"))


SECRET_MIN_LENGTH = 16
# Words no secret of the team deployment may contain, case and punctuation ignored: the
# placeholders of .env files and tutorials (`change-me`, `CHANGE_ME_...`, `your-secret-key`).
PLACEHOLDER_WORDS = (
    "changeme",
    "changeit",
    "changethis",
    "replaceme",
    "placeholder",
    "example",
    "password",
    "passw0rd",
    "secret",
    "admin",
    "default",
    "letmein",
    "qwerty",
    "123456",
)


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret of the team deployment (None: it can): shorter than
    ``SECRET_MIN_LENGTH``, holding a ``PLACEHOLDER_WORDS`` word, or fewer than 8 different
    characters. The one definition of a placeholder: `clv bootstrap` applies it, and
    tests/deploy hold .env.example to it. The message never repeats the value."""
    if len(value) < SECRET_MIN_LENGTH:
        return f"is shorter than {SECRET_MIN_LENGTH} characters"
    folded = re.sub(r"[^a-z0-9]", "", value.lower())
    word = next((w for w in PLACEHOLDER_WORDS if w in folded), None)
    if word:
        return f"looks like a placeholder (it contains {word!r})"
    if len(set(value)) < 8:
        return "has fewer than 8 different characters"
    return None


def dashboard_port() -> int:
    """Port of the Streamlit dashboard (``CLV_DASHBOARD_PORT``, default 8501)."""
    return _port("CLV_DASHBOARD_PORT", "8501")


NO_DASHBOARD = ("none", "off")


def dashboard_url() -> str | None:
    """Where people open the dashboard (``CLV_DASHBOARD_URL``, default ``http://localhost:<CLV_DASHBOARD_PORT>``,
    the address `make dashboard` serves): check reports are linked to its report page
    (``?report=<run>/<layer>``) when ``CLV_REPORTS_URL`` is not set. ``none`` links the report
    files' paths instead."""
    raw = _get("CLV_DASHBOARD_URL")
    if raw is not None and raw.lower() in NO_DASHBOARD:
        return None
    return _url("CLV_DASHBOARD_URL") or f"http://localhost:{dashboard_port()}"
