"""Runs inside bench/.venv-lifetimes (lifetimes and its numpy 1.x stack), never in the project's
environment: fit lifetimes' BetaGeoFitter and GammaGammaFitter to a summary CSV (frequency,
recency, T, monetary_value) with their defaults and print the parameters and fit times as JSON.

    bench/.venv-lifetimes/bin/python bench/lifetimes_fit.py SUMMARY.csv [--repeats N]
"""

import argparse
import json
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("summary")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    df = pd.read_csv(args.summary)
    repeaters = df[df["frequency"] > 0]
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        bg = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
        t1 = time.perf_counter()
        gg = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
        t2 = time.perf_counter()
        runs.append({"bgnbd_seconds": t1 - t0, "gamma_gamma_seconds": t2 - t1})
    print(
        json.dumps(
            {
                "runs": runs,
                "bgnbd": {k: float(v) for k, v in bg.params_.items()},
                "gamma_gamma": {k: float(v) for k, v in gg.params_.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
