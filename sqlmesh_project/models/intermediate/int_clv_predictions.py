"""Predicted value per customer from the fitted purchase model and Gamma-Gamma (int_clv_model_fit; the
purchase model is BG/NBD, or Pareto/NBD when the variable clv_purchase_model is pareto_nbd: every
column below then comes from it, bgnbd_clv_12m_usd included, which keeps its name and means "the
purchase model alone"):
probability of being alive, expected purchases over the next 90 and 365 days and the probability of
at least one, expected value of a purchase, and the next 12 months' value, net of refunds and
discounted at clv_discount_rate a year, with its 80% predictive interval (P10, P50, P90:
clv/stats/uncertainty.py), for the purchase summary of the business date (int_purchase_summary). Customers who signed
up but never bought get P(alive) 1 and no predicted purchases (the models start at the first
purchase). Grain: one row per customer_id."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import read_model
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import scoring


@model(
    "intermediate.int_clv_predictions",
    kind=dict(name=ModelKindName.FULL),
    grain="customer_id",
    tags=["intermediate"],
    columns=scoring.PREDICTION_COLUMNS,
    depends_on=["intermediate.int_purchase_summary", "intermediate.int_clv_model_fit"],
    audits=[
        ("unique_values", {"columns": [exp.column("customer_id")]}),
        (
            "not_null",
            {
                "columns": [
                    exp.column(c)
                    for c in (
                        "customer_id",
                        "p_alive",
                        "bgnbd_clv_12m_usd",
                        "predicted_remaining_clv_usd",
                    )
                ]
            },
        ),
        ("accepted_range", {"column": exp.column("p_alive"), "min_v": 0, "max_v": 1}),
        ("accepted_range", {"column": exp.column("bgnbd_clv_12m_usd"), "min_v": 0}),
        ("expected_value_within_value_if_active", {}),
        (
            "quantiles_in_order",
            {
                "low": exp.column("clv_12m_p10_usd"),
                "middle": exp.column("clv_12m_p50_usd"),
                "high": exp.column("clv_12m_p90_usd"),
            },
        ),
        (
            "quantiles_in_order",
            {
                "low": exp.column("p_purchase_90d"),
                "middle": exp.column("p_purchase_365d"),
                "high": exp.Literal.number(1),
            },
        ),
    ],
    description="BG/NBD + Gamma-Gamma predictions per customer: P(alive), expected purchases and spend, 12-month CLV.",
    column_descriptions={
        "customer_id": "Customer identifier",
        "frequency": "Repeat purchase days up to the business date",
        "recency": "Time from the first to the last purchase day (time units of the fit)",
        "age": "T: time from the first purchase day to the business date (time units of the fit)",
        "monetary_value_usd": "Mean order value of the repeat purchase days; null without repeats",
        "p_alive": "Probability that the customer has not dropped out (BG/NBD, or Pareto/NBD under clv_purchase_model pareto_nbd)",
        "expected_purchases_90d": "Expected purchase days in the next 90 days",
        "expected_purchases_365d": "Expected purchase days in the next 365 days",
        "expected_spend_per_purchase_usd": "Expected net value of one purchase (Gamma-Gamma, net of the refund share)",
        "predicted_remaining_clv_usd": "Net revenue expected over the next 12 months if the customer is still active",
        "bgnbd_clv_12m_usd": "Expected net revenue over the next 12 months by the purchase model alone (BG/NBD, or Pareto/NBD under clv_purchase_model pareto_nbd): p_alive x predicted_remaining_clv_usd",
        "p_purchase_90d": "Probability of at least one purchase in the next 90 days (the purchase model)",
        "p_purchase_365d": "Probability of at least one purchase in the next 365 days (the purchase model)",
        "clv_12m_p10_usd": "10th percentile of the net revenue of the next 12 months (purchases, spend per purchase and parameter uncertainty; the purchase model's P(alive))",
        "clv_12m_p50_usd": "Median net revenue of the next 12 months (0 when no purchase is more likely than not)",
        "clv_12m_p90_usd": "90th percentile of the net revenue of the next 12 months: with clv_12m_p10_usd an 80% predictive interval",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    fit_row = read_model(context, "intermediate.int_clv_model_fit")
    _, gg, time_unit, refund_share = scoring.models_from_frame(fit_row)
    purchase = scoring.purchase_model_from_frame(fit_row)  # BG/NBD or Pareto/NBD (clv_purchase_model)
    summary = read_model(context, "intermediate.int_purchase_summary", from_execution_time(execution_time))
    discount = float(context.var("clv_discount_rate", 0.0))
    return scoring.predictions_frame(summary, purchase, gg, time_unit, refund_share, discount)
