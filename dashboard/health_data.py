"""What the dashboard's data-health section shows, as DataFrames read from the serving file.

``clv.publish`` copies the last ``CLV_HEALTH_HISTORY_DAYS`` business dates of the warehouse's
monitoring into the serving file: ``check_history`` (checks passed, warned and failed per layer
and business date), ``metric_history`` (rows, rows added and freshness lag per table),
``metric_anomalies`` (every monitored metric's verdict: observed value, expected value, warn and
fail bands, status) and ``model_run_times`` (each transform step's slowest models per run).

Same style as ``dashboard/data.py``: each function takes an open ``data.Serving`` and runs one
query. Every table is optional: a serving file published before they existed still opens, and
``available`` says which parts of the section have something to show.
"""

from __future__ import annotations

import pandas as pd

from clv.anomalies import COLD, FAIL, NO_VALUE, OK, WARN, Band
from dashboard.data import LAYERS, Serving

TABLES = ("check_history", "metric_history", "metric_anomalies", "model_run_times")
SOURCE_LAYER = "raw"  # the sources are raw's tables, one per delivered file
STATUSES = (FAIL, WARN, OK, COLD, NO_VALUE)  # worst first
# The lines of a metric's band chart: column -> (what the legend says, line kind)
BAND_LINES = {
    "observed": ("observed", "observed"),
    "expected": ("expected (median of the earlier dates)", "expected"),
    "warn_lower": ("warn band", "band"),
    "warn_upper": ("warn band", "band"),
    "fail_lower": ("fail band", "band"),
    "fail_upper": ("fail band", "band"),
}
MIN_HISTORY = Band().min_history  # earlier business dates a metric needs before it is judged
_LAYER_ORDER = "coalesce(list_position(?, layer), 99)"


def available(s: Serving) -> dict[str, bool]:
    return {t: s.has(t) for t in TABLES}


# --- check outcomes -------------------------------------------------------------------------


def check_history(s: Serving) -> pd.DataFrame:
    """Per business date and layer: checks passed, warned and failed in the date's latest scan,
    and the worst outcome (``failed``, ``warned``, ``all passed``), oldest date first."""
    return s.df(
        "SELECT business_date, layer, passed, warned, failed, CASE WHEN failed > 0 THEN 'failed' "
        "WHEN warned > 0 THEN 'warned' ELSE 'all passed' END AS outcome FROM check_history "
        f"ORDER BY business_date, {_LAYER_ORDER}, layer",
        [list(LAYERS)],
    )


# --- anomalies ------------------------------------------------------------------------------


def verdicts(s: Serving) -> pd.DataFrame:
    """Every monitored metric's verdict on the latest business date with verdicts: anomalies
    first (failures, then warnings), then by layer, dataset and metric."""
    return s.df(
        "SELECT business_date, status, layer, dataset, metric, observed, expected, warn_lower, warn_upper, "
        "fail_lower, fail_upper, history_days, explanation FROM metric_anomalies "
        "WHERE business_date = (SELECT max(business_date) FROM metric_anomalies) "
        f"ORDER BY coalesce(list_position(?, status), 99), {_LAYER_ORDER}, dataset, metric",
        [list(STATUSES), list(LAYERS)],
    )


def band_history(s: Serving, layer: str, dataset: str, metric: str) -> pd.DataFrame:
    """One metric over the business dates on record, with the band it was judged against on each
    date, long format: business_date, line (what the legend says), kind (observed, expected,
    band), series (one line each: the band's lower and upper edge apart), value, status. The
    value comes from the metric history where it is kept there, else from the verdicts."""
    empty_h = "SELECT NULL::DATE AS business_date, NULL::DOUBLE AS value WHERE FALSE"
    empty_a = (
        "SELECT NULL::DATE AS business_date, NULL::DOUBLE AS observed, NULL::DOUBLE AS expected, "
        "NULL::DOUBLE AS warn_lower, NULL::DOUBLE AS warn_upper, NULL::DOUBLE AS fail_lower, "
        "NULL::DOUBLE AS fail_upper, NULL::VARCHAR AS status WHERE FALSE"
    )
    where = "WHERE layer = $layer AND dataset = $dataset AND metric = $metric"
    h = f"SELECT business_date, value FROM metric_history {where}" if s.has("metric_history") else empty_h
    a = (
        "SELECT business_date, observed, expected, warn_lower, warn_upper, fail_lower, fail_upper, status "
        f"FROM metric_anomalies {where}"
        if s.has("metric_anomalies")
        else empty_a
    )
    wide = s.con.execute(
        f"WITH h AS ({h}), a AS ({a}) SELECT business_date, coalesce(h.value, a.observed) AS observed, "
        "a.expected, a.warn_lower, a.warn_upper, a.fail_lower, a.fail_upper, a.status "
        "FROM h FULL JOIN a USING (business_date) ORDER BY business_date",
        {"layer": layer, "dataset": dataset, "metric": metric},
    ).df()
    long = wide.melt(
        id_vars=["business_date", "status"], value_vars=list(BAND_LINES), var_name="series"
    ).dropna(subset=["value"])
    long["line"] = long["series"].map(lambda c: BAND_LINES[c][0])
    long["kind"] = long["series"].map(lambda c: BAND_LINES[c][1])
    return long[["business_date", "line", "kind", "series", "value", "status"]].reset_index(drop=True)


# --- the sources: freshness and volume ------------------------------------------------------


def sources(s: Serving) -> list[str]:
    """The sources with a volume on record (raw's tables), by name."""
    return [
        r[0]
        for r in s.con.execute(
            "SELECT DISTINCT dataset FROM metric_history WHERE layer = ? AND metric = 'rows_added' ORDER BY 1",
            [SOURCE_LAYER],
        ).fetchall()
    ]


def freshness(s: Serving) -> pd.DataFrame:
    """Per source on the latest business date of the metric history: its newest event up to that
    date and the lag in days (none for a source without an event time), the rows its batch
    delivered and the rows on record; with the verdicts, the freshness and volume verdicts too."""
    latest = f"(SELECT max(business_date) FROM metric_history WHERE layer = '{SOURCE_LAYER}')"
    verdicts = (
        "LEFT JOIN (SELECT dataset, max(status) FILTER (metric = 'freshness_lag_days') AS freshness_status, "
        "max(status) FILTER (metric = 'rows_added') AS volume_status FROM metric_anomalies "
        f"WHERE layer = '{SOURCE_LAYER}' AND business_date = {latest} GROUP BY dataset) USING (dataset)"
        if s.has("metric_anomalies")
        else ""
    )
    return s.df(
        "WITH h AS (SELECT business_date, dataset, "
        "CAST(max(value) FILTER (metric = 'freshness_lag_days') AS INTEGER) AS lag, "
        "max(value) FILTER (metric = 'rows_added') AS rows_added, max(value) FILTER (metric = 'rows') AS rows "
        f"FROM metric_history WHERE layer = '{SOURCE_LAYER}' AND business_date = {latest} "
        "GROUP BY business_date, dataset) "
        "SELECT dataset AS source, business_date, CAST(business_date - lag AS DATE) AS latest_event_date, "
        "lag AS freshness_lag_days, CAST(rows_added AS BIGINT) AS rows_added, CAST(rows AS BIGINT) AS rows"
        + (", freshness_status, volume_status" if verdicts else "")
        + f" FROM h {verdicts} ORDER BY source"
    )


# --- model run times ------------------------------------------------------------------------

_RUNS = (
    "runs AS (SELECT dag_id, run_id, max(business_date) AS business_date, "
    "max(finished_at) AS run_finished_at FROM model_run_times GROUP BY dag_id, run_id)"
)


def slowest_models(s: Serving, n: int = 10) -> pd.DataFrame:
    """The latest run's ``n`` slowest models, slowest first: seconds on that run, and the median
    over the earlier runs on record where the model was among its step's slowest."""
    return s.df(
        f"WITH {_RUNS}, latest AS (SELECT * FROM runs ORDER BY run_finished_at DESC LIMIT 1), "
        "per_run AS (SELECT t.dag_id, t.run_id, r.run_finished_at, t.model, sum(t.seconds) AS seconds "
        "FROM model_run_times t JOIN runs r USING (dag_id, run_id) GROUP BY ALL), "
        "earlier AS (SELECT p.model, median(p.seconds) AS median_seconds, count(*) AS earlier_runs "
        "FROM per_run p, latest l WHERE p.run_finished_at < l.run_finished_at GROUP BY p.model) "
        "SELECT p.model, split_part(p.model, '.', 1) AS layer, p.seconds, e.median_seconds, "
        "coalesce(e.earlier_runs, 0) AS earlier_runs, l.business_date, l.run_finished_at "
        "FROM per_run p JOIN latest l USING (dag_id, run_id) LEFT JOIN earlier e USING (model) "
        "ORDER BY p.seconds DESC, p.model LIMIT ?",
        [n],
    )


def model_trend(s: Serving, models: list[str]) -> pd.DataFrame:
    """Those models' seconds per run (a run where a model had nothing due has no point for it),
    oldest run first."""
    return s.df(
        f"WITH {_RUNS} SELECT r.run_finished_at, r.business_date, t.model, sum(t.seconds) AS seconds "
        "FROM model_run_times t JOIN runs r USING (dag_id, run_id) WHERE list_contains(?, t.model) "
        "GROUP BY ALL ORDER BY r.run_finished_at, t.model",
        [models],
    )
