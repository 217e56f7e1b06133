"""The two purchase models side by side: BG/NBD (`clv.stats.btyd`) and Pareto/NBD
(`clv.stats.pareto_nbd`), behind one small interface so that `clv fit`, the pipeline's scoring
and the comparison call either the same way. Spend per purchase (Gamma-Gamma) is shared.

| | BG/NBD | Pareto/NBD |
| --- | --- | --- |
| dropout | right after a repeat purchase, probability p ~ Beta(a, b) | at any time, rate μ ~ Gamma(s, β) |
| a customer without repeat purchases | certainly alive | may have left (P(alive) < 1) |
| parameters | r, α, a, b | r, α, s, β |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from clv.stats import btyd, pareto_nbd, uncertainty


@dataclass(frozen=True)
class PurchaseModel:
    key: str  # as in the SQLMesh variable clv_purchase_model
    label: str  # for people
    fit: Callable
    p_alive: Callable
    expected_purchases: Callable  # (model, t, x, t_x, T)
    p_purchase: Callable  # (model, t, x, t_x, T)
    score: Callable  # as btyd.score
    value_distribution: Callable  # as uncertainty.value_distribution


MODELS = {
    "bgnbd": PurchaseModel(
        "bgnbd", "BG/NBD", btyd.fit_bgnbd, btyd.p_alive, btyd.expected_purchases, uncertainty.p_purchase,
        btyd.score, uncertainty.value_distribution,
    ),
    "pareto_nbd": PurchaseModel(
        "pareto_nbd", "Pareto/NBD", pareto_nbd.fit, pareto_nbd.p_alive, pareto_nbd.expected_purchases,
        pareto_nbd.p_purchase, pareto_nbd.score, pareto_nbd.value_distribution,
    ),
}  # fmt: skip


def get(key: str) -> PurchaseModel:
    """The model for a key (`bgnbd`, `pareto_nbd`; a dash works for the underscore)."""
    k = key.strip().lower().replace("-", "_").replace("/", "_")
    if k not in MODELS:
        raise btyd.BtydError(f"unknown purchase model {key!r}: use one of bgnbd, pareto_nbd")
    return MODELS[k]


def of(model) -> PurchaseModel:
    """The purchase model a fitted model belongs to."""
    return MODELS["pareto_nbd"] if isinstance(model, pareto_nbd.ParetoNBD) else MODELS["bgnbd"]


def information_criteria(model, customers: int) -> dict[str, float]:
    """AIC and BIC of a fitted purchase model (4 parameters each, so they differ only by the
    log-likelihood on the same data)."""
    k = len(model.names)
    ll = model.log_likelihood
    return {"aic": 2 * k - 2 * ll, "bic": k * float(np.log(customers)) - 2 * ll}
