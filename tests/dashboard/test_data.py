"""dashboard/data.py against the pipeline-built serving file: every figure checked against the marts
by an independent query, and how the serving file is opened (read-only, per page load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from dashboard import data
from tests.dashboard.conftest import query


@pytest.fixture
def serving(pipeline_data):
    with data.open_serving(pipeline_data) as s:
        yield s


def test_the_serving_file_is_described(serving, pipeline_data):
    assert str(serving.business_date) == "2024-12-31"
    assert serving.source_schema == "marts"
    ((n,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360")
    assert serving.row_counts["mart_customer_360"] == n
    assert serving.has("mart_clv", "value_tier") and not serving.has("mart_clv", "no_such_column")
    assert serving.has("check_results") and not serving.has("no_such_table")


def test_clv_distribution_counts_every_customer_once_in_its_dollar_band(serving, pipeline_data):
    dist = data.clv_distribution(serving)
    ((n, total),) = query(pipeline_data, "SELECT count(*), sum(predicted_clv_12m_usd) FROM mart_clv")
    assert dist["customers"].sum() == n
    assert dist["predicted_clv_12m_usd"].sum() == pytest.approx(float(total), abs=0.01)
    assert dist["share_of_predicted_clv"].sum() == pytest.approx(1)
    assert dist["band"].tolist()[0] == "under $50" and dist["band"].tolist()[-1] == "$10k+"
    row = dist.set_index("band").loc["$1k–$2.5k"]
    ((band_n,),) = query(
        pipeline_data,
        "SELECT count(*) FROM mart_clv WHERE predicted_clv_12m_usd >= 1000 AND predicted_clv_12m_usd < 2500",
    )
    assert row["customers"] == band_n > 0


def test_value_tiers_partition_the_customers(serving, pipeline_data):
    tiers = data.value_tiers(serving).set_index("value_tier")
    assert list(tiers.index) == ["Top 10%", "High", "Medium", "Low"]
    ((n,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360")
    assert tiers["customers"].sum() == n
    assert tiers["share_of_customers"].loc["Top 10%"] == pytest.approx(0.1, abs=0.01)
    assert tiers["share_of_predicted_clv"].sum() == pytest.approx(1)
    # tiers rank the value at stake (to date + next 12 months if retained), not the prediction
    assert tiers.loc["Top 10%", "min_value_at_stake_usd"] >= tiers.loc["High", "max_value_at_stake_usd"]
    assert tiers.loc["High", "min_value_at_stake_usd"] >= tiers.loc["Medium", "max_value_at_stake_usd"]


@pytest.mark.parametrize("dimension", list(data.SUPPORT_DIMENSIONS))
def test_churn_by_support_weighs_each_band_by_its_customers(serving, pipeline_data, dimension):
    df = data.churn_by_support(serving, dimension, "everyone")
    reachable = data.churn_by_support(serving, dimension)  # the default: customers still reachable
    lost = data.churn_by_support(serving, dimension, "lost")
    ((n_reachable,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360 WHERE is_reachable")
    assert reachable["customers"].sum() == n_reachable and lost["customers"].sum() > 0
    both = pd.concat([reachable, lost]).groupby("band")["customers"].sum()
    assert both.to_dict() == df.set_index("band")["customers"].to_dict()
    assert (lost["revenue_at_risk_usd"] == 0).all()
    with pytest.raises(ValueError, match="unknown customer group 'gone'"):
        data.churn_by_support(serving, dimension, "gone")
    ((n, avg_churn, risk, lost),) = query(
        pipeline_data,
        "SELECT count(*), avg(churn_probability), sum(revenue_at_risk_usd), sum(value_lost_usd) "
        "FROM mart_customer_360",
    )
    assert df["customers"].sum() == n
    weighted = (df["avg_churn_probability"] * df["customers"]).sum() / df["customers"].sum()
    assert weighted == pytest.approx(avg_churn, abs=1e-9)
    assert df["revenue_at_risk_usd"].sum() == pytest.approx(float(risk), abs=0.05)
    assert df["value_lost_usd"].sum() == pytest.approx(float(lost), abs=0.05) and lost > risk > 0
    order = list(data.SUPPORT_DIMENSIONS[dimension][1])
    assert [order.index(b) for b in df["band"]] == sorted(order.index(b) for b in df["band"])


def test_retention_curve_starts_with_every_customer(serving, pipeline_data):
    curve = data.retention_curve(serving)
    ((n,),) = query(pipeline_data, "SELECT count(*) FROM mart_customer_360")
    first = curve.iloc[0]
    assert first["months_since_acquisition"] == 0 and first["customers"] == n
    assert curve["retention_rate"].between(0, 1).all()
    cohorts = data.retention_cohorts(serving)
    assert cohorts["cohort"].min() == "2024-06" and cohorts["cohort"].max() == "2024-12"


def test_category_ltv_is_ordered_by_average_predicted_value(serving):
    cats = data.category_ltv(serving)
    assert len(cats) > 3
    assert cats["avg_predicted_clv_12m_usd"].is_monotonic_decreasing


def test_at_risk_sorts_and_filters(serving, pipeline_data):
    by_clv = data.at_risk(
        serving, {"risk_band": ["high", "medium"]}, sort="predicted 12-month CLV", limit=None
    )
    ((n, everyone, gone),) = query(
        pipeline_data,
        "SELECT count(*) FILTER (is_reachable), count(*), count(*) FILTER (NOT is_reachable) "
        "FROM mart_customer_360 WHERE risk_band IN ('high', 'medium')",
    )
    assert len(by_clv) == n > 0
    assert by_clv["predicted_clv_12m_usd"].is_monotonic_decreasing
    assert set(by_clv["risk_band"]) <= {"high", "medium"}
    assert data.at_risk_summary(serving, {"risk_band": ["high", "medium"]})[0] == n
    assert data.at_risk_summary(serving, {"risk_band": ["high", "medium"]}, pool=None)[0] == everyone
    assert (
        data.at_risk_summary(serving, {"risk_band": ["high", "medium"]}, pool="already lost")[0] == gone > 0
    )
    with pytest.raises(ValueError, match="unknown list 'x'"):
        data.at_risk(serving, pool="x")
    assert len(data.at_risk(serving, limit=7)) == 7
    with pytest.raises(ValueError, match="unknown filter column 'email'"):
        data.at_risk(serving, {"email": ["x"]})
    with pytest.raises(ValueError, match="unknown sort 'age'"):
        data.at_risk(serving, sort="age")


def test_segment_options_come_from_the_data_in_rank_order(serving, pipeline_data):
    options = data.segment_options(serving)
    assert options["value_tier"] == ["Top 10%", "High", "Medium", "Low"]
    segments = sorted(
        r[0] for r in query(pipeline_data, "SELECT DISTINCT contract_segment FROM mart_customer_360")
    )
    assert options["contract_segment"] == segments


def test_customer_lookup_is_case_and_space_insensitive(serving, pipeline_data):
    ((cid, city),) = query(
        pipeline_data, "SELECT customer_id, city FROM mart_customer_360 ORDER BY customer_id LIMIT 1"
    )
    row = data.customer(serving, f"  '{cid.lower()}' ")
    assert row is not None and row["customer_id"] == cid and row["city"] == city
    assert data.customer(serving, "C999999999") is None
    assert data.customer(serving, "   ") is None


def test_the_file_is_closed_after_the_page_load(pipeline_data, tmp_path):
    import shutil

    shutil.copy(pipeline_data / "serving.duckdb", tmp_path / "serving.duckdb")
    with data.open_serving(tmp_path) as s:
        assert s.con.execute("SELECT count(*) FROM mart_clv").fetchone()[0] > 0
        with pytest.raises(duckdb.Error):  # read-only: the dashboard cannot change the file
            s.con.execute("DELETE FROM mart_clv")
    # DuckDB refuses a read-write connection in this process while a read-only one is open
    duckdb.connect(str(tmp_path / "serving.duckdb")).close()


def test_a_file_held_by_a_writer_gets_a_clear_message(pipeline_data, tmp_path):
    import shutil

    path = tmp_path / "serving.duckdb"
    shutil.copy(pipeline_data / "serving.duckdb", path)
    holder = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with (
            pytest.raises(data.ServingUnavailable, match="held open for writing by another process"),
            data.open_serving(tmp_path),
        ):
            pass
    finally:
        proc.stdin.close()
        proc.wait(30)
    with data.open_serving(tmp_path) as s:  # once the writer is gone, the page works again
        assert s.business_date is not None
