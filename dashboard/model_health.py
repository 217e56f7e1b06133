"""The dashboard's model-health section: are the predictions still coming true?

Layout only; every number comes from `dashboard/model_health_data.py`. `app.py` calls `render`
inside its "Model health" tab with the open serving file. What each figure means: README, "Model
health".
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import model_health_data as md
from dashboard.data import Serving

STATUS_ICONS = {"fail": "🔴 fail", "warn": "🟠 warn", "ok": "🟢 ok", "too_few": "⚪ too few customers"}


def render(s: Serving) -> None:
    have = md.available(s)
    if not have["performance"]:
        st.info("This serving file has no model-health marts yet: run `make run` with this version.")
        return
    day = md.latest_date(s)
    st.subheader("Model health")
    st.caption(
        "Every run backtests its models (fitted as of the business date minus the churn label window, "
        "scored on what the held-out customers did since) and scores the predictions it recorded 90 "
        "and 365 days ago. A metric past its fail threshold stops publication; this page then shows "
        f"the last published run. Latest backtest: {day}."
    )
    verdict_section(s)
    for gate in md.TRENDS:
        trend_chart(s, gate)
    calibration_section(s)
    if have["parameters"]:
        parameters_section(s)


def verdict_section(s: Serving) -> None:
    v = md.verdicts(s)
    if v.empty:
        st.info("No gated metric yet.")
        return
    shown = v.assign(health_status=v["health_status"].map(STATUS_ICONS).fillna(v["health_status"]))
    st.dataframe(
        shown[["health_status", "health_explanation"]].rename(
            columns={"health_status": "Verdict", "health_explanation": "Metric, rule and recent history"}
        ),
        hide_index=True,
        key="model_health_verdicts",
        width="stretch",
    )


def trend_chart(s: Serving, gate: str) -> None:
    _, title, axis = md.TRENDS[gate]
    t = md.trend(s, gate)
    if t[t["kind"] == "metric"].empty:
        return
    chart = (
        alt.Chart(t)
        .mark_line(point=True)
        .encode(
            x=alt.X("business_date:T", title="Business date"),
            y=alt.Y("value:Q", title=axis),
            color=alt.Color("series:N", title=None),
            strokeDash=alt.StrokeDash("kind:N", title=None, sort=["metric", "threshold"]),
            tooltip=["business_date:T", "series", "value", "health_status"],
        )
        .properties(title=title)
    )
    # the height goes to st.altair_chart: given in the chart, Streamlit 1.67 draws a line chart
    # a few pixels high
    st.altair_chart(chart, width="stretch", height=220)


def calibration_section(s: Serving) -> None:
    c = md.calibration(s)
    if c.empty:
        return
    left, right = st.columns(2)
    with left:
        points = (
            alt.Chart(c)
            .mark_line(point=True)
            .encode(
                x=alt.X("predicted:Q", title="Mean predicted P(no purchase)", scale=alt.Scale(domain=[0, 1])),
                y=alt.Y(
                    "observed:Q", title="Observed share without a purchase", scale=alt.Scale(domain=[0, 1])
                ),
                color=alt.Color("model:N", title="Model"),
                tooltip=["model", "decile", "customers", "predicted", "observed"],
            )
        )
        st.altair_chart(
            points.properties(title="Calibration by decile (latest backtest)", height=280), width="stretch"
        )
        st.caption("On the diagonal: the predicted probability is the share observed.")
    with right:
        lift = (
            alt.Chart(c)
            .mark_bar()
            .encode(
                x=alt.X("decile:O", title="Decile of predicted P(no purchase) (1 = highest)"),
                xOffset="model:N",
                y=alt.Y("lift:Q", title="Observed share / base rate"),
                color=alt.Color("model:N", title="Model"),
            )
            .properties(title="Lift by decile (latest backtest)", height=280)
        )
        st.altair_chart(lift, width="stretch")
    v = md.value_deciles(s)
    if not v.empty:
        long = v.melt(
            id_vars=["model", "decile"],
            value_vars=["predicted_usd", "actual_usd"],
            var_name="kind",
            value_name="usd",
        )
        long["series"] = long["model"] + " " + long["kind"].str.replace("_usd", "")
        bars = (
            alt.Chart(long)
            .mark_bar()
            .encode(
                x=alt.X("decile:O", title="Decile of predicted revenue (1 = highest)"),
                xOffset="series:N",
                y=alt.Y("usd:Q", title="Mean revenue per customer, $"),
                color=alt.Color("series:N", title=None),
                tooltip=["model", "kind", "decile", "usd"],
            )
            .properties(title="Predicted vs actual revenue by decile (latest backtest)", height=240)
        )
        st.altair_chart(bars, width="stretch")


def parameters_section(s: Serving) -> None:
    coef = md.coefficients(s)
    if not coef.empty:
        st.markdown(
            f"**What drives churn now** (churn model trained as of {coef['fitted_as_of'].iloc[0]:%Y-%m-%d})"
        )
        chart = (
            alt.Chart(coef)
            .mark_bar()
            .encode(
                x=alt.X("coefficient:Q", title="Coefficient on the standardised feature (churn log-odds)"),
                y=alt.Y("feature:N", sort=None, title=None),
                color=alt.condition("datum.coefficient > 0", alt.value("#c0504d"), alt.value("#4c9a5b")),
                tooltip=["feature", "coefficient", "description"],
            )
            .properties(title="Churn model coefficients", height=24 * len(coef))
        )
        st.altair_chart(chart, width="stretch")
    params = md.parameters(s)
    if not params.empty:
        st.markdown("**Fitted purchase and spend models** (95% intervals from the analytic Hessian)")
        st.dataframe(
            params.assign(fitted_as_of=pd.to_datetime(params["fitted_as_of"]).dt.date),
            hide_index=True,
            key="model_parameters",
            width="stretch",
        )
