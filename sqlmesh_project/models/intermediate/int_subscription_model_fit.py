"""The renewal model of subscription value (clv/stats/renewal.py): a shifted-beta-geometric fit
(Fader & Hardie 2007) per plan, on the renewal periods of every subscription started by the
business date (staging.stg_subscriptions, plans from core.dim_plans): renewals survived by the
subscriptions still running (paused ones included: billing charges them), the renewal at which
the others were cancelled; a plan change is chained into one episode, not counted as a
cancellation. A plan with too little data is pooled into its billing cycle; a group that cannot
be fitted (no subscribers, no cancellation yet) is a row with its reason, never a failed run.
Refitted every model_refit_days (macros/refit.py): on the days between, the stored fit is returned
unchanged and int_subscription_value values with it (business_date says when it was fitted).
Grain: one row per fitted group (a plan, or the plans of a billing cycle pooled together)."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import known_customers, read_model
from macros.refit import stored_fit
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.business_date import from_execution_time
from clv.stats import renewal


@model(
    "intermediate.int_subscription_model_fit",
    kind=dict(name=ModelKindName.FULL),
    grain="covers_plans",
    tags=["intermediate"],
    columns=renewal.FIT_COLUMNS,
    depends_on=["staging.stg_subscriptions", "core.dim_plans", "core.dim_customers"],
    audits=[
        ("unique_values", {"columns": [exp.column("covers_plans")]}),
        (
            "not_null",
            {
                "columns": [
                    exp.column(c)
                    for c in ("covers_plans", "business_date", "group_level", "billing_cycle", "status")
                ]
            },
        ),
        (
            "accepted_values",
            {
                "column": exp.column("status"),
                "is_in": [exp.Literal.string(s) for s in ("fitted", "capped", "not_fitted")],
            },
        ),
        ("accepted_range", {"column": exp.column("mean_cancel_probability"), "min_v": 0, "max_v": 1}),
    ],
    description="Shifted-beta-geometric renewal model per plan (or billing cycle), with the fit's diagnostics.",
    column_descriptions={
        "business_date": "Business date of the fit: subscriptions started up to this date (refit every model_refit_days days)",
        "group_level": "plan: one plan's own fit; billing_cycle: the plans of a cycle pooled (too little data alone)",
        "billing_cycle": "monthly or annual: a renewal is one billing cycle",
        "plan_tier": "basic, plus or premium for a plan's own fit; null when pooled",
        "plan_id": "The plan of a plan's own fit; null when pooled",
        "covers_plans": "Plans whose subscriptions this fit values (comma-separated)",
        "subscriptions": "Subscription episodes with at least one charge (plan changes chained)",
        "cancelled": "Episodes cancelled by the business date",
        "periods": "Renewal opportunities observed: renewals survived plus cancellations",
        "alpha": "Beta alpha of the cancellation probability per renewal; null when not fitted",
        "beta": "Beta beta of the cancellation probability per renewal; null when not fitted",
        "alpha_se": "Standard error of alpha (observed information, delta method); null when not fitted or capped",
        "alpha_lower_95": "95% interval of alpha, exp(log alpha -+ 1.96 se of log alpha)",
        "alpha_upper_95": "Upper end of that interval",
        "beta_se": "Standard error of beta; null when not fitted or capped",
        "beta_lower_95": "95% interval of beta, lower end",
        "beta_upper_95": "Upper end of that interval",
        "mean_cancel_probability": "alpha / (alpha + beta): mean cancellation probability at a renewal",
        "log_likelihood": "Total sBG log-likelihood",
        "iterations": "L-BFGS-B iterations of the fit",
        "gradient_norm": "Gradient norm of the mean log-likelihood at the optimum, in (logit alpha / (alpha + beta), log(alpha + beta))",
        "geometric_cancel_probability": "The simpler alternative: one cancellation probability per renewal for all",
        "geometric_log_likelihood": "Log-likelihood of that geometric model (sBG nests it: never higher)",
        "status": "fitted; capped (no heterogeneity in the data: alpha, beta held at a cap); not_fitted (see reason: valued as renewing)",
        "reason": "Why a plan was pooled, capped or not fitted; empty for a plain fit",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    business = from_execution_time(execution_time)
    kept = stored_fit(context, "intermediate.int_subscription_model_fit", business, "business_date")
    if kept is not None:
        return kept
    subscriptions = known_customers(context, read_model(context, "staging.stg_subscriptions"))
    plans = read_model(context, "core.dim_plans")
    eps = renewal.episodes(subscriptions, plans, business)
    return renewal.fit_frame(renewal.fit_groups(eps, plans), business)
