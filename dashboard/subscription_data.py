"""What the dashboard's subscriptions section shows, as DataFrames read from the serving file:
retention curves (``mart_subscription_retention``) and MRR movements (``mart_mrr_movements``).

Same style as ``dashboard/data.py``: each function takes an open ``data.Serving`` and runs one
query. The two marts are optional: a serving file published before they existed still opens, and
``available`` says whether the section has anything to show.
"""

from __future__ import annotations

import pandas as pd

from dashboard.data import Serving

RETENTION = "mart_subscription_retention"
MRR = "mart_mrr_movements"
# A curve point resting on fewer subscriptions than this is noise; the chart stops before it.
MIN_AT_RISK = 10
# The waterfall's steps in order: (column, label, sign). Opening and closing are levels.
MOVEMENTS = (
    ("new_mrr_usd", "New", 1),
    ("expansion_mrr_usd", "Expansion", 1),
    ("reactivated_mrr_usd", "Reactivated", 1),
    ("contraction_mrr_usd", "Contraction", -1),
    ("churned_mrr_usd", "Churned", -1),
)


def available(s: Serving) -> dict[str, bool]:
    return {"retention": s.has(RETENTION), "mrr": s.has(MRR)}


def retention_curves(s: Serving, min_at_risk: int = MIN_AT_RISK) -> pd.DataFrame:
    """Kaplan–Meier survival per starting plan over every start month (the mart's ``all`` rows),
    complete months only (the mart holds no other), up to the last month with at least
    ``min_at_risk`` subscriptions at risk; ``model_survival`` beside it, null until the renewal
    model's curve is joined."""
    return s.df(
        "SELECT plan_id, coalesce(plan_name, plan_id) AS plan_name, months_since_start, "
        "subscriptions_started, subscriptions_at_risk, subscriptions_cancelled, survival::DOUBLE AS survival, "
        "model_survival::DOUBLE AS model_survival "
        f"FROM {RETENTION} WHERE cohort = 'all' AND subscriptions_at_risk >= ? "
        "ORDER BY plan_id, months_since_start",
        [min_at_risk],
    )


def retention_summary(s: Serving, months: tuple[int, ...] = (1, 3, 6, 12)) -> pd.DataFrame:
    """Per plan: subscriptions started and the share still subscribed after a few milestones
    (null where no subscription has reached the month yet)."""
    picks = ", ".join(
        f"max(survival) FILTER (months_since_start = {int(m)})::DOUBLE AS survival_{int(m)}m" for m in months
    )
    return s.df(
        f"SELECT plan_id, coalesce(max(plan_name), plan_id) AS plan_name, max(subscriptions_started) AS "
        f"subscriptions_started, {picks} FROM {RETENTION} WHERE cohort = 'all' "
        "GROUP BY plan_id ORDER BY plan_id"
    )


def mrr_history(s: Serving) -> pd.DataFrame:
    """Every month of the MRR table, oldest first, money as DOUBLE."""
    return s.df(
        "SELECT mrr_month, is_complete_month, closing_as_of_date, opening_mrr_usd::DOUBLE AS opening_mrr_usd, "
        + ", ".join(f"{c}::DOUBLE AS {c}" for c, _, _ in MOVEMENTS)
        + ", closing_mrr_usd::DOUBLE AS closing_mrr_usd, closing_subscriber_count "
        f"FROM {MRR} ORDER BY mrr_month"
    )


def latest_complete_month(s: Serving) -> pd.Series | None:
    """The newest month that has ended by the business date, or None before the first one ends."""
    history = mrr_history(s)
    complete = history[history["is_complete_month"]]
    return None if complete.empty else complete.iloc[-1]


def waterfall(month: pd.Series) -> pd.DataFrame:
    """One month's MRR bridge as bars: the opening level, each movement from where the previous
    one ended (``start`` -> ``end``), and the closing level; in the mart's order, with ``amount``
    signed (contraction and churn negative)."""
    rows = [{"step": "Opening", "kind": "level", "amount": month["opening_mrr_usd"], "start": 0.0}]
    level = float(month["opening_mrr_usd"])
    for column, label, sign in MOVEMENTS:
        amount = sign * float(month[column])
        rows.append({"step": label, "kind": "gain" if sign > 0 else "loss", "amount": amount, "start": level})
        level += amount
    rows.append({"step": "Closing", "kind": "level", "amount": float(month["closing_mrr_usd"]), "start": 0.0})
    df = pd.DataFrame(rows)
    df["end"] = df["start"] + df["amount"]
    return df
