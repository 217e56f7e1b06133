"""The dashboard's data-health section: is the data arriving, complete and on time, and is the
pipeline getting slower?

Layout only; every number comes from `dashboard/health_data.py`. `app.py` calls `render` inside
its "Data health" tab with the open serving file and its table formatter (`app.py` runs the page
when imported, so it hands the formatter over). What the detectors do and how to tune them:
README, "Anomaly detection".
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from clv.anomalies import COLD, FAIL, NO_VALUE, OK, WARN
from dashboard import health_data as hd
from dashboard.data import LAYERS, Serving
from dashboard.model_health import STATUS_ICONS as MODEL_STATUS_ICONS

STATUS_ICONS = {**MODEL_STATUS_ICONS, COLD: "⚪ not enough history", NO_VALUE: "⚪ no value"}
OUTCOME_COLOURS = alt.Scale(
    domain=["all passed", "warned", "failed"], range=["#4c9a5b", "#e39c37", "#c0504d"]
)
LINE_COLOURS = alt.Scale(
    domain=[label for label, _ in dict.fromkeys(hd.BAND_LINES.values())],
    range=["#1f4e79", "#7f7f7f", "#e39c37", "#c0504d"],
)
LINE_DASHES = alt.Scale(domain=["observed", "expected", "band"], range=[[1, 0], [2, 2], [6, 3]])
BAND_KEY = (
    "In the charts: blue, the metric; grey dotted, its expected value; orange dashed, the warn band; "
    "red dashed, the fail band (each as it stood on that date)."
)
MAX_ANOMALY_CHARTS = 12
TRENDED_MODELS = 5
# What each charted metric of a source measures (the y axis)
SOURCE_METRICS = {"rows_added": "Rows delivered"}

TableConfig = Callable[[pd.DataFrame], dict[str, object]]


def render(s: Serving, table_config: TableConfig) -> None:
    have = hd.available(s)
    if not any(have.values()):
        st.info(
            "This serving file has no data-health history (it was published by an earlier version of "
            "the pipeline): run `make run` with this version."
        )
        return
    st.subheader("Data health")
    st.caption(
        "How the data and the pipeline behaved over the business dates the serving file keeps "
        "(CLV_HEALTH_HISTORY_DAYS, default the last 60): the checks' outcomes per layer, metrics "
        "that left their usual range, each source's freshness and volume, the slowest models."
    )
    for heading, table, what, rows, empty, draw in PARTS:
        st.markdown(f"#### {heading}")
        if not have[table]:
            st.info(
                f"No {what} in this serving file (it was published by an earlier version of the pipeline)."
            )
            continue
        df = rows(s)
        if df.empty:
            st.info(empty)
        else:
            draw(s, df, table_config)


def checks_section(s: Serving, h: pd.DataFrame, table_config: TableConfig) -> None:
    st.caption(
        "One cell per layer and business date: the outcome of the layer's Soda checks in that date's "
        "latest run (green: all passed; orange: at least one warned; red: at least one failed and "
        "stopped the layers after it). Hover a cell for the number of checks passed, warned and failed."
    )
    chart = (
        alt.Chart(h)
        .mark_rect(stroke="white")
        .encode(
            x=alt.X("yearmonthdate(business_date):O", title="Business date", axis=alt.Axis(format="%b %d")),
            y=alt.Y("layer:N", sort=list(LAYERS), title=None),
            color=alt.Color("outcome:N", scale=OUTCOME_COLOURS, title="Checks"),
            tooltip=[
                alt.Tooltip("business_date:T", title="Business date", format="%Y-%m-%d"),
                alt.Tooltip("layer:N", title="Layer"),
                alt.Tooltip("passed:Q", title="Passed"),
                alt.Tooltip("warned:Q", title="Warned"),
                alt.Tooltip("failed:Q", title="Failed"),
            ],
        )
        .properties(height=36 * len(LAYERS))
    )
    st.altair_chart(chart, width="stretch")
    with st.expander("Checks passed, warned and failed per business date and layer"):
        shown = h.drop(columns=["outcome"]).iloc[::-1]
        st.dataframe(shown, hide_index=True, column_config=table_config(shown), key="health_check_history")


def anomalies_section(s: Serving, v: pd.DataFrame, table_config: TableConfig) -> None:
    day = v["business_date"].iloc[0]
    st.caption(
        f"Business date {day:%Y-%m-%d}. Every layer's metrics (rows added, freshness, null shares of "
        "customer ids, business figures such as the mean order value) are judged against their own "
        "history: expected = the median of the metric's previous business dates; the warn and fail "
        "bands around it are as wide as the metric usually moves (a robust spread, with a floor per "
        "metric). Outside the fail band stops the layer; outside the warn band warns."
    )
    counts = v["status"].value_counts().reindex(hd.STATUSES, fill_value=0)
    cols = st.columns(4)
    cols[0].metric("Inside their band", f"{counts[OK]:,}", help="Metrics judged and found normal.")
    cols[1].metric("Outside the warn band", f"{counts[WARN]:,}", help="Metrics that warned.")
    cols[2].metric(
        "Outside the fail band", f"{counts[FAIL]:,}", help="Metrics that failed their layer's check."
    )
    cols[3].metric(
        "Not judged yet",
        f"{counts[COLD]:,}",
        help=f"Metrics with fewer than {hd.MIN_HISTORY} earlier business dates on record: recorded, "
        "not judged (no guess from too little history).",
    )
    if counts[OK] + counts[WARN] + counts[FAIL] == 0 and counts[COLD]:
        st.info(
            f"**Not enough history yet.** A metric is judged once it has {hd.MIN_HISTORY} earlier "
            f"business dates on record; the most any metric has is {v['history_days'].max()}. Until "
            "then each run records its metrics and this section shows no verdict.",
            icon=":material/hourglass_empty:",
        )
        return
    found = v[v["status"].isin([FAIL, WARN])].drop(columns=["business_date"])
    if found.empty:
        st.success(f"Every judged metric is inside its band on {day:%Y-%m-%d}.")
        return
    shown = found.assign(status=found["status"].map(STATUS_ICONS))
    st.dataframe(shown, hide_index=True, column_config=table_config(shown), key="health_anomalies")
    charted = found.head(MAX_ANOMALY_CHARTS)
    more = (
        f" Charts of the first {len(charted)} of {len(found)} (failures first)."
        if len(found) > len(charted)
        else ""
    )
    st.caption(BAND_KEY + more)
    for i, row in enumerate(charted.itertuples()):
        if i % 2 == 0:
            cols = st.columns(2)
        name = f"{row.layer}.{row.dataset}.{row.metric}"
        with cols[i % 2]:
            band_chart(hd.band_history(s, row.layer, row.dataset, row.metric), name, row.metric)


def band_chart(df: pd.DataFrame, title: str, y_title: str) -> None:
    """A metric over the business dates, with the expected value and the bands it was judged
    against on each date (no band on a date without enough history)."""
    chart = (
        alt.Chart(df)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("business_date:T", title="Business date"),
            y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color("line:N", scale=LINE_COLOURS, legend=None),  # the captions say the colours
            strokeDash=alt.StrokeDash("kind:N", scale=LINE_DASHES, legend=None),
            detail="series:N",
            tooltip=[
                alt.Tooltip("business_date:T", title="Business date", format="%Y-%m-%d"),
                alt.Tooltip("line:N", title="Line"),
                alt.Tooltip("value:Q", title="Value", format=",.4~g"),
                alt.Tooltip("status:N", title="Verdict"),
            ],
        )
        .properties(title=title)
    )
    # the height goes to Streamlit: set on the chart, it left the plot a few pixels high
    st.altair_chart(chart, width="stretch", height=260)


def sources_section(s: Serving, fresh: pd.DataFrame, table_config: TableConfig) -> None:
    st.caption(
        f"Each source system's export on business date {fresh['business_date'].iloc[0]:%Y-%m-%d}: "
        "its newest event up to that date (orders: order time; sessions: session start; tickets: "
        "opening time; balances and financial profiles: their snapshot date) and how many days it "
        "lags the business date; the rows its daily batch delivered and the rows on record. "
        "Customers and subscriptions carry no event time of their own: their freshness is not "
        "measured."
    )
    shown = fresh.drop(columns=["business_date"])
    for col in ("freshness_status", "volume_status"):
        if col in shown:
            shown[col] = shown[col].map(STATUS_ICONS).fillna("—")
    st.dataframe(shown, hide_index=True, column_config=table_config(shown), key="health_freshness")
    st.markdown("**Rows delivered per business date**")
    st.caption(
        "Each source's rows per daily batch, against the band its volume was judged against on each "
        "date: expected = the median of the previous dates; the warn band allows a quarter up or down "
        "(or more for a source that usually moves more), the fail band more. No band on the dates "
        "before the detector had enough history. " + BAND_KEY
    )
    names = hd.sources(s)
    cols = st.columns(3)
    for i, source in enumerate(names):
        with cols[i % 3]:
            band_chart(
                hd.band_history(s, hd.SOURCE_LAYER, source, "rows_added"),
                source,
                SOURCE_METRICS["rows_added"],
            )


def models_section(s: Serving, slow: pd.DataFrame, table_config: TableConfig) -> None:
    latest = slow.iloc[0]
    st.caption(
        f"Seconds each SQLMesh model took to build on the latest run (business date "
        f"{latest['business_date']:%Y-%m-%d}, finished {latest['run_finished_at']:%Y-%m-%d %H:%M}), "
        "beside its median over the earlier runs on record. A run where a model had nothing due "
        "(no new interval) has no time for it."
    )
    shown = slow.drop(columns=["business_date", "run_finished_at"]).assign(
        times_median=slow["seconds"] / slow["median_seconds"]
    )
    st.dataframe(shown, hide_index=True, column_config=table_config(shown), key="health_slowest_models")
    trend = hd.model_trend(s, slow["model"].head(TRENDED_MODELS).tolist())
    chart = (
        alt.Chart(trend)
        .mark_line(point=True)
        .encode(
            x=alt.X("run_finished_at:T", title="Run finished"),
            y=alt.Y("seconds:Q", title="Seconds to build"),
            color=alt.Color("model:N", title="Model", legend=alt.Legend(orient="right", labelLimit=320)),
            tooltip=[
                alt.Tooltip("model:N", title="Model"),
                alt.Tooltip("business_date:T", title="Business date", format="%Y-%m-%d"),
                alt.Tooltip("run_finished_at:T", title="Run finished", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("seconds:Q", title="Seconds", format=".2f"),
            ],
        )
        .properties(title=f"The latest run's {len(slow.head(TRENDED_MODELS))} slowest models, per run")
    )
    st.altair_chart(chart, width="stretch", height=300)


# The section's parts, in order: (heading, the serving table they read, what it holds, its rows,
# what no rows means, the drawing of the rows).
PARTS = (
    ("Check outcomes per layer", "check_history", "check history", hd.check_history,
     "No checks ran in the business dates on record.", checks_section),
    ("Anomalies", "metric_anomalies", "anomaly verdicts", hd.verdicts,
     "No metric judged yet.", anomalies_section),
    ("Sources: freshness and volume", "metric_history", "metric history", hd.freshness,
     "No source's metrics on record yet.", sources_section),
    ("Slowest models", "model_run_times", "model run times", hd.slowest_models,
     "No model run times on record.", models_section),
)  # fmt: skip
