"""Helpers for the SQLMesh tests (the `project` fixture lives in tests/conftest.py)."""

from __future__ import annotations

from clv.contract import SOURCES


def _counts(ctx) -> dict[str, int]:
    return {t: ctx.engine_adapter.fetchone(f"SELECT count(*) FROM staging.stg_{t}")[0] for t in SOURCES}
