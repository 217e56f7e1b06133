"""How honest the intervals are (issue 18), against the generator's ground truth: the share of
customers whose next 12 months' value falls inside their 80% interval (int_clv_predictions), by
frequency bucket, next to the share the model itself implies; whether the totals' intervals
(marts.mart_value_intervals) contain the actual totals; the Brier score of P(at least one purchase
in 90 days); the parameters' standard errors; and the time the intervals take for 1,000,000
customers.

Reads the warehouse `make run` built (its models as of the history's end date) and the truth the
generator wrote beside it; it changes nothing.

    python bench/bench_uncertainty.py [--data-dir data] [--customers 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median, write_section
from clv import settings
from clv.stats import btyd, uncertainty

BUCKETS = ((0, 0, "0"), (1, 1, "1"), (2, 3, "2-3"), (4, 7, "4-7"), (8, 15, "8-15"), (16, 10**9, "16+"))
GENERATOR_BG = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}
GENERATOR_GG = {"p": 4.0, "q": 4.0, "v": 60.0}


def implied_inside(p10: np.ndarray, p90: np.ndarray, buy: np.ndarray) -> np.ndarray:
    """P(P10 <= value <= P90) by the model: the value is 0 with probability 1 - P(a purchase), so
    [P10, P90] holds 80% when P10 > 0, 90% when only P10 is 0, and 1 - P(a purchase) when both are."""
    return np.where(p10 > 0, 0.8, np.where(p90 > 0, 0.9, 1 - buy))


def whole_value_lines(w: pd.DataFrame) -> list[str]:
    """The whole value's 80% interval (orders + running subscriptions, int_revenue_risk
    value_12m_p10/p50/p90_usd) against the truth's whole revenue of the next 365 days (net order
    revenue + subscription charges), for subscribers and the others."""
    actual = w["future_total_revenue_365d"].to_numpy(dtype=float)
    p10, p50, p90 = (w[f"value_12m_{k}_usd"].astype(float).to_numpy() for k in ("p10", "p50", "p90"))
    inside = (actual >= p10 - 0.005) & (actual <= p90 + 0.005)
    subscriber = w["active_subscriptions"].to_numpy() > 0
    lines = [
        "",
        "### The whole value: orders + running subscriptions",
        "",
        "`value_12m_p10_usd` .. `value_12m_p90_usd` (int_revenue_risk, also in mart_clv and "
        "mart_customer_360): the order part's distribution (above) plus the charges a running "
        "subscription pays before it is cancelled at a renewal (sBG, `renewal.value_samples`), against "
        "the truth's net order revenue + subscription charges of the next 365 days "
        "(`future_total_revenue_365d`). A return after cancelling is in the expectation, not in the "
        "interval. Where P10 is 0 the interval holds more than 80% by construction (see above).",
        "",
        "| customers | count | inside [P10, P90] | below P10 | above P90 | actual <= P50 | P10 above 0: count, inside | mean actual | mean predicted |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for label, sel in (
        ("with a running subscription", subscriber),
        ("without one (the order interval)", ~subscriber),
        ("**all**", np.ones(len(w), dtype=bool)),
    ):
        if not sel.any():
            continue
        pos = sel & (p10 > 0)
        pos_text = f"{int(pos.sum()):,}, {inside[pos].mean():.1%}" if pos.any() else "0"
        lines.append(
            f"| {label} | {int(sel.sum()):,} | {inside[sel].mean():.1%} | {(actual[sel] < p10[sel] - 0.005).mean():.1%} | "
            f"{(actual[sel] > p90[sel] + 0.005).mean():.1%} | {(actual[sel] <= p50[sel] + 0.005).mean():.1%} | "
            f"{pos_text} | ${actual[sel].mean():,.2f} | ${w.loc[sel, 'predicted_clv_12m_usd'].astype(float).mean():,.2f} |"
        )
    return lines


def whole_value_timing(
    con, business, fit: pd.DataFrame, pred: pd.DataFrame, copies: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds of the whole value's interval (int_subscription_value's extra step) on the
    warehouse's own subscriptions and predictions, each customer repeated `copies` times under new
    ids (10 copies of a 100,000-customer warehouse: 1,000,000 customers' worth)."""
    from clv.stats import renewal, scoring

    subs = con.execute(
        "SELECT s.* FROM staging.stg_subscriptions s JOIN core.dim_customers d "
        "ON d.customer_id = s.customer_id AND d.valid_to IS NULL"
    ).df()
    plans = con.execute("SELECT * FROM core.dim_plans").df()
    models = renewal.models_from_frame(
        con.execute("SELECT * FROM intermediate.int_subscription_model_fit").df()
    )

    def copied(frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
        parts = []
        for k in range(copies):
            part = frame.copy()
            for c in cols:
                part[c] = part[c].astype(str) + f"-{k}"
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    eps = renewal.episodes(copied(subs, ("customer_id", "subscription_id")), plans, business)
    pred = copied(pred, ("customer_id",))
    out: dict[str, list[float]] = {"subscription draws": [], "whole-value quantiles": [], "subscribers": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids, draws = renewal.value_samples(eps, models, business)
        t1 = time.perf_counter()
        scoring.value_quantiles_with_subscriptions(fit, pred, ids, draws)
        t2 = time.perf_counter()
        out["subscription draws"].append(t1 - t0)
        out["whole-value quantiles"].append(t2 - t1)
        out["subscribers"].append(float(len(ids)))
    return out


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def timing(n: int, repeats: int) -> dict[str, list[float]]:
    """The interval columns for `n` simulated customers (the generator's process), outside SQLMesh:
    P(a purchase) twice and the 80% value intervals, after the fits and the scoring they need."""
    rng = np.random.default_rng(0)
    T = rng.integers(1, 1096, n).astype(float)
    sim = btyd.simulate(rng, T, GENERATOR_BG, GENERATOR_GG)
    x, tx, m = sim["frequency"], sim["recency"], sim["monetary"]
    bg = btyd.fit_bgnbd(x, tx, T)
    gg = btyd.fit_gamma_gamma(x, m)
    s = btyd.score(bg, gg, x, tx, T, m)
    out: dict[str, list[float]] = {
        "p_purchase_90d and _365d": [],
        "value tables": [],
        "customer quantiles": [],
    }
    for _ in range(repeats):
        t0 = time.perf_counter()
        uncertainty.p_purchase(bg, 90, x, tx, T)
        uncertainty.p_purchase(bg, 365, x, tx, T)
        t1 = time.perf_counter()
        vd = uncertainty.value_distribution(bg, gg, 365, x, T, m)
        t2 = time.perf_counter()
        uncertainty.customer_quantiles(vd, x, T, m, s.p_alive, s.remaining_clv)
        t3 = time.perf_counter()
        for k, v in zip(out, (t1 - t0, t2 - t1, t3 - t2)):
            out[k].append(v)
    out["cells"] = [float(len(vd.ux) * len(vd.nodes))]
    out["distinct (x, t_x, T)"] = [float(len(np.unique(np.c_[x, tx, T], axis=0)))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    ap.add_argument("--customers", type=int, default=1_000_000, help="customers of the timing run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=10, help="copies of the warehouse's subscribers timed")
    args = ap.parse_args()
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists() or not (paths.truth / "customers.csv").exists():
        raise SystemExit(f"no warehouse or truth under {paths.data_dir}: run `make run` first")
    meta = json.loads((paths.state / "meta.json").read_text())
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        fit = con.execute("SELECT * FROM intermediate.int_clv_model_fit").df()
        pred = con.execute("SELECT * FROM intermediate.int_clv_predictions").df()
        whole = con.execute(
            "SELECT customer_id, active_subscriptions, predicted_clv_12m_usd, predicted_remaining_clv_usd, "
            "value_12m_p10_usd, value_12m_p50_usd, value_12m_p90_usd FROM intermediate.int_revenue_risk"
        ).df()
        totals = con.execute("SELECT * FROM marts.mart_value_intervals").df()
        tiers = con.execute(
            "SELECT customer_id, value_tier, lifecycle_stage FROM marts.mart_customer_segments"
        ).df()
        business = pd.Timestamp(fit.business_date.iloc[0]).date()
        whole_time = whole_value_timing(con, business, fit, pred, args.copies, args.repeats)
    finally:
        con.close()
    if business.isoformat() != meta["end"]:
        raise SystemExit(f"the models are as of {business}, the truth's holdout starts after {meta['end']}")
    truth = pd.read_csv(paths.truth / "customers.csv")
    df = pred.merge(truth, on="customer_id", validate="one_to_one").merge(tiers, on="customer_id")
    bought = (df["p_alive"].notna()) & (df["predicted_remaining_clv_usd"] > 0)
    d = df[bought]
    actual = d["future_revenue_365d"].to_numpy(dtype=float)
    p10, p50, p90 = (d[f"clv_12m_{k}_usd"].to_numpy(dtype=float) for k in ("p10", "p50", "p90"))
    buy365 = d["p_purchase_365d"].to_numpy(dtype=float)
    inside = (actual >= p10 - 1e-9) & (actual <= p90 + 1e-9)
    implied = implied_inside(p10, p90, buy365)
    x = d["frequency"].to_numpy()

    lines = [
        "## Uncertainty: intervals against the ground truth (issue 18)",
        "",
        f"Machine: {machine()}. Command: `python bench/bench_uncertainty.py --data-dir DIR` after `clv run` "
        f"built DIR. Warehouse: {len(df):,} customers scored on business date {business} (seed "
        f"{meta['seed']}, chaos {meta['chaos']}), compared with `truth/customers.csv`: what each customer "
        "spent in the 365 days after (order revenue net of refunds: the value the intervals describe).",
        "",
        "### Parameters",
        "",
        "Standard errors from the analytic Hessian of the exact log-likelihood at the maximum "
        "(log-parameters, delta method), as stored in `int_clv_model_fit`:",
        "",
        "| parameter | estimate | standard error | 95% interval | generator |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    f = fit.iloc[0]
    for prefix, names, gen in (
        ("bgnbd", btyd.BGNBD.names, GENERATOR_BG),
        ("gg", btyd.GammaGamma.names, GENERATOR_GG),
    ):
        for n in names:
            c = f"{prefix}_{n}"
            lines.append(
                f"| {n} | {f[c]:.4f} | {f[c + '_se']:.4f} | {f[c + '_lower_95']:.4f} .. {f[c + '_upper_95']:.4f} | {gen[n]:g} |"
            )
    lines += [
        "",
        "The intervals describe the estimation error of the fit on this data; where the generator's value "
        "lies outside, the gap is the model's misfit to the daily data (the same-day convention, see "
        '"Parameter recovery" above), not chance.',
        "",
        "### Each customer's next 12 months: the 80% interval",
        "",
        f"{len(d):,} customers with a purchase (the {int((~bought).sum()):,} who never bought have no "
        "prediction). `clv_12m_p10_usd` .. `clv_12m_p90_usd` (BG/NBD's P(alive), purchases, spend per "
        "purchase and parameter uncertainty). A customer spends nothing in the year with probability "
        "1 - `p_purchase_365d`; when that is over 10% the P10 is 0 and the interval [0, P90] holds 90% by "
        "construction, so the share the model implies is shown next to the share observed:",
        "",
        "| calibration frequency | customers | inside [P10, P90] | implied by the model | below P10 | above P90 | above P90, implied | actual <= P50 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    above_implied = np.where(p90 > 0, 0.10, buy365)

    def row(label: str, sel: np.ndarray) -> str:
        return (
            f"| {label} | {int(sel.sum()):,} | {inside[sel].mean():.1%} | {implied[sel].mean():.1%} | "
            f"{(actual[sel] < p10[sel] - 1e-9).mean():.1%} | {(actual[sel] > p90[sel] + 1e-9).mean():.1%} | "
            f"{above_implied[sel].mean():.1%} | {(actual[sel] <= p50[sel] + 1e-9).mean():.1%} |"
        )

    for lo, hi, label in BUCKETS:
        sel = (x >= lo) & (x <= hi)
        if sel.any():
            lines.append(row(label, sel))
    lines.append(row("**all**", np.ones(len(d), dtype=bool)))
    pos = p10 > 0
    lines += [
        "",
        f"Customers whose P10 is above 0 (a purchase in the year at least 90% likely): {int(pos.sum()):,}; "
        f"inside their interval {inside[pos].mean():.1%} (the model: 80%)."
        if pos.any()
        else "",
        "",
        "### P(at least one purchase)",
        "",
        "| prediction | customers | mean predicted | observed | Brier score | Brier score of the observed rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for days in (90, 365):
        p = d[f"p_purchase_{days}d"].to_numpy(dtype=float)
        y = (
            (d[f"future_purchase_days_{days}d"].to_numpy() > 0).astype(float)
            if f"future_purchase_days_{days}d" in d
            else None
        )
        if y is None:
            continue
        lines.append(
            f"| `p_purchase_{days}d` | {len(p):,} | {p.mean():.3f} | {y.mean():.3f} | **{brier(p, y):.4f}** | "
            f"{brier(np.full(len(y), y.mean()), y):.4f} |"
        )
    lines += whole_value_lines(whole.merge(truth, on="customer_id", validate="one_to_one"))
    # totals
    act_all = df.set_index("customer_id")["future_revenue_365d"]
    lines += [
        "",
        "### Totals: `marts.mart_value_intervals`",
        "",
        "The total's interval is not the sum of the customers' intervals (that would be "
        f"${p10.sum():,.0f} .. ${p90.sum():,.0f} here): given the parameters, customers are independent "
        "and their good and bad years offset; what does not average out is the parameters' "
        "uncertainty, shared by all. 12-month value with the churn model's P(active) "
        "(`predicted_clv_12m_usd`), against the truth's net order revenue of the next 365 days:",
        "",
        "| group | customers | expected | P10 | P50 | P90 | actual | inside |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    act_whole = df.set_index("customer_id")["future_total_revenue_365d"]

    def total_rows(measure: str, actual: pd.Series) -> list[str]:
        vt = totals[totals.measure == measure]
        out = []
        for _, t in vt[vt.group_kind.isin(["all", "value_tier", "lifecycle_stage"])].iterrows():
            if t.group_kind == "all":
                members = df["customer_id"]
            else:
                members = df.loc[df[t.group_kind] == t.group_value, "customer_id"]
            actual_total = float(actual.loc[members].sum())
            ok = t.p10_usd <= actual_total <= t.p90_usd
            out.append(
                f"| {t.group_kind}: {t.group_value} | {int(t.customers):,} | ${t.expected_usd:,.0f} | ${t.p10_usd:,.0f} | "
                f"${t.p50_usd:,.0f} | ${t.p90_usd:,.0f} | ${actual_total:,.0f} | {'yes' if ok else 'no'} |"
            )
        return out

    lines += total_rows("value_12m", act_all)
    if (totals.measure == "clv_12m").any():
        lines += [
            "",
            "The whole 12-month value (`clv_12m`: orders as above plus the subscriptions' expected "
            "charges, their variance from the renewal model added to every parameter draw), against the "
            "truth's net order revenue + subscription charges of the next 365 days:",
            "",
            "| group | customers | expected | P10 | P50 | P90 | actual | inside |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *total_rows("clv_12m", act_whole),
        ]
    risk = totals[(totals.measure == "revenue_at_risk") & (totals.group_kind == "all")].iloc[0]
    lines += [
        "",
        f"Total revenue at risk (reachable customers leaving within 90 days, value of their next 12 months): "
        f"expected ${risk.expected_usd:,.0f}, 80% interval ${risk.p10_usd:,.0f} .. ${risk.p90_usd:,.0f} "
        "(not observable in the truth: it is the value those customers would have brought had they stayed).",
    ]
    load = os.getloadavg()[0]
    t = timing(args.customers, args.repeats)
    cells, distinct = int(t.pop("cells")[0]), int(t.pop("distinct (x, t_x, T)")[0])
    total = [sum(v) for v in zip(*t.values())]
    lines += [
        "",
        "### Time",
        "",
        f"{args.customers:,} customers simulated from the generator's process (T up to 3 years), median of "
        f"{args.repeats} runs; 1-minute load average {load:.1f} on 2 cores (shared) when they started. "
        f"The tables hold {cells:,} (frequency, T node) cells for {distinct:,} distinct (x, t_x, T):",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {median(v):.2f} |" for k, v in t.items()],
        f"| **all interval columns** | **{median(total):.2f}** |",
        "",
        f"The whole value's interval (orders + running subscriptions, `int_subscription_value`'s extra "
        f"step) on this warehouse's subscriptions and predictions, every customer copied {args.copies} "
        f"times under new ids ({len(df) * args.copies:,} customers, "
        f"{int(whole_time['subscribers'][0]):,} with a running subscription), median of {args.repeats}:",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        f"| subscription draws (`renewal.value_samples`, 200 per customer) | {median(whole_time['subscription draws']):.2f} |",
        f"| order part at the same levels, paired and added (`scoring.value_quantiles_with_subscriptions`) | {median(whole_time['whole-value quantiles']):.2f} |",
    ]
    write_section("uncertainty", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
