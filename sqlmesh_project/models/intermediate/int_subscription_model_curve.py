"""The renewal model's retention curve per plan (clv.stats.renewal.curve_frame), month by month
since the start, for marts.mart_subscription_retention to draw the fit beside the Kaplan–Meier
curve of the data: the share of new subscriptions still running after month k, S(k /
billing_months) from intermediate.int_subscription_model_fit (constant hazard between renewals).
Plans whose group is not fitted have no rows. Grain: one row per plan_id and months_since_start."""

from __future__ import annotations

import typing as t

import pandas as pd
from macros.features import read_model
from sqlglot import exp
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName

from clv.stats import renewal


@model(
    "intermediate.int_subscription_model_curve",
    kind=dict(name=ModelKindName.FULL),
    grain=["plan_id", "months_since_start"],
    tags=["intermediate"],
    columns=renewal.CURVE_COLUMNS,
    depends_on=["intermediate.int_subscription_model_fit", "core.dim_plans"],
    audits=[
        (
            "unique_combination_of_columns",
            {"columns": [exp.column("plan_id"), exp.column("months_since_start")]},
        ),
        ("not_null", {"columns": [exp.column(c) for c in renewal.CURVE_COLUMNS]}),
        ("accepted_range", {"column": exp.column("model_survival"), "min_v": 0, "max_v": 1}),
    ],
    description="The sBG renewal model's retention curve per plan, by month since the start.",
    column_descriptions={
        "plan_id": "Plan (core.dim_plans) valued by a fitted group",
        "months_since_start": "Month of the subscription: 0 = the start, k = after the kth month",
        "model_survival": "Share of new subscriptions still running after month k by the fitted model: S(k / billing_months)",
    },
)
def execute(
    context: ExecutionContext, start: t.Any, end: t.Any, execution_time: t.Any, **kwargs: t.Any
) -> t.Iterator[pd.DataFrame]:
    frame = renewal.curve_frame(
        read_model(context, "intermediate.int_subscription_model_fit"),
        read_model(context, "core.dim_plans"),
        int(context.var("clv_subscription_curve_months", renewal.CURVE_MONTHS)),
    )
    if frame.empty:  # nothing fitted yet: SQLMesh takes no frame, not an empty one
        yield from ()
    else:
        yield frame
