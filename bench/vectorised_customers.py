"""The generator's own path for a customers file, isolated for the comparison with the per-row
baseline: mimesis pools sampled with numpy, strings built in Arrow, written by Arrow's CSV writer."""

from __future__ import annotations

import sys
import time

import numpy as np

from generator.export import csv_bytes
from generator.model import signup_days
from generator.simulate import customer_ids, draw_profiles, profiles_table


def write_customers(path: str, n: int, seed: int = 1) -> float:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    signup = signup_days(rng, n, 18_993, 20_088)  # 2022-01-01 .. 2024-12-31
    table = profiles_table(customer_ids(np.arange(1, n + 1)), draw_profiles(rng, signup), signup)
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        f.write(csv_bytes(table))
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"{write_customers(sys.argv[1], int(sys.argv[2])):.2f}")
