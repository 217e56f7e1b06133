"""Every setting in one place, read from environment variables with defaults that work from a clone.

Paths derive from one data directory (``CLV_DATA_DIR``, default ``./data`` under the working
directory) so that a whole deployment can be relocated by one variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT_ROOT / "sqlmesh_project" / "seeds"


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
        return self.data_dir / "serving.duckdb"

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


class SettingError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


GATEWAYS = ("duckdb", "spark")


def sqlmesh_gateway() -> str:
    """The SQLMesh gateway the models run on (``CLV_SQLMESH_GATEWAY``, default duckdb)."""
    gateway = os.environ.get("CLV_SQLMESH_GATEWAY", "").strip().lower() or "duckdb"
    if gateway not in GATEWAYS:
        raise SettingError(
            f"CLV_SQLMESH_GATEWAY={gateway!r} is not a gateway; use one of {', '.join(GATEWAYS)}"
        )
    return gateway


def default_customers() -> int:
    return int(os.environ.get("CUSTOMERS", "100000"))


DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit for the warehouse (``CLV_DUCKDB_MEMORY_LIMIT``, default 4GB): past it,
    DuckDB spills to a temp folder beside the warehouse instead of growing. The SQLMesh gateway
    reads the same variable (sqlmesh_project/config.yaml)."""
    raw = os.environ.get("CLV_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"(?i)\d+(\.\d+)?\s*[KMGT]i?B", raw) or float(re.match(r"[\d.]+", raw)[0]) == 0:
        raise SettingError(f"CLV_DUCKDB_MEMORY_LIMIT={raw!r} is not a memory size such as 4GB or 512MB")
    return raw


def dashboard_port() -> int:
    """Port of the Streamlit dashboard (``CLV_DASHBOARD_PORT``, default 8501)."""
    raw = os.environ.get("CLV_DASHBOARD_PORT", "8501")
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SettingError(f"CLV_DASHBOARD_PORT={raw!r} is not a port number (1-65535)")
    return port
