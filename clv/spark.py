"""The raw zone on Spark: the DuckDB warehouse's raw tables, exported to Parquet and registered as
Spark tables in the database ``raw``, so the staging models read the same rows on either gateway.

The loader stays the one writer of the raw zone (DuckDB). Raw only grows, one load (one landed
file) at a time, so the export is incremental: each load with rows becomes one Parquet file,
``$CLV_DATA_DIR/spark/raw/<source>/load_<load id>_<sha256 prefix>.parquet``, written by DuckDB's
COPY (streamed: no table passes through Python) to a hidden name and renamed into place, so Spark
never sees half a file. A file whose load is no longer in the warehouse's manifest (a warehouse
rebuilt from scratch, say) is removed. Spark's ``raw.<source>`` is an external Parquet table over
the folder with the columns of ``sqlmesh_project/external_models.yaml``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from clv import settings, sql_text
from clv.contract import RAW_LINEAGE, SOURCES
from clv.errors import UserError


class SparkSyncError(UserError):
    """The raw zone cannot be synced (no warehouse, nothing loaded yet)."""


@dataclass(frozen=True)
class SyncSummary:
    exported: dict[str, int]  # source -> Parquet files written by this sync
    removed: int  # stale files removed
    files: int  # Parquet files now in the raw export

    def line(self) -> str:
        written = sum(self.exported.values())
        return (
            f"spark raw zone: {written} new load file(s) exported, {self.removed} stale removed, "
            f"{self.files} in total for {len(SOURCES)} tables"
        )


def require_java() -> None:
    """Spark runs in a JVM: say so in one line instead of PySpark's gateway traceback."""
    import shutil

    java_home = settings.java_home()
    if not shutil.which("java") and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        raise SparkSyncError(
            "the Spark gateway needs Java 17 or newer (Debian: apt-get install default-jre-headless); "
            "install it or unset CLV_SQLMESH_GATEWAY to run on DuckDB"
        )


def raw_dir(data_dir: Path | None = None) -> Path:
    return settings.paths(data_dir).spark / "raw"


def _spark_type(duckdb_type: str) -> str:
    """A column type in Spark SQL: DuckDB's TIMESTAMP (no time zone) is Spark's TIMESTAMP_NTZ."""
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="spark")


def raw_columns(source: str) -> dict[str, str]:
    """The columns of ``raw.<source>`` as the staging models read them, with their Spark types."""
    columns = {c.name: c.type for c in SOURCES[source].columns} | RAW_LINEAGE
    return {name: _spark_type(typ) for name, typ in columns.items()}


def _file_name(load_id: int, sha256: str | None) -> str:
    return f"load_{load_id}_{(sha256 or 'none')[:16]}.parquet"


def export_raw(data_dir: Path | None = None, wait_seconds: float | None = None) -> SyncSummary:
    """Write each loaded file's rows of every raw table to Parquet, once (read-only on the
    warehouse, waiting like every other reader while a writer holds it)."""
    from contextlib import closing

    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    if not paths.warehouse.exists():
        raise SparkSyncError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    exported: dict[str, int] = {}
    removed = files = 0
    with closing(connect(paths.warehouse, read_only=True, wait_seconds=wait_seconds)) as con:
        for source in SOURCES:
            folder = raw_dir(paths.data_dir) / source
            folder.mkdir(parents=True, exist_ok=True)
            loads = con.execute(
                "SELECT load_id, file_sha256 FROM ops.load_manifest "
                "WHERE source = ? AND status = 'loaded' AND rows_loaded > 0 ORDER BY load_id",
                [source],
            ).fetchall()
            wanted = {_file_name(load_id, sha): load_id for load_id, sha in loads}
            for stale in sorted(p for p in folder.glob("*.parquet") if p.name not in wanted):
                stale.unlink()
                removed += 1
            exported[source] = 0
            for name, load_id in wanted.items():
                target = folder / name
                if target.exists():
                    continue
                hidden = folder / f".{name}.tmp"  # Spark ignores files starting with a dot
                con.execute(
                    f"COPY (SELECT * FROM raw.{source} WHERE _load_id = {int(load_id)} "
                    f"ORDER BY _row_number) TO {sql_text.literal(hidden)} (FORMAT parquet)"
                )
                os.replace(hidden, target)
                exported[source] += 1
            files += len(wanted)
    return SyncSummary(exported, removed, files)


def spark_location(folder: Path) -> str:
    """A local folder as a Spark SQL string literal for ``LOCATION``. Spark neither decodes a
    ``file:`` URI's percent escapes (``as_uri()`` of ``it's [x]`` names a folder ``it%27s%20%5Bx%5D``,
    an empty table) nor takes the path literally: Hadoop expands glob characters in it. So: the
    plain path, its glob characters escaped for Hadoop, then quoted for Spark SQL."""
    path = re.sub(r"([\\\[\]{}*?])", r"\\\1", str(folder.resolve()))
    return "'file://" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def register_raw(spark, data_dir: Path | None = None) -> None:
    """Create Spark's ``raw`` database and one external Parquet table per source over the export
    folders (kept across sessions by the metastore), and refresh their file listings."""
    spark.sql("CREATE DATABASE IF NOT EXISTS raw")
    for source in SOURCES:
        folder = raw_dir(data_dir) / source
        folder.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f"`{name}` {typ}" for name, typ in raw_columns(source).items())
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS raw.{source} ({columns}) USING parquet "
            f"LOCATION {spark_location(folder)}"
        )
        spark.sql(f"REFRESH TABLE raw.{source}")


def decimals_from_pandas() -> None:
    """Let SQLMesh 0.236.4 load a pandas frame into a DECIMAL(p, s) column on Spark (the seeds'
    prices). It builds the frame's Spark schema with a bare ``DecimalType()`` — DECIMAL(10, 0) —
    which neither Arrow nor PySpark fills from the frame's floats and ints, so the seeds fail. The
    column now enters Spark as DOUBLE and SQLMesh's own select casts it to the declared DECIMAL,
    as DuckDB does with the same floats (idempotent)."""
    from pyspark.sql.types import DoubleType
    from sqlmesh.core.engine_adapter.spark import SparkEngineAdapter

    original = SparkEngineAdapter.sqlglot_to_spark_types
    if getattr(original, "decimals_from_pandas", False):
        return

    def sqlglot_to_spark_types(cls, columns: dict[str, exp.DataType]):
        struct = original.__func__(cls, columns)
        for field, data_type in zip(struct.fields, columns.values()):
            if data_type.is_type(exp.DataType.Type.DECIMAL):
                field.dataType = DoubleType()
        return struct

    sqlglot_to_spark_types.decimals_from_pandas = True
    SparkEngineAdapter.sqlglot_to_spark_types = classmethod(sqlglot_to_spark_types)


def sync_raw(spark, data_dir: Path | None = None, wait_seconds: float | None = None) -> SyncSummary:
    """Bring Spark's raw zone up to the DuckDB warehouse's: export new loads, register the tables."""
    spark.sparkContext.setLogLevel("ERROR")  # Hive's warnings about Spark-only column types are noise
    summary = export_raw(data_dir, wait_seconds)
    register_raw(spark, data_dir)
    return summary
