"""The data-health section (dashboard/health.py) with Streamlit's AppTest: against the serving file
the pipeline built (one business date: every metric in its cold start), against a serving file
published by `clv.publish` from a copy of that warehouse given three weeks of history with three
injected delivery faults (judged by the real detector), and against a serving file published
before the section's tables existed."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import pandas as pd
import pytest

from clv import publish
from tests.dashboard.conftest import EARLIER, FAULTS, KEPT, SLOW_MODEL, D, execute, query
from tests.dashboard.test_app import chart_data, tab

HEALTH_TABLES = ("check_history", "metric_history", "metric_anomalies", "model_run_times")


def health_tab(at):
    return tab(at, "Data health")


def titled(at, title: str) -> pd.DataFrame:
    found = [c for c in at.get("vega_lite_chart") if json.loads(c.proto.spec).get("title") == title]
    assert len(found) == 1, [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]
    return chart_data(found[0])


def table(section, column: str) -> pd.DataFrame:
    (found,) = [d.value for d in section.dataframe if column in d.value.columns]
    return found


def test_publish_keeps_the_last_n_business_dates_of_each_history(history_data):
    first = D - dt.timedelta(days=KEPT - 1)
    for table_name in HEALTH_TABLES:
        ((lo, hi, dates),) = query(
            history_data,
            f"SELECT min(business_date), max(business_date), count(DISTINCT business_date) FROM {table_name}",
        )
        assert (lo, hi, dates) == (first, D, KEPT), table_name
    # prod's checks only, each check's latest outcome per date: the failure of D-3, the rerun's warning on D-2
    rows = dict(
        ((day, outcome), n)
        for day, outcome, n in query(
            history_data,
            "SELECT business_date, outcome, sum(CASE outcome WHEN 'pass' THEN passed WHEN 'warn' THEN warned "
            "ELSE failed END) FROM check_history, (VALUES ('pass'), ('warn'), ('fail')) AS o(outcome) "
            "WHERE layer = 'raw' GROUP BY ALL",
        )
    )
    ((raw_checks,),) = query(history_data, "SELECT count(*) FROM check_results WHERE layer = 'raw'")
    assert (
        rows[(D - dt.timedelta(days=3), "fail")] == 1
        and rows[(D - dt.timedelta(days=3), "pass")] == raw_checks - 1
    )
    assert rows[(D - dt.timedelta(days=2), "warn")] == 1 and rows[(D - dt.timedelta(days=2), "fail")] == 0
    assert rows[(D - dt.timedelta(days=1), "fail")] == 0  # the environment's scan is not prod's
    # model run times: successful tries only, one run per date
    ((runs, slowest),) = query(
        history_data, "SELECT count(DISTINCT run_id), max(seconds) FROM model_run_times"
    )
    assert runs == KEPT and slowest < 999
    # the metric history holds what the page charts, the verdicts every monitored metric
    assert {m for (m,) in query(history_data, "SELECT DISTINCT metric FROM metric_history")} == set(
        publish.HEALTH_METRICS
    )
    assert query(history_data, "SELECT count(*) FROM metric_anomalies WHERE status = 'unmonitored'") == [(0,)]


def test_the_tab_shows_the_pipelines_cold_start_and_its_numbers(pipeline_data, run_app):
    """One business date: every check's outcome, the sources' freshness and volume and the
    slowest models are the serving file's, and the anomalies say there is not enough history."""
    at = run_app(pipeline_data)
    section = health_tab(at)
    counts = query(
        pipeline_data,
        "SELECT layer, count(*) FILTER (outcome = 'pass'), count(*) FILTER (outcome = 'warn'), "
        "count(*) FILTER (outcome NOT IN ('pass', 'warn')) FROM check_results GROUP BY layer ORDER BY layer",
    )
    heatmap = [
        chart_data(c)
        for c in at.get("vega_lite_chart")
        if json.loads(c.proto.spec)["encoding"]["y"].get("field") == "layer"
    ]
    assert len(heatmap) == 1
    cells = heatmap[0].sort_values("layer")
    assert list(zip(cells["layer"], cells["passed"], cells["warned"], cells["failed"])) == counts
    assert set(pd.to_datetime(cells["business_date"]).dt.date) == {D} and len(counts) == 5
    shown = table(section, "warned").sort_values("layer")
    assert shown[["passed", "warned", "failed"]].values.tolist() == [list(c[1:]) for c in counts]
    # anomalies: nothing judged yet, and the page says why instead of guessing
    ((cold, history),) = query(
        pipeline_data,
        "SELECT count(*) FILTER (status = 'not enough history'), max(history_days) FROM metric_anomalies",
    )
    assert cold > 20 and history == 0
    metrics = {m.label: m.value for m in section.metric}
    assert metrics == {
        "Inside their band": "0",
        "Outside the warn band": "0",
        "Outside the fail band": "0",
        "Not judged yet": f"{cold:,}",
    }
    (info,) = section.info
    assert info.value.startswith("**Not enough history yet.** A metric is judged once it has 14 earlier")
    assert not [d for d in section.dataframe if "explanation" in d.value.columns]
    # freshness and volume per source: the raw layer's metrics of the business date
    fresh = table(section, "latest_event_date").set_index("source")
    expected = query(
        pipeline_data,
        "SELECT dataset, max(value) FILTER (metric = 'freshness_lag_days'), max(value) FILTER (metric = 'rows_added'), "
        "max(value) FILTER (metric = 'rows') FROM metric_history WHERE layer = 'raw' GROUP BY dataset ORDER BY dataset",
    )
    assert len(expected) == 7 and list(fresh.index) == [e[0] for e in expected]
    for source, lag, added, rows in expected:
        got = fresh.loc[source]
        assert got["rows_added"] == added > 0 and got["rows"] == rows
        if lag is None:  # customers and subscriptions carry no event time
            assert pd.isna(got["freshness_lag_days"]) and source in ("customers", "subscriptions")
        else:
            assert got["freshness_lag_days"] == lag and pd.Timestamp(
                got["latest_event_date"]
            ).date() == D - dt.timedelta(days=lag)
    assert set(fresh["volume_status"]) == {"⚪ not enough history"}
    for source, _, added, _ in expected:
        chart = titled(at, source)
        assert chart[["line", "value"]].values.tolist() == [["observed", added]]
    # the slowest models of the run, slowest first
    slow = table(section, "median_seconds")
    times = query(pipeline_data, "SELECT model, seconds FROM model_run_times ORDER BY seconds DESC, model")
    assert list(zip(slow["model"], slow["seconds"])) == times[:10] and len(times) >= 5
    assert slow["median_seconds"].isna().all() and (slow["earlier_runs"] == 0).all()


def test_anomalies_bands_and_trends_over_three_weeks(history_data, run_app):
    at = run_app(history_data)
    section = health_tab(at)
    # every metric outside its band on D, as the detector judged it; the injected faults among them
    found = table(section, "explanation")
    expected = query(
        history_data,
        "SELECT layer, dataset, metric, status, observed FROM metric_anomalies "
        "WHERE business_date = ? AND status IN ('warn', 'fail') ORDER BY status = 'warn', layer, dataset, metric",
        [D],
    )
    assert [tuple(r) for r in found[["layer", "dataset", "metric"]].values] == [e[:3] for e in expected]
    verdicts = {(e[1], e[2]): e[3] for e in expected if e[0] == "raw"}
    assert verdicts == {k: v for k, (_, v) in FAULTS.items()}  # the faults, and no false alarm
    # the slow model warns, naming it, with a band that has only an upper bound
    slow = found[found["metric"] == SLOW_MODEL[0][2]]
    assert [tuple(r) for r in slow[["layer", "dataset", "status"]].values] == [
        (*SLOW_MODEL[0][:2], "🟠 warn")
    ]
    assert " outside its warn band up to " in slow["explanation"].iloc[0]
    assert {e[:3] for e in expected if e[0] != "raw"} == {SLOW_MODEL[0]}
    assert list(found["status"]) == [{"fail": "🔴 fail", "warn": "🟠 warn"}[e[3]] for e in expected]
    counts = dict(
        query(
            history_data,
            "SELECT status, count(*) FROM metric_anomalies WHERE business_date = ? GROUP BY 1",
            [D],
        )
    )
    metrics = {m.label: m.value for m in section.metric}
    assert metrics["Outside the fail band"] == str(counts["fail"]) == "2"
    assert (
        metrics["Outside the warn band"] == str(counts["warn"]) == "2"
    )  # a third more tickets, the slow model
    assert metrics["Inside their band"] == f"{counts['ok']:,}" and counts["ok"] > 50
    assert not section.info
    # each anomaly's chart: the metric and the bands it was judged against on every date kept
    orders = titled(at, "raw.orders.rows_added")
    band = query(
        history_data,
        "SELECT business_date, observed, expected, warn_lower, warn_upper, fail_lower, fail_upper "
        "FROM metric_anomalies WHERE layer = 'raw' AND dataset = 'orders' AND metric = 'rows_added' ORDER BY 1",
    )
    assert len(band) == KEPT
    # the detector judges from the 14th earlier date on: the first dates kept are its cold start
    assert sum(b[2] is not None for b in band) == EARLIER + 1 - 14
    wide = orders.pivot(index="business_date", columns="series", values="value").sort_index()
    for day, observed, exp, wl, wu, fl, fu in band:
        row = wide.loc[pd.Timestamp(day)]
        assert row["observed"] == pytest.approx(observed)
        band_edges = row.reindex(["expected", "warn_lower", "warn_upper", "fail_lower", "fail_upper"])
        if exp is None:  # not enough history on that date: no band drawn
            assert band_edges.isna().all()
        else:
            assert band_edges.tolist() == pytest.approx([exp, wl, wu, fl, fu])
    assert wide.loc[pd.Timestamp(D), "observed"] < wide.loc[pd.Timestamp(D), "fail_lower"]
    # the volume chart of the same source is the same series
    volume = titled(at, "orders")
    assert (
        volume.sort_values(["series", "business_date"]).values.tolist()
        == orders.sort_values(["series", "business_date"]).values.tolist()
    )
    # the slow model's chart: its seconds, the expected value and a warn band's upper edge only
    slow_chart = titled(at, ".".join(SLOW_MODEL[0]))
    drawn = set(slow_chart.dropna(subset=["value"])["series"])
    assert {"observed", "expected", "warn_upper"} <= drawn and not drawn & {
        "warn_lower",
        "fail_lower",
        "fail_upper",
    }
    # check outcomes per date: the failure of D-3 and the rerun's warning on D-2 in raw's row
    (heatmap,) = [
        chart_data(c)
        for c in at.get("vega_lite_chart")
        if json.loads(c.proto.spec)["encoding"]["y"].get("field") == "layer"
    ]
    raw = heatmap[heatmap["layer"] == "raw"].set_index("business_date")
    assert len(heatmap) == 5 * KEPT
    assert raw.loc[pd.Timestamp(D - dt.timedelta(days=3)), "outcome"] == "failed"
    assert raw.loc[pd.Timestamp(D - dt.timedelta(days=2)), "outcome"] == "warned"
    assert set(raw["outcome"]) == {"all passed", "failed", "warned"}
    # the slowest models: twice their median of the earlier runs, and their trend over the runs kept
    slow = table(section, "median_seconds")
    assert (slow["earlier_runs"] == KEPT - 1).all()
    assert slow["times_median"].tolist() == pytest.approx([2.0] * len(slow), rel=0.02)
    trend = titled(at, "The latest run's 5 slowest models, per run")
    assert set(trend["model"]) == set(slow["model"].head(5))
    assert trend.groupby("model").size().tolist() == [KEPT] * 5


def test_a_serving_file_without_the_health_tables_still_opens(serving_copy, run_app):
    execute(serving_copy, "DROP TABLE metric_anomalies", "DROP TABLE model_run_times")
    section = health_tab(run_app(serving_copy))
    assert [i.value for i in section.info] == [
        f"No {what} in this serving file (it was published by an earlier version of the pipeline)."
        for what in ("anomaly verdicts", "model run times")
    ]
    assert "volume_status" not in table(section, "latest_event_date").columns  # no verdicts to show
    execute(serving_copy, "DROP TABLE check_history", "DROP TABLE metric_history")
    at = run_app(serving_copy)
    section = health_tab(at)
    assert [i.value for i in section.info] == [
        "This serving file has no data-health history (it was published by an earlier version of the "
        "pipeline): run `make run` with this version."
    ]
    assert not section.dataframe and not at.error


def test_publish_skips_what_an_older_warehouse_lacks(pipeline_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(pipeline_data / "warehouse.duckdb", data / "warehouse.duckdb")
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        con.execute("DROP TABLE ops.metric_anomalies")
        con.execute("DROP TABLE ops.pipeline_runs")
        publish.publish(con, D, data)
    finally:
        con.close()
    tables = {t for (t,) in query(data, "SELECT table_name FROM information_schema.tables")}
    assert {"check_history", "metric_history", "check_results"} <= tables
    assert not {"metric_anomalies", "model_run_times"} & tables


def test_the_first_run_records_the_plans_model_times(pipeline_data):
    """The slow-model detector's history: a layer step records ``run_seconds`` for the models it
    evaluated. The first run's plan builds every model in the staging step (the later steps have
    nothing due), so its times are staging's; every layer's on a later day:
    tests/airflow/test_daily_refresh.py."""
    con = duckdb.connect(str(pipeline_data / "warehouse.duckdb"), read_only=True)
    try:
        recorded = dict(
            con.execute(
                "SELECT layer, count(*) FROM ops.metric_history WHERE metric LIKE 'run_seconds%' "
                "AND value >= 0 GROUP BY layer"
            ).fetchall()
        )
        (staging_models,) = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'staging'"
        ).fetchone()
        judged = con.execute(
            "SELECT DISTINCT status FROM ops.metric_anomalies WHERE metric LIKE 'run_seconds%'"
        ).fetchall()
    finally:
        con.close()
    assert recorded == {"staging": staging_models}
    assert judged == [("not enough history",)]
