"""`clv fit`: BG/NBD and Gamma-Gamma on any transaction log (bring your own data).

The CSV is read and summarised by DuckDB (one row per customer reaches Python); dates may be ISO
(`2024-03-01`, optionally with a time) or `YYYYMMDD`. With a holdout end, the customers of the
calibration period are followed into the holdout and their predicted repeat purchases and revenue
are compared with what they did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from clv import sql_text
from clv.errors import UserError
from clv.stats import btyd, uncertainty


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load(
    con: duckdb.DuckDBPyConnection, path: Path, customer_col: str, date_col: str, amount_col: str
) -> int:
    """Read the CSV into table `tx(line, customer_id, purchase_date, amount)`; every bad value is
    reported with its line number (the header is line 1). Returns the number of transactions."""
    if not path.is_file():
        raise FitInputError(f"no such file: {path}")
    try:
        con.execute(
            "CREATE TEMP TABLE raw AS SELECT row_number() OVER () + 1 AS line, * "
            "FROM read_csv(?, header = true, all_varchar = true)",
            [sql_text.exact_file(path)],
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


@dataclass(frozen=True)
class FitResult:
    customers: int
    transactions: int
    calibration_end: dt.date
    time_unit: str
    bg: btyd.BGNBD
    gg: btyd.GammaGamma
    holdout: dict | None

    def as_dict(self) -> dict:
        bg, gg = self.bg, self.gg
        intervals = {name: _intervals(m) for name, m in (("bgnbd", bg), ("gamma_gamma", gg))}
        return {
            "customers": self.customers,
            "transactions": self.transactions,
            "calibration_end": self.calibration_end.isoformat(),
            "time_unit": self.time_unit,
            "bgnbd": {
                "r": bg.r,
                "alpha": bg.alpha,
                "a": bg.a,
                "b": bg.b,
                "log_likelihood": bg.log_likelihood,
                "intervals": intervals["bgnbd"],
            },
            "gamma_gamma": {
                "p": gg.p,
                "q": gg.q,
                "v": gg.v,
                "log_likelihood": gg.log_likelihood,
                "customers": gg.customers,
                "mean_spend": gg.mean_spend,
                "intervals": intervals["gamma_gamma"],
            },
            "convergence": {
                name: {"iterations": m.report.iterations, "gradient_norm": m.report.gradient_norm}
                for name, m in (("bgnbd", bg), ("gamma_gamma", gg))
            },
            "holdout": self.holdout,
        }

    def lines(self) -> list[str]:
        bg, gg = self.bg, self.gg
        out = [
            f"{self.customers:,} customers, {self.transactions:,} transactions up to {self.calibration_end} "
            f"(time unit: {self.time_unit})",
            f"BG/NBD:      r = {bg.r:.6g}, alpha = {bg.alpha:.6g}, a = {bg.a:.6g}, b = {bg.b:.6g}; "
            f"log-likelihood {bg.log_likelihood:,.4f} ({bg.report.iterations} iterations, "
            f"gradient {bg.report.gradient_norm:.1e})",
            f"Gamma-Gamma: p = {gg.p:.6g}, q = {gg.q:.6g}, v = {gg.v:.6g}; log-likelihood "
            f"{gg.log_likelihood:,.4f} over {gg.customers:,} repeat customers; mean spend per purchase "
            f"{gg.mean_spend:,.2f}",
            "Parameter             estimate   std. error  95% interval (standard error from the Hessian)",
        ]
        for label, m in (("BG/NBD", bg), ("Gamma-Gamma", gg)):
            out += [f"  {label:<11} {line}" for line in interval_lines(m)]
        h = self.holdout
        if h:
            out += [
                f"Holdout {h['start']} .. {h['end']} ({h['days']} days), the {h['customers']:,} calibration customers:",
                f"  repeat purchases: predicted {h['predicted_purchases']:,.1f}, actual {h['actual_purchases']:,} "
                f"({h['purchases_error']:+.1%})",
                f"  revenue:          predicted {h['predicted_revenue']:,.2f}, actual {h['actual_revenue']:,.2f} "
                f"({h['revenue_error']:+.1%})",
                f"  per-customer rank correlation of revenue: {h['revenue_rank_correlation']:.3f}",
                "  by calibration frequency:  customers  predicted  actual",
            ]
            for b in h["by_frequency"]:
                out.append(
                    f"    {b['frequency']:>8}  {b['customers']:>16,}  {b['predicted_purchases']:>9,.1f}  "
                    f"{b['actual_purchases']:>6,}"
                )
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
) -> FitResult:
    if time_unit not in btyd.TIME_UNITS:
        raise FitInputError(f"unknown time unit {time_unit!r}: use day or week")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise FitInputError(
            f"the holdout end {holdout_end} must come after the calibration end {calibration_end}"
        )
    con = duckdb.connect()
    try:
        load(con, Path(path), customer_col, date_col, amount_col)
        first = con.execute("SELECT min(purchase_date) FROM tx").fetchone()[0]
        if calibration_end < first:
            raise FitInputError(
                f"the calibration end {calibration_end} is before the first transaction ({first}): nothing to fit"
            )
        summary = con.execute(
            btyd.summary_sql("tx", calibration_end, time_unit, "customer_id", "purchase_date", "amount")
        ).df()
        n_cal = con.execute(
            f"SELECT count(*) FROM tx WHERE purchase_date <= DATE '{calibration_end}'"
        ).fetchone()[0]
        x = summary["frequency"].to_numpy(dtype=float)
        bg = btyd.fit_bgnbd(x, summary["recency"], summary["T"])
        gg = btyd.fit_gamma_gamma(x, summary["monetary_value"].to_numpy(dtype=float))
        holdout = None
        if holdout_end is not None:
            holdout = _holdout(con, summary, bg, gg, calibration_end, holdout_end, time_unit)
    finally:
        con.close()
    return FitResult(len(summary), n_cal, calibration_end, time_unit, bg, gg, holdout)


def _holdout(con, summary, bg, gg, cal_end: dt.date, end: dt.date, time_unit: str) -> dict:
    """Predicted vs actual repeat purchase days and revenue of the calibration customers."""
    days = (end - cal_end).days
    t = days / btyd.TIME_UNITS[time_unit]
    x = summary["frequency"].to_numpy(dtype=float)
    purchases = btyd.expected_purchases(bg, t, x, summary["recency"], summary["T"])
    spend = btyd.expected_spend(gg, x, summary["monetary_value"].to_numpy(dtype=float))
    con.register("cal_customers", summary[["customer_id"]])
    actual = con.execute(f"""
        SELECT c.customer_id, count(DISTINCT h.purchase_date) AS purchase_days, coalesce(sum(h.amount), 0) AS revenue
        FROM cal_customers c
        LEFT JOIN tx h ON h.customer_id = c.customer_id
          AND h.purchase_date > DATE '{cal_end}' AND h.purchase_date <= DATE '{end}'
        GROUP BY c.customer_id""").df()
    actual = summary[["customer_id"]].merge(actual, on="customer_id", how="left")
    act_p = actual["purchase_days"].to_numpy(dtype=float)
    act_r = actual["revenue"].to_numpy(dtype=float)
    pred_r = purchases * spend
    by = []
    for lo, hi, label in (
        (0, 0, "0"),
        (1, 1, "1"),
        (2, 2, "2"),
        (3, 4, "3-4"),
        (5, 9, "5-9"),
        (10, np.inf, "10+"),
    ):
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
    return {
        "start": (cal_end + dt.timedelta(days=1)).isoformat(),
        "end": end.isoformat(),
        "days": days,
        "customers": len(summary),
        "predicted_purchases": float(purchases.sum()),
        "actual_purchases": int(act_p.sum()),
        "purchases_error": float(purchases.sum() / act_p.sum() - 1) if act_p.sum() else float("nan"),
        "predicted_revenue": float(pred_r.sum()),
        "actual_revenue": float(act_r.sum()),
        "revenue_error": float(pred_r.sum() / act_r.sum() - 1) if act_r.sum() else float("nan"),
        "revenue_rank_correlation": _spearman(pred_r, act_r),
        "by_frequency": by,
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    import pandas as pd

    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
