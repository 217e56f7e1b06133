"""Runs inside bench/.venv-lifetimes (lifetimes and its numpy 1.x stack), never in the project's
environment: fit lifetimes' BetaGeoFitter and GammaGammaFitter (or, with --model pareto, its
ParetoNBDFitter) to a summary CSV (frequency, recency, T, monetary_value) with their defaults and
print the parameters and fit times as JSON. With --transactions the input is a transaction log
(customer_id, date, amount): the script is the lifetimes equivalent of `clv fit`
(summary_data_from_transaction_data, then both fitters), timed as a whole by the caller.

    bench/.venv-lifetimes/bin/python bench/lifetimes_fit.py SUMMARY.csv [--repeats N] [--model pareto]
    bench/.venv-lifetimes/bin/python bench/lifetimes_fit.py TRANSACTIONS.csv --transactions --calibration-end D
"""

import argparse
import json
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("summary")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--model", choices=["bgnbd", "pareto"], default="bgnbd")
    ap.add_argument("--transactions", action="store_true")
    ap.add_argument("--calibration-end", default=None)
    args = ap.parse_args()
    if args.transactions:
        from lifetimes.utils import summary_data_from_transaction_data

        tx = pd.read_csv(args.summary)
        df = summary_data_from_transaction_data(
            tx,
            "customer_id",
            "date",
            monetary_value_col="amount",
            observation_period_end=args.calibration_end,
        )
        bg = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
        repeaters = df[df["frequency"] > 0]
        gg = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
        print(json.dumps({"customers": len(df), "bgnbd": dict(bg.params_), "gamma_gamma": dict(gg.params_)}))
        return
    df = pd.read_csv(args.summary)
    if args.model == "pareto":
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            pn = ParetoNBDFitter().fit(df["frequency"], df["recency"], df["T"])
            runs.append(time.perf_counter() - t0)
        print(json.dumps({"runs": runs, "params": {k: float(v) for k, v in pn.params_.items()}}))
        return
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
