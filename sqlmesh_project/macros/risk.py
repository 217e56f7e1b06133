"""The churn-risk band and who counts as at risk on a day, written once: ``mart_churn_risk``
bands every customer with ``@risk_band``, and ``int_at_risk_history`` keeps, per business date,
the customers ``@is_at_risk`` picks, so the band a user filters on and the list whose changes the
dashboard reports cannot drift apart.

At risk here means still reachable (``is_reachable``, int_revenue_risk) with a churn risk band of
medium or high: a customer a retention team can still contact who shows signs of leaving.
Customers most likely gone are the win-back pool, never at risk.
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro

# Lower bounds of the bands on churn_probability, highest first; below the last: low.
RISK_BANDS = (("high", 0.6), ("medium", 0.3))


def _sql(evaluator, e: exp.Expression) -> str:
    return e.sql(dialect=evaluator.dialect)


@macro()
def risk_band(evaluator, churn_probability: exp.Expression) -> exp.Expression:
    """'high', 'medium' or 'low' by churn_probability (bounds in RISK_BANDS)."""
    p = _sql(evaluator, churn_probability)
    whens = " ".join(f"WHEN {p} >= {bound} THEN '{band}'" for band, bound in RISK_BANDS)
    return exp.maybe_parse(f"CASE {whens} ELSE 'low' END", dialect=evaluator.dialect)


@macro()
def is_at_risk(evaluator, is_reachable: exp.Expression, churn_probability: exp.Expression) -> exp.Expression:
    """Still reachable and in a churn risk band above low."""
    lowest = min(bound for _, bound in RISK_BANDS)
    return exp.maybe_parse(
        f"({_sql(evaluator, is_reachable)} AND {_sql(evaluator, churn_probability)} >= {lowest})",
        dialect=evaluator.dialect,
    )
