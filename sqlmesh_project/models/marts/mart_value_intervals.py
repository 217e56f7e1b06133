"""How sure the totals are: 80% intervals (P10, P50, P90) of the next 12 months' total value and of
the total revenue at risk, for all customers, per value tier, lifecycle stage and contract
segment, next to the pipeline's expected figure. A total's interval is not the sum of its
customers' intervals: given the model's parameters the customers are independent, so their good
and bad years offset (the total is normal by the central limit theorem), while the parameters'
uncertainty is shared by all of them and does not average out (clv/stats/uncertainty.py).
Measures: clv_12m, orders + subscriptions (the running subscriptions' charges by the renewal
model, their variance from int_subscription_value, added to every parameter draw); value_12m and
revenue_at_risk, their order parts (the purchase model x Gamma-Gamma).
Grain: one row per group_kind, group_value and measure."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import read_model
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.stats import scoring


@model(
    "marts.mart_value_intervals",
    kind=dict(name=ModelKindName.FULL),
    grain=["group_kind", "group_value", "measure"],
    tags=["marts"],
    columns=scoring.VALUE_INTERVAL_COLUMNS,
    depends_on=[
        "intermediate.int_clv_model_fit",
        "intermediate.int_clv_predictions",
        "intermediate.int_revenue_risk",
        "intermediate.int_subscription_value",
        "marts.mart_customer_segments",
    ],
    audits=[
        (
            "unique_combination_of_columns",
            {"columns": [exp.column(c) for c in ("group_kind", "group_value", "measure")]},
        ),
        (
            "not_null",
            {"columns": [exp.column(c) for c in ("group_kind", "group_value", "measure", "expected_usd")]},
        ),
        (
            "quantiles_in_order",
            {"low": exp.column("p10_usd"), "middle": exp.column("p50_usd"), "high": exp.column("p90_usd")},
        ),
    ],
    description="80% intervals of total 12-month value and total revenue at risk: all customers, per value tier and segment.",
    column_descriptions={
        "group_kind": "all, value_tier, lifecycle_stage or contract_segment",
        "group_value": "The tier or segment (all customers for group_kind all)",
        "measure": "clv_12m (next 12 months' value, orders + subscriptions), value_12m (its order part) or revenue_at_risk (its order part: reachable customers leaving within 90 days)",
        "customers": "Customers in the group",
        "expected_usd": "The pipeline's expected total: sum of predicted_clv_12m_usd (clv_12m), of predicted_order_value_12m_usd (value_12m), or of revenue_at_risk_usd - subscription_revenue_at_risk_usd (revenue_at_risk)",
        "p10_usd": "10th percentile of the total (purchases, spend and parameter uncertainty; clv_12m also the subscriptions' renewals)",
        "p50_usd": "Median of the total",
        "p90_usd": "90th percentile of the total",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    return scoring.value_interval_frame(
        read_model(context, "intermediate.int_clv_model_fit"),
        read_model(context, "intermediate.int_clv_predictions"),
        read_model(context, "intermediate.int_revenue_risk"),
        read_model(context, "marts.mart_customer_segments"),
        read_model(context, "intermediate.int_subscription_value"),
    )
