"""Comparing layers between two warehouses, and checking each model's grain."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

MARTS = (
    "mart_clv",
    "mart_churn_risk",
    "mart_customer_360",
    "mart_retention_cohorts",
    "mart_category_ltv",
    "mart_churn_support_analysis",
    "mart_customer_segments",
    "mart_subscription_retention",
    "mart_mrr_movements",
)
FACTS = ("fct_revenue", "fct_activity_logs", "fct_loyalty", "fct_support_logs")
# Columns read from what earlier runs recorded (models tagged as_known), not from the data: two
# warehouses whose runs differ (a missed day, a rebuild from raw) differ there by design, and
# only there. Warehouses with the same runs are compared on them too.
RUN_HISTORY = {
    "mart_churn_risk": ("risk_change", "previous_business_date"),
    "mart_customer_360": ("risk_change", "previous_business_date"),
}


def run_history(table: str) -> tuple[str, ...]:
    return RUN_HISTORY.get(table.split(".")[-1], ())


def snapshot_copy(warehouse: Path, dst: Path) -> Path:
    """A copy of a closed warehouse file (and its WAL), to attach read-only beside another."""
    for suffix in ("", ".wal"):
        src = warehouse.with_name(warehouse.name + suffix)
        if src.exists():
            shutil.copy(src, dst.with_name(dst.name + suffix))
    return dst


def physical(con, catalog: str, table: str) -> str:
    """The table behind a SQLMesh view, in the given catalog.

    SQLMesh's views name their tables with the catalog of the file that built them
    (``warehouse.sqlmesh__marts.marts__mart_clv__123``): read through a view, a copy attached
    under another name would silently show the main file's data. Compare physical tables."""
    schema, name = table.split(".")
    row = con.execute(
        "SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = ? AND view_name = ?",
        [catalog, schema, name],
    ).fetchone()
    if row is None:
        return f"{catalog}.{table}"
    m = re.search(r"FROM\s+\S+?\.(\S+?)\.(\S+?)\s*;?\s*$", row[0])
    assert m, row[0]
    return f"{catalog}.{m.group(1)}.{m.group(2)}"


def layer_diff(
    con, table: str, left: str = "warehouse", right: str = "other", exclude: tuple[str, ...] = ()
) -> tuple[int, int]:
    """``table_diff`` of one model between two attached warehouses (catalogs)."""
    return table_diff(con, physical(con, left, table), physical(con, right, table), exclude)


def table_diff(con, left: str, right: str, exclude: tuple[str, ...] = ()) -> tuple[int, int]:
    """(rows in left, rows differing either way) on every column but ``exclude``; doubles
    compared to 9 decimals, since parallel aggregation may change their last bits."""
    cols = ", ".join(
        f"round({name}, 9)" if typ in ("DOUBLE", "FLOAT") else name
        for name, typ, *_ in con.execute(f"DESCRIBE {left}").fetchall()
        if name not in exclude
    )
    n = con.execute(f"SELECT count(*) FROM {left}").fetchone()[0]
    diff = con.execute(f"""
        SELECT count(*) FROM ((SELECT {cols} FROM {left} EXCEPT ALL SELECT {cols} FROM {right})
                              UNION ALL
                              (SELECT {cols} FROM {right} EXCEPT ALL SELECT {cols} FROM {left}))""").fetchone()[
        0
    ]
    return n, diff


def grain_columns(model) -> list[str]:
    """The columns of a SQLMesh model's grain."""
    cols: list[str] = []
    for g in model.grains:
        parts = getattr(g, "expressions", None) or [g]
        cols += [p.sql(dialect="duckdb") for p in parts]
    return cols


def duplicate_grains(ctx, schemas: tuple[str, ...]) -> dict[str, int]:
    """Rows beyond the first per grain value, for every model of the given layers that has a
    grain: all zero when nothing is duplicated."""
    out = {}
    for model in ctx.models.values():
        schema, table = model.name.replace('"', "").split(".")[-2:]
        if schema not in schemas or not model.grains:
            continue
        cols = ", ".join(grain_columns(model))
        out[f"{schema}.{table}"] = ctx.engine_adapter.fetchone(
            f"SELECT (SELECT count(*) FROM {schema}.{table}) - "
            f"(SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {schema}.{table}))"
        )[0]
    return out
