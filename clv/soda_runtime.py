"""Soda Core, offline, on a DuckDB connection the caller already holds.

Soda decides at import time whether to send usage telemetry, from the first ``.soda/config.yml``
it finds (home directory first). The pipeline must not phone home whatever the user's home holds,
so ``new_scan`` points Soda at the project's own config (``send_anonymous_usage_stats: false``)
before Soda is imported, and switches the telemetry singleton off if Soda was imported earlier.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from clv import settings

if TYPE_CHECKING:
    import duckdb
    from soda.scan import Scan

_CONFIG = "send_anonymous_usage_stats: false\n"


def soda_config_path(data_dir: Path | None = None) -> Path:
    """Where the project's Soda config lives: ``<data dir>/.soda/config.yml`` (the scan's home)."""
    return (data_dir or settings.data_dir()) / ".soda" / "config.yml"


def offline(data_dir: Path | None = None) -> Path:
    """Switch Soda's telemetry off for this process. Idempotent; returns the config path."""
    path = soda_config_path(data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_CONFIG, encoding="utf-8")
    from soda.common.config_helper import ConfigHelper

    helper = ConfigHelper.get_instance(str(path))
    helper.config["send_anonymous_usage_stats"] = False
    telemetry = sys.modules.get("soda.telemetry.soda_telemetry")
    if telemetry is not None:  # imported before us: turn the existing singleton off
        instance = telemetry.SodaTelemetry.get_instance()
        if getattr(instance, "_SodaTelemetry__send", False):
            instance._SodaTelemetry__send = False
            instance._SodaTelemetry__provider.shutdown()  # stops its span exporter
    return path


def new_scan(
    con: duckdb.DuckDBPyConnection,
    name: str,
    data_source: str = "warehouse",
    variables: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> Scan:
    """A Soda scan bound to an open DuckDB connection (never a second process on the file)."""
    offline(data_dir)
    from soda.scan import Scan

    scan = Scan()
    scan.set_scan_definition_name(name)
    scan.set_data_source_name(data_source)
    scan.add_duckdb_connection(con, data_source_name=data_source)
    if variables:
        scan.add_variables(variables)
    return scan
