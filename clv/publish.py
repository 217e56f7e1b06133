"""The serving file: the marts, copied out of the warehouse for readers.

Readers (the dashboard, Metabase, an analyst's notebook) never open the warehouse, which has one
writer at a time. They read ``<data dir>/serving.duckdb``, which this module rebuilds beside
itself (``serving.duckdb.tmp``) and swaps in with an atomic rename: a reader sees the old file or
the new one, never a half-written one, and a failed publish leaves the old file untouched.

Contents: every ``marts.*`` table under its own name in schema ``main``, plus
``serving_info`` (business date, publish time, row counts) and ``check_results`` (the latest
outcome of every data-quality check, per layer) for the dashboard's freshness panel.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

from clv import settings


class PublishError(Exception):
    """There is nothing to publish (no marts yet)."""


def publish(
    con: duckdb.DuckDBPyConnection,
    business_date: dt.date,
    data_dir: Path | None = None,
    schema: str = "marts",
) -> dict[str, int]:
    """Copy the marts (``schema``: a SQLMesh environment's marts schema works too) to the
    serving file; return rows per table."""
    target = settings.paths(data_dir).serving
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_catalog = current_database() ORDER BY table_name",
            [schema],
        ).fetchall()
    ]
    if not tables:
        raise PublishError(f"no tables in schema {schema!r}: run the models before publishing")
    tmp = target.with_name(target.name + ".tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"ATTACH '{tmp}' AS clv_serving")
    counts: dict[str, int] = {}
    try:
        for t in tables:
            con.execute(f'CREATE TABLE clv_serving.main."{t}" AS SELECT * FROM {schema}."{t}"')
            counts[t] = con.execute(f'SELECT count(*) FROM clv_serving.main."{t}"').fetchone()[0]
        has_checks = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' "
            "AND table_name = 'check_results' AND table_catalog = current_database()"
        ).fetchone()[0]
        if has_checks:
            con.execute("""CREATE TABLE clv_serving.main.check_results AS
                SELECT * EXCLUDE (rn) FROM (
                  SELECT *, row_number() OVER (PARTITION BY layer, dataset, check_name
                                               ORDER BY scanned_at DESC) AS rn
                  FROM ops.check_results WHERE run_id NOT LIKE '%@%') WHERE rn = 1""")
        con.execute(
            "CREATE TABLE clv_serving.main.serving_info AS SELECT ?::DATE AS business_date, "
            "?::TIMESTAMP AS published_at, ? AS source_schema, ?::JSON AS row_counts",
            [business_date, dt.datetime.now(), schema, _json(counts)],
        )
    finally:
        con.execute("DETACH clv_serving")
    os.replace(tmp, target)  # atomic on POSIX: readers see the old file or the new one
    return counts


def _json(counts: dict[str, int]) -> str:
    import json

    return json.dumps(counts)
