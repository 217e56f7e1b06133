"""CLV model speed (issue targets: fitting BG/NBD + Gamma-Gamma on 1,000,000 customers in <= 2 s,
>= 10x faster than the `lifetimes` package on the same input and reaching the same parameters to
1e-3 relative; scoring 1,000,000 customers in <= 2 s).

The input is one summary file (frequency, recency, T, monetary_value) of 1,000,000 customers drawn
from BG/NBD and Gamma-Gamma with the generator's parameters, observed for 0..1095 whole days.
Both sides read it and are timed on the fit calls only, side by side in this one run: clv.stats.btyd in
the project's environment, lifetimes 0.11.3 (with its defaults) in bench/.venv-lifetimes
(`make bench-lifetimes-env`), a separate environment because lifetimes needs the numpy 1.x stack
and is never a project dependency.

    python bench/bench_btyd.py [--customers 1000000] [--repeats 5] [--lifetimes-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, median, run, write_section
from clv.stats import btyd

PY = sys.executable
LIFETIMES_PY = ROOT / "bench" / ".venv-lifetimes" / "bin" / "python"
OURS = """
import json, sys, time
import pandas as pd
from clv.stats import btyd
df = pd.read_csv(sys.argv[1])
x, tx, T, m = (df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
out = {"fit": [], "score": [], "score_discounted": []}
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    bg = btyd.fit_bgnbd(x, tx, T)
    t1 = time.perf_counter()
    gg = btyd.fit_gamma_gamma(x, m)
    t2 = time.perf_counter()
    out["fit"].append({"bgnbd_seconds": t1 - t0, "gamma_gamma_seconds": t2 - t1})
for key, rate in (("score", 0.0), ("score_discounted", 0.1)):
    for _ in range(int(sys.argv[2])):
        t0 = time.perf_counter()
        btyd.score(bg, gg, x, tx, T, m, discount_rate=rate)
        out[key].append(time.perf_counter() - t0)
out["bgnbd"] = bg.params()
out["gamma_gamma"] = gg.params()
out["iterations"] = {"bgnbd": bg.report.iterations, "gamma_gamma": gg.report.iterations}
print(json.dumps(out))
"""
GENERATOR = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}
SPEND = {"p": 4.0, "q": 4.0, "v": 60.0}


def make_input(path: Path, customers: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    T = rng.integers(0, 1096, customers).astype(float)
    s = btyd.simulate(rng, T, GENERATOR, SPEND)
    df = pd.DataFrame(
        {
            "frequency": s["frequency"].astype(int),
            "recency": np.floor(s["recency"]),  # whole days, as a daily transaction log gives
            "T": T,
            "monetary_value": np.round(s["monetary"], 2),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lifetimes-repeats", type=int, default=3)
    args = ap.parse_args()
    if not LIFETIMES_PY.exists():
        raise SystemExit("bench/.venv-lifetimes is missing: run `make bench-lifetimes-env` first")
    path = ROOT / "bench" / "out" / f"btyd-summary-{args.customers}.csv"
    df = make_input(path, args.customers)
    print(
        f"input: {path} ({len(df):,} customers, {int((df.frequency > 0).sum()):,} with repeat purchases)",
        flush=True,
    )

    ours_run = run([PY, "-c", OURS, str(path), str(args.repeats)])
    ours = json.loads(ours_run.stdout.strip().splitlines()[-1])
    fit_total = [r["bgnbd_seconds"] + r["gamma_gamma_seconds"] for r in ours["fit"]]
    print(f"clv.stats.btyd fit: {median(fit_total):.2f} s median of {len(fit_total)}", flush=True)
    theirs_run = run([str(LIFETIMES_PY), str(ROOT / "bench" / "lifetimes_fit.py"), str(path), "--repeats",
                      str(args.lifetimes_repeats)])  # fmt: skip
    theirs = json.loads(theirs_run.stdout.strip().splitlines()[-1])
    lt_total = [r["bgnbd_seconds"] + r["gamma_gamma_seconds"] for r in theirs["runs"]]
    print(f"lifetimes fit: {median(lt_total):.2f} s median of {len(lt_total)}", flush=True)

    x, tx, T = (df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    m = df["monetary_value"].to_numpy(dtype=float)
    rel = {}
    for model in ("bgnbd", "gamma_gamma"):
        for k, v in ours[model].items():
            rel[k] = abs(v - theirs[model][k]) / abs(theirs[model][k])
    ll = {
        who: (
            float(btyd.bgnbd_log_likelihood(res["bgnbd"], x, tx, T).sum()),
            float(btyd.gamma_gamma_log_likelihood(res["gamma_gamma"], x, m).sum()),
        )
        for who, res in (("ours", ours), ("lifetimes", theirs))
    }

    def med(runs, key):
        return median([r[key] for r in runs])

    speedup = median(lt_total) / median(fit_total)
    lines = [
        "## CLV model fitting and scoring (BG/NBD + Gamma-Gamma)",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_btyd.py` (part of `make bench`).",
        f"Input: {len(df):,} customers drawn from BG/NBD (r, α, a, b) = (0.75, 25, 0.8, 5) per day and "
        f"Gamma-Gamma (p, q, v) = (4, 4, 60), observed 0..1095 whole days "
        f"({int((df.frequency > 0).sum()):,} with repeat purchases), one CSV read by both sides. "
        "Times are of the fit calls only (the file is read before), in separate processes run one after "
        "the other; lifetimes 0.11.3 with its defaults (BFGS, tol 1e-7, autograd; its fit also computes "
        "the Hessian for standard errors) in bench/.venv-lifetimes.",
        "",
        "| measure | clv.stats.btyd | lifetimes | speed-up |",
        "| --- | ---: | ---: | ---: |",
        f"| BG/NBD fit | {med(ours['fit'], 'bgnbd_seconds'):.2f} s | {med(theirs['runs'], 'bgnbd_seconds'):.1f} s "
        f"| {med(theirs['runs'], 'bgnbd_seconds') / med(ours['fit'], 'bgnbd_seconds'):.0f}x |",
        f"| Gamma-Gamma fit | {med(ours['fit'], 'gamma_gamma_seconds'):.2f} s "
        f"| {med(theirs['runs'], 'gamma_gamma_seconds'):.1f} s "
        f"| {med(theirs['runs'], 'gamma_gamma_seconds') / med(ours['fit'], 'gamma_gamma_seconds'):.0f}x |",
        f"| **both fits** | **{median(fit_total):.2f} s** | **{median(lt_total):.1f} s** | **{speedup:.0f}x** |",
        f"| runs (median reported) | {len(fit_total)} | {len(lt_total)} | |",
        f"| peak memory of the process (PSS) | {ours_run.peak_rss_mb:,.0f} MB | {theirs_run.peak_rss_mb:,.0f} MB | |",
        "",
        f"Scoring all {len(df):,} customers (P(alive), expected purchases over 90 and 365 days, expected "
        f"spend, remaining and 12-month CLV): {median(ours['score']):.2f} s median of {len(ours['score'])}; "
        f"with a 10% annual discount rate (12 monthly steps): {median(ours['score_discounted']):.2f} s.",
        "",
        "Parameters (the generator's in brackets) and agreement:",
        "",
        "| parameter | clv.stats.btyd | lifetimes | relative difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    truth = {**GENERATOR, **SPEND}
    for model in ("bgnbd", "gamma_gamma"):
        for k, v in ours[model].items():
            lines.append(f"| {k} ({truth[k]:g}) | {v:.6f} | {theirs[model][k]:.6f} | {rel[k]:.1e} |")
    lines += [
        "",
        f"Total log-likelihood at each side's parameters (computed by clv.stats.btyd): BG/NBD {ll['ours'][0]:,.3f} "
        f"(clv.stats.btyd) vs {ll['lifetimes'][0]:,.3f} (lifetimes); Gamma-Gamma {ll['ours'][1]:,.3f} vs "
        f"{ll['lifetimes'][1]:,.3f}. Newton iterations: BG/NBD {ours['iterations']['bgnbd']}, Gamma-Gamma "
        f"{ours['iterations']['gamma_gamma']} (after a start on a 60,000-customer subsample).",
        "",
        f"Targets: fit <= 2 s: {'met' if median(fit_total) <= 2 else 'NOT met'}; >= 10x lifetimes: "
        f"{'met' if speedup >= 10 else 'NOT met'}; same parameters to 1e-3: "
        f"{'met' if max(rel.values()) <= 1e-3 else 'NOT met'} (largest {max(rel.values()):.1e}); "
        f"scoring <= 2 s: {'met' if median(ours['score']) <= 2 else 'NOT met'}.",
    ]
    write_section("btyd", "\n".join(lines))
    print("\n".join(lines[5:]))


if __name__ == "__main__":
    main()
