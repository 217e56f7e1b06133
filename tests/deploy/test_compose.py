"""docker-compose.yaml, the Dockerfiles and .env.example, checked without a Docker engine:
services, dependencies, healthchecks, volumes, and that no secret is written inline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clv.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
SECRET_KEY = re.compile(r"(PASSWORD|PASS|SECRET|_KEY|TOKEN|_AUTH)$", re.I)
VAR = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:?[-?+])[^}]*)?\}")  # $${X} is the container's own variable
REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]+\}")  # ${X:?message}: compose refuses to start without it
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_of(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def test_the_stack_has_every_service(compose):
    assert set(compose["services"]) >= {"postgres", "airflow-init", *AIRFLOW, "dashboard", "metabase"}


def test_long_running_services_have_healthchecks_and_wait_for_their_dependencies(compose):
    services = compose["services"]
    for name, svc in services.items():
        if name == "airflow-init":
            assert svc.get("restart") == "no"
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in (*AIRFLOW, "airflow-init"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
    for name in AIRFLOW:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["metabase"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_airflow_runs_on_postgresql_with_sqlmesh_state_there_too(compose):
    for name in (*AIRFLOW, "airflow-init"):
        env = env_of(compose["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["CLV_SQLMESH_STATE_HOST"] == "postgres"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/clv/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/clv/plugins"  # the run notes
    assert compose["services"]["airflow-init"]["command"] == ["clv", "bootstrap"]


def test_the_celery_profile_adds_a_broker_and_workers_and_nothing_else(compose):
    services = compose["services"]
    profiled = {name for name, svc in services.items() if svc.get("profiles")}
    assert profiled == {"redis", "airflow-worker"}
    assert all(services[name]["profiles"] == ["celery"] for name in profiled)
    worker = services["airflow-worker"]
    assert worker["command"] == ["airflow", "celery", "worker"]
    assert "clv-data:/data" in worker["volumes"]  # runs warehouse tasks, so it writes the volume
    deps = worker["depends_on"]
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    env = env_of(worker)
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@redis:6379/0")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    # The same settings reach the scheduler, which queues tasks for the workers.
    assert (
        env_of(services["airflow-scheduler"])["AIRFLOW__CELERY__BROKER_URL"]
        == env["AIRFLOW__CELERY__BROKER_URL"]
    )
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert "AIRFLOW_EXECUTOR=LocalExecutor" in example and "COMPOSE_PROFILES=celery" in example


def test_the_image_can_run_a_celery_worker(tmp_path, monkeypatch):
    """The worker's command and the healthcheck's Celery app exist in the installed dependencies
    (the image installs the same lock): Airflow's CLI offers `celery worker` under the
    CeleryExecutor, and the app module imports with the broker URL from the environment."""
    from clv.airflow import home as airflow_home

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", "redis://redis:6379/0")
    done = airflow_home.airflow(["celery", "worker", "--help"], tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--concurrency" in done.stdout
    probe = "from airflow.providers.celery.executors.celery_executor import app; print(app.conf.broker_url)"
    env = airflow_home.environ(tmp_path)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("redis://redis:6379/0")


def test_volumes_share_the_data_and_readers_mount_it_read_only(compose):
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, svc in services.items():
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert "clv-data:/data" in services["airflow-scheduler"]["volumes"]  # the one writer
    for reader in ("dashboard", "metabase"):  # the serving file only (test_closed_by_default.py)
        assert services[reader]["volumes"] == ["clv-serving:/serving:ro"], reader


def test_no_secret_is_inline_and_every_variable_is_in_the_example(compose):
    example = dict(
        line.split("=", 1)
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name, svc in compose["services"].items():
        for key, value in env_of(svc).items():
            value = str(value)
            if SECRET_KEY.search(key):
                assert REQUIRED_VAR.fullmatch(value), f"{name}: {key} must be ${{VAR:?message}} from .env"
            creds = re.search(r"://([^:/@]*):([^@]+)@", value)
            if creds:
                assert REQUIRED_VAR.fullmatch(creds.group(2)), f"{name}: {key} has an inline password"
    for var, default in VAR.findall(COMPOSE.read_text()):
        if not default:
            assert var in example, f"${{{var}}} is used but not in .env.example"
    assert any(line.strip() == ".env" for line in (PROJECT_ROOT / ".gitignore").read_text().splitlines())


def test_images_are_built_from_the_lock_file_and_install_nothing_at_start(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "-c requirements.lock -r requirements.txt" in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                if not source.startswith("--"):
                    assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies missing {source}"
    for name, svc in compose["services"].items():
        command = " ".join(svc.get("command") or [])
        assert "pip install" not in command, name
        build = svc.get("build")
        if build:
            context = PROJECT_ROOT / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).exists(), name
    metabase = (PROJECT_ROOT / "deploy" / "metabase" / "Dockerfile").read_text()
    assert "duckdb.metabase-driver.jar" in metabase and "MB_ANON_TRACKING_ENABLED=false" in metabase


def test_dashboard_service_runs_the_app_offline(compose):
    command = compose["services"]["dashboard"]["command"]
    assert "--browser.gatherUsageStats=false" in command
    app = next(c for c in command if c.endswith(".py"))
    assert (PROJECT_ROOT / app).exists() or not (PROJECT_ROOT / "dashboard").exists()
    assert Path(app).parts[0] == "dashboard"


def test_every_airflow_container_gets_the_notifier_settings_but_no_notifier_secret(compose, monkeypatch):
    """Alerts reach people from the team deployment too: the notifiers' settings are passed to
    every container that runs tasks, and their secrets are not (they live in Airflow connections,
    encrypted with the Fernet key; .env.example says how to create them)."""
    from clv import settings

    passed = {
        "CLV_SLACK_CONN_ID",
        "CLV_SMTP_CONN_ID",
        "CLV_NOTIFY_EMAIL_TO",
        "CLV_NOTIFY_OWNERS",
        "CLV_REPORTS_URL",
    }
    secrets = {"CLV_SLACK_WEBHOOK_URL", "CLV_SMTP_PASSWORD"}
    for name in (*AIRFLOW, "airflow-init"):
        env = env_of(compose["services"][name])
        assert passed <= set(env), name
        assert not secrets & set(env), name
        # report links point at the dashboard people open, not at localhost inside a container
        assert env["CLV_DASHBOARD_URL"].startswith("${DASHBOARD_URL:-"), name
    # the defaults compose gives (unset variables) are valid settings: no notifier configured
    env = {
        k: re.sub(r"^\$\{[A-Z0-9_]+:-([^}]*)\}$", r"\1", str(v))
        for k, v in env_of(compose["services"]["airflow-scheduler"]).items()
    }
    notify_env = {
        k: v for k, v in env.items() if k.startswith(("CLV_NOTIFY", "CLV_SMTP", "CLV_SLACK", "CLV_REPORTS"))
    }
    for key, value in notify_env.items():
        monkeypatch.setenv(key, value)
    configured = settings.notify_settings()
    assert (
        configured.slack_conn_id is None and configured.smtp_conn_id is None and configured.level == "warning"
    )
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert all(f"# {var}=" in example for var in passed)
