"""`clv dashboard` (what `make dashboard` runs): the Streamlit command line, bad ports, and the image
the docker-compose dashboard service runs."""

from __future__ import annotations

import pytest

from clv import cli
from clv.settings import PROJECT_ROOT


def test_streamlit_runs_headless_on_localhost_without_usage_statistics():
    argv = cli.dashboard_argv(8600)
    assert argv[1:5] == ["-m", "streamlit", "run", str(PROJECT_ROOT / "dashboard" / "app.py")]
    for flag in (
        "--server.headless=true",
        "--server.address=localhost",
        "--server.port=8600",
        "--browser.gatherUsageStats=false",
    ):
        assert flag in argv


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ("http", [], "clv: error: CLV_DASHBOARD_PORT='http' is not a port number (1-65535)"),
        ("70000", [], "clv: error: CLV_DASHBOARD_PORT='70000' is not a port number (1-65535)"),
        (None, ["--port", "0"], "clv: error: --port 0 is not a port number (1-65535)"),
    ],
)
def test_a_bad_port_is_a_one_line_error(monkeypatch, capsys, tmp_path, env, args, message):
    if env is None:
        monkeypatch.delenv("CLV_DASHBOARD_PORT", raising=False)
    else:
        monkeypatch.setenv("CLV_DASHBOARD_PORT", env)
    assert cli.main(["dashboard", "--data-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message


def test_the_image_carries_the_app_the_compose_service_runs():
    import yaml

    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
    command = compose["services"]["dashboard"]["command"]
    app = next(c for c in command if c.endswith(".py"))
    copied = [
        line.split()[-2]
        for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]
    assert app.split("/")[0] in copied and (PROJECT_ROOT / app).exists()
    assert "--browser.gatherUsageStats=false" in command
