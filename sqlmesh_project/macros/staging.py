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
def latest_deliveries(evaluator, source: exp.Expression, condition: exp.Expression, *keys: exp.Expression):
    """The rows of ``source`` meeting ``condition``, one per key: the one delivered last (as
    ``latest_delivery``). Same result as ``WHERE condition QUALIFY @latest_delivery(keys)``, but
    only keys that may have been delivered more than once are ranked; the others (nearly all) pass
    straight through, which spares a window over every row.

    "May have been" is decided on a hash of the key: grouping 64-bit hashes stays small where
    grouping tens of millions of string keys spills to disk (the device sessions of a million
    customers took 16x the time of a tenth of them). A hash collision only sends a few single
    deliveries through the ranking, where they are kept all the same, so the result is exact.
    Use in FROM: ``FROM @latest_deliveries(raw.orders, _batch_date BETWEEN @start_ds AND @end_ds,
    order_id) AS r``."""
    d = evaluator.dialect
    src, cond = source.sql(dialect=d), condition.sql(dialect=d)
    key_list = ", ".join(k.sql(dialect=d) for k in keys)
    repeated = (
        f"SELECT HASH({key_list}) FROM {src} WHERE {cond} GROUP BY HASH({key_list}) HAVING COUNT(*) > 1"
    )
    latest = latest_delivery(evaluator, *keys).sql(dialect=d)
    return exp.maybe_parse(
        f"""(
        SELECT * FROM {src} WHERE {cond} AND HASH({key_list}) NOT IN ({repeated})
        UNION ALL
        SELECT * FROM {src} WHERE {cond} AND HASH({key_list}) IN ({repeated})
        QUALIFY {latest}
        )""",
        dialect=d,
    )


@macro()
def clean_enum(evaluator, column: exp.Expression) -> exp.Expression:
    """Enum values compared case- and space-insensitively: the canonical form is lower case."""
    return exp.func("LOWER", exp.func("TRIM", column))
