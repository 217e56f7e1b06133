"""Subscription value per customer from the renewal model (int_subscription_model_fit,
clv/stats/renewal.py). Each running subscription (plan changes chained into one episode) is
charged its plan's list price at every future billing date of its current plan (start + k x
billing_months, core.fct_revenue's convention); the charge is paid if the subscription survives
every renewal up to it: sBG conditional survival given the renewals it has already survived.
Paused subscriptions are valued as paying: billing charges them (fct_revenue) and the generator's
truth counts those charges. A customer whose subscription was cancelled may come back: the return
model (`renewal.fit_returns`) adds what a return would bring to the expectations.
How sure: value_12m_p10/p50/p90_usd, an 80% predictive interval of what a customer with a running
subscription may bring over the next 12 months, orders and subscriptions together (the order part
from int_clv_predictions' purchase model, the subscription part from the renewal model's
distribution of the charges paid, `renewal.value_samples` and
`scoring.value_quantiles_with_subscriptions`).
Grain: one row per customer_id with a subscription started by the business date."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import known_customers, read_model
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import renewal, scoring

INTERVAL_COLUMNS = {
    **{f"value_12m_{q}_usd": "DOUBLE" for q in ("p10", "p50", "p90")},
    "subscription_value_12m_sd_usd": "DOUBLE",
}


@model(
    "intermediate.int_subscription_value",
    kind=dict(name=ModelKindName.FULL),
    grain="customer_id",
    tags=["intermediate"],
    columns={**renewal.VALUE_COLUMNS, **INTERVAL_COLUMNS},
    depends_on=[
        "staging.stg_subscriptions",
        "core.dim_plans",
        "core.dim_customers",
        "intermediate.int_subscription_model_fit",
        "intermediate.int_clv_model_fit",
        "intermediate.int_clv_predictions",
    ],
    audits=[
        ("unique_values", {"columns": [exp.column("customer_id")]}),
        (
            "not_null",
            {
                "columns": [
                    exp.column(c)
                    for c in (
                        "customer_id",
                        "active_subscriptions",
                        "mrr_usd",
                        "predicted_subscription_value_12m_usd",
                        "subscription_cancel_probability_90d",
                    )
                ]
            },
        ),
        ("accepted_range", {"column": exp.column("p_subscription_paying_90d"), "min_v": 0, "max_v": 1}),
        (
            "accepted_range",
            {"column": exp.column("subscription_cancel_probability_90d"), "min_v": 0, "max_v": 1},
        ),
        ("accepted_range", {"column": exp.column("expected_subscription_revenue_90d_usd"), "min_v": 0}),
        ("accepted_range", {"column": exp.column("predicted_subscription_value_12m_usd"), "min_v": 0}),
        (
            "quantiles_in_order",
            {
                "low": exp.column("value_12m_p10_usd"),
                "middle": exp.column("value_12m_p50_usd"),
                "high": exp.column("value_12m_p90_usd"),
            },
        ),
    ],
    description="Expected subscription revenue per customer over 90 and 365 days from the sBG renewal model.",
    column_descriptions={
        "customer_id": "Customer identifier",
        "subscriptions": "Subscription episodes started by the business date (plan changes chained), running or not",
        "active_subscriptions": "Subscriptions running on the business date, paused ones included (billing charges them)",
        "paused_subscriptions": "Of those, paused on the business date (valued as paying)",
        "mrr_usd": "Monthly recurring revenue now: list price / billing months, summed over running subscriptions",
        "expected_subscription_revenue_90d_usd": "Charges expected in the next 90 days: price x P(still paying at each billing date)",
        "expected_subscription_revenue_365d_usd": "Charges expected in the next 365 days, undiscounted",
        "predicted_subscription_value_12m_usd": "The same over 12 months discounted at clv_discount_rate a year by each charge's day (0 = undiscounted): the subscription part of the customer value; it already contains the probability of cancelling",
        "p_subscription_paying_90d": "Probability that at least one subscription still pays at day 90 (subscriptions independent); 0 without one running",
        "subscription_cancel_probability_90d": "Probability of cancelling at a renewal within 90 days, weighted by each running subscription's 12-month value (one subscription: 1 - its survival to day 90); 0 without one",
        "renewals_survived": "Most renewals survived by a running subscription of the customer",
        "value_12m_p10_usd": "Orders + running subscriptions: 10th percentile of what the customer may bring over the next 12 months (net, discounted like the value); NULL without a running subscription (the order interval is then the whole)",
        "value_12m_p50_usd": "Orders + running subscriptions: median of the next 12 months' value",
        "value_12m_p90_usd": "Orders + running subscriptions: 90th percentile; with value_12m_p10_usd an 80% predictive interval (a return after cancelling is in the expectation, not in the interval)",
        "subscription_value_12m_sd_usd": "Standard deviation of the running subscriptions' charges over the next 12 months (the renewal model's distribution; mart_value_intervals adds it up for the totals); NULL without a running subscription",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> t.Iterator[pd.DataFrame]:
    business = from_execution_time(execution_time)
    subscriptions = known_customers(context, read_model(context, "staging.stg_subscriptions"))
    plans = read_model(context, "core.dim_plans")
    models = renewal.models_from_frame(read_model(context, "intermediate.int_subscription_model_fit"))
    eps = renewal.episodes(subscriptions, plans, business)
    running = subscriptions["status"].astype(str) == "paused"
    paused = set(subscriptions.loc[running, "subscription_id"].astype(str))
    discount = float(context.var("clv_discount_rate", 0.0))
    frame = renewal.value_frame(eps, models, business, discount, paused)
    ids, draws = renewal.value_samples(eps, models, business, discount)
    bands = pd.DataFrame(index=pd.Index(ids, name="customer_id"), columns=list(INTERVAL_COLUMNS), dtype=float)
    if len(ids):
        bands.iloc[:, :3] = scoring.value_quantiles_with_subscriptions(
            read_model(context, "intermediate.int_clv_model_fit"),
            read_model(context, "intermediate.int_clv_predictions"),
            ids,
            draws,
        )
        bands["subscription_value_12m_sd_usd"] = draws.std(axis=1, dtype=float)
    frame[list(INTERVAL_COLUMNS)] = bands.reindex(frame["customer_id"].astype(str)).to_numpy(dtype=float)
    if frame.empty:  # no subscriber yet: SQLMesh takes no frame, not an empty one
        yield from ()
    else:
        yield frame
