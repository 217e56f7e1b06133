"""The dashboard's check-report page: each layer's Soda report of the latest business dates,
listed, and the chosen one drawn. A link opens one directly: ``?report=<run>/<layer>`` (the link
alerts, task logs and run notes carry: ``clv.notify.report_link``).

Layout only; the reports come from `dashboard/reports_data.py`. `app.py` calls ``follow_link``
before it draws its tabs (a link selects this tab and the report) and ``render`` inside the tab.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from clv import reports, settings
from dashboard import reports_data as rd
from dashboard.data import Serving

TAB = "Check reports"
SELECT_KEY = "report_key"  # the selectbox's state: the report shown
_FOLLOWED = "_report_link_followed"  # the ?report= value already acted on in this session
_REFUSED = "_report_link_refused"
RECENT_DATES = 7  # business dates in the overview table (every one kept is in the selector)

TableConfig = Callable[[pd.DataFrame], dict[str, object]]


def follow_link(tab_key: str) -> None:
    """A page opened with ``?report=<key>``: once per key, show this tab with that report."""
    key = st.query_params.get(reports.QUERY_PARAM)
    if not key or st.session_state.get(_FOLLOWED) == key:
        return
    st.session_state[_FOLLOWED] = key
    st.session_state[tab_key] = TAB
    try:
        reports.path_of(key, settings.paths().reports)
    except reports.ReportKeyError as e:
        st.session_state[_REFUSED] = str(e)
        return
    st.session_state.pop(_REFUSED, None)
    st.session_state[SELECT_KEY] = key


def _chosen() -> None:
    """A report picked in the selector: the page's URL follows, so it can be copied and shared."""
    key = st.session_state[SELECT_KEY]
    st.query_params[reports.QUERY_PARAM] = key
    st.session_state[_FOLLOWED] = key


def _outcome(row) -> str:
    if row.failed:
        return f"{row.failed} failed"
    if row.warned:
        return f"{row.warned} warned"
    return "all passed"


def render(s: Serving, table_config: TableConfig) -> None:
    st.subheader("Check reports")
    st.caption(
        "Each layer's Soda report: every check with its outcome and value, and the first failing rows "
        "of each failed or warned check. The serving file keeps the latest report of each layer for "
        "the business dates of the data-health history (CLV_HEALTH_HISTORY_DAYS). Alerts, the Airflow "
        "task logs and the runs' notes link here: `?report=<run>/<layer>`."
    )
    refused = st.session_state.pop(_REFUSED, None)
    if refused:
        st.error(f"The link's report cannot be shown: {refused}.", icon=":material/block:")
    listed = rd.listing(s)
    labels = {
        r.report_key: f"{r.business_date:%Y-%m-%d} · {r.layer} · {_outcome(r)} · run {r.report_key.split('/')[0]}"
        for r in listed.itertuples()
    }
    wanted = st.session_state.get(SELECT_KEY)
    if wanted and wanted not in labels:  # a link to a report the serving file does not hold
        labels = {wanted: wanted, **labels}
    if not labels:
        st.info(
            "This serving file holds no check reports (it was published by an earlier version of the "
            "pipeline, or no checks ran): run `make run` with this version."
        )
        return
    recent = listed[
        listed["business_date"].isin(listed["business_date"].drop_duplicates().head(RECENT_DATES))
    ]
    if not recent.empty:
        shown = recent.assign(link="?" + reports.QUERY_PARAM + "=" + recent["report_key"]).drop(
            columns=["report_key", "scanned_at"]
        )
        config = table_config(shown)
        config["link"] = st.column_config.LinkColumn("Report", display_text="open")
        with st.expander("Outcomes per layer, latest business dates", expanded=not wanted):
            st.dataframe(shown, hide_index=True, column_config=config, key="report_list")
    key = st.selectbox("Report", list(labels), format_func=labels.get, key=SELECT_KEY, on_change=_chosen)
    try:
        found = rd.report(s, key)
    except reports.ReportKeyError as e:
        st.error(str(e), icon=":material/block:")
        return
    if found is None:
        st.warning(
            f"No report {key!r}: the serving file keeps only published runs (a run that stopped before "
            f"publishing, on a failed check say, is not in it), and {settings.paths().reports} holds no "
            "such file here. In the team deployment, open it on the Airflow side or set CLV_REPORTS_URL.",
            icon=":material/search_off:",
        )
        return
    dashboard = _safe_dashboard_url()
    st.caption(
        (
            "Link to this report: "
            + (f"{reports.dashboard_link(key, dashboard)}" if dashboard else f"`?report={key}`")
        )
        + (f" · read from {found.source}" if found.source != rd.SERVING else "")
    )
    if found.markdown is None:
        st.warning(
            f"The report's file was gone when the serving file was published ({key}.md).",
            icon=":material/description:",
        )
        return
    with st.container(border=True, key="report_body"):
        st.markdown(rd.for_display(found.markdown))


def _safe_dashboard_url() -> str | None:
    try:
        return settings.dashboard_url()
    except settings.SettingError:
        return None
