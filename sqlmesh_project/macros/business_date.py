"""``@business_date()``: the business date a run is for, in SQL.

clv runs business date D with SQLMesh execution time D + 1 day; `clv.business_date` owns that
mapping (both directions) and this macro calls it, so SQL models, Python models and the pipeline
agree on the date. Works for every model kind, unlike ``@end_ds``.
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro

from clv.business_date import from_execution_time


@macro()
def business_date(evaluator) -> exp.Expression:
    """The business date of this run as a DATE literal. Without an execution time (SQLMesh
    rendering a model to show it or to fingerprint it) a fixed date, never the wall clock."""
    value = evaluator.locals.get("execution_ds") or evaluator.locals.get("latest_ds")
    day = from_execution_time(str(value)).isoformat() if value else "1970-01-01"
    return exp.cast(exp.Literal.string(day), exp.DataType.build("DATE"))
