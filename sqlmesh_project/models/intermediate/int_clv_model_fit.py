"""BG/NBD (repeat purchasing with dropout) and Gamma-Gamma (spend per purchase) fitted by maximum
likelihood on every customer's purchases up to the business date (clv/stats/btyd.py), and, when the
variable clv_purchase_model is pareto_nbd, Pareto/NBD (clv/stats/pareto_nbd.py), which the
predictions then use (purchase_model says which; the pnbd_* columns are null under bgnbd). The
bgnbd_* columns always hold BG/NBD's fit: int_revenue_risk's dropout per purchase and
mart_value_intervals' totals are BG/NBD's. The per-customer summary is computed in SQL
(int_purchase_summary's rows of the business date); Python sees one row per customer. A fit that
does not converge fails the run with the reason. Each parameter carries its standard error and 95%
interval, and the log-parameters' covariance that int_clv_predictions and mart_value_intervals
draw from. Grain: one row (the business date's fit)."""

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
    "intermediate.int_clv_model_fit",
    kind=dict(name=ModelKindName.FULL),
    grain="business_date",
    tags=["intermediate"],
    columns=scoring.FIT_COLUMNS,
    depends_on=["intermediate.int_purchase_summary"],
    audits=[
        ("unique_values", {"columns": [exp.column("business_date")]}),
        (
            "not_null",
            {
                "columns": [
                    exp.column(c)
                    for c in (
                        "business_date",
                        "bgnbd_r",
                        "bgnbd_alpha",
                        "bgnbd_a",
                        "bgnbd_b",
                        "gg_p",
                        "gg_q",
                        "gg_v",
                    )
                ]
            },
        ),
    ],
    description="Fitted BG/NBD, Gamma-Gamma (and Pareto/NBD under clv_purchase_model pareto_nbd) parameters with the fits' diagnostics.",
    column_descriptions={
        "business_date": "Calibration end: purchases up to this date",
        "time_unit": "Unit of recency, T and alpha: day or week (variable clv_time_unit)",
        "customers": "Customers with at least one purchase (the BG/NBD fit)",
        "repeat_customers": "Customers with a repeat purchase (the Gamma-Gamma fit)",
        "bgnbd_r": "Shape of the purchase-rate distribution",
        "bgnbd_alpha": "Scale of the purchase-rate distribution (time units)",
        "bgnbd_a": "Dropout Beta a",
        "bgnbd_b": "Dropout Beta b",
        "bgnbd_log_likelihood": "Total log-likelihood over customers",
        "bgnbd_iterations": "Newton iterations of the fit",
        "bgnbd_gradient_norm": "Gradient norm of the mean log-likelihood at the optimum",
        "gg_p": "Shape of a transaction value",
        "gg_q": "Shape of the spend-rate distribution",
        "gg_v": "Scale of the spend-rate distribution (USD)",
        "gg_log_likelihood": "Total log-likelihood over repeat customers",
        "gg_iterations": "Newton iterations of the fit",
        "gg_gradient_norm": "Gradient norm of the mean log-likelihood at the optimum",
        "mean_spend_usd": "Population mean value of a purchase, p v / (q - 1)",
        "refund_share": "Refunds / order revenue to date (predictions are net of it)",
        **{
            f"{c}_{suffix}": text.format(c)
            for c in scoring.PARAMETER_COLUMNS
            for suffix, text in (
                ("se", "Standard error of {} (analytic Hessian at the maximum, delta method)"),
                (
                    "lower_95",
                    "Lower bound of the 95% interval of {} (exp(log estimate - 1.96 se of the log))",
                ),
                ("upper_95", "Upper bound of the 95% interval of {}"),
            )
        },
        "bgnbd_log_covariance": "Covariance of log r, log alpha, log a, log b (JSON rows); null when not identified",
        "gg_log_covariance": "Covariance of log p, log q, log v (JSON rows); null when not identified",
        "purchase_model": "Purchase model of int_clv_predictions: bgnbd or pareto_nbd (variable clv_purchase_model)",
        "pnbd_r": "Pareto/NBD shape of the purchase-rate distribution (null under bgnbd)",
        "pnbd_alpha": "Pareto/NBD scale of the purchase-rate distribution (time units)",
        "pnbd_s": "Pareto/NBD shape of the dropout-rate distribution",
        "pnbd_beta": "Pareto/NBD scale of the dropout-rate distribution (time units)",
        "pnbd_log_likelihood": "Pareto/NBD total log-likelihood over customers",
        "pnbd_iterations": "Newton iterations of the Pareto/NBD fit",
        "pnbd_gradient_norm": "Gradient norm of the Pareto/NBD mean log-likelihood at the optimum",
        **{
            f"{c}_{suffix}": text.format(c)
            for c in scoring.PNBD_COLUMNS
            for suffix, text in (
                ("se", "Standard error of {} (null under bgnbd)"),
                ("lower_95", "Lower bound of the 95% interval of {}"),
                ("upper_95", "Upper bound of the 95% interval of {}"),
            )
        },
        "pnbd_log_covariance": "Covariance of log r, log alpha, log s, log beta of Pareto/NBD (JSON rows)",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> pd.DataFrame:
    business = from_execution_time(execution_time)
    summary = read_model(context, "intermediate.int_purchase_summary", business)
    fit = scoring.fit_clv(
        summary,
        business,
        str(context.var("clv_time_unit", "day")),
        str(context.var("clv_purchase_model", "bgnbd")),
    )
    return scoring.fit_frame(fit)
