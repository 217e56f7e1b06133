"""Reading landed files back with DuckDB, typed by the contract."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from clv.contract import SOURCES


def manifest(batch_dir: Path) -> dict:
    return json.loads((batch_dir / "_manifest.json").read_text())


def batches(landing: Path) -> list[Path]:
    return sorted(p for p in landing.iterdir() if (p / "_manifest.json").exists())


def read_typed(con: duckdb.DuckDBPyConnection, path: Path, source: str):
    """Read a file strictly with the contract's types: any row that does not parse raises."""
    cols = {c.name: c.type for c in SOURCES[source].columns}
    spec = ", ".join(f"'{k}': '{v}'" for k, v in cols.items())
    return con.sql(
        f"SELECT * FROM read_csv('{path}', header=true, columns={{{spec}}}, "
        f"timestampformat='%Y-%m-%d %H:%M:%S', dateformat='%Y-%m-%d', auto_detect=false)"
    )


def read_text(con: duckdb.DuckDBPyConnection, path: Path):
    """Read a file as text columns, untouched, with the 1-based row number."""
    return con.sql(
        f"SELECT row_number() OVER () AS row_number, * FROM read_csv('{path}', header=true, "
        f"all_varchar=true, auto_detect=true)"
    )
