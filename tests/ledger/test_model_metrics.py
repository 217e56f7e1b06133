"""clv.stats.model_metrics against values computed by hand and by brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from clv.stats import model_metrics as mm


def test_roc_and_pr_auc_on_a_hand_computed_ranking():
    # positives at 0.9 and 0.7, negatives at 0.8 and 0.6: 3 of the 4 pairs are ordered right;
    # average precision = 1/2 (recall 1/2 at precision 1) + 1/2 x 2/3 (recall 1 at precision 2/3)
    score, label = [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]
    assert mm.roc_auc(score, label) == pytest.approx(0.75)
    assert mm.pr_auc(score, label) == pytest.approx(0.5 + 1 / 3)
    # a tie is one threshold: both customers come in together
    assert mm.roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert mm.pr_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert np.isnan(mm.roc_auc([0.1, 0.2], [1, 1]))


def test_auc_and_average_precision_match_their_definitions_on_random_data():
    rng = np.random.default_rng(3)
    s = rng.random(400)
    y = (rng.random(400) < s * 0.7).astype(float)
    pos, neg = s[y == 1], s[y == 0]
    pairwise = (pos[:, None] > neg[None, :]).mean()
    assert mm.roc_auc(s, y) == pytest.approx(pairwise, abs=1e-12)
    order = np.argsort(-s)
    hits = np.cumsum(y[order])
    precision_at_each_positive = (hits / np.arange(1, 401))[y[order] == 1]
    assert mm.pr_auc(s, y) == pytest.approx(precision_at_each_positive.mean(), abs=1e-12)


def test_top_decile_brier_log_loss_and_calibration():
    # 20 customers: the two highest scores are both events, the base rate is 6 / 20
    p = np.linspace(0.95, 0.0, 20)
    y = np.zeros(20)
    y[[0, 1, 5, 9, 14, 19]] = 1
    precision, lift = mm.top_decile(p, y)
    assert precision == 1.0 and lift == pytest.approx(1 / 0.3)
    assert mm.brier([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((0.01 + 0.64 + 0.09 + 0.36) / 4)
    assert mm.log_loss([0.5, 0.5], [1, 0]) == pytest.approx(np.log(2))
    table = mm.decile_table(p, y)
    assert table["customers"].tolist() == [2] * 10 and table["decile"].tolist() == list(range(1, 11))
    assert table["actual"].tolist() == [1, 0, 0.5, 0, 0.5, 0, 0, 0.5, 0, 0.5]
    expected_gap = np.mean(np.abs(table["predicted"] - table["actual"]))
    assert mm.calibration_gap(p, y) == pytest.approx(expected_gap)
    # a perfectly calibrated probability (each decile's rate equals its prediction) has gap 0
    q = np.repeat([0.0, 0.5, 1.0], 20)
    z = np.r_[np.zeros(20), np.tile([0, 1], 10), np.ones(20)]
    assert mm.calibration_gap(q, z) == pytest.approx(0.0, abs=1e-12)


def test_value_metrics_and_normalized_gini_by_hand():
    # ordered by prediction the actuals are 10, 0, 0, 5: Lorenz sum (10+10+10+15)/15/4 - 5/8 = 1/8;
    # ordered by themselves 10, 5, 0, 0: (10+15+15+15)/15/4 - 5/8 = 7/24; normalized 3/7
    pred, actual = [0.9, 0.3, 0.8, 0.1], [10.0, 0.0, 0.0, 5.0]
    assert mm.normalized_gini(pred, actual) == pytest.approx(3 / 7)
    assert mm.normalized_gini(actual, actual) == pytest.approx(1.0)
    got = {m.metric: m.value for m in mm.value_metrics([12.0, 8.0, 0.0, 4.0], [10.0, 10.0, 0.0, 0.0])}
    assert got["aggregate_error"] == pytest.approx(24 / 20 - 1)
    assert got["mae_usd"] == pytest.approx((2 + 2 + 0 + 4) / 4)
    assert got["predicted_total_usd"] == 24 and got["actual_total_usd"] == 20


def test_probability_metrics_emit_every_scalar_once_and_ten_decile_rows():
    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(float)
    rows = mm.probability_metrics(p, y)
    scalars = [m.metric for m in rows if m.decile is None]
    assert len(scalars) == len(set(scalars)) == 9
    assert sorted({m.decile for m in rows if m.decile}) == list(range(1, 11))
    got = {m.metric: m.value for m in rows if m.decile is None}
    assert 0.7 < got["roc_auc"] < 0.9  # a probability drawn to be right
    assert got["calibration_gap"] < 0.08
