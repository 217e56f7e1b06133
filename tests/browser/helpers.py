"""What the browser tests share: the Chromium they drive, a free port for the server they start,
stopping that server, and the Airflow UI's login."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CLV_CHROMIUM", "/usr/bin/chromium")


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)"
    if os.environ.get("CLV_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, wait_seconds: float = 30) -> None:
    """Stop a server started in a process group of its own (``start_new_session``): SIGTERM to
    the group, SIGKILL when it is still there after ``wait_seconds``."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(wait_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def log_in(page, url: str, password: str, user: str = "admin") -> None:
    """Sign in to the Airflow UI at ``url`` (the simple auth manager's form) as a person would."""
    page.goto(url, wait_until="networkidle")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/", timeout=30_000)
