"""generator.model.BehaviourChange: the planned change of behaviour the drift test relies on. It
thins repeat purchases after its day and leaves everything before it, and the generator's default
output, untouched."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from clv.settings import Paths
from generator import runner
from generator.chaos import profile
from generator.model import PARAMS, BehaviourChange
from generator.runner import to_day
from generator.simulate import Window, simulate_chunk


def _purchases(params, n: int = 4_000):
    start, end = to_day(dt.date(2023, 1, 1)), to_day(dt.date(2023, 12, 31))
    signup = np.sort(np.random.default_rng(3).uniform(start, end - 200, n))
    chunk = simulate_chunk(
        np.random.default_rng(5), 1, signup, Window(end, end + 365), profile("none"), params
    )
    orders = chunk.tables["orders"].to_pandas()
    orders = orders[orders["quantity"] > 0]
    return orders.assign(day=pd.to_datetime(orders["order_datetime"]).dt.date)[
        ["customer_id", "day"]
    ].drop_duplicates()


def test_repeat_purchases_thin_after_the_change_and_not_before():
    change = BehaviourChange("2023-10-01", 0.5)
    base, drift = _purchases(PARAMS), _purchases(change.params())
    day = dt.date(2023, 10, 1)
    before = [set(map(tuple, f[f["day"] < day].to_numpy())) for f in (base, drift)]
    assert before[0] == before[1] and len(before[0]) > 5_000  # the same purchase days, customer by customer
    after = (base["day"] >= day).sum(), (drift["day"] >= day).sum()
    assert 0.45 < after[1] / after[0] < 0.55  # repeats halve; every first purchase was before the change


def test_a_factor_outside_0_1_is_refused_and_the_history_records_the_change(tmp_path):
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        BehaviourChange("2024-01-01", 1.5)
    paths = Paths(tmp_path / "data")
    change = BehaviourChange("2023-11-01", 0.5)
    runner.history(paths, 200, dt.date(2023, 6, 1), dt.date(2023, 12, 31), seed=1, chaos="none",
                   progress=False, workers=1, behaviour=change)  # fmt: skip
    meta = json.loads((paths.state / "meta.json").read_text())
    assert meta["behaviour_change"] == {"on": "2023-11-01", "purchase_rate_factor": 0.5}
    assert PARAMS.purchase_rate_factor == 1.0 and change.params().purchase_rate_change_day == to_day(
        dt.date(2023, 11, 1)
    )
