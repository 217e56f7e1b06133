"""How good were the predictions: the metrics of model health, as plain numpy formulas.

Two kinds of prediction are scored, each against what the customers then did:

- **a probability of an event** (no purchase in the window, from the churn model or BG/NBD
  alone): ROC AUC (the chance a random customer with the event is ranked above one without, ties
  half), PR AUC (average precision: the mean, over the customers with the event, of the precision
  among everyone ranked at or above them; a tie block is taken whole), the top decile's precision
  and lift (the event rate among the tenth ranked highest, and that over the base rate), the
  Brier score (mean squared error of the probability), the log-loss, and a decile calibration
  table (customers in ten equal groups by predicted probability: mean predicted vs. observed
  rate) with its **calibration gap**, the customer-weighted mean of |predicted − observed| over
  the deciles (the expected calibration error);
- **a value** (revenue in the window): the aggregate error sum(predicted) / sum(actual) − 1, the
  mean absolute error per customer, the normalized Gini (how well the prediction ranks customers
  by what they then spent: 1 = as well as the outcome itself, 0 = no better than chance) and a
  decile table of predicted vs. actual mean value per decile of predicted value.

Deciles are equal-count groups of the customers sorted by prediction (ties broken by input order,
so the split is deterministic); decile 1 holds the highest predictions. Nothing here reads a
warehouse or knows a model: arrays in, numbers out (tests/ledger/test_model_metrics.py checks them
against hand-computed values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DECILES = 10


def _arrays(predicted, actual) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(actual, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"predictions and outcomes must be 1-d and aligned, got {p.shape} and {y.shape}")
    keep = np.isfinite(p) & np.isfinite(y)
    return p[keep], y[keep]


def roc_auc(score, label) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic on average ranks (ties count half)."""
    s, y = _arrays(score, label)
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(score, label) -> float:
    """Average precision: sum over thresholds (each distinct score, highest first) of the
    precision at that threshold times the recall it adds."""
    s, y = _arrays(score, label)
    pos = y > 0.5
    n_pos = int(pos.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # a threshold takes its whole tie block
    tp = np.cumsum(pos)[last_of_tie]
    seen = (np.flatnonzero(last_of_tie) + 1).astype(np.float64)
    precision = tp / seen
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(precision * recall_step))


def _ranked(predicted: np.ndarray) -> np.ndarray:
    """Indices from the highest prediction down, ties in input order."""
    return np.argsort(-predicted, kind="stable")


def decile_of(predicted) -> np.ndarray:
    """Each row's decile (1 = highest predictions) in equal-count groups (sizes differ by at most
    one)."""
    p = np.asarray(predicted, dtype=np.float64)
    out = np.empty(len(p), dtype=np.int64)
    for d, idx in enumerate(np.array_split(_ranked(p), DECILES), start=1):
        out[idx] = d
    return out


def top_decile(score, label) -> tuple[float, float]:
    """(precision, lift) among the tenth of customers ranked highest (at least one customer)."""
    s, y = _arrays(score, label)
    if len(s) == 0 or y.mean() == 0:
        return float("nan"), float("nan")
    k = max(int(np.ceil(len(s) / DECILES)), 1)
    precision = float(y[_ranked(s)[:k]].mean())
    return precision, precision / float(y.mean())


def brier(probability, label) -> float:
    p, y = _arrays(probability, label)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def log_loss(probability, label) -> float:
    p, y = _arrays(probability, label)
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))) if len(p) else float("nan")


def decile_table(predicted, actual) -> pd.DataFrame:
    """Per decile of the prediction (1 = highest): customers, mean predicted, mean actual."""
    p, y = _arrays(predicted, actual)
    d = decile_of(p)
    frame = pd.DataFrame({"decile": d, "predicted": p, "actual": y})
    table = frame.groupby("decile").agg(
        customers=("predicted", "size"), predicted=("predicted", "mean"), actual=("actual", "mean")
    )
    return table.reset_index()


def calibration_gap(probability, label) -> float:
    """Customer-weighted mean |mean predicted − observed rate| over the deciles of the probability."""
    t = decile_table(probability, label)
    if t.empty:
        return float("nan")
    return float(np.average(np.abs(t["predicted"] - t["actual"]), weights=t["customers"]))


def _gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    n = len(actual)
    ordered = actual[_ranked(predicted)]
    total = ordered.sum()
    if total == 0:
        return float("nan")
    return float(np.cumsum(ordered).sum() / total / n - (n + 1) / (2 * n))


def normalized_gini(predicted, actual) -> float:
    """Gini of the actual values ordered by the prediction over the Gini of them ordered by
    themselves (the Lorenz-curve form; 1 = a perfect ranking, about 0 = random)."""
    p, y = _arrays(predicted, actual)
    if len(p) < 2:
        return float("nan")
    best = _gini(y, y)
    return float(_gini(y, p) / best) if best and np.isfinite(best) else float("nan")


@dataclass(frozen=True)
class Metric:
    """One number: what it is and how many customers it was measured on."""

    metric: str
    value: float
    customers: int
    decile: int | None = None


def probability_metrics(probability, label) -> list[Metric]:
    """Every metric of a predicted probability of an event against whether it happened (1/0)."""
    p, y = _arrays(probability, label)
    n = len(p)
    precision, lift = top_decile(p, y)
    out = [
        Metric("base_rate", float(y.mean()) if n else float("nan"), n),
        Metric("predicted_rate", float(p.mean()) if n else float("nan"), n),
        Metric("roc_auc", roc_auc(p, y), n),
        Metric("pr_auc", pr_auc(p, y), n),
        Metric("top_decile_precision", precision, n),
        Metric("top_decile_lift", lift, n),
        Metric("brier", brier(p, y), n),
        Metric("log_loss", log_loss(p, y), n),
        Metric("calibration_gap", calibration_gap(p, y), n),
    ]
    for row in decile_table(p, y).itertuples():
        out.append(Metric("decile_predicted", float(row.predicted), int(row.customers), int(row.decile)))
        out.append(Metric("decile_observed", float(row.actual), int(row.customers), int(row.decile)))
    return out


def value_metrics(predicted, actual) -> list[Metric]:
    """Every metric of a predicted value against the value realised."""
    p, y = _arrays(predicted, actual)
    n = len(p)
    total_p, total_y = float(p.sum()), float(y.sum())
    out = [
        Metric("predicted_total_usd", total_p, n),
        Metric("actual_total_usd", total_y, n),
        Metric("aggregate_error", total_p / total_y - 1 if total_y > 0 else float("nan"), n),
        Metric("mae_usd", float(np.mean(np.abs(p - y))) if n else float("nan"), n),
        Metric("normalized_gini", normalized_gini(p, y), n),
    ]
    for row in decile_table(p, y).itertuples():
        out.append(Metric("decile_predicted_usd", float(row.predicted), int(row.customers), int(row.decile)))
        out.append(Metric("decile_actual_usd", float(row.actual), int(row.customers), int(row.decile)))
    return out
