"""Model health, one business date at a time: how the predictions did against what the customers
then did, from the warehouse alone (clv/stats/backtest.py).

- **backtest** (every run, from the first day): the churn model's own time split read as a
  forecast. The purchase model refitted at the cutoff (business date - churn_label_window_days,
  int_purchase_summary's cutoff rows), the churn model's coefficients (int_churn_model) applied to
  the cutoff features (int_churn_features) of the customers held out of its fit, scored on the
  window since: P(no purchase) by the churn model and by BG/NBD alone, and the window's net order
  revenue (core.fct_revenue) against the value each expected.
- **ledger** (once the horizon has passed): int_prediction_ledger's rows of business date - 90
  (and - 365) against the purchases, order revenue and subscription charges of the days since.

History: INCREMENTAL_BY_TIME_RANGE on business_date, forward-only and never restated (a model
change or a restatement must not rewrite how past predictions scored); each interval writes the
rows of the run's business date (the backtest needs the feature rows of its cutoff, which exist
for that date only) and the ledger scores of every day in it. marts.mart_model_performance reads
the history, adds the thresholds and judges it. Grain: one row per business_date, evaluation,
model, target, horizon_days, metric and decile (0: all customers)."""

from __future__ import annotations

import datetime as dt
import typing as t

import pandas as pd
from macros.features import read_model
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import backtest, scoring

GRAIN = ("business_date", "evaluation", "model", "target", "horizon_days", "metric", "decile")


def _table(context: ExecutionContext, name: str) -> exp.Table:
    return exp.to_table(context.resolve_table(name), dialect=context.default_dialect)


def _day(value: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))


def _revenue_after(context: ExecutionContext, origin: dt.date, horizon: int) -> pd.DataFrame:
    """Per customer, what came in the `horizon` days after `origin`: net order revenue (orders
    and refunds), subscription charges, and whether there was an order."""
    kind = exp.column("revenue_type")
    amount = exp.column("revenue_usd")

    def total(*kinds: str) -> exp.Expression:
        return exp.func(
            "SUM",
            exp.Case().when(kind.isin(*[exp.Literal.string(k) for k in kinds]), amount).else_(exp.null()),
        )

    query = (
        exp.select(
            exp.column("customer_id"),
            exp.cast(total("order", "refund"), "DOUBLE").as_("order_revenue_usd"),
            exp.cast(total("subscription"), "DOUBLE").as_("subscription_revenue_usd"),
            exp.func(
                "MAX",
                exp.Case()
                .when(kind.eq(exp.Literal.string("order")), exp.Literal.number(1))
                .else_(exp.Literal.number(0)),
            ).as_("purchased"),
        )
        .from_(_table(context, "core.fct_revenue"))
        .where(exp.column("revenue_date") > _day(origin))
        .where(exp.column("revenue_date") <= _day(origin + dt.timedelta(days=horizon)))
        .group_by(exp.column("customer_id"))
    )
    out = context.fetchdf(query)
    out["purchased"] = out["purchased"].astype(float) > 0
    return out


def _ledger_dates(context: ExecutionContext) -> set[dt.date]:
    query = (
        exp.select("business_date").distinct().from_(_table(context, "intermediate.int_prediction_ledger"))
    )
    return {pd.Timestamp(d).date() for d in context.fetchdf(query)["business_date"]}


def _ledger(context: ExecutionContext, day: dt.date) -> pd.DataFrame:
    query = (
        exp.select("*")
        .from_(_table(context, "intermediate.int_prediction_ledger"))
        .where(exp.column("business_date").eq(_day(day)))
    )
    return context.fetchdf(query)


@model(
    "intermediate.int_model_performance",
    kind=dict(
        name=ModelKindName.INCREMENTAL_BY_TIME_RANGE,
        time_column="business_date",
        forward_only=True,
        disable_restatement=True,
    ),
    grain=list(GRAIN),
    tags=["intermediate", "ledger", "as_known"],
    columns=backtest.PERFORMANCE_COLUMNS,
    depends_on=[
        "intermediate.int_purchase_summary",
        "intermediate.int_churn_features",
        "intermediate.int_churn_model",
        "intermediate.int_prediction_ledger",
        "core.fct_revenue",
    ],
    audits=[
        ("unique_combination_of_columns", {"columns": [exp.column(c) for c in GRAIN]}),
        ("not_null", {"columns": [exp.column(c) for c in (*GRAIN, "origin_date", "customers")]}),
    ],
    description="Model health per business date: the rolling-origin backtest and the scored prediction ledger.",
    column_descriptions={
        "business_date": "Business date of the run that measured it",
        "evaluation": "backtest (the churn model's time split, every run) or ledger (recorded predictions whose horizon has passed)",
        "model": "churn_model (the published churn probability and churn-weighted order value), bgnbd (the purchase model alone, the baseline) or sbg (subscriptions)",
        "target": "no_purchase (a probability), order_revenue or subscription_revenue (a value)",
        "origin_date": "Date the predictions were made as of (backtest: the cutoff; ledger: the ledger's business date)",
        "horizon_days": "Days after the origin the outcome covers",
        "metric": "clv.stats.model_metrics: roc_auc, pr_auc, top_decile_precision, top_decile_lift, brier, log_loss, calibration_gap, base_rate, predicted_rate, decile_predicted, decile_observed; aggregate_error, mae_usd, normalized_gini, predicted_total_usd, actual_total_usd, decile_predicted_usd, decile_actual_usd",
        "decile": "0 for a metric of all customers; 1-10 for a row of the decile table (1 = highest predictions)",
        "value": "The metric's value",
        "customers": "Customers it was measured on",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> t.Iterator[pd.DataFrame]:
    business = from_execution_time(execution_time)
    days = [d for d in backtest.days_in_interval(start, end) if d <= business]
    parts = []
    recorded = _ledger_dates(context)  # one query, not two per day of a long first interval
    for day in days:
        for horizon in backtest.LEDGER_HORIZONS:
            origin = day - dt.timedelta(days=horizon)
            if origin in recorded:
                ledger = _ledger(context, origin)
                parts.append(
                    backtest.score_ledger(ledger, _revenue_after(context, origin, horizon), day, horizon)
                )
    if business in days:
        window = int(context.var("churn_label_window_days", 180))
        cutoff = scoring.training_cutoff(business, window)
        parts.append(
            backtest.backtest(
                read_model(context, "intermediate.int_purchase_summary", cutoff),
                read_model(context, "intermediate.int_churn_features", cutoff),
                read_model(context, "intermediate.int_purchase_summary", business),
                _revenue_after(context, cutoff, window),
                read_model(context, "intermediate.int_churn_model"),
                business,
                window,
                str(context.var("clv_time_unit", "day")),
                str(context.var("clv_purchase_model", "bgnbd")),
            )
        )
    parts = [p for p in parts if not p.empty]
    if not parts:
        yield from ()
        return
    yield pd.concat(parts, ignore_index=True)
