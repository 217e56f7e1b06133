"""The refit cadence of the churn and renewal models (sqlmesh_project/macros/refit.py): between
refits, the models return their stored fit unchanged and the day's scores come from it; the fit is
redone once it is model_refit_days (7) old, or when CLV_FORCE_REFIT=1 says so. Real SQLMesh runs
on a real warehouse, day by day, as the daily refresh runs them."""

from __future__ import annotations

import datetime as dt
import importlib.util

import numpy as np
import pandas as pd
import pytest

from clv import ingest, metrics, settings, transform
from clv.settings import Paths
from clv.stats import scoring
from generator import runner

END = dt.date(2023, 12, 31)
DAYS = 9


def day(i: int) -> dt.date:
    return END + dt.timedelta(days=i)


def _refit_module():
    spec = importlib.util.spec_from_file_location("refit", settings.sqlmesh_project() / "macros" / "refit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("fitted", "business", "every", "forced", "due"),
    [
        (None, day(1), 7, False, True),  # nothing stored: fit
        (END, END, 7, False, False),  # the same day again (a restatement): keep
        (END, day(6), 7, False, False),
        (END, day(7), 7, False, True),  # a week old: refit
        (END, day(30), 7, False, True),
        (day(3), day(1), 7, False, True),  # fitted after the business date (an earlier day rerun)
        (END, day(1), 0, False, True),  # 0: every run
        (END, END, 7, True, True),  # CLV_FORCE_REFIT=1
    ],
)
def test_refit_is_due_by_the_age_of_the_stored_fit(fitted, business, every, forced, due):
    assert _refit_module().refit_due(fitted, business, every, forced) is due


def test_force_refit_setting(monkeypatch):
    monkeypatch.setenv("CLV_FORCE_REFIT", "1")
    assert settings.force_refit()
    monkeypatch.setenv("CLV_FORCE_REFIT", "0")
    assert not settings.force_refit()
    monkeypatch.setenv("CLV_FORCE_REFIT", "yes please")
    with pytest.raises(settings.SettingError, match="CLV_FORCE_REFIT"):
        settings.force_refit()


def _read(ctx, sql: str, *params) -> pd.DataFrame:
    return ctx.engine_adapter.connection.execute(sql, list(params)).df()


def _fits(ctx) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    churn = _read(ctx, "SELECT * FROM intermediate.int_churn_model ORDER BY feature").set_index("feature")
    renewal = _read(ctx, "SELECT * FROM intermediate.int_subscription_model_fit ORDER BY covers_plans")
    info = _read(ctx, "SELECT * FROM marts.mart_model_fits").set_index("model_name")
    return churn, renewal, info


def _run(paths: Paths, business_date: dt.date, force: bool, monkeypatch):
    if force:
        monkeypatch.setenv("CLV_FORCE_REFIT", "1")
    else:
        monkeypatch.delenv("CLV_FORCE_REFIT", raising=False)
    ctx = transform.context(paths.data_dir)
    try:
        assert transform.run(ctx, business_date)
        seconds = ctx.console.model_seconds.copy()
        # the slow-model detector's metric names: a refit is judged against earlier refits
        timed = {
            d: m
            for d, m, _ in metrics.run_seconds(
                ctx.engine_adapter.connection, "intermediate", business_date, seconds
            )
        }
        return (*_fits(ctx), seconds, _scores_from(ctx, business_date), timed)
    finally:
        ctx.close()


def _scores_from(ctx, business_date: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """int_churn_scoring as stored, and as the stored int_churn_model scores the day's features."""
    model = scoring.churn_model_from_frame(_read(ctx, "SELECT * FROM intermediate.int_churn_model"))
    features = "SELECT * FROM intermediate.{} WHERE as_of_date = ? ORDER BY customer_id"
    again = scoring.churn_scores(
        _read(ctx, "SELECT * FROM intermediate.int_clv_predictions"),
        _read(ctx, features.format("int_churn_features"), business_date),
        model,
        _read(ctx, features.format("int_purchase_summary"), business_date),
    ).set_index("customer_id")
    stored = _read(ctx, "SELECT * FROM intermediate.int_churn_scoring").set_index("customer_id")
    return stored, again


@pytest.mark.slow
def test_scores_come_from_the_stored_fit_until_the_cadence_refits(tmp_path, monkeypatch):
    paths = Paths(tmp_path / "data")
    monkeypatch.delenv("CLV_FORCE_REFIT", raising=False)
    runner.history(paths, 900, dt.date(2023, 1, 1), END, seed=5, chaos="none", progress=False, workers=1)
    ingest.load(paths.data_dir)
    ctx = transform.context(paths.data_dir)
    try:
        transform.plan_prod(ctx, END)
        churn0, renewal0, info0 = _fits(ctx)
    finally:
        ctx.close()
    assert (pd.to_datetime(churn0["fit_date"]) == pd.Timestamp(END)).all()
    assert (pd.to_datetime(renewal0["business_date"]) == pd.Timestamp(END)).all()
    assert info0.loc["churn", "fit_age_days"] == 0
    for i in range(1, DAYS + 1):
        runner.day(paths, day(i), chaos="none")

    # Day 1 (every day's batch is loaded now; each run takes in its days): no refit. The fits are the stored ones, value for value; the day's
    # scores are the stored churn model applied to the day's features.
    ingest.load(paths.data_dir)
    churn1, renewal1, info1, seconds1, (stored, again), timed1 = _run(paths, day(1), False, monkeypatch)
    pd.testing.assert_frame_equal(churn1, churn0)
    pd.testing.assert_frame_equal(renewal1, renewal0)
    assert info1.loc["churn", "fit_age_days"] == 1
    assert info1.loc["subscription renewal", "fit_age_days"] == 1
    assert info1.loc["churn", "next_refit_date"] == pd.Timestamp(day(7))
    assert info1.loc["purchase", "fit_age_days"] == 0  # the purchase models fit every run
    assert sorted(stored.index) == sorted(again.index) and len(stored) >= 600
    np.testing.assert_allclose(
        stored.loc[again.index, "churn_probability"], again["churn_probability"], rtol=1e-12
    )
    assert "intermediate.int_churn_model" in seconds1  # evaluated (it read its own table), not skipped
    assert timed1["int_churn_model"] == timed1["int_subscription_model_fit"] == "run_seconds"

    # Day 2, forced: refitted on the day's data. The coefficients move, so day 1's equality above
    # could only hold because the stored fit was kept.
    churn2, renewal2, info2, _, (stored, again), timed2 = _run(paths, day(2), True, monkeypatch)
    assert timed2["int_churn_model"] == timed2["int_subscription_model_fit"] == "run_seconds:refit"
    assert timed2["int_churn_scoring"] == "run_seconds"
    assert (pd.to_datetime(churn2["fit_date"]) == pd.Timestamp(day(2))).all()
    assert (pd.to_datetime(churn2["trained_as_of"]) == pd.Timestamp(day(2) - dt.timedelta(days=180))).all()
    assert (pd.to_datetime(renewal2["business_date"]) == pd.Timestamp(day(2))).all()
    assert not np.allclose(churn2.loc[churn0.index, "coefficient"], churn0["coefficient"], rtol=1e-9)
    assert info2.loc["churn", "fit_age_days"] == 0
    np.testing.assert_allclose(
        stored.loc[again.index, "churn_probability"], again["churn_probability"], rtol=1e-12
    )

    # Days 3-8 in one run (business date 8): the day-2 fit is 6 days old, kept.
    churn8, _, info8, _, _, _ = _run(paths, day(8), False, monkeypatch)
    pd.testing.assert_frame_equal(churn8, churn2)
    assert info8.loc["churn", "fit_age_days"] == 6
    assert info8.loc["churn", "next_refit_date"] == pd.Timestamp(day(9))

    # Day 9: 7 days old, refitted on its own.
    churn9, renewal9, info9, _, _, _ = _run(paths, day(9), False, monkeypatch)
    assert (pd.to_datetime(churn9["fit_date"]) == pd.Timestamp(day(9))).all()
    assert (pd.to_datetime(renewal9["business_date"]) == pd.Timestamp(day(9))).all()
    assert not np.allclose(churn9.loc[churn2.index, "coefficient"], churn2["coefficient"], rtol=1e-9)
    assert info9.loc["churn", "fit_age_days"] == 0
