"""Macros shared by the staging models: which delivery of a key wins, and enum normalisation."""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro


@macro()
def latest_delivery(evaluator, *keys: exp.Expression) -> exp.Expression:
    """True for the one row per key that was delivered last: a replayed or corrected row loses to
    a later batch, and within a batch the later load and the later line win."""
    partition = ", ".join(k.sql(dialect=evaluator.dialect) for k in keys)
    return exp.condition(
        f"ROW_NUMBER() OVER (PARTITION BY {partition} "
        "ORDER BY _batch_date DESC, _load_id DESC, _row_number DESC) = 1"
    )


@macro()
def clean_enum(evaluator, column: exp.Expression) -> exp.Expression:
    """Enum values compared case- and space-insensitively: the canonical form is lower case."""
    return exp.func("LOWER", exp.func("TRIM", column))
