"""Date arithmetic whose meaning differs between engines: one branch per engine, chosen by the
dialect of the engine that runs the model (the models are written in DuckDB's dialect, and SQLMesh
transpiles the rest). The DuckDB branch is the SQL the models had before, so DuckDB's results do
not change; every other engine (Spark) gets SQL with DuckDB's meaning.

- DuckDB's ``DATE_DIFF('MONTH' | 'YEAR', a, b)`` counts calendar boundaries crossed (2023-01-31 to
  2023-02-01 is one month); Spark's ``DATEDIFF(MONTH, …)`` (TIMESTAMPDIFF) counts whole months.
- Spark has no ``TO_MONTHS`` interval; ``ADD_MONTHS`` clamps to the month's end as DuckDB does.
- sqlglot writes ``EXTRACT(ISODOW …)`` unchanged for Spark, which rejects it, and ``ISODOW(d)``
  as ``DAYOFWEEK(d) % 7 + 1``, which is not the ISO day; Spark's ``WEEKDAY`` counts Monday as 0.
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro

CALENDAR_UNITS = ("MONTH", "YEAR")


def engine_dialect(evaluator) -> str:
    """The dialect of the engine running the model; while models load (no engine yet), the
    project's dialect: loading only needs the column types, which every branch shares."""
    adapter = evaluator.locals.get("engine_adapter")
    return adapter.dialect if adapter is not None else evaluator.dialect


ENGINES = ("duckdb", "spark")


def _is_duckdb(evaluator) -> bool:
    """True on DuckDB, False on Spark; other engines have no branch yet and fail loudly."""
    dialect = engine_dialect(evaluator)
    if dialect not in ENGINES:
        raise NotImplementedError(f"no SQL for the {dialect} engine in sqlmesh_project/macros/engine.py")
    return dialect == "duckdb"


@macro()
def calendar_diff(
    evaluator, unit: exp.Expression, start: exp.Expression, end: exp.Expression
) -> exp.Expression:
    """Calendar months or years from start to end, as DuckDB's DATE_DIFF counts them: the number
    of month (year) boundaries crossed, whatever the day of the month."""
    name = unit.name.upper()
    if name not in CALENDAR_UNITS:
        raise ValueError(f"@calendar_diff counts MONTH or YEAR, not {unit.sql()}")
    if _is_duckdb(evaluator):
        return exp.func("DATE_DIFF", exp.Literal.string(name), start, end, dialect="duckdb")
    years = exp.Sub(this=exp.func("YEAR", end.copy()), expression=exp.func("YEAR", start.copy()))
    if name == "YEAR":
        return exp.paren(years)
    months = exp.Sub(this=exp.func("MONTH", end), expression=exp.func("MONTH", start))
    return exp.paren(
        exp.Add(this=exp.Mul(this=exp.paren(years), expression=exp.Literal.number(12)), expression=months)
    )


@macro()
def add_months(evaluator, day: exp.Expression, months: exp.Expression) -> exp.Expression:
    """The date `months` calendar months after `day`, clamped to the last day of a shorter month."""
    count = exp.cast(months, exp.DataType.build("INT"))
    if _is_duckdb(evaluator):
        shifted = exp.Add(this=day, expression=exp.func("TO_MONTHS", count, dialect="duckdb"))
        return exp.cast(shifted, exp.DataType.build("DATE"))
    # Anonymous: sqlglot would write its own AddMonths as `day + INTERVAL (n) MONTH`, which Spark rejects
    return exp.Anonymous(this="ADD_MONTHS", expressions=[day, count])


@macro()
def iso_day_of_week(evaluator, day: exp.Expression) -> exp.Expression:
    """ISO day of the week: 1 = Monday ... 7 = Sunday."""
    if _is_duckdb(evaluator):
        return exp.Extract(this=exp.var("ISODOW"), expression=day)
    return exp.paren(
        exp.Add(this=exp.Anonymous(this="WEEKDAY", expressions=[day]), expression=exp.Literal.number(1))
    )
