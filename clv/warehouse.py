"""The warehouse file: one writer at a time, and a clear message when someone else holds it.

DuckDB lets one process write a database file and no other process even read it meanwhile. A
second writer (a manual `clv load` during a DAG run, say) waits up to ``wait_seconds`` for the
lock and then stops with a one-line explanation instead of a stack trace.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from clv import settings
from clv.errors import TransientError


class WarehouseBusy(TransientError):
    """Another process holds the warehouse file."""


def wait_for_lock(open_, path: Path, wait_seconds: float | None = None):
    """Call ``open_()`` until it gets past DuckDB's file lock, with back-off, for up to
    ``wait_seconds`` (default ``CLV_LOCK_WAIT_SECONDS``); then stop with ``WarehouseBusy``."""
    wait = settings.lock_wait_seconds() if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return open_()
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {path} is in use by another process{_lock_holder(str(e))}; "
                    f"waited {wait:.0f} s (set CLV_LOCK_WAIT_SECONDS to wait longer) — nothing was changed"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def connect(
    path: Path | None = None,
    read_only: bool = False,
    wait_seconds: float | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (created on first use), waiting for another writer to finish."""
    path = path or settings.paths().warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    con = wait_for_lock(lambda: duckdb.connect(str(path), read_only=read_only), path, wait_seconds)
    con.execute("SET enable_progress_bar = false")  # output belongs to the caller, not DuckDB
    if not read_only:
        con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit()}'")  # then spill to disk
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _lock_holder(message: str) -> str:
    # DuckDB's message names the holder: "... Conflicting lock is held in <exe> (PID 1234) ..."
    marker = "(PID "
    if marker in message:
        pid = message.split(marker, 1)[1].split(")", 1)[0]
        return f" (PID {pid})"
    return ""
