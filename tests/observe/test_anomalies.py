"""Metric history and anomaly detection on real components: generated day batches loaded into a
real DuckDB warehouse, the raw zone's metrics recorded and judged, and the raw zone's real Soda
scan gating on the verdicts. One injected delivery anomaly (a day of device sessions delivered
twice, recorded in the generator's truth) fires the fail-level anomaly check with its band and
observed value; the clean day before it fires neither anomaly check."""

from __future__ import annotations

import csv
import datetime as dt
from contextlib import closing

import pytest

from clv import anomalies, ingest, metrics, quality, settings
from clv.settings import Paths
from clv.warehouse import connect
from generator import runner
from generator.chaos import DeliveryAnomaly
from tests.conftest import END, START

CLEAN_DAYS = 15  # one more than the detectors' cold start
FAIL_CHECK = "raw metrics outside their fail band (anomaly against their history)"
WARN_CHECK = "raw metrics outside their warn band (anomaly against their history)"


def day(n: int) -> dt.date:
    return END + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """1,000 customers without faults, 15 clean days and a 16th whose sessions arrive twice; the
    raw metrics of every day recorded in order, the raw checks scanned on the last two days."""
    paths = Paths(tmp_path_factory.mktemp("observe") / "data")
    runner.history(paths, 1_000, START, END, seed=3, chaos="none", progress=False, workers=1)
    for i in range(1, CLEAN_DAYS + 1):
        runner.day(paths, day(i), chaos="none")
    ingest.load(paths.data_dir)  # raw metrics filter on each row's batch date: one load will do
    scans = {}
    with closing(connect(paths.warehouse)) as con:
        for i in range(0, CLEAN_DAYS + 1):
            anomalies.observe(con, "raw", day(i))
        scans["clean"] = quality.scan(
            con, "raw", day(CLEAN_DAYS), data_dir=paths.data_dir, raise_on_failure=False
        )
    bad = day(CLEAN_DAYS + 1)
    runner.day(paths, bad, chaos="none", anomalies=(DeliveryAnomaly("duplicated_day", "device_sessions"),))
    ingest.load(paths.data_dir)
    with closing(connect(paths.warehouse)) as con:
        _, verdicts = anomalies.observe(con, "raw", bad)
        anomalies.observe(con, "raw", bad)  # twice: the history stays one row per date and metric
        scans["bad"] = quality.scan(con, "raw", bad, data_dir=paths.data_dir, raise_on_failure=False)
        history = con.execute(
            "SELECT count(*), count(DISTINCT (business_date, dataset, metric)) FROM ops.metric_history"
        ).fetchone()
        stored = con.execute(
            "SELECT metric, status, observed, fail_lower, fail_upper FROM ops.metric_anomalies "
            "WHERE business_date = ? AND dataset = 'device_sessions' AND status = 'fail'",
            [bad],
        ).fetchall()
    return paths, scans, verdicts, history, stored


def outcome(result, name):
    (check,) = [c for c in result.checks if c["name"] == name]
    return check


def test_the_injected_anomaly_is_in_the_truth(observed):
    paths = observed[0]
    with open(paths.truth / "faults" / f"{day(CLEAN_DAYS + 1)}.csv") as f:
        faults = [r for r in csv.DictReader(f) if r["fault"] == "duplicated_day"]
    assert [(r["source"], r["fault"]) for r in faults] == [("device_sessions", "duplicated_day")]


def test_a_clean_day_fires_no_anomaly_check(observed):
    clean = observed[1]["clean"]
    assert outcome(clean, FAIL_CHECK)["outcome"] == "pass"
    assert outcome(clean, WARN_CHECK)["outcome"] == "pass"
    assert not clean.errors


def test_a_day_delivered_twice_fails_its_check_with_band_and_value(observed):
    _paths, scans, verdicts, history, stored = observed
    bad = scans["bad"]
    fail = outcome(bad, FAIL_CHECK)
    assert fail["outcome"] == "fail" and fail["value"] >= 2  # rows added and duplicate keys
    assert {m for m, *_ in stored} >= {"rows_added", "duplicate_keys"}
    for _metric, _status, observed_value, lower, upper in stored:
        assert not lower <= observed_value <= upper
    # The sessions of the day are counted twice: rows added is twice the clean days' median.
    rows_added = next(v for v in verdicts if v.dataset == "device_sessions" and v.metric == "rows_added")
    assert rows_added.observed > 1.6 * rows_added.expected
    assert rows_added.history_days >= 14
    # The failing rows carry the band and the observed value into the report.
    report = bad.report.read_text()
    assert "device_sessions" in report and "outside its fail band" in report
    # Only the faulty source is out of its band.
    assert {v.dataset for v in verdicts if v.status == anomalies.FAIL} == {"device_sessions"}
    # Recording a date again replaces its rows.
    assert history[0] == history[1]


def test_cold_start_says_not_enough_history():
    v = anomalies.judge("raw.orders.rows_added", 120.0, [(day(i), 100.0) for i in range(1, 5)], day(5))
    assert v.status == anomalies.COLD and "not enough history (4 days)" in v.explanation()
    ok = anomalies.judge(
        "raw.orders.rows_added", 104.0, [(day(i), 100.0 + i % 3) for i in range(1, 20)], day(20)
    )
    assert ok.status == anomalies.OK and ok.warn[0] < 104 < ok.warn[1]


def test_weekly_baseline_uses_the_same_weekday(monkeypatch):
    # Sundays run at 10, other days at 100: a weekday-aware band takes a Sunday's 10 as normal.
    history = [(day(i), 10.0 if day(i).weekday() == 6 else 100.0) for i in range(1, 120)]
    sunday = next(day(i) for i in range(120, 127) if day(i).weekday() == 6)
    monkeypatch.setattr(anomalies, "RULES", (("*", anomalies.Band(weekly=True, window=8, min_history=4)),))
    assert anomalies.judge("raw.orders.rows_added", 10.0, history, sunday).status == anomalies.OK
    monkeypatch.setattr(anomalies, "RULES", (("*", anomalies.Band(window=28, warn_rel=0.1)),))
    assert anomalies.judge("raw.orders.rows_added", 10.0, history, sunday).status == anomalies.FAIL


def test_checks_are_generated_from_the_module():
    for layer in ("raw", "staging", "core", "intermediate", "marts"):
        path = quality.CHECKS_DIR / layer / anomalies.CHECK_FILE
        assert path.read_text() == anomalies.checks_yaml(layer), f"run `clv metrics --write-checks` ({path})"
    assert metrics.EVENT_COLUMNS["raw.orders"] == "order_datetime"


def test_a_slow_model_warns_naming_it_and_never_fails(tmp_path):
    """The layer step's model times are recorded as ``run_seconds``; a model taking far longer
    than its own history warns (the warn check), names the model, and never fails the layer; a
    faster run, or a refit on its cadence judged against earlier refits, is not an anomaly."""
    with closing(connect(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA intermediate")
        con.execute("CREATE TABLE intermediate.int_churn_model (customer_id BIGINT, fit_date DATE)")
        con.execute("CREATE TABLE intermediate.int_churn_features (customer_id BIGINT)")
        for i in range(1, 22):  # three weeks: the churn model refits every 7th day, and is slow then
            refit = i % 7 == 0
            con.execute("DELETE FROM intermediate.int_churn_model")
            con.execute("INSERT INTO intermediate.int_churn_model VALUES (1, ?)", [day(i - i % 7)])
            anomalies.observe(
                con, "intermediate", day(i),
                model_seconds={
                    "intermediate.int_churn_features": 2.0 + 0.1 * (i % 3),
                    "intermediate.int_churn_model": 30.0 + i % 2 if refit else 1.0 + 0.1 * (i % 2),
                    "marts.mart_clv": 1.0,  # another layer's model: not this layer's metric
                },
            )  # fmt: skip
        recorded = dict(
            con.execute(
                "SELECT dataset || '.' || metric, count(*) FROM ops.metric_history "
                "WHERE metric LIKE 'run_seconds%' GROUP BY 1"
            ).fetchall()
        )
        assert recorded == {
            "int_churn_features.run_seconds": 21,
            "int_churn_model.run_seconds": 18,
            "int_churn_model.run_seconds:refit": 3,
        }
        con.execute("INSERT INTO intermediate.int_churn_model VALUES (1, ?)", [day(22)])  # refits on day 22
        slow = {"intermediate.int_churn_features": 40.0, "intermediate.int_churn_model": 31.0}
        _, verdicts = anomalies.observe(con, "intermediate", day(22), model_seconds=slow)
        by_name = {v.name: v for v in verdicts}
        scoring = by_name["intermediate.int_churn_features.run_seconds"]
        assert (
            scoring.status == anomalies.WARN and scoring.fail is None
        )  # 20 times its median: a warning only
        assert scoring.explanation().startswith(
            "intermediate.int_churn_features.run_seconds = 40 outside its warn band up to "
        )
        # the refit's 31 s is judged against the earlier refits (3 of them: not enough history yet)
        assert by_name["intermediate.int_churn_model.run_seconds:refit"].status == anomalies.COLD
        # recording the layer again without the step's times (`clv metrics`) keeps them
        anomalies.observe(con, "intermediate", day(22))
        (kept,) = con.execute(
            "SELECT count(*) FROM ops.metric_history WHERE business_date = ? AND metric LIKE 'run_seconds%'",
            [day(22)],
        ).fetchone()
        assert kept == 2
    fast = anomalies.judge(
        "intermediate.int_churn_features.run_seconds",
        0.1,
        [(day(i), 2.0 + 0.1 * (i % 3)) for i in range(1, 22)],
        day(22),
    )
    assert fast.status == anomalies.OK and fast.warn[0] is None
    small = anomalies.judge(  # a small model doubling its time is noise: 5 s more at least
        "marts.mart_clv.run_seconds", 4.0, [(day(i), 1.0 + 0.01 * (i % 3)) for i in range(1, 22)], day(22)
    )
    assert small.status == anomalies.OK


def test_the_refitted_models_name_their_fit_date_column():
    """metrics.REFITTED_MODELS must follow the project: each is a model that refits on the
    cadence and declares the column its fit's business date is in."""
    for name, column in metrics.REFITTED_MODELS.items():
        schema, model = name.split(".")
        source = (settings.SQLMESH_PROJECT / "models" / schema / f"{model}.py").read_text()
        assert "stored_fit(" in source and f'"{column}"' in source, name
