"""`clv bootstrap` (the stack's airflow-init) refuses a placeholder or short secret of the team
deployment before it touches anything, and writes the UI login file private from its first byte.
The environment is airflow-init's, resolved from docker-compose.yaml and a filled-in .env."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest

from clv.errors import UserError
from clv.settings import PROJECT_ROOT, secret_problem
from tests.deploy.compose_file import env_of, load, resolve, secret_names, strong_env

# What operators leave in: the old .env.example's values, the usual words, short or repetitive ones.
PLACEHOLDERS = (
    "change-me",
    "change-me-to-a-long-random-string",
    "CHANGE_ME_to_another_long_random_string",
    "changeme",
    "admin",
    "password",
    "Password1234567890",
    "my-secret-key-0123456789",
    "exampleexampleexample",
    "aaaaaaaaaaaaaaaaaaaaaaaa",
    "Xk3f9Qa1zP7w",  # random but 12 characters
)


def init_env(tmp_path, env_file: dict[str, str]) -> dict[str, str]:
    """airflow-init's environment for this .env, with its homes moved under ``tmp_path``."""
    service = resolve(load(), env_file)["services"]["airflow-init"]
    env = env_of(service)
    env.update(
        CLV_DATA_DIR=str(tmp_path / "data"),
        CLV_AIRFLOW_HOME=str(tmp_path / "airflow"),
        CLV_SERVING_DIR=str(tmp_path / "serving"),
    )
    return env


def test_the_stack_runs_bootstrap_in_team_mode():
    services = resolve(load(), strong_env())["services"]
    assert services["airflow-init"]["command"] == ["clv", "bootstrap"]
    assert env_of(services["airflow-init"])["CLV_DEPLOYMENT"] == "team"
    # Metabase has a secret of its own: it waits for the check too.
    assert services["metabase"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", secret_names())
@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_bootstrap_refuses_a_placeholder_secret_naming_it(tmp_path, monkeypatch, name, placeholder):
    from clv.airflow import home as airflow_home

    for key, value in init_env(tmp_path, {**strong_env(), name: placeholder}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UserError) as refused:
        airflow_home.bootstrap(tmp_path / "data")
    message = str(refused.value)
    assert "\n" not in message
    assert re.search(rf"\b{name}\b", message), message
    if len(placeholder) > len("password"):
        assert placeholder not in message  # a secret never reaches a log
    assert not (tmp_path / "airflow").exists()  # refused before anything was written


def test_bootstrap_refuses_a_fernet_key_that_is_not_one(tmp_path, monkeypatch):
    from clv.airflow import home as airflow_home

    env = init_env(tmp_path, {**strong_env(), "AIRFLOW_FERNET_KEY": secrets.token_urlsafe(32)})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UserError, match=r"AIRFLOW_FERNET_KEY .*not a Fernet key"):
        airflow_home.bootstrap(tmp_path / "data")


def test_bootstrap_requires_the_admin_password_in_team_mode(tmp_path, monkeypatch):
    from clv.airflow import home as airflow_home

    for key, value in init_env(tmp_path, strong_env()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLV_AIRFLOW_PASSWORD")
    with pytest.raises(UserError, match=r"^AIRFLOW_ADMIN_PASSWORD \(CLV_AIRFLOW_PASSWORD\) is not set"):
        airflow_home.bootstrap(tmp_path / "data")


def test_clv_bootstrap_prints_one_line_and_exits_2(tmp_path):
    env = {**os.environ, **init_env(tmp_path, {**strong_env(), "AIRFLOW_JWT_SECRET": "change-me"})}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "clv.cli", "bootstrap"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("clv: error: "), done.stderr
    assert "AIRFLOW_JWT_SECRET" in done.stderr and "change-me" not in done.stderr


def test_the_placeholder_rule_accepts_what_env_example_says_to_generate():
    from cryptography.fernet import Fernet

    for _ in range(200):
        assert secret_problem(secrets.token_urlsafe(32)) is None
        assert secret_problem(Fernet.generate_key().decode()) is None
    for placeholder in PLACEHOLDERS:
        assert secret_problem(placeholder), placeholder


# Runs bootstrap in a process with umask 0 and watches the Airflow home at every audit event (each
# open, rename, chmod... of the process): every mode a passwords file ever had is recorded, so a
# file written first and chmod-ed after is caught at its `os.chmod` event, still world-readable.
WATCH = """
import json, os, sys
from pathlib import Path

os.umask(0)
from clv.airflow import home as airflow_home

data = Path(sys.argv[1])
h = airflow_home.home(data)
h.mkdir(parents=True)
# An Airflow home whose metadata database is up to date: bootstrap writes the login, skips the
# migration (as on every `clv run` after the first).
(h / ".bootstrapped").write_text(airflow_home._stamp_key(airflow_home.environ(data)))
seen, busy = {}, [False]

def watch(event, args):
    if busy[0]:
        return
    busy[0] = True
    try:
        for name in os.listdir(h):
            if "passwords" in name:
                seen.setdefault(name, set()).add(os.lstat(h / name).st_mode & 0o777)
    finally:
        busy[0] = False

sys.addaudithook(watch)
airflow_home.bootstrap(data)
busy[0] = True
print(json.dumps({name: sorted(modes) for name, modes in seen.items()}))
"""


@pytest.mark.parametrize("deployment", ["local", "team"])
def test_the_login_file_is_private_from_its_creation(tmp_path, deployment):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLV_", "AIRFLOW__"))}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["CLV_AIRFLOW_HOME"] = str(tmp_path / "airflow")
    if deployment == "team":
        env_file = strong_env()
        env.update(init_env(tmp_path, env_file))
    done = subprocess.run(
        [sys.executable, "-c", WATCH, str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "passwords.json" in seen, seen
    for name, modes in seen.items():
        assert modes == [0o600], f"{name} had modes {[oct(m) for m in modes]} under umask 0"
    pw_file = tmp_path / "airflow" / "passwords.json"
    assert os.stat(pw_file).st_mode & 0o777 == 0o600
    password = json.loads(pw_file.read_text())["admin"]
    if deployment == "team":
        assert password == env_file["AIRFLOW_ADMIN_PASSWORD"]
    else:  # `make run` / `make ui`: a generated password, kept from one run to the next
        assert len(password) >= 16
        # An older, world-readable file with another user Airflow added: kept, made private.
        pw_file.write_text(json.dumps({"admin": password, "analyst": "generated-by-airflow-0123"}))
        pw_file.chmod(0o644)
        again = subprocess.run(
            [
                sys.executable,
                "-c",
                "from clv.airflow import home; home.bootstrap(); print(home.admin_password())",
            ],
            env={**env, "CLV_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr[-2000:]
        assert again.stdout.strip() == password
        assert json.loads(pw_file.read_text()) == {"admin": password, "analyst": "generated-by-airflow-0123"}
        assert os.stat(pw_file).st_mode & 0o777 == 0o600
