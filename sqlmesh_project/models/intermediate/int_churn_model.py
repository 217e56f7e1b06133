"""The churn model, fitted on history with a time split (clv/stats/churn.py): features as of the
cutoff business date - churn_label_window_days (BG/NBD refitted on int_purchase_summary's rows of
the cutoff for 1 - P(alive); int_churn_features' sessions, tickets, subscriptions and lifecycle
stage of the cutoff), the outcome = no purchase between the cutoff and the business date (the
last purchase date in int_purchase_summary's rows of the business date), read through BG/NBD so
that the coefficients describe the probability of having left. One customer in five is held out
and scored against BG/NBD alone. Refitted every model_refit_days (macros/refit.py): on the days
between, the stored fit is returned unchanged and int_churn_scoring scores with it (fit_date says
when it was fitted). Grain: one row per feature (plus the intercept)."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import read_model
from macros.refit import stored_fit
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import scoring


@model(
    "intermediate.int_churn_model",
    kind=dict(name=ModelKindName.FULL),
    grain="feature",
    tags=["intermediate"],
    columns=scoring.CHURN_MODEL_COLUMNS,
    depends_on=["intermediate.int_purchase_summary", "intermediate.int_churn_features"],
    audits=[
        ("unique_values", {"columns": [exp.column("feature")]}),
        (
            "not_null",
            {"columns": [exp.column(c) for c in ("feature", "coefficient", "feature_mean", "feature_scale")]},
        ),
    ],
    description="Churn model coefficients, training window and holdout comparison with BG/NBD alone.",
    column_descriptions={
        "feature": "Feature name (clv.stats.churn.FEATURES), or intercept",
        "coefficient": "Coefficient of the standardised feature in the churn log-odds",
        "rate_coefficient": "Coefficient in the log factor on an active customer's purchase rate (training only)",
        "feature_mean": "Training mean used to standardise the feature",
        "feature_scale": "Training standard deviation used to standardise the feature",
        "description": "What the feature measures",
        "churn_model": "Model name and version",
        "trained_as_of": "Cutoff date of the features",
        "fit_date": "Business date on which the model was fitted (refit every model_refit_days days)",
        "label_window_days": "Days after the cutoff in which a purchase counts as staying",
        "train_customers": "Customers in the fit",
        "holdout_customers": "Customers held out (one in five)",
        "holdout_no_purchase_share": "Share of held-out customers without a purchase in the window",
        "holdout_log_loss": "Log-loss of this model on the held-out outcome",
        "holdout_log_loss_bgnbd": "Log-loss of BG/NBD alone (1 - P(alive)) on the held-out outcome",
        "holdout_auc": "ROC AUC of this model on the held-out outcome",
        "holdout_auc_bgnbd": "ROC AUC of BG/NBD alone on the held-out outcome",
        "iterations": "Optimizer iterations",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    business = from_execution_time(execution_time)
    kept = stored_fit(context, "intermediate.int_churn_model", business, "fit_date")
    if kept is not None:
        return kept
    window_days = int(context.var("churn_label_window_days", 180))
    cutoff = scoring.training_cutoff(business, window_days)
    training = scoring.train_churn(
        read_model(context, "intermediate.int_purchase_summary", cutoff),
        read_model(context, "intermediate.int_churn_features", cutoff),
        read_model(context, "intermediate.int_purchase_summary", business),
        cutoff,
        window_days,
        str(context.var("clv_time_unit", "day")),
        str(context.var("clv_purchase_model", "bgnbd")),  # the P(alive) scoring will use
    )
    return scoring.churn_model_frame(training)
