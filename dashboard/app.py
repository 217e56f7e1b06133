"""The retention manager's dashboard: a Streamlit app over the serving file (`make dashboard`).

Layout only; every number comes from `dashboard/data.py`, which opens `<data dir>/serving.duckdb`
read-only for the length of one page load. A missing, empty or unreadable serving file shows a
page that says to run `make run` first.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import data, health, model_health, reports, subscriptions  # noqa: E402

TITLE = "Customer value & churn"
TIER_COLOURS = alt.Scale(domain=list(data.VALUE_TIERS), range=["#1f4e79", "#3a7dbf", "#8bb8e0", "#cfd8e3"])


def money(x: object) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    x = float(x)
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def pct(x: object) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{float(x):.0%}"


LABELS = {
    "customer_id": "Customer",
    "value_tier": "Value tier",
    "churn_probability": "Churn probability",
    "p_alive": "P(alive)",
    "predicted_order_value_12m_usd": "Predicted 12-month value: orders",
    "predicted_subscription_value_12m_usd": "Predicted 12-month value: subscriptions",
    "mrr_usd": "Monthly recurring revenue",
    "subscription_cancel_probability_90d": "Cancels a subscription within 90 days",
    "subscription_revenue_at_risk_usd": "Revenue at risk: subscriptions",
    "p_purchase_90d": "P(buys within 90 days)",
    "p_purchase_365d": "P(buys within 365 days)",
    "order_value_12m_p10_usd": "Orders next 12 months, low (P10)",
    "order_value_12m_p50_usd": "Orders next 12 months, median",
    "order_value_12m_p90_usd": "Orders next 12 months, high (P90)",
    "value_12m_p10_usd": "Value next 12 months, low (P10)",
    "value_12m_p50_usd": "Value next 12 months, median",
    "value_12m_p90_usd": "Value next 12 months, high (P90)",
    "measure": "Total",
    "expected_usd": "Expected",
    "p10_usd": "Low (P10)",
    "p50_usd": "Median (P50)",
    "p90_usd": "High (P90)",
    "risk_band": "Churn risk",
    "revenue_at_risk_usd": "Revenue at risk, 90 days",
    "value_lost_usd": "Value already lost",
    "value_kept_usd": "Value kept",
    "value_at_stake_usd": "Value at stake",
    "leave_probability_90d": "Leaves within 90 days",
    "is_reachable": "Still reachable",
    "min_value_at_stake_usd": "Value at stake from",
    "max_value_at_stake_usd": "Value at stake to",
    "predicted_clv_12m_usd": "Predicted 12-month CLV",
    "historical_clv_usd": "Revenue to date",
    "expected_purchases_365d": "Expected purchases, next 365 days",
    "lifecycle_stage": "Lifecycle stage",
    "days_since_last_activity": "Days since last activity",
    "contract_segment": "Subscription segment",
    "region": "Region",
    "country_code": "Country",
    "favourite_category": "Favourite category",
    "tickets_90d": "Tickets, 90 days",
    "avg_csat_90d": "Avg CSAT, 90 days",
    "loyalty_tier": "Loyalty tier",
    "is_marketing_opt_in": "Marketing opt-in",
    "customers": "Customers",
    "share_of_customers": "Share of customers",
    "min_predicted_clv_12m_usd": "Predicted CLV from",
    "max_predicted_clv_12m_usd": "Predicted CLV to",
    "share_of_predicted_clv": "Share of predicted CLV",
    "avg_churn_probability": "Avg churn probability",
    "churned_share": "Already churned",
    "band": "Band",
    "avg_historical_clv_usd": "Avg revenue to date",
    "avg_predicted_clv_12m_usd": "Avg predicted 12-month CLV",
    "total_historical_clv_usd": "Total revenue to date",
    "avg_purchase_days": "Avg purchase days",
    "avg_category_share": "Avg share of spend in category",
    "layer": "Layer",
    "passed": "Passed",
    "warned": "Warned",
    "failed": "Failed",
    "business_date": "Business date",
    "last_scanned_at": "Last scanned",
    "scanned_at": "Scanned",
    "dataset": "Dataset",
    "check_name": "Check",
    "outcome": "Outcome",
    "value": "Value",
    "table": "Table",
    "rows": "Rows",
    "field": "Field",
    "avg_order_value_usd": "Avg order value",
    "predicted_remaining_clv_usd": "Value next 12 months if retained",
    "expected_spend_per_purchase_usd": "Expected spend per purchase",
    "sessions_30d": "Sessions, 30 days",
    "sessions_90d": "Sessions, 90 days",
    "avg_resolution_hours_90d": "Avg resolution hours, 90 days",
    "engagement_trend": "Sessions trend vs previous 90 days",
    "value_rank": "Value rank (1 = highest)",
    "customer_name": "Name",
    "email": "Email",
    "churn_reasons": "Why (largest churn signals)",
    "risk_change": "Since the previous date",
    "is_at_risk": "At risk (reachable, churn risk medium or high)",
    "previous_business_date": "Previous business date",
    "avg_leave_probability_90d": "Avg leaves within 90 days",
    "model_name": "Model",
    "fit_date": "Fitted on",
    "fit_age_days": "Age of the fit (days)",
    "refit_every_days": "Refitted every (days)",
    "next_refit_date": "Next refit",
    "trained_as_of": "Learned from data as of",
    "model_version": "Version",
    "source": "Source",
    "latest_event_date": "Newest event",
    "freshness_lag_days": "Days behind the business date",
    "rows_added": "Rows delivered",
    "freshness_status": "Freshness verdict",
    "volume_status": "Volume verdict",
    "status": "Verdict",
    "metric": "Metric",
    "observed": "Observed",
    "expected": "Expected (median of history)",
    "warn_lower": "Warn band from",
    "warn_upper": "Warn band to",
    "fail_lower": "Fail band from",
    "fail_upper": "Fail band to",
    "history_days": "Earlier dates judged on",
    "explanation": "Explanation",
    "model": "Model",
    "seconds": "Seconds, latest run",
    "median_seconds": "Median seconds, earlier runs",
    "earlier_runs": "Earlier runs on record",
    "times_median": "Latest / median",
}


# Columns shown as percentages (one customer's probabilities).
PROBABILITIES = (
    "churn_probability",
    "p_alive",
    "leave_probability_90d",
    "p_purchase_90d",
    "p_purchase_365d",
    "subscription_cancel_probability_90d",
)


def table_config(df: pd.DataFrame) -> dict[str, object]:
    """Readable headers, dollars for *_usd, percentages for probabilities and shares."""
    config: dict[str, object] = {}
    for col in df.columns:
        label = LABELS.get(col, col.replace("_", " "))
        if col.endswith("_usd"):
            config[col] = st.column_config.NumberColumn(label, format="dollar")
        elif col in (*PROBABILITIES, "churned_share") or col.startswith(
            ("share_", "avg_category", "avg_churn", "avg_leave")
        ):
            config[col] = st.column_config.NumberColumn(label, format="percent")
        elif col in ("business_date", "fit_date", "next_refit_date", "trained_as_of", "latest_event_date"):
            config[col] = st.column_config.DateColumn(label, format="YYYY-MM-DD")
        elif col.endswith("scanned_at"):
            config[col] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss")
        elif col in ("avg_purchase_days", "expected_purchases_365d"):
            config[col] = st.column_config.NumberColumn(label, format="%.1f")
        elif col in ("seconds", "median_seconds"):
            config[col] = st.column_config.NumberColumn(label, format="%.2f s")
        elif col in ("observed", "expected", "warn_lower", "warn_upper", "fail_lower", "fail_upper"):
            config[col] = st.column_config.NumberColumn(label, format="%.4g")
        elif col == "times_median":
            config[col] = st.column_config.NumberColumn(label, format="%.1f×")
        elif col in ("churn_reasons", "explanation"):
            config[col] = st.column_config.TextColumn(label, width="large")
        else:
            config[col] = label
    return config


def unavailable(reason: str) -> None:
    st.title(TITLE)
    st.warning(f"Nothing to show yet. {reason}", icon=":material/hourglass_empty:")
    st.markdown(
        "**Run `make run` first.** It generates the data, runs the pipeline and publishes the "
        "serving file this dashboard reads; then reload this page.\n\n"
        f"The dashboard reads `{data.serving_path()}`. If `make run` wrote elsewhere, start the "
        "dashboard with the same `CLV_DATA_DIR` (for example `make dashboard CLV_DATA_DIR=/tmp/clv`)."
    )


def header(s: data.Serving) -> None:
    st.title(TITLE)
    fitted = data.churn_fit_line(s)
    st.caption(
        f"Business date **{s.business_date:%Y-%m-%d}** · published {s.published_at:%Y-%m-%d %H:%M:%S} · "
        + (f"{fitted} · " if fitted else "")
        + f"`{s.path}`"
    )
    summary = data.check_summary(s)
    if summary is not None and int(summary["failed"].sum()):
        st.error(
            f"{int(summary['failed'].sum())} data-quality checks failed in the last run; "
            "see the Data quality tab.",
            icon=":material/error:",
        )


def kpi_row(s: data.Serving) -> None:
    k = data.kpis(s)
    cols = st.columns(6)
    cols[0].metric("Customers", f"{k.customers:,}", help="Every customer known on the business date.")
    cols[1].metric(
        "Revenue, last 12 months",
        money(k.revenue_last_12m_usd),
        help="Net revenue (orders, subscriptions, refunds) in the 12 calendar months up to the "
        "business date's month.",
    )
    cols[2].metric(
        "Revenue to date", money(k.revenue_to_date_usd), help="Net revenue of every customer since signup."
    )
    cols[3].metric(
        "Predicted 12-month CLV",
        money(k.predicted_clv_12m_usd),
        help="Net revenue expected from today's customers over the next 12 months.",
    )
    cols[4].metric(
        "Revenue at risk",
        money(k.revenue_at_risk_usd),
        help="Customers still reachable (not in the churned stage, churn probability below 50%): "
        "the probability that they leave within the next 90 days × the value of their next 12 "
        "months if they stay.",
    )
    cols[5].metric(
        "Already lost",
        money(k.value_lost_usd),
        help="Churn probability (has already left) × the value of the next 12 months if still "
        "active, summed over every customer. Not part of the revenue at risk.",
    )
    st.caption(
        f"Of the {money(k.remaining_value_usd)} the next 12 months would bring if every customer were "
        f"active and stayed: {money(k.revenue_at_risk_usd)} at risk, {money(k.value_kept_usd)} expected "
        f"to be kept, {money(k.value_lost_usd)} already lost. {k.reachable_customers:,} customers are "
        f"still reachable ({money(k.high_value_at_risk_usd)} of the revenue at risk sits with Top 10% "
        f"and High value customers); {k.lost_customers:,} have most likely left, the win-back pool, "
        f"with {money(k.win_back_value_usd)} of the value lost."
    )
    sure = interval_sentence(data.total_intervals(s))
    if sure:
        st.caption(sure)


def interval_sentence(intervals: dict[tuple[str, str], data.Interval]) -> str | None:
    """How sure the totals are, in one sentence: the 80% intervals of the next 12 months' value
    (orders and subscriptions), of its order part and of the order part of the revenue at risk."""
    whole, value, risk = (
        intervals.get(("all customers", "clv_12m")),
        intervals.get(("all customers", "value_12m")),
        intervals.get(("all customers", "revenue_at_risk")),
    )
    if value is None:
        return None
    if whole is not None:
        text = (
            f"**How sure:** the predicted 12-month value, {money(whole.expected_usd)}, is 80% likely "
            f"between {money(whole.p10_usd)} and {money(whole.p90_usd)}; its order part "
            f"{money(value.expected_usd)} between {money(value.p10_usd)} and {money(value.p90_usd)}"
        )
    else:  # a serving file from before the whole value's interval
        text = (
            f"**How sure:** of the predicted 12-month value, the order part is {money(value.expected_usd)}, "
            f"80% likely between {money(value.p10_usd)} and {money(value.p90_usd)}"
        )
    if risk is not None:
        text += (
            f"; the order part of the revenue at risk is {money(risk.expected_usd)}, 80% likely "
            f"between {money(risk.p10_usd)} and {money(risk.p90_usd)}"
        )
    return text + (
        " (purchases, spend per purchase and the models' parameter uncertainty"
        + (
            "; the running subscriptions' renewals)."
            if whole is not None
            else "; subscriptions are not in these intervals)."
        )
    )


LISTS = {
    "Save: still reachable": "at risk",
    "Win back: already lost": "already lost",
}
TAB_KEY = "tab"
CUSTOMER_TAB = "Customer 360"


def _open_customer(table_key: str, ids_key: str) -> None:
    """A row picked in the at-risk list: open that customer's 360 view (the tabs and the id box
    are keyed, so a callback may set them before they are drawn)."""
    rows = st.session_state[table_key].selection.rows
    ids = st.session_state.get(ids_key) or []
    if rows and rows[0] < len(ids):
        st.session_state["customer_id"] = ids[rows[0]]
        st.session_state[TAB_KEY] = CUSTOMER_TAB


def changes_row(s: data.Serving) -> None:
    changes = data.risk_changes(s)
    if changes is None:
        return
    if changes.previous_date is None:
        st.caption(
            "What changed since the previous business date shows from the second daily run on: "
            "this is the first date on record."
        )
        return
    st.markdown(f"**Since {changes.previous_date:%Y-%m-%d}** (the previous business date on record)")
    cols = st.columns(len(data.RISK_CHANGES))
    helps = {
        "newly at risk": "At risk now (still reachable, churn risk medium or high), not on the previous date.",
        "still at risk": "At risk on both dates.",
        "recovered": "At risk on the previous date; still reachable and churn risk low now.",
        "moved to win-back": "At risk on the previous date; most likely gone now (win-back pool).",
    }
    for col, change in zip(cols, data.RISK_CHANGES):
        col.metric(
            change.capitalize(),
            f"{changes.counts[change]:,}",
            help=helps[change] + f" Value at stake {money(changes.value_at_stake_usd[change])}.",
        )


def measures_legend() -> None:
    with st.expander("What the numbers mean (why churn 96% can sit beside P(alive) 90% and active)"):
        st.markdown("\n".join(f"- {text}" for text in data.MEASURES.values()))


def at_risk_tab(s: data.Serving) -> None:
    st.subheader("Who to contact, and why")
    st.caption(
        "**Save**: customers still reachable (not in the churned stage, churn probability below "
        "50%), ranked by revenue at risk = the probability that they leave within the next 90 "
        "days × the value of their next 12 months if they stay. **Win back**: customers who have "
        "most likely left; value already lost = churn probability × that value. Value tiers rank "
        "the value at stake (revenue to date + the next 12 months if retained). *Why* names the "
        "signals that raise the customer's churn probability most. Narrow by segment (empty = "
        "all); click a column header to re-sort; **tick a row to open that customer's 360 view**."
    )
    changes_row(s)
    which = st.radio("List", list(LISTS), horizontal=True, key="pool")
    pool = LISTS[which]
    options = data.segment_options(s)
    filters: dict[str, list[str]] = {}
    segments = data.segment_filters(s)
    for (col, label), box in zip(segments.items(), st.columns(len(segments))):
        default = [t for t in data.HIGH_VALUE_TIERS if t in options[col]] if col == "value_tier" else []
        filters[col] = box.multiselect(
            label, options[col], default=default, key=f"filter_{col}", placeholder="all"
        )
    left, right, _ = st.columns([1, 1, 3])
    sorts = list(data.SORTS)
    if pool == "already lost":
        sorts.remove("value already lost")
        sorts.insert(0, "value already lost")
    sort = left.selectbox("Rank by", sorts, key=f"sort_{pool.replace(' ', '_')}")
    rows = right.selectbox("Rows", [50, 100, 500, 1000, "all"], index=1, key="rows")
    matches, risk, lost = data.at_risk_summary(s, filters, pool)
    if matches == 0:
        st.info("No customer matches these filters.")
        return
    table = data.at_risk(s, filters, sort, None if rows == "all" else int(rows), pool)
    figure = (
        f"**{money(risk)}** revenue at risk" if pool == "at risk" else f"**{money(lost)}** value already lost"
    )
    st.markdown(
        f"**{matches:,}** customers match, with {figure}. The table holds the top {len(table):,} by {sort}."
    )
    # One table per list and ranking: a header click re-sorts the table in the browser, and that
    # order must not outlive a new "Rank by" (the caption above would claim one order, the table
    # show another).
    table_key = f"at_risk_table_{pool.replace(' ', '_')}_{sort.replace(' ', '_')}"
    ids_key = f"{table_key}_ids"
    st.session_state[ids_key] = table["customer_id"].tolist()
    st.dataframe(
        table,
        hide_index=True,
        column_config=table_config(table),
        key=table_key,
        on_select=lambda: _open_customer(table_key, ids_key),
        selection_mode="single-row",
    )
    st.download_button(
        f"Download these {len(table):,} customers (CSV)",
        data.to_csv(table),
        file_name=f"customers-{pool.replace(' ', '-')}-{s.business_date:%Y-%m-%d}.csv",
        mime="text/csv",
        key="download_at_risk",
        on_click="ignore",
    )
    measures_legend()


def value_tab(s: data.Serving) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Predicted 12-month CLV distribution")
        dist = data.clv_distribution(s)
        chart = (
            alt.Chart(dist)
            .mark_bar(color="#3a7dbf")
            .encode(
                x=alt.X("band:N", sort=dist["band"].tolist(), title="Predicted 12-month CLV"),
                y=alt.Y("customers:Q", title="Customers"),
                tooltip=[
                    alt.Tooltip("band:N", title="Band"),
                    alt.Tooltip("customers:Q", title="Customers", format=","),
                    alt.Tooltip("predicted_clv_12m_usd:Q", title="Predicted CLV", format="$,.0f"),
                    alt.Tooltip("share_of_predicted_clv:Q", title="Share of predicted CLV", format=".1%"),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")
    with right:
        st.subheader("Value tiers")
        tiers = data.value_tiers(s)
        top = tiers[tiers["value_tier"] == "Top 10%"]
        if not top.empty:
            st.markdown(
                f"The top 10% of customers (value at stake of {money(top['min_value_at_stake_usd'].iloc[0])} "
                f"or more: revenue to date + the next 12 months if retained) carry **{pct(top['share_of_predicted_clv'].iloc[0])}** of the predicted value."
            )
        chart = (
            alt.Chart(tiers)
            .mark_bar()
            .encode(
                y=alt.Y("value_tier:N", sort=list(data.VALUE_TIERS), title=None),
                x=alt.X("predicted_clv_12m_usd:Q", title="Predicted 12-month CLV ($)"),
                color=alt.Color("value_tier:N", scale=TIER_COLOURS, legend=None),
                tooltip=[
                    alt.Tooltip("value_tier:N", title="Tier"),
                    alt.Tooltip("customers:Q", title="Customers", format=","),
                    alt.Tooltip("predicted_clv_12m_usd:Q", title="Predicted CLV", format="$,.0f"),
                    alt.Tooltip("revenue_at_risk_usd:Q", title="Revenue at risk", format="$,.0f"),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")
    shown = tiers[
        [
            "value_tier",
            "customers",
            "share_of_customers",
            "min_value_at_stake_usd",
            "max_value_at_stake_usd",
            "predicted_clv_12m_usd",
            "share_of_predicted_clv",
            "historical_clv_usd",
            "revenue_at_risk_usd",
            "value_lost_usd",
            "avg_churn_probability",
        ]
    ]
    st.dataframe(shown, hide_index=True, column_config=table_config(shown), key="value_tiers_table")
    intervals = data.interval_table(s)
    if intervals is not None and not intervals.empty:
        st.subheader("How sure: 80% intervals of the totals")
        st.caption(
            "Each tier's next 12 months (orders and subscriptions, then the order part alone) and "
            "the order part of its revenue at risk: 80% likely between Low and High (purchases, "
            "spend per purchase, the models' parameter uncertainty and the running subscriptions' "
            "renewals). A total's interval is not the sum of its customers' intervals: their "
            "good and bad years offset, while the parameters' uncertainty is shared."
        )
        st.dataframe(
            intervals, hide_index=True, column_config=table_config(intervals), key="value_intervals_table"
        )


def retention_tab(s: data.Serving) -> None:
    st.subheader("Retention by signup cohort")
    complete = data.last_complete_month(s.business_date)
    partial = (
        f" {s.business_date:%B %Y} is left out until it is complete (the data runs to "
        f"{s.business_date:%Y-%m-%d}): a month in progress would draw its first days as a drop in "
        "retention."
        if complete < s.business_date.replace(day=1)
        else ""
    )
    st.caption(
        "Share of each signup month's customers with an order or a session in each month after "
        f"signup (month 0 = the signup month). Complete calendar months only, up to {complete:%B %Y}."
        + partial
    )
    cohorts = data.retention_cohorts(s)
    heatmap = (
        alt.Chart(cohorts)
        .mark_rect()
        .encode(
            x=alt.X("months_since_acquisition:O", title="Months since signup"),
            y=alt.Y("cohort:O", title="Signup month"),
            color=alt.Color(
                "retention_rate:Q", title="Retained", scale=alt.Scale(domain=[0, 1], scheme="blues")
            ),
            tooltip=[
                alt.Tooltip("cohort:O", title="Cohort"),
                alt.Tooltip("months_since_acquisition:O", title="Month"),
                alt.Tooltip("cohort_size:Q", title="Cohort size", format=","),
                alt.Tooltip("customers_active:Q", title="Active", format=","),
                alt.Tooltip("retention_rate:Q", title="Retained", format=".1%"),
                alt.Tooltip("revenue_usd:Q", title="Revenue", format="$,.0f"),
            ],
        )
        .properties(height=max(240, 16 * cohorts["cohort"].nunique()))
    )
    st.altair_chart(heatmap, width="stretch")
    st.subheader("Average retention curve")
    curve = data.retention_curve(s)
    line = (
        alt.Chart(curve)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "months_since_acquisition:Q",
                title="Months since signup",
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            y=alt.Y(
                "retention_rate:Q",
                title="Retained",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            tooltip=[
                alt.Tooltip("months_since_acquisition:Q", title="Month"),
                alt.Tooltip("retention_rate:Q", title="Retained", format=".1%"),
                alt.Tooltip("cohorts:Q", title="Cohorts"),
                alt.Tooltip("customers:Q", title="Customers", format=","),
            ],
        )
    )
    st.altair_chart(line, width="stretch")


def support_tab(s: data.Serving) -> None:
    st.subheader("Churn against support experience")
    group = st.radio(
        "Customers",
        list(data.SUPPORT_GROUPS),
        format_func=data.SUPPORT_GROUPS.get,
        horizontal=True,
        key="support_group",
    )
    st.caption(
        "Customers grouped by their support tickets of the last 90 days. Compare like with like: "
        "customers without tickets are mostly customers already gone (no contact because no "
        "relationship left), so the bands are shown for the customers still reachable by default. "
        "Bars: average churn probability (has already left); the table adds the average "
        "probability of leaving within 90 days, the share in the churned stage, the revenue at risk "
        "and the value already lost."
    )
    for dim, (label, _) in data.SUPPORT_DIMENSIONS.items():
        df = data.churn_by_support(s, dim, group)
        st.markdown(f"**{label}**")
        chart_col, table_col = st.columns([1, 2])
        with chart_col:
            chart = (
                alt.Chart(df)
                .mark_bar(color="#c0504d")
                .encode(
                    x=alt.X("band:N", sort=df["band"].tolist(), title=None),
                    y=alt.Y(
                        "avg_churn_probability:Q", title="Avg churn probability", axis=alt.Axis(format="%")
                    ),
                    tooltip=[
                        alt.Tooltip("band:N", title=label),
                        alt.Tooltip("customers:Q", title="Customers", format=","),
                        alt.Tooltip("avg_churn_probability:Q", title="Avg churn probability", format=".1%"),
                        alt.Tooltip("churned_share:Q", title="Churned", format=".1%"),
                        alt.Tooltip("revenue_at_risk_usd:Q", title="Revenue at risk", format="$,.0f"),
                    ],
                )
                .properties(height=220)
            )
            st.altair_chart(chart, width="stretch")
        with table_col:
            shown = df.drop(columns=["churned_share"]) if group == "reachable" else df  # 0 by definition
            st.dataframe(shown, hide_index=True, column_config=table_config(shown), key=f"support_{dim}")


def category_tab(s: data.Serving) -> None:
    st.subheader("Lifetime value by favourite category")
    cats = data.category_ltv(s)
    value_cols = [c for c in ("avg_predicted_clv_12m_usd", "avg_historical_clv_usd") if c in cats]
    if value_cols:
        names = {"avg_predicted_clv_12m_usd": "predicted 12-month", "avg_historical_clv_usd": "to date"}
        long = cats.melt(
            id_vars=["favourite_category", "customers"], value_vars=value_cols, var_name="measure"
        )
        long["measure"] = long["measure"].map(names)
        chart = (
            alt.Chart(long)
            .mark_bar()
            .encode(
                y=alt.Y("favourite_category:N", sort=cats["favourite_category"].tolist(), title=None),
                x=alt.X("value:Q", title="Average CLV per customer ($)"),
                yOffset="measure:N",
                color=alt.Color("measure:N", title="CLV", scale=alt.Scale(range=["#1f4e79", "#9dc3e6"])),
                tooltip=[
                    alt.Tooltip("favourite_category:N", title="Category"),
                    alt.Tooltip("measure:N", title="CLV"),
                    alt.Tooltip("value:Q", title="Average", format="$,.2f"),
                    alt.Tooltip("customers:Q", title="Customers", format=","),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")
    st.dataframe(
        cats,
        hide_index=True,
        column_config=table_config(cats),
        key="category_table",
        height=35 * (len(cats) + 1) + 3,  # every category, no inner scrolling
    )


def _display(column: str, value: object) -> str:
    """One customer's value as text: dollars for *_usd, percentages for probabilities."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, dt.date):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column.endswith("_usd"):
        return f"${float(value):,.2f}"
    if column in (
        "churn_probability",
        "p_alive",
        "leave_probability_90d",
        "p_purchase_90d",
        "p_purchase_365d",
    ):
        return f"{float(value):.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").capitalize())


def customer_tab(s: data.Serving) -> None:
    st.subheader("Customer 360")
    examples = data.example_customer_ids(s)
    raw = st.text_input(
        "Customer id",
        key="customer_id",
        placeholder=f"e.g. {examples[0]}" if examples else "",
        help="The customer's id in the source systems.",
    )
    if not raw.strip():
        st.caption(f"Enter a customer id. The three with the most revenue at risk: {', '.join(examples)}.")
        return
    row = data.customer(s, raw)
    if row is None:
        st.warning(
            f"No customer with id {data.normalise_customer_id(raw)!r} in the serving file "
            f"(business date {s.business_date:%Y-%m-%d}). Ids look like {', '.join(examples)}.",
            icon=":material/person_search:",
        )
        return
    st.markdown(f"#### {row['customer_id']}")
    who = [str(row[c]) for c in ("customer_name", "email") if row.get(c)]
    if who:
        st.markdown(" · ".join(who))
    cols = st.columns(6)
    cols[0].metric("Value tier", str(row["value_tier"]))
    o_low, o_high = row.get("order_value_12m_p10_usd"), row.get("order_value_12m_p90_usd")
    whole = row.get("value_12m_p10_usd") is not None  # not in a serving file from before it
    low, high = (row["value_12m_p10_usd"], row["value_12m_p90_usd"]) if whole else (o_low, o_high)
    what = "orders and subscriptions" if whole else "orders alone"
    cols[1].metric(
        "Predicted 12-month CLV",
        money(row["predicted_clv_12m_usd"]),
        help=None
        if low is None
        else f"{what.capitalize()}: 80% likely between {money(low)} and {money(high)} over the next 12 months.",
    )
    cols[2].metric("Churn probability", pct(row["churn_probability"]))
    cols[3].metric("Revenue at risk", money(row["revenue_at_risk_usd"]))
    cols[4].metric("Value already lost", money(row["value_lost_usd"]))
    cols[5].metric("Lifecycle stage", str(row["lifecycle_stage"]))
    if low is not None:
        buys = row.get("p_purchase_90d")
        orders = f" (orders alone {money(o_low)} to {money(o_high)})" if whole and o_low is not None else ""
        st.markdown(
            f"**How sure:** the next 12 months' value ({what}) 80% likely between {money(low)} and "
            f"{money(high)}{orders}"
            + (f"; {pct(buys)} likely to buy within 90 days." if buys is not None else ".")
        )
    if row.get("churn_reasons"):
        st.markdown(f"**Why:** {row['churn_reasons']}")
    if row.get("risk_change") and row.get("previous_business_date"):
        st.markdown(f"**Since {row['previous_business_date']:%Y-%m-%d}:** {row['risk_change']}")
    for sentence in data.disagreements(row):
        st.info(sentence, icon=":material/info:")
    measures_legend()
    fields = [(_label(k), _display(k, v)) for k, v in row.items() if k != "customer_id"]
    half = (len(fields) + 1) // 2
    for col, part in zip(st.columns(2), (fields[:half], fields[half:])):
        details = pd.DataFrame(part, columns=["field", "value"])
        col.dataframe(
            details,
            hide_index=True,
            column_config=table_config(details),
            height=35 * (len(details) + 1) + 3,
            width="stretch",
        )


def quality_tab(s: data.Serving) -> None:
    st.subheader("Data freshness")
    cols = st.columns(3)
    cols[0].metric("Business date", f"{s.business_date:%Y-%m-%d}", help="The last day the data covers.")
    cols[1].metric("Published", f"{s.published_at:%Y-%m-%d %H:%M}", help="When the serving file was built.")
    cols[2].metric("From schema", s.source_schema or "—", help="marts, or a promoted environment's marts.")
    summary = data.check_summary(s)
    st.subheader("Last check results")
    if summary is None:
        st.info("The serving file carries no check results (the pipeline published without running checks).")
    else:
        stale = summary[pd.to_datetime(summary["business_date"]).dt.date < s.business_date]
        if not stale.empty:
            st.warning(
                "Checks of " + ", ".join(stale["layer"]) + " last ran for an earlier business date "
                f"than the data's ({s.business_date:%Y-%m-%d})."
            )
        st.dataframe(summary, hide_index=True, column_config=table_config(summary), key="check_summary")
        problems = data.check_details(s, only_problems=True)
        if problems is not None and not problems.empty:
            st.markdown("**Warnings and failures**")
            st.dataframe(
                problems, hide_index=True, column_config=table_config(problems), key="check_problems"
            )
        else:
            st.success("Every check passed.")
        with st.expander("Every check"):
            every = data.check_details(s)
            st.dataframe(every, hide_index=True, column_config=table_config(every), key="check_all")
    fits = data.model_fits(s)
    if fits is not None:
        st.subheader("Model fits")
        st.caption(
            "The churn and subscription renewal models are refitted every few days (model_refit_days) "
            "and score every day with their latest fit; the purchase models are fitted on every run."
        )
        st.dataframe(fits, hide_index=True, column_config=table_config(fits), key="model_fits")
    with st.expander("Rows per published table"):
        counts = data.row_counts(s)
        st.dataframe(counts, hide_index=True, column_config=table_config(counts), key="row_counts")


def health_tab(s: data.Serving) -> None:
    health.render(s, table_config)


TABS = {
    "At-risk customers": at_risk_tab,
    "Value": value_tab,
    "Retention": retention_tab,
    "Subscriptions": subscriptions.render,
    "Support & churn": support_tab,
    "Categories": category_tab,
    "Customer 360": customer_tab,
    "Model health": model_health.render,
    "Data quality": quality_tab,
    "Data health": health_tab,
    reports.TAB: lambda s: reports.render(s, table_config),
}


def main() -> None:
    st.set_page_config(page_title=TITLE, layout="wide")
    try:
        with data.open_serving() as s:
            header(s)
            kpi_row(s)
            reports.follow_link(TAB_KEY)  # ?report=<run>/<layer>: that report, in its tab
            for tab, render in zip(st.tabs(list(TABS), key=TAB_KEY, on_change="rerun"), TABS.values()):
                with tab:
                    render(s)
    except data.ServingUnavailable as e:
        unavailable(str(e))


main()
