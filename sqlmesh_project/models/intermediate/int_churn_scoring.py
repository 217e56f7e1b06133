"""Churn probability per customer on the business date: the fitted churn model (int_churn_model)
applied to BG/NBD's P(alive) (int_clv_predictions) and the behavioural signals of the business
date (int_churn_features: sessions, support tickets, subscription, lifecycle stage; the rows of
the training cutoff are computed by the same macro).
churn_probability is the probability that the customer has already left; bgnbd_churn_probability
is BG/NBD's own 1 - P(alive), kept for comparison; churn_reasons names, in words, the signals that
raise the customer's score most above the average customer's (clv.stats.churn.reasons: the
model's coefficient x standardised feature value, summed per group of related features; the
purchase summary of the business date, int_purchase_summary, gives the days since the last
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
    "intermediate.int_churn_scoring",
    kind=dict(name=ModelKindName.FULL),
    grain="customer_id",
    tags=["intermediate"],
    columns=scoring.SCORING_COLUMNS,
    depends_on=[
        "intermediate.int_churn_features",
        "intermediate.int_clv_predictions",
        "intermediate.int_churn_model",
        "intermediate.int_purchase_summary",
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
        "churn_reasons": "Up to three signals that raise the churn score most above the average customer's, "
        "in words, largest first, separated by '; ' (null when none raises it by 0.1 log-odds)",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    coefficients = read_model(context, "intermediate.int_churn_model")
    predictions = read_model(context, "intermediate.int_clv_predictions")
    business = from_execution_time(execution_time)
    signals = read_model(context, "intermediate.int_churn_features", business)
    purchases = read_model(context, "intermediate.int_purchase_summary", business)
    return scoring.churn_scores(predictions, signals, scoring.churn_model_from_frame(coefficients), purchases)
