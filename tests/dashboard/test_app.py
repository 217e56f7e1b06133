"""The dashboard's page logic with Streamlit's AppTest (the real script, run in-process) against a
serving file the pipeline built, and against missing, empty, broken and edited copies of it."""

from __future__ import annotations

import io

import duckdb
import pandas as pd
import pytest

from tests.dashboard.conftest import execute, query

HIGH_VALUE = "value_tier IN ('Top 10%', 'High')"
REACHABLE = "is_reachable"


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def at_risk_table(at) -> pd.DataFrame:
    tables = [d.value for d in at.dataframe if "revenue_at_risk_usd" in d.value.columns]
    assert tables, "no at-risk table on the page"
    return tables[0]


def tab(at, label: str):
    """The page's tab of that label (its elements only)."""
    (found,) = [t for t in at.tabs if t.label == label]
    return found


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture
def media(monkeypatch):
    """The in-memory media stores of AppTest's runs, to read what a download button serves."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stores: list[MemoryMediaFileStorage] = []

    class Recording(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)
    return stores


def test_kpis_are_the_serving_files_totals(pipeline_data, run_app):
    at = run_app(pipeline_data)
    m = metrics(at)
    ((n, to_date, clv12, at_risk, lost),) = query(
        pipeline_data,
        "SELECT count(*), sum(historical_clv_usd), sum(predicted_clv_12m_usd), sum(revenue_at_risk_usd), "
        "sum(value_lost_usd) FROM mart_customer_360",
    )
    # the business date is 2024-12-31: the last 12 months are January to December 2024
    ((last_12m,),) = query(
        pipeline_data,
        "SELECT sum(revenue_usd) FROM mart_retention_cohorts "
        "WHERE cohort_month + to_months(months_since_acquisition::INT) >= DATE '2024-01-01'",
    )
    assert 700 < n <= 800
    assert m["Customers"] == f"{n:,}"
    assert m["Revenue to date"] == f"${to_date:,.0f}"
    assert m["Revenue, last 12 months"] == f"${last_12m:,.0f}"
    assert m["Predicted 12-month CLV"] == f"${clv12:,.0f}"
    assert m["Revenue at risk"] == f"${at_risk:,.0f}"
    assert m["Already lost"] == f"${lost:,.0f}"
    assert at_risk > 0 and clv12 > 0 and lost > 0
    # the history starts on 2024-06-01, so every dollar earned so far was earned in the last 12 months
    assert abs(float(last_12m) - float(to_date)) < 1
    assert "Business date **2024-12-31**" in at.caption[0].value
    assert not at.error  # no check failed in this run


def test_revenue_at_risk_leaves_out_customers_already_lost(pipeline_data, run_app):
    """The headline "Revenue at risk" counts only customers still reachable: none of it sits with
    customers in the churned lifecycle stage or whose churn probability says they most likely left
    (before issue 17 it summed churn probability x value over everyone, churned stage included) —
    unless they still pay a subscription: then they are reachable, and what its cancellation
    would take is at risk."""
    at = run_app(pipeline_data)
    ((reachable_risk, churned_stage, churned_risk, total_risk, remaining, kept, lost),) = query(
        pipeline_data,
        "SELECT sum(revenue_at_risk_usd) FILTER (is_reachable), "
        "count(*) FILTER (lifecycle_stage = 'churned'), "
        "coalesce(sum(revenue_at_risk_usd) FILTER ((lifecycle_stage = 'churned' OR churn_probability >= 0.5) "
        "AND predicted_subscription_value_12m_usd = 0), 0), "
        "sum(revenue_at_risk_usd), sum(predicted_remaining_clv_usd), "
        "sum(value_kept_usd), sum(value_lost_usd) FROM mart_customer_360",
    )
    assert churned_stage > 0 and reachable_risk > 0
    assert churned_risk == 0
    assert metrics(at)["Revenue at risk"] == f"${reachable_risk:,.0f}" == f"${total_risk:,.0f}"
    # at risk + kept + lost is the whole remaining value, and the caption says so
    assert abs(float(total_risk + kept + lost - remaining)) < 0.01 * 800
    caption = "\n".join(c.value for c in at.caption)
    assert f"${float(total_risk + kept + lost):,.0f} the next 12 months would bring" in caption
    assert (
        f"${total_risk:,.0f} at risk, ${kept:,.0f} expected to be kept, ${lost:,.0f} already lost" in caption
    )


def test_at_risk_list_defaults_to_high_value_customers_ranked_by_revenue_at_risk(pipeline_data, run_app):
    at = run_app(pipeline_data)
    table = at_risk_table(at)
    ((matches, risk),) = query(
        pipeline_data,
        f"SELECT count(*), sum(revenue_at_risk_usd) FROM mart_customer_360 WHERE {HIGH_VALUE} AND {REACHABLE}",
    )
    expected = query(
        pipeline_data,
        f"SELECT customer_id, revenue_at_risk_usd FROM mart_customer_360 WHERE {HIGH_VALUE} AND {REACHABLE} "
        "ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 100",
    )
    assert matches > 100
    assert table["customer_id"].tolist() == [r[0] for r in expected]
    assert table["revenue_at_risk_usd"].round(2).tolist() == [float(r[1]) for r in expected]
    assert set(table["value_tier"]) == {"Top 10%", "High"}
    assert "churned" not in set(table["lifecycle_stage"]) and (table["churn_probability"] < 0.5).all()
    assert f"**{matches:,}** customers match, with **${risk:,.0f}** revenue at risk" in markdown(at)
    assert at.get("download_button")[0].label == "Download these 100 customers (CSV)"


def test_filter_by_segment_and_rank_by_churn_probability(pipeline_data, run_app):
    at = run_app(pipeline_data)
    assert "cancelled" in at.multiselect(key="filter_contract_segment").options
    at.multiselect(key="filter_value_tier").set_value([])
    at.multiselect(key="filter_contract_segment").set_value(["cancelled"])
    at.multiselect(key="filter_region").set_value(["Europe"])
    at.selectbox(key="sort_at_risk").set_value("churn probability")
    at.selectbox(key="rows").set_value("all")
    at = run_app(pipeline_data, at)
    table = at_risk_table(at)
    expected = query(
        pipeline_data,
        "SELECT customer_id FROM mart_customer_360 WHERE contract_segment = 'cancelled' AND region = 'Europe' "
        f"AND {REACHABLE} ORDER BY churn_probability DESC, customer_id",
    )
    assert 0 < len(expected) < 800
    assert table["customer_id"].tolist() == [r[0] for r in expected]
    assert set(table["contract_segment"]) == {"cancelled"}
    assert set(table["region"]) == {"Europe"}
    assert table["churn_probability"].is_monotonic_decreasing
    assert f"**{len(expected):,}** customers match" in markdown(at)


def test_the_win_back_list_holds_the_customers_already_lost(pipeline_data, run_app):
    at = run_app(pipeline_data)
    at.radio(key="pool").set_value("Win back: already lost")
    at.multiselect(key="filter_value_tier").set_value([])
    at = run_app(pipeline_data, at)
    table = at_risk_table(at)
    ((matches, lost),) = query(
        pipeline_data, "SELECT count(*), sum(value_lost_usd) FROM mart_customer_360 WHERE NOT is_reachable"
    )
    expected = query(
        pipeline_data,
        "SELECT customer_id FROM mart_customer_360 WHERE NOT is_reachable "
        "ORDER BY value_lost_usd DESC, customer_id LIMIT 100",
    )
    assert matches > 100
    assert table["customer_id"].tolist() == [r[0] for r in expected]
    assert (table["revenue_at_risk_usd"] == 0).all()
    assert ((table["lifecycle_stage"] == "churned") | (table["churn_probability"] >= 0.5)).all()
    assert f"**{matches:,}** customers match, with **${lost:,.0f}** value already lost" in markdown(at)


def test_a_filter_nobody_matches_says_so(serving_copy, run_app):
    execute(serving_copy, "UPDATE mart_customer_360 SET risk_band = 'low' WHERE value_tier = 'Top 10%'")
    at = run_app(serving_copy)
    at.multiselect(key="filter_value_tier").set_value(["Top 10%"])
    at.multiselect(key="filter_risk_band").set_value(["high"])
    at = run_app(serving_copy, at)
    assert [i.value for i in tab(at, "At-risk customers").info] == ["No customer matches these filters."]
    assert not at.get("download_button")
    assert all(
        "revenue_at_risk_usd" not in d.value.columns or "customer_id" not in d.value.columns
        for d in at.dataframe
    )


def test_csv_download_holds_exactly_the_rows_and_columns_shown(pipeline_data, run_app, media):
    at = run_app(pipeline_data)
    at.multiselect(key="filter_lifecycle_stage").set_value(["active", "dormant"])
    at.selectbox(key="rows").set_value("all")
    at = run_app(pipeline_data, at)
    table = at_risk_table(at)
    (button,) = at.get("download_button")
    stored = media[-1].get_file(button.proto.url.rsplit("/", 1)[-1])
    assert stored.mimetype == "text/csv"
    assert stored.filename == "customers-at-risk-2024-12-31.csv"
    csv = pd.read_csv(io.BytesIO(stored.content), dtype={"customer_id": str})
    expected = query(
        pipeline_data,
        f"SELECT customer_id, revenue_at_risk_usd, churn_probability, value_tier FROM mart_customer_360 "
        f"WHERE {HIGH_VALUE} AND {REACHABLE} AND lifecycle_stage IN ('active', 'dormant') "
        "ORDER BY revenue_at_risk_usd DESC, customer_id",
    )
    assert len(csv) == len(expected) == len(table) > 0
    assert list(csv.columns) == list(table.columns)
    assert csv["customer_id"].tolist() == [r[0] for r in expected]
    assert csv["revenue_at_risk_usd"].tolist() == [float(r[1]) for r in expected]
    assert (csv["churn_probability"] - [r[2] for r in expected]).abs().max() < 1e-12
    assert set(csv["value_tier"]) <= {"Top 10%", "High"}
    assert set(csv["lifecycle_stage"]) <= {"active", "dormant"}
    assert button.label == f"Download these {len(expected):,} customers (CSV)"


def test_customer_360_finds_a_customer_by_id(pipeline_data, run_app):
    ((cid, p, risk, lost, clv12, city, stage),) = query(
        pipeline_data,
        "SELECT customer_id, churn_probability, revenue_at_risk_usd, value_lost_usd, predicted_clv_12m_usd, city, "
        "lifecycle_stage FROM mart_customer_360 ORDER BY value_at_stake_usd DESC, customer_id LIMIT 1",
    )
    at = run_app(pipeline_data)
    at.text_input(key="customer_id").set_value(f"  {cid.lower()} ")
    at = run_app(pipeline_data, at)
    assert f"#### {cid}" in markdown(at)
    m = metrics(at)
    assert m["Churn probability"] == f"{p:.0%}"
    assert m["Revenue at risk"] == f"${risk:,.0f}"
    assert m["Value already lost"] == f"${lost:,.0f}"
    assert m["Predicted 12-month CLV"] == f"${clv12:,.0f}"  # the KPI of that name is the customer's now
    assert m["Lifecycle stage"] == stage
    details = pd.concat([d.value for d in at.dataframe if list(d.value.columns) == ["field", "value"]])
    fields = dict(zip(details["field"], details["value"]))
    assert fields["City"] == city
    assert fields["Value rank (1 = highest)"] == "1"
    assert not at.warning


def test_customer_360_says_when_an_id_is_unknown(pipeline_data, run_app):
    at = run_app(pipeline_data)
    at.text_input(key="customer_id").set_value("C999999999")
    at = run_app(pipeline_data, at)
    (warning,) = at.warning
    assert "No customer with id 'C999999999' in the serving file (business date 2024-12-31)" in warning.value
    ((example,),) = query(
        pipeline_data,
        "SELECT customer_id FROM mart_customer_360 ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 1",
    )
    assert example in warning.value
    assert "Lifecycle stage" not in metrics(at)


def _missing(data):
    pass


def _empty(data):
    (data / "serving.duckdb").touch()


def _not_duckdb(data):
    (data / "serving.duckdb").write_bytes(b"customer_id,clv\nC1,10\n" * 500)


def _no_tables(data):
    duckdb.connect(str(data / "serving.duckdb")).close()


def _incomplete(data):
    con = duckdb.connect(str(data / "serving.duckdb"))
    con.execute(
        "CREATE TABLE serving_info AS SELECT DATE '2024-12-31' AS business_date, now() AS published_at"
    )
    con.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_missing, "There is no serving file at"),
        (_empty, "is empty (0 bytes)"),
        (_not_duckdb, "cannot be read as DuckDB"),
        (_no_tables, "holds no tables"),
        (_incomplete, "is incomplete: missing mart_customer_360, mart_clv"),
    ],
    ids=["missing", "empty", "not-duckdb", "no-tables", "incomplete"],
)
def test_no_usable_serving_file_shows_the_run_make_run_first_page(tmp_path, run_app, make, reason):
    data = tmp_path / "data"
    data.mkdir()
    make(data)
    at = run_app(data)
    (warning,) = at.warning
    assert reason in warning.value
    assert str(data / "serving.duckdb") in warning.value
    assert "**Run `make run` first.**" in markdown(at)
    assert at.title[0].value == "Customer value & churn"
    assert not at.metric and not at.dataframe and not at.tabs


def test_a_serving_file_without_customers_gets_the_same_page(serving_copy, run_app):
    execute(serving_copy, "DELETE FROM mart_customer_360")
    at = run_app(serving_copy)
    assert "holds no customers" in at.warning[0].value
    assert "Run `make run` first" in markdown(at)


def test_failed_and_stale_checks_are_flagged(serving_copy, run_app):
    at = run_app(serving_copy)
    assert not at.error
    execute(
        serving_copy,
        "UPDATE check_results SET outcome = 'fail' WHERE rowid IN (SELECT rowid FROM check_results "
        "WHERE layer = 'marts' ORDER BY check_name LIMIT 2)",
        "UPDATE check_results SET business_date = DATE '2024-12-30' WHERE layer = 'raw'",
    )
    at = run_app(serving_copy)
    (error,) = at.error
    assert error.value.startswith("2 data-quality checks failed in the last run")
    assert any(
        "Checks of raw last ran for an earlier business date than the data's (2024-12-31)" in w.value
        for w in at.warning
    )
    summary = next(d.value for d in at.dataframe if "passed" in d.value.columns).set_index("layer")
    ((marts_checks,),) = query(serving_copy, "SELECT count(*) FROM check_results WHERE layer = 'marts'")
    assert summary.loc["marts", "failed"] == 2
    assert summary.loc["marts", "passed"] + summary.loc["marts", "warned"] == marts_checks - 2


def test_optional_model_columns_appear_when_the_marts_carry_them(serving_copy, run_app):
    for column in ("p_alive", "expected_purchases_365d"):
        execute(serving_copy, f"ALTER TABLE mart_customer_360 DROP COLUMN IF EXISTS {column}")
    at = run_app(serving_copy)
    assert "p_alive" not in at_risk_table(at).columns
    assert "expected_purchases_365d" not in at_risk_table(at).columns
    execute(
        serving_copy,
        "ALTER TABLE mart_customer_360 ADD COLUMN p_alive DOUBLE",
        "UPDATE mart_customer_360 SET p_alive = 1 - churn_probability / 2",
    )
    at = run_app(serving_copy)
    table = at_risk_table(at)
    assert "p_alive" in table.columns
    assert ((table["p_alive"] - (1 - table["churn_probability"] / 2)).abs() < 1e-12).all()


def chart_data(chart) -> pd.DataFrame:
    from streamlit import dataframe_util

    (dataset,) = chart.proto.datasets
    return dataframe_util.convert_arrow_bytes_to_pandas_df(dataset.data.data)


def test_charts_carry_the_marts_figures(pipeline_data, run_app):
    import json

    at = run_app(pipeline_data)
    charts = [(json.loads(c.proto.spec), c) for c in at.get("vega_lite_chart")]
    assert len(charts) == 27  # 8 + the subscriptions section: MRR bridge, MRR over time, retention by plan;
    # + the model-health section: 3 trends, calibration, lift, value deciles, churn coefficients;
    # + the data-health section: check outcomes, the volume of each of the 7 sources, model run times
    (heatmap,) = [chart_data(c) for spec, c in charts if spec["encoding"]["y"].get("title") == "Signup month"]
    cohorts = query(
        pipeline_data,
        "SELECT strftime(cohort_month, '%Y-%m'), months_since_acquisition, retention_rate "
        "FROM mart_retention_cohorts ORDER BY 1, 2",
    )
    assert len(heatmap) == len(cohorts) > 7
    cells = heatmap[["cohort", "months_since_acquisition", "retention_rate"]].itertuples(
        index=False, name=None
    )
    assert list(cells) == [tuple(r) for r in cohorts]
    ((n,),) = query(pipeline_data, "SELECT count(*) FROM mart_clv")
    (distribution,) = [
        chart_data(c) for spec, c in charts if spec["encoding"]["x"].get("title") == "Predicted 12-month CLV"
    ]
    assert distribution["customers"].sum() == n
    (by_csat,) = [chart_data(c) for _, c in charts if "Average CSAT, last 90 days" in c.proto.spec]
    ((reachable,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360 WHERE is_reachable")
    assert by_csat["customers"].sum() == reachable < n  # like with like: the reachable customers
    assert list(by_csat["band"]) == [
        b for b in ("low", "mid", "high", "no answer") if b in set(by_csat["band"])
    ]


def test_the_at_risk_list_says_who_to_contact_and_why(pipeline_data, run_app):
    """Issue 17: name, email and the churn model's reasons in words, next to the value at stake."""
    at = run_app(pipeline_data)
    table = at_risk_table(at)
    assert list(table.columns[:3]) == ["customer_id", "customer_name", "email"]
    assert "churn_reasons" in table.columns and "risk_change" in table.columns
    expected = dict(
        (r[0], r[1:])
        for r in query(
            pipeline_data,
            "SELECT customer_id, customer_name, email, churn_reasons FROM mart_customer_360 "
            f"WHERE {HIGH_VALUE} AND {REACHABLE}",
        )
    )
    for cid, name, email, why in table[["customer_id", "customer_name", "email", "churn_reasons"]].itertuples(
        index=False
    ):
        assert (name, email) == expected[cid][:2]
        assert why == expected[cid][2] or (why is None and expected[cid][2] is None)
    assert table["email"].str.contains("@").all() and table["customer_name"].str.contains(" ").all()
    assert table["churn_reasons"].notna().sum() > len(table) // 2
    ((named,),) = query(
        pipeline_data,
        "SELECT count(*) FROM mart_customer_360 WHERE churn_reasons LIKE '%no purchase in % days%' "
        "OR churn_reasons LIKE '%support ticket%' OR churn_reasons LIKE '%session%'",
    )
    assert named > 0
    assert any("What the numbers mean" in e.label for e in at.expander)


def test_the_two_lists_are_called_save_and_win_back(pipeline_data, run_app):
    at = run_app(pipeline_data)
    assert at.radio(key="pool").options == ["Save: still reachable", "Win back: already lost"]


def test_changes_since_the_previous_business_date(serving_copy, run_app):
    """What changed since the previous business date: counts per change, and a filter on it."""
    at = run_app(serving_copy)
    assert any("this is the first date on record" in c.value for c in at.caption)
    execute(
        serving_copy,
        "UPDATE mart_customer_360 SET previous_business_date = DATE '2024-12-30', risk_change = CASE "
        "WHEN is_at_risk AND hash(customer_id) % 3 = 0 THEN 'newly at risk' "
        "WHEN is_at_risk THEN 'still at risk' "
        "WHEN is_reachable AND hash(customer_id) % 10 = 0 THEN 'recovered' "
        "WHEN NOT is_reachable AND hash(customer_id) % 10 = 0 THEN 'moved to win-back' END",
    )
    counts = dict(
        query(
            serving_copy,
            "SELECT risk_change, count(*) FROM mart_customer_360 WHERE risk_change IS NOT NULL GROUP BY 1",
        )
    )
    assert set(counts) == {"newly at risk", "still at risk", "recovered", "moved to win-back"}
    at = run_app(serving_copy)
    m = metrics(at)
    assert m["Newly at risk"] == f"{counts['newly at risk']:,}"
    assert m["Recovered"] == f"{counts['recovered']:,}"
    assert m["Moved to win-back"] == f"{counts['moved to win-back']:,}"
    assert "**Since 2024-12-30** (the previous business date on record)" in markdown(at)
    at.multiselect(key="filter_value_tier").set_value([])
    at.multiselect(key="filter_risk_change").set_value(["newly at risk"])
    at.selectbox(key="rows").set_value("all")
    at = run_app(serving_copy, at)
    table = at_risk_table(at)
    assert len(table) == counts["newly at risk"] and set(table["risk_change"]) == {"newly at risk"}


def test_retention_shows_complete_months_only(serving_copy, run_app):
    """Issue 17: on 2024-12-04 December has 4 days of data; drawn, it looked like a collapse of
    retention. The heatmap and the curve stop at the last complete month and say so."""
    import json

    execute(serving_copy, "UPDATE serving_info SET business_date = DATE '2024-12-04'")
    at = run_app(serving_copy)
    charts = [(json.loads(c.proto.spec), c) for c in at.get("vega_lite_chart")]
    (heatmap,) = [chart_data(c) for spec, c in charts if spec["encoding"]["y"].get("title") == "Signup month"]
    year, month = heatmap["cohort"].str[:4].astype(int), heatmap["cohort"].str[5:].astype(int)
    months = year * 12 + month - 1 + heatmap["months_since_acquisition"].astype(int)  # months since year 0
    assert months.max() == 2024 * 12 + 10  # November 2024
    ((complete,),) = query(
        serving_copy,
        "SELECT count(*) FROM mart_retention_cohorts "
        "WHERE cohort_month + to_months(months_since_acquisition::INT) <= DATE '2024-11-01'",
    )
    assert len(heatmap) == complete > 0
    (curve,) = [
        chart_data(c)
        for spec, c in charts
        if spec["mark"].get("type") == "line" and "retention_rate" in chart_data(c).columns
    ]
    ((first_month_rate,),) = query(
        serving_copy,
        "SELECT sum(customers_active) / sum(cohort_size) FROM mart_retention_cohorts "
        "WHERE months_since_acquisition = 0 AND cohort_month <= DATE '2024-11-01'",
    )
    assert curve["retention_rate"].iloc[0] == pytest.approx(first_month_rate)
    assert any("December 2024 is left out until it is complete" in c.value for c in at.caption)


def support_tables(at) -> dict[str, pd.DataFrame]:
    """The support tab's tables (the tables with a band column), by dimension, in page order."""
    from dashboard import data

    tables = [d.value for d in at.dataframe if "band" in d.value.columns]
    assert len(tables) == len(data.SUPPORT_DIMENSIONS)
    return dict(zip(data.SUPPORT_DIMENSIONS, tables))


def test_support_bands_compare_like_with_like(pipeline_data, run_app):
    """Issue 17: the support-vs-churn bands were dominated by customers without tickets who are
    mostly already gone. By default they cover the customers still reachable; the other groups
    are one click away."""
    at = run_app(pipeline_data)
    tables = support_tables(at)
    ((reachable, reachable_risk),) = query(
        pipeline_data, "SELECT count(*), sum(revenue_at_risk_usd) FROM mart_customer_360 WHERE is_reachable"
    )
    by_tickets = tables["tickets_band"]
    assert by_tickets["customers"].sum() == reachable
    assert by_tickets["revenue_at_risk_usd"].sum() == pytest.approx(float(reachable_risk), abs=0.01)
    assert "avg_leave_probability_90d" in by_tickets.columns and "churned_share" not in by_tickets.columns
    ((no_tickets_churn,),) = query(
        pipeline_data,
        "SELECT avg(churn_probability) FROM mart_customer_360 WHERE is_reachable AND tickets_90d = 0",
    )
    row = by_tickets.set_index("band").loc["0"]
    assert row["avg_churn_probability"] == pytest.approx(no_tickets_churn)
    at.radio(key="support_group").set_value("everyone")
    at = run_app(pipeline_data, at)
    ((n,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360")
    assert support_tables(at)["tickets_band"]["customers"].sum() == n


def test_customer_360_explains_numbers_that_seem_to_disagree(pipeline_data, run_app):
    """Issue 17: "churn 96%" beside "P(alive) 90%" and lifecycle "active" is explained on the page."""
    rows = query(
        pipeline_data,
        "SELECT customer_id, lifecycle_stage, churn_probability, customer_name, email, churn_reasons "
        "FROM mart_customer_360 WHERE lifecycle_stage = 'active' AND churn_probability >= 0.5 "
        "ORDER BY p_alive DESC, customer_id LIMIT 1",
    )
    assert rows, "the pipeline's data has no active customer the churn model calls gone"
    ((cid, stage, churn, name, email, why),) = rows
    at = run_app(pipeline_data)
    at.text_input(key="customer_id").set_value(cid)
    at = run_app(pipeline_data, at)
    assert f"{name} · {email}" in markdown(at)
    if why:
        assert f"**Why:** {why}" in markdown(at)
    infos = [i.value for i in at.info]
    assert any(
        i.startswith(f"Lifecycle stage {stage} counts any visit") and f"churn probability {churn:.0%}" in i
        for i in infos
    ), infos
    ((calm,),) = query(
        pipeline_data,
        "SELECT customer_id FROM mart_customer_360 WHERE lifecycle_stage = 'active' AND churn_probability < 0.2 "
        "AND p_alive - churn_probability < 0.3 "
        "ORDER BY customer_id LIMIT 1",
    )
    at.text_input(key="customer_id").set_value(calm)
    at = run_app(pipeline_data, at)
    assert not tab(at, "Customer 360").info  # numbers that agree need no explanation


def test_the_age_of_the_churn_fit_is_shown(serving_copy, run_app):
    at = run_app(serving_copy)
    assert "churn model fitted 2024-12-31 (0 days old)" in at.caption[0].value
    execute(
        serving_copy,
        "UPDATE mart_model_fits SET fit_date = DATE '2024-12-27', fit_age_days = 4 WHERE model_name = 'churn'",
    )
    at = run_app(serving_copy)
    assert "churn model fitted 2024-12-27 (4 days old)" in at.caption[0].value
    fits = next(d.value for d in at.dataframe if "fit_age_days" in d.value.columns).set_index("model_name")
    assert list(fits.index) == ["churn", "subscription renewal", "purchase"]
    assert fits.loc["churn", "fit_age_days"] == 4 and fits.loc["purchase", "fit_age_days"] == 0
    assert fits.loc["subscription renewal", "refit_every_days"] == 7


def test_how_sure_the_totals_and_a_customers_value_are(pipeline_data, run_app):
    """Issue 18: the KPIs carry the 80% intervals of the totals (mart_value_intervals: the whole
    12-month value and its order part), the value tab a table of them per tier, and a customer's 360 view their own interval and
    P(buys within 90 days) from mart_customer_360."""
    ((expected, lo, hi),) = query(
        pipeline_data,
        "SELECT expected_usd, p10_usd, p90_usd FROM mart_value_intervals "
        "WHERE group_kind = 'all' AND measure = 'value_12m'",
    )
    ((w_expected, w_lo, w_hi, kpi),) = query(
        pipeline_data,
        "SELECT i.expected_usd, i.p10_usd, i.p90_usd, (SELECT sum(predicted_clv_12m_usd) FROM mart_clv) "
        "FROM mart_value_intervals i WHERE group_kind = 'all' AND measure = 'clv_12m'",
    )
    assert lo < expected < hi and w_lo < w_expected < w_hi
    assert w_expected == pytest.approx(float(kpi)) and w_expected > expected  # the KPI's figure
    at = run_app(pipeline_data)
    caption = "\n".join(c.value for c in at.caption)
    assert (
        f"the predicted 12-month value, ${w_expected:,.0f}, is 80% likely between ${w_lo:,.0f} and "
        f"${w_hi:,.0f}; its order part ${expected:,.0f} between ${lo:,.0f} and ${hi:,.0f}" in caption
    )
    tables = [d.value for d in at.dataframe if "p10_usd" in d.value.columns]
    assert tables, "no interval table on the value tab"
    (tiers,) = tables
    assert tiers["value_tier"].iloc[0] == "all customers"
    assert set(tiers["value_tier"]) >= {"all customers", "Top 10%"}
    assert (tiers["p10_usd"] <= tiers["p90_usd"]).all()

    ((cid, c_lo, c_hi, o_lo, o_hi, buys),) = query(
        pipeline_data,
        "SELECT customer_id, value_12m_p10_usd, value_12m_p90_usd, order_value_12m_p10_usd, "
        "order_value_12m_p90_usd, p_purchase_90d FROM mart_customer_360 WHERE order_value_12m_p90_usd > 0 "
        "AND mrr_usd > 0 ORDER BY value_at_stake_usd DESC, customer_id LIMIT 1",
    )
    assert c_lo >= o_lo and c_hi >= o_hi  # a subscriber: the whole is at least the order part
    at.text_input(key="customer_id").set_value(cid)
    at = run_app(pipeline_data, at)
    assert (
        f"**How sure:** the next 12 months' value (orders and subscriptions) 80% likely between "
        f"${c_lo:,.0f} and ${c_hi:,.0f} (orders alone ${o_lo:,.0f} to ${o_hi:,.0f}); "
        f"{buys:.0%} likely to buy within 90 days." in markdown(at)
    )
