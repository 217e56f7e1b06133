"""The dashboard's subscriptions section: retention curves per plan and the MRR bridge.

Layout only; every number comes from `dashboard/subscription_data.py`. `app.py` calls `render`
inside its "Subscriptions" tab with the open serving file, as it does for its own sections.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import subscription_data as sd
from dashboard.data import Serving

STEP_COLOURS = alt.Scale(domain=["level", "gain", "loss"], range=["#1f4e79", "#4c9a5b", "#c0504d"])


def _money(x: object) -> str:
    # app.py's money(): app.py runs the page when imported, so the formatter is repeated here
    if x is None or pd.isna(x):
        return "n/a"
    x = float(x)
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def render(s: Serving) -> None:
    have = sd.available(s)
    if not have["mrr"] and not have["retention"]:
        st.info("This serving file has no subscription marts yet: run `make run` with this version.")
        return
    if have["mrr"]:
        mrr_section(s)
    if have["retention"]:
        retention_section(s)


def mrr_section(s: Serving) -> None:
    month = sd.latest_complete_month(s)
    if month is None:
        st.info("No calendar month has ended since the first subscription: no MRR bridge yet.")
        return
    label = f"{month['mrr_month']:%B %Y}"
    st.subheader(f"Monthly recurring revenue, {label}")
    st.caption(
        "MRR: every running subscription's plan price per month (an annual plan counts its price / 12; "
        "paused subscriptions count, as billing keeps charging them). Each customer's change over the "
        "month is one movement; a plan change is an expansion or a contraction, never churn."
    )
    net = float(month["closing_mrr_usd"]) - float(month["opening_mrr_usd"])
    cols = st.columns(4)
    cols[0].metric("MRR at month end", _money(month["closing_mrr_usd"]), delta=_money(net))
    cols[1].metric("New + reactivated MRR", _money(month["new_mrr_usd"] + month["reactivated_mrr_usd"]))
    cols[2].metric("Churned MRR", _money(month["churned_mrr_usd"]))
    cols[3].metric("Subscribers at month end", f"{int(month['closing_subscriber_count']):,}")
    steps = sd.waterfall(month)
    order = list(steps["step"])
    bars = (
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=order, title=None),
            y=alt.Y("start:Q", title="MRR", axis=alt.Axis(format="$,.0f")),
            y2="end:Q",
            color=alt.Color("kind:N", scale=STEP_COLOURS, legend=None),
            tooltip=[
                alt.Tooltip("step:N", title="Step"),
                alt.Tooltip("amount:Q", title="MRR", format="$,.2f"),
            ],
        )
        .properties(title=f"MRR bridge, {label}")
    )
    st.altair_chart(bars, width="stretch")
    history = sd.mrr_history(s)
    complete = history[history["is_complete_month"]]
    current = history[~history["is_complete_month"]]
    st.subheader("MRR over time")
    note = "Closing MRR of each complete month."
    if not current.empty:
        row = current.iloc[-1]
        note += (
            f" {row['mrr_month']:%B %Y} is still running: {_money(row['closing_mrr_usd'])} on "
            f"{row['closing_as_of_date']:%Y-%m-%d}, left out of the chart until it ends."
        )
    st.caption(note)
    line = (
        alt.Chart(complete)
        .mark_line(point=True)
        .encode(
            x=alt.X("mrr_month:T", title="Month"),
            y=alt.Y("closing_mrr_usd:Q", title="MRR", axis=alt.Axis(format="$,.0f")),
            tooltip=[
                alt.Tooltip("mrr_month:T", title="Month", format="%Y-%m"),
                alt.Tooltip("closing_mrr_usd:Q", title="MRR", format="$,.2f"),
                alt.Tooltip("closing_subscriber_count:Q", title="Subscribers", format=","),
            ],
        )
    )
    st.altair_chart(line, width="stretch")


def retention_section(s: Serving) -> None:
    st.subheader("Subscription retention by plan")
    curves = sd.retention_curves(s)
    st.caption(
        "Kaplan–Meier share of subscriptions still running k months after they started, by the plan "
        "they started on (a plan change keeps the subscription; only a cancellation ends it). Complete "
        "months only: a month still running on the business date is not counted. Each curve stops "
        f"where fewer than {sd.MIN_AT_RISK} subscriptions are left at risk."
    )
    if curves.empty:
        st.info("No subscription has completed a month yet.")
        return
    observed = curves.assign(curve="observed", share=curves["survival"])
    parts = [observed]
    if curves["model_survival"].notna().any():
        modelled = curves[curves["model_survival"].notna()]
        parts.append(modelled.assign(curve="renewal model", share=modelled["model_survival"]))
    plotted = pd.concat(parts, ignore_index=True)
    chart = (
        alt.Chart(plotted)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "months_since_start:Q", title="Months since start", axis=alt.Axis(tickMinStep=1, format="d")
            ),
            y=alt.Y(
                "share:Q", title="Still subscribed", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("plan_name:N", title="Plan"),
            strokeDash=alt.StrokeDash("curve:N", title="Curve"),
            tooltip=[
                alt.Tooltip("plan_name:N", title="Plan"),
                alt.Tooltip("curve:N", title="Curve"),
                alt.Tooltip("months_since_start:Q", title="Month"),
                alt.Tooltip("share:Q", title="Still subscribed", format=".1%"),
                alt.Tooltip("subscriptions_at_risk:Q", title="At risk", format=","),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")
    summary = sd.retention_summary(s)
    config = {
        "plan_id": "Plan",
        "plan_name": "Plan name",
        "subscriptions_started": st.column_config.NumberColumn("Subscriptions started", format="%d"),
    }
    for column in summary.columns:
        if column.startswith("survival_"):
            months = column.removeprefix("survival_").removesuffix("m")
            config[column] = st.column_config.NumberColumn(
                f"Still subscribed after {months} months", format="percent"
            )
    st.dataframe(summary, hide_index=True, column_config=config, key="subscription_retention_table")
