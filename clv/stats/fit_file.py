"""`clv fit`: BG/NBD and/or Pareto/NBD, and Gamma-Gamma, on any transaction log (bring your own data).

The CSV is read and summarised by DuckDB (one row per customer reaches Python); dates may be ISO
(`2024-03-01`, optionally with a time) or `YYYYMMDD`. With a holdout end, the customers of the
calibration period are followed into the holdout and their predicted repeat purchases and revenue
are compared with what they did: totals, per customer (MAE, rank correlation, normalized Gini),
by calibration frequency, by decile of predicted value, and the calibration of P(alive) and
P(a purchase). With both purchase models, a comparison table. `write_output` writes one row per
customer (CSV or Parquet) with every prediction and the value's 80% interval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from clv import sql_text
from clv.errors import UserError
from clv.stats import btyd, purchase_models, uncertainty


class FitInputError(UserError):
    """Something wrong with the file or the arguments; the message says what and where."""


def parse_date(value: str) -> dt.date:
    """ISO (`2024-03-01`) or compact (`20240301`)."""
    v = value.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(v, fmt).date()
        except ValueError:
            pass
    raise FitInputError(f"invalid date {value!r}: use YYYY-MM-DD or YYYYMMDD")


_DATE_SQL = (
    "COALESCE(TRY_STRPTIME(trim({c}), '%Y-%m-%d'), TRY_STRPTIME(trim({c}), '%Y%m%d'), "
    "TRY_STRPTIME(trim({c}), '%Y-%m-%d %H:%M:%S'), TRY_STRPTIME(trim({c}), '%Y-%m-%dT%H:%M:%S'), "
    "TRY_STRPTIME(trim({c}), '%Y%m%d %H:%M:%S'))"
)


def _file(path: Path) -> str:
    """The file name as a literal, not a bound parameter: with DuckDB 1.5 the same read_csv took
    0.3-0.6 s more per command when its file was a parameter (measured at 100,000 customers)."""
    return sql_text.literal(sql_text.exact_file(path))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load(
    con: duckdb.DuckDBPyConnection, path: Path, customer_col: str, date_col: str, amount_col: str
) -> int:
    """Read the CSV into table `tx(customer_id, purchase_date, amount)`; every bad value is
    reported with its line number (the header is line 1). Returns the number of transactions.

    A clean file with ISO dates takes one typed pass (`_load_clean`); anything else (another date
    format, a bad value, a malformed file) takes the checked pass, which parses every value as text
    and numbers the lines to say where the problem is."""
    if not path.is_file():
        raise FitInputError(f"no such file: {path}")
    n = _load_clean(con, path, customer_col, date_col, amount_col)
    if n is not None:
        return n
    try:
        con.execute(
            "CREATE TEMP TABLE raw AS SELECT row_number() OVER () + 1 AS line, * "
            f"FROM read_csv({_file(path)}, header = true, all_varchar = true)"
        )
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise FitInputError(f"cannot read {path} as CSV with a header row: {first}") from None
    columns = [r[0] for r in con.execute("DESCRIBE raw").fetchall()][1:]
    for flag, col in (
        ("--customer-col", customer_col),
        ("--date-col", date_col),
        ("--amount-col", amount_col),
    ):
        if col not in columns:
            raise FitInputError(
                f"{path.name} has no column {col!r} ({flag}); its columns are: {', '.join(columns)}"
            )
    c, d, a = _quote(customer_col), _quote(date_col), _quote(amount_col)
    con.execute(f"""
        CREATE TEMP TABLE tx AS
        SELECT line, NULLIF(trim({c}), '') AS customer_id, {d} AS date_text,
               CAST({_DATE_SQL.format(c=d)} AS DATE) AS purchase_date,
               {a} AS amount_text, TRY_CAST(trim({a}) AS DOUBLE) AS amount
        FROM raw""")
    n = con.execute("SELECT count(*) FROM tx").fetchone()[0]
    if n == 0:
        raise FitInputError(f"{path.name} has no transactions")
    problems = [
        ("customer_id IS NULL", lambda r: f"line {r[0]}: empty customer id in column {customer_col!r}"),
        (
            "purchase_date IS NULL",
            lambda r: (
                f"line {r[0]}: unparseable date {r[1]!r} in column {date_col!r} (use YYYY-MM-DD or YYYYMMDD)"
            ),
        ),
        (
            "amount IS NULL OR NOT isfinite(amount)",
            lambda r: f"line {r[0]}: amount {r[2]!r} in column {amount_col!r} is not a number",
        ),
        (
            "amount < 0",
            lambda r: (
                f"line {r[0]}: negative amount {r[2]} in column {amount_col!r}; the spend model needs "
                "transaction values of 0 or more (drop refunds or net them into their orders)"
            ),
        ),
    ]
    for where, message in problems:
        row = con.execute(
            f"SELECT line, date_text, amount_text, count(*) OVER () FROM tx WHERE {where} ORDER BY line LIMIT 1"
        ).fetchone()
        if row:
            more = f" (and {row[3] - 1:,} more)" if row[3] > 1 else ""
            raise FitInputError(message(row) + more)
    return n


def _load_clean(
    con: duckdb.DuckDBPyConnection, path: Path, customer_col: str, date_col: str, amount_col: str
) -> int | None:
    """The common case in one pass: DuckDB's CSV reader parses the dates (`%Y-%m-%d`, the first
    format the checked pass tries) and amounts itself, with no line numbers and no text copies kept
    for error messages. Half of the whole command's time at 1,000,000 customers went to that
    checked pass (two materialised tables, five date formats tried per row). None, and nothing
    left behind, when the reader fails or any value would be rejected: the checked pass then finds
    the same values the same way and says where they are."""
    if len({customer_col, date_col, amount_col}) < 3:
        return None
    c, d, a = _quote(customer_col), _quote(date_col), _quote(amount_col)
    types = "{" + f"{sql_text.literal(date_col)}: 'DATE', {sql_text.literal(amount_col)}: 'DOUBLE'" + "}"
    try:
        con.execute(
            f"CREATE TEMP TABLE tx AS SELECT NULLIF(trim({c}), '') AS customer_id, {d} AS purchase_date, "
            f"{a} AS amount FROM read_csv({_file(path)}, header = true, all_varchar = true, "
            f"types = {types}, dateformat = '%Y-%m-%d')"
        )
    except duckdb.Error:
        return None
    n, bad = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE customer_id IS NULL OR purchase_date IS NULL "
        "OR amount IS NULL OR NOT isfinite(amount) OR amount < 0) FROM tx"
    ).fetchone()
    if n == 0 or bad:
        con.execute("DROP TABLE tx")
        return None
    return n


FREQUENCY_BINS = ((0, 0, "0"), (1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 9, "5-9"), (10, np.inf, "10+"))
OUTPUT_FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class FitResult:
    customers: int
    transactions: int
    calibration_end: dt.date
    time_unit: str
    models: dict  # purchase model key -> fitted model, in the order asked
    gg: btyd.GammaGamma
    holdout: dict | None  # purchase model key -> holdout metrics
    horizon_days: float = 365.0
    discount_rate: float = 0.0
    output: str | None = None
    # per-customer frames and series for --output and --plots (not serialised)
    summary: dict | None = field(default=None, compare=False, repr=False)  # column -> numpy array
    scores: dict = field(default_factory=dict, compare=False, repr=False)
    series: dict | None = field(default=None, compare=False, repr=False)

    @property
    def bg(self) -> btyd.BGNBD | None:
        return self.models.get("bgnbd")

    def comparison(self) -> list[dict] | None:
        """One row per purchase model: fit and holdout figures side by side (both models)."""
        if len(self.models) < 2:
            return None
        rows = []
        for key, m in self.models.items():
            row = {"model": key, "log_likelihood": m.log_likelihood, "parameters": len(m.names)}
            row |= purchase_models.information_criteria(m, self.customers)
            h = (self.holdout or {}).get(key)
            if h:
                row |= {k: h[k] for k in ("purchases_error", "revenue_error", "purchases_mae",
                                          "purchases_rank_correlation", "revenue_rank_correlation",
                                          "normalized_gini", "p_purchase_brier")}  # fmt: skip
                row["by_frequency"] = {
                    b["frequency"]: b["predicted_purchases"] / b["actual_purchases"] - 1
                    if b["actual_purchases"] else None
                    for b in h["by_frequency"]
                }  # fmt: skip
            rows.append(row)
        return rows

    def as_dict(self) -> dict:
        gg = self.gg
        out = {
            "customers": self.customers,
            "transactions": self.transactions,
            "calibration_end": self.calibration_end.isoformat(),
            "time_unit": self.time_unit,
            "horizon_days": self.horizon_days,
            "discount_rate": self.discount_rate,
            "models": list(self.models),
        }
        for key, m in self.models.items():
            out[key] = {**m.params(), "log_likelihood": m.log_likelihood, "intervals": _intervals(m)}
            out[key] |= purchase_models.information_criteria(m, self.customers)
        out["gamma_gamma"] = {
            **gg.params(),
            "log_likelihood": gg.log_likelihood,
            "customers": gg.customers,
            "mean_spend": gg.mean_spend,
            "intervals": _intervals(gg),
        }
        out["convergence"] = {
            name: {"iterations": m.report.iterations, "gradient_norm": m.report.gradient_norm}
            for name, m in (*self.models.items(), ("gamma_gamma", gg))
        }
        first = next(iter(self.models))
        out["holdout"] = self.holdout[first] if self.holdout else None
        out["holdout_by_model"] = self.holdout
        out["comparison"] = self.comparison()
        out["output"] = self.output
        return out

    def lines(self) -> list[str]:
        gg = self.gg
        out = [
            f"{self.customers:,} customers, {self.transactions:,} transactions up to {self.calibration_end} "
            f"(time unit: {self.time_unit})",
        ]
        for key, m in self.models.items():
            label = purchase_models.get(key).label + ":"
            values = ", ".join(f"{n} = {v:.6g}" for n, v in m.params().items())
            out.append(
                f"{label:<12} {values}; log-likelihood {m.log_likelihood:,.4f} ({m.report.iterations} "
                f"iterations, gradient {m.report.gradient_norm:.1e})"
            )
        out += [
            f"Gamma-Gamma: p = {gg.p:.6g}, q = {gg.q:.6g}, v = {gg.v:.6g}; log-likelihood "
            f"{gg.log_likelihood:,.4f} over {gg.customers:,} repeat customers; mean spend per purchase "
            f"{gg.mean_spend:,.2f}",
            "Parameter             estimate   std. error  95% interval (standard error from the Hessian)",
        ]
        for key, m in (*self.models.items(), ("gamma_gamma", gg)):
            label = "Gamma-Gamma" if key == "gamma_gamma" else purchase_models.get(key).label
            out += [f"  {label:<11} {line}" for line in interval_lines(m)]
        for key, h in (self.holdout or {}).items():
            out += _holdout_lines(purchase_models.get(key).label, h)
        table = self.comparison()
        if table:
            out += _comparison_lines(table, self.holdout is not None)
        if self.output:
            out.append(f"wrote one row per customer to {self.output}")
        return out


def _holdout_lines(label: str, h: dict) -> list[str]:
    out = [
        f"Holdout {h['start']} .. {h['end']} ({h['days']} days), {label}, the {h['customers']:,} calibration customers:",
        f"  repeat purchases: predicted {h['predicted_purchases']:,.1f}, actual {h['actual_purchases']:,} "
        f"({h['purchases_error']:+.1%}); mean absolute error per customer {h['purchases_mae']:.3f}",
        f"  revenue:          predicted {h['predicted_revenue']:,.2f}, actual {h['actual_revenue']:,.2f} "
        f"({h['revenue_error']:+.1%})",
        f"  per customer: rank correlation of purchases {h['purchases_rank_correlation']:.3f}, of revenue "
        f"{h['revenue_rank_correlation']:.3f}; normalized Gini of revenue {h['normalized_gini']:.3f}",
        "  by calibration frequency:",
        "    frequency  customers  predicted purchases  actual",
    ]
    for b in h["by_frequency"]:
        out.append(
            f"    {b['frequency']:>9}  {b['customers']:>9,}  {b['predicted_purchases']:>19,.1f}  "
            f"{b['actual_purchases']:>6,}"
        )
    out.append("  by decile of predicted revenue (10 = highest):")
    out.append("    decile  customers  predicted revenue  actual revenue")
    for d in h["deciles"]:
        out.append(
            f"    {d['decile']:>6}  {d['customers']:>9,}  {d['predicted_revenue']:>17,.0f}  {d['actual_revenue']:>14,.0f}"
        )
    out.append(f"  P(a purchase in the holdout), by decile of it (Brier score {h['p_purchase_brier']:.4f}):")
    out.append("    decile  customers  predicted  observed")
    for c in h["p_purchase_calibration"]:
        out.append(f"    {c['bin']:>6}  {c['customers']:>9,}  {c['predicted']:>9.3f}  {c['observed']:>8.3f}")
    out.append("  by decile of P(alive) (a customer who bought in the holdout was alive):")
    out.append("    decile  customers  P(alive)  P(a purchase)  bought")
    for c in h["p_alive_calibration"]:
        out.append(
            f"    {c['bin']:>6}  {c['customers']:>9,}  {c['p_alive']:>8.3f}  {c['p_purchase']:>13.3f}  "
            f"{c['observed_purchase']:>6.3f}"
        )
    return out


def _comparison_lines(table: list[dict], holdout: bool) -> list[str]:
    labels = [purchase_models.get(r["model"]).label for r in table]
    rows = [
        ("log-likelihood", "log_likelihood", "{:,.2f}"),
        ("AIC", "aic", "{:,.2f}"),
        ("BIC", "bic", "{:,.2f}"),
    ]
    if holdout:
        rows += [
            ("holdout purchases, error", "purchases_error", "{:+.2%}"),
            ("holdout revenue, error", "revenue_error", "{:+.2%}"),
            ("purchases MAE per customer", "purchases_mae", "{:.4f}"),
            ("rank correlation, purchases", "purchases_rank_correlation", "{:.4f}"),
            ("rank correlation, revenue", "revenue_rank_correlation", "{:.4f}"),
            ("normalized Gini, revenue", "normalized_gini", "{:.4f}"),
            ("Brier, P(a purchase)", "p_purchase_brier", "{:.4f}"),
        ]
    out = [f"{'Comparison':<32}" + "".join(f"{lab:>16}" for lab in labels)]
    for name, key, fmt in rows:
        out.append(f"  {name:<30}" + "".join(f"{fmt.format(r[key]):>16}" for r in table))
    if holdout:
        for b in table[0]["by_frequency"]:
            cells = [r["by_frequency"].get(b) for r in table]
            out.append(
                f"  {'purchases error, frequency ' + b:<30}"
                + "".join(f"{'n/a' if c is None else format(c, '+.2%'):>16}" for c in cells)
            )
    best = min(table, key=lambda r: r["bic"])
    out.append(f"  lower BIC: {purchase_models.get(best['model']).label}")
    return out


def _intervals(model) -> dict:
    """{parameter: {se, lower_95, upper_95}}; null standard errors when the data do not identify
    the parameter (e.g. a capped dropout fit)."""
    return {
        pi.name: {
            "se": _finite(pi.standard_error),
            "lower_95": _finite(pi.lower_95),
            "upper_95": _finite(pi.upper_95),
        }
        for pi in uncertainty.parameter_intervals(model)
    }


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def interval_lines(model) -> list[str]:
    """One line per parameter: estimate, standard error, 95% interval."""
    out = []
    for pi in uncertainty.parameter_intervals(model):
        if np.isfinite(pi.standard_error):
            out.append(
                f"{pi.name:<6} {pi.estimate:>11.6g}  {pi.standard_error:>11.4g}  "
                f"[{pi.lower_95:.6g}, {pi.upper_95:.6g}]"
            )
        else:
            out.append(f"{pi.name:<6} {pi.estimate:>11.6g}  {'n/a':>11}  (not identified by the data)")
    return out


def fit_file(
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    time_unit: str = "day",
    models: tuple[str, ...] = ("bgnbd",),
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    output: Path | None = None,
    series: bool = False,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Read, summarise, fit, score (and compare with the holdout). `progress` is called with a
    line per stage; `series` keeps what the plots need."""
    say = progress or (lambda line: None)
    if time_unit not in btyd.TIME_UNITS:
        raise FitInputError(f"unknown time unit {time_unit!r}: use day or week")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise FitInputError(
            f"the holdout end {holdout_end} must come after the calibration end {calibration_end}"
        )
    if not (np.isfinite(horizon_days) and horizon_days > 0):
        raise FitInputError(f"--horizon-days must be a positive number of days, got {horizon_days:g}")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise FitInputError(
            f"--discount-rate must be an annual rate of 0 or more (0.1 = 10% a year), got {discount_rate:g}"
        )
    if output is not None:
        check_output(Path(output))
    keys = [purchase_models.get(k).key for k in models]
    con = duckdb.connect()
    try:
        n = load(con, Path(path), customer_col, date_col, amount_col)
        say(f"read {n:,} transactions from {Path(path).name}")
        first = con.execute("SELECT min(purchase_date) FROM tx").fetchone()[0]
        if calibration_end < first:
            raise FitInputError(
                f"the calibration end {calibration_end} is before the first transaction ({first}): nothing to fit"
            )
        # the ids only when a row per customer leaves the command (half of the fetch otherwise)
        columns = ["frequency", "recency", "T", "monetary_value"]
        if output is not None or holdout_end is not None or series:
            columns.insert(0, "customer_id")
        sql = btyd.summary_sql("tx", calibration_end, time_unit, "customer_id", "purchase_date", "amount")
        summary = _columns(con.execute(f"SELECT {', '.join(columns)} FROM ({sql}) ORDER BY customer_id"))
        n_cal = con.execute(
            f"SELECT count(*) FROM tx WHERE purchase_date <= DATE '{calibration_end}'"
        ).fetchone()[0]
        customers = len(summary["frequency"])
        say(f"summarised {customers:,} customers up to {calibration_end}")
        x, tx, T, m = _xtTm(summary)
        fitted = {}
        for key in keys:
            pm = purchase_models.get(key)
            fitted[key] = pm.fit(x, tx, T)
            say(f"fitted {pm.label}")
        gg = btyd.fit_gamma_gamma(x, m)
        say("fitted Gamma-Gamma")
        holdout = None
        actual = None
        if holdout_end is not None:
            actual = _actual(con, summary, calibration_end, holdout_end)
            t = (holdout_end - calibration_end).days / btyd.TIME_UNITS[time_unit]
            holdout = {
                key: _holdout(
                    purchase_models.get(key), mod, gg, summary, actual, calibration_end, holdout_end, t
                )
                for key, mod in fitted.items()
            }
            say(f"compared with the holdout up to {holdout_end}")
        scores = {}
        if output is not None or series:
            scores = {
                key: customer_scores(mod, gg, summary, time_unit, horizon_days, discount_rate)
                for key, mod in fitted.items()
            }
            say(f"scored {customers:,} customers")
        daily = _daily(con, calibration_end, holdout_end) if series else None
    finally:
        con.close()
    result = FitResult(
        customers, n_cal, calibration_end, time_unit, fitted, gg, holdout, horizon_days, discount_rate,
        str(output) if output is not None else None, summary, scores,
        {"daily": daily, "actual": actual} if series else None,
    )  # fmt: skip
    if output is not None:
        write_output(result, Path(output))
        say(f"wrote {output}")
    return result


def _columns(relation) -> dict[str, np.ndarray]:
    """A query's result as numpy columns, NULL as NaN: the command's plain path never needs pandas
    (importing it took 0.3-0.5 s of every command)."""
    return {
        k: np.ma.filled(v.astype(float), np.nan) if np.ma.isMaskedArray(v) and v.dtype.kind in "fiu" else v
        for k, v in relation.fetchnumpy().items()
    }


def _xtTm(summary) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """frequency, recency, T and monetary value as float arrays."""
    return tuple(np.asarray(summary[c], dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))


def _actual(con, summary, cal_end: dt.date, end: dt.date):
    """Each calibration customer's repeat purchase days and revenue in the holdout."""
    import pandas as pd

    customers = pd.DataFrame({"customer_id": summary["customer_id"]})
    con.register("cal_customers", customers)
    actual = con.execute(f"""
        SELECT c.customer_id, count(DISTINCT h.purchase_date) AS purchase_days, coalesce(sum(h.amount), 0) AS revenue
        FROM cal_customers c
        LEFT JOIN tx h ON h.customer_id = c.customer_id
          AND h.purchase_date > DATE '{cal_end}' AND h.purchase_date <= DATE '{end}'
        GROUP BY c.customer_id""").df()
    return customers.merge(actual, on="customer_id", how="left")


def _daily(con, cal_end: dt.date, end: dt.date | None):
    """Per day, the repeat purchase days of the calibration customers (their first purchase day
    excluded) and how many of them made their first purchase that day: the tracking plots."""
    last = end or cal_end
    return con.execute(f"""
        WITH days AS (SELECT DISTINCT customer_id, purchase_date FROM tx),
        firsts AS (SELECT customer_id, min(purchase_date) AS first_date FROM days GROUP BY customer_id
                   HAVING min(purchase_date) <= DATE '{cal_end}'),
        repeats AS (SELECT d.purchase_date AS day, count(*) AS repeat_purchases
                    FROM days d JOIN firsts f USING (customer_id)
                    WHERE d.purchase_date > f.first_date AND d.purchase_date <= DATE '{last}' GROUP BY 1),
        new AS (SELECT first_date AS day, count(*) AS new_customers FROM firsts GROUP BY 1)
        SELECT day, coalesce(repeat_purchases, 0) AS repeat_purchases, coalesce(new_customers, 0) AS new_customers
        FROM repeats FULL JOIN new USING (day)
        ORDER BY 1""").df()


def _holdout(pm, model, gg, summary, actual, cal_end: dt.date, end: dt.date, t: float) -> dict:
    """Predicted vs actual repeat purchase days and revenue of the calibration customers."""
    x, tx, T, m = _xtTm(summary)
    purchases = pm.expected_purchases(model, t, x, tx, T)
    spend = btyd.expected_spend(gg, x, m)
    alive = pm.p_alive(model, x, tx, T)
    buy = pm.p_purchase(model, t, x, tx, T)
    act_p = actual["purchase_days"].to_numpy(dtype=float)
    act_r = actual["revenue"].to_numpy(dtype=float)
    bought = (act_p > 0).astype(float)
    pred_r = purchases * spend
    by = []
    for lo, hi, label in FREQUENCY_BINS:
        sel = (x >= lo) & (x <= hi)
        if sel.any():
            by.append(
                {
                    "frequency": label,
                    "customers": int(sel.sum()),
                    "predicted_purchases": float(purchases[sel].sum()),
                    "actual_purchases": int(act_p[sel].sum()),
                }
            )
    deciles = [
        {
            "decile": i + 1,
            "customers": len(rows),
            "predicted_revenue": float(pred_r[rows].sum()),
            "actual_revenue": float(act_r[rows].sum()),
            "predicted_purchases": float(purchases[rows].sum()),
            "actual_purchases": int(act_p[rows].sum()),
        }
        for i, rows in enumerate(_equal_bins(pred_r, 10))
    ]
    p_cal = [
        {"bin": i + 1, "customers": len(rows), "predicted": float(buy[rows].mean()),
         "observed": float(bought[rows].mean())}
        for i, rows in enumerate(_equal_bins(buy, 10))
    ]  # fmt: skip
    a_cal = [
        {
            "bin": i + 1,
            "customers": len(rows),
            "p_alive": float(alive[rows].mean()),
            "p_purchase": float(buy[rows].mean()),
            "observed_purchase": float(bought[rows].mean()),
        }
        for i, rows in enumerate(_equal_bins(alive, 10))
    ]
    return {
        "model": pm.key,
        "start": (cal_end + dt.timedelta(days=1)).isoformat(),
        "end": end.isoformat(),
        "days": (end - cal_end).days,
        "customers": len(x),
        "predicted_purchases": float(purchases.sum()),
        "actual_purchases": int(act_p.sum()),
        "purchases_error": float(purchases.sum() / act_p.sum() - 1) if act_p.sum() else float("nan"),
        "purchases_mae": float(np.mean(np.abs(purchases - act_p))),
        "predicted_revenue": float(pred_r.sum()),
        "actual_revenue": float(act_r.sum()),
        "revenue_error": float(pred_r.sum() / act_r.sum() - 1) if act_r.sum() else float("nan"),
        "purchases_rank_correlation": _spearman(purchases, act_p),
        "revenue_rank_correlation": _spearman(pred_r, act_r),
        "normalized_gini": normalized_gini(act_r, pred_r),
        "p_purchase_brier": float(np.mean((buy - bought) ** 2)),
        "by_frequency": by,
        "deciles": deciles,
        "p_purchase_calibration": p_cal,
        "p_alive_calibration": a_cal,
    }


def _equal_bins(score: np.ndarray, bins: int) -> list[np.ndarray]:
    """Row indices in `bins` groups of (nearly) equal size by ascending score (ties by row)."""
    order = np.argsort(score, kind="stable")
    return [b for b in np.array_split(order, min(bins, len(order))) if len(b)]


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `actual` ordered by `predicted`, over the Gini of `actual` ordered by itself: 1 when
    the prediction ranks customers as well as the outcome itself, about 0 for a random order."""

    def gini(a, p):
        order = np.lexsort((np.arange(len(p)), -p))
        cum = np.cumsum(a[order]) / a.sum()
        return float(np.sum(cum - np.arange(1, len(a) + 1) / len(a)) / len(a))

    actual = np.asarray(actual, dtype=float)
    if actual.sum() <= 0:
        return float("nan")
    best = gini(actual, actual)
    return gini(actual, np.asarray(predicted, dtype=float)) / best if best > 0 else float("nan")


def customer_scores(model, gg, summary, time_unit: str, horizon_days: float, discount_rate: float) -> dict:
    """Every per-customer prediction of one purchase model (arrays aligned with `summary`)."""
    pm = purchase_models.of(model)
    unit = btyd.TIME_UNITS[time_unit]
    x, tx, T, m = _xtTm(summary)
    s = pm.score(
        model, gg, x, tx, T, m, time_unit=time_unit, horizon_days=horizon_days, discount_rate=discount_rate
    )
    vd = pm.value_distribution(model, gg, horizon_days / unit, x, T, m)
    bands = uncertainty.customer_quantiles(vd, x, T, m, s.p_alive, s.remaining_clv)
    return {
        "p_alive": s.p_alive,
        "p_purchase_90d": pm.p_purchase(model, 90 / unit, x, tx, T),
        "p_purchase_365d": pm.p_purchase(model, 365 / unit, x, tx, T),
        "expected_purchases": pm.expected_purchases(model, horizon_days / unit, x, tx, T),
        "expected_spend": s.expected_spend,
        "remaining_value": s.remaining_clv,
        "horizon_value": s.predicted_clv,
        "value_p10": bands[:, 0],
        "value_p50": bands[:, 1],
        "value_p90": bands[:, 2],
    }


def check_output(path: Path) -> None:
    """A CSV or Parquet file in an existing folder."""
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise FitInputError(f"--output {path}: use a file name ending in .csv or .parquet")
    if path.is_dir():
        raise FitInputError(f"--output {path} is a folder: give a file name ending in .csv or .parquet")
    if not path.parent.is_dir():
        raise FitInputError(f"--output {path}: the folder {path.parent} does not exist")


def output_frame(result: FitResult):
    """One row per customer: the summary and, per purchase model, every prediction (columns
    suffixed with the model's key when both models were fitted)."""
    import pandas as pd

    s = result.summary
    frame = pd.DataFrame(
        {
            "customer_id": s["customer_id"],
            "frequency": s["frequency"].astype(int),
            "recency": np.asarray(s["recency"], dtype=float),
            "T": np.asarray(s["T"], dtype=float),
            "monetary_value": np.asarray(s["monetary_value"], dtype=float),
        }
    )
    suffix = len(result.scores) > 1
    for key, cols in result.scores.items():
        for name, values in cols.items():
            frame[f"{name}_{key}" if suffix else name] = values
    return frame


def write_output(result: FitResult, path: Path) -> None:
    """Written beside the target and renamed into place: a failed write leaves no partial file."""
    frame = output_frame(result)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    import pandas as pd

    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
