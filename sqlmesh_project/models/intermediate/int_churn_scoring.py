"""Churn probability per customer on the business date: the fitted churn model (int_churn_model)
applied to BG/NBD's P(alive) (int_clv_predictions) and the behavioural signals of the business
date (sessions, support tickets, subscription, lifecycle stage; same SQL as in training).
churn_probability is the probability that the customer has already left; bgnbd_churn_probability
is BG/NBD's own 1 - P(alive), kept for comparison. Grain: one row per customer_id."""

from __future__ import annotations

import typing as t

import pandas as pd
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import scoring


@model(
    "intermediate.int_churn_scoring",
    kind=dict(name=ModelKindName.FULL),
    grain="customer_id",
    tags=["intermediate"],
    columns=scoring.SCORING_COLUMNS,
    depends_on=[
        "core.dim_customers",
        "core.fct_revenue",
        "core.fct_activity_logs",
        "core.fct_support_logs",
        "staging.stg_subscriptions",
        "intermediate.int_clv_predictions",
        "intermediate.int_churn_model",
    ],
    audits=[
        ("unique_values", {"columns": [exp.column("customer_id")]}),
        ("not_null", {"columns": [exp.column("customer_id"), exp.column("churn_probability")]}),
        ("accepted_range", {"column": exp.column("churn_probability"), "min_v": 0, "max_v": 1}),
        ("accepted_range", {"column": exp.column("bgnbd_churn_probability"), "min_v": 0, "max_v": 1}),
    ],
    description="Churn probability from BG/NBD's P(alive) and behavioural signals, by the fitted churn model.",
    column_descriptions={
        "customer_id": "Customer identifier",
        "churn_score": "Log-odds of churn",
        "churn_probability": "Probability that the customer has already left, 0-1",
        "bgnbd_churn_probability": "1 - P(alive) from BG/NBD alone, for comparison",
        "churn_model": "Which model produced the probability",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    fetch = scoring.engine_fetch(context)  # DuckDB SQL, rendered in the gateway's dialect
    tables = scoring.resolve_tables(context, behaviour=True)
    lifecycle = scoring.Lifecycle(
        int(context.var("active_within_days", 90)),
        int(context.var("dormant_within_days", 180)),
        int(context.var("onboarding_days", 60)),
    )
    coefficients = fetch(f"SELECT * FROM {context.resolve_table('intermediate.int_churn_model')}")
    scored = fetch(
        "SELECT customer_id, p_alive, frequency FROM "
        f"{context.resolve_table('intermediate.int_clv_predictions')} ORDER BY customer_id"
    )
    behaviour = fetch(scoring.behaviour_sql(tables, from_execution_time(execution_time), lifecycle))
    return scoring.churn_scores(scored, behaviour, scoring.churn_model_from_frame(coefficients))
