"""`clv fit` on small transaction CSVs: both date formats, the holdout report, and one-line errors
with exit code 2 for bad input."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from clv.cli import main

START = dt.date(2022, 1, 1)
TRUE = {"r": 0.75, "alpha": 25.0, "a": 0.8, "b": 5.0}


def transactions(n: int = 1500, seed: int = 1) -> list[tuple[str, dt.date, float]]:
    """A BG/NBD + Gamma-Gamma business: customers acquired over 2022, followed until end 2023."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    nu = rng.gamma(4, 1 / 60, n)
    rows = []
    for i in range(n):
        t = rng.uniform(0, 365)
        rows.append((f"C{i:05d}", START + dt.timedelta(days=int(t)), round(rng.gamma(4, 1 / nu[i]), 2)))
        while True:
            t += rng.exponential(1 / lam[i])
            if t >= 730:
                break
            rows.append((f"C{i:05d}", START + dt.timedelta(days=int(t)), round(rng.gamma(4, 1 / nu[i]), 2)))
            if rng.random() < p[i]:
                break
    return rows


@pytest.fixture(scope="module")
def tx():
    return transactions()


def write(path, rows, fmt: str = "%Y-%m-%d", header=("customer", "day", "value")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for c, d, a in rows:
            w.writerow([c, d.strftime(fmt) if isinstance(d, dt.date) else d, a])
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["fit", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


COLS = ("--customer-col", "customer", "--date-col", "day", "--amount-col", "value")


def test_fit_in_both_date_formats_gives_the_same_parameters(tmp_path, capsys, tx):
    iso = write(tmp_path / "iso.csv", tx)
    # a folder and file name with glob characters and a quote: read as exactly that file
    odd = tmp_path / "it's [q1]"
    odd.mkdir()
    compact = write(odd / "compact*?.csv", tx, "%Y%m%d")
    (tmp_path / "it's q").mkdir()  # what the name would match as a glob: must not be read
    write(tmp_path / "it's q" / "compact-1.csv", tx[:10], "%Y%m%d")
    code, out, err = run(capsys, iso, *COLS, "--calibration-end", "2022-12-31", "--json")
    assert code == 0, err
    a = json.loads(out)
    code, out, _ = run(capsys, compact, *COLS, "--calibration-end", "20221231", "--json")
    assert code == 0
    b = json.loads(out)
    assert a == b
    assert a["customers"] == len({c for c, d, _ in tx if d <= dt.date(2022, 12, 31)})
    assert set(a["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(a["gamma_gamma"]) >= {"p", "q", "v"}
    assert a["holdout"] is None
    assert a["bgnbd"]["log_likelihood"] < 0
    # 1,500 customers: the parameters of the simulation, roughly
    assert 0.4 < a["bgnbd"]["r"] < 1.4 and 10 < a["bgnbd"]["alpha"] < 50
    assert 60 < a["gamma_gamma"]["mean_spend"] < 100


def test_weeks_rescale_alpha_only(tmp_path, capsys, tx):
    path = write(tmp_path / "tx.csv", tx)
    _, out, _ = run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--json")
    day = json.loads(out)
    _, out, _ = run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--json", "--time-unit", "week")
    week = json.loads(out)
    assert week["bgnbd"]["alpha"] == pytest.approx(day["bgnbd"]["alpha"] / 7, rel=1e-6)
    for k in ("r", "a", "b"):
        assert week["bgnbd"][k] == pytest.approx(day["bgnbd"][k], rel=1e-6)
    # the likelihood of the same data in weeks differs by the Jacobian: repeat buyers' recency density
    assert week["bgnbd"]["log_likelihood"] != pytest.approx(day["bgnbd"]["log_likelihood"])


def test_holdout_compares_predicted_with_actual(tmp_path, capsys, tx):
    path = write(tmp_path / "tx.csv", tx)
    code, out, err = run(
        capsys, path, *COLS, "--calibration-end", "2022-12-31", "--holdout-end", "2023-12-31", "--json"
    )
    assert code == 0, err
    h = json.loads(out)["holdout"]
    df = pd.DataFrame(tx, columns=["c", "d", "v"])
    cal = set(df.loc[df.d <= dt.date(2022, 12, 31), "c"])
    later = df[(df.d > dt.date(2022, 12, 31)) & df.c.isin(cal)]
    assert h["actual_purchases"] == later.groupby("c").d.nunique().sum()
    assert h["actual_revenue"] == pytest.approx(later.v.sum())
    assert h["customers"] == len(cal) and h["days"] == 365
    assert abs(h["purchases_error"]) < 0.15 and abs(h["revenue_error"]) < 0.2
    assert h["revenue_rank_correlation"] > 0.3
    assert sum(b["customers"] for b in h["by_frequency"]) == len(cal)
    code, out, _ = run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--holdout-end", "2023-12-31")
    assert code == 0 and "Holdout 2023-01-01 .. 2023-12-31" in out and "BG/NBD:" in out


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        (
            None,
            ("--amount-col", "price"),
            "has no column 'price' (--amount-col); its columns are: customer, day, value",
        ),
        ([("A", "2022-13-01", 5)], (), "line 5: unparseable date '2022-13-01' in column 'day'"),
        ([("A", "01/02/2022", 5)], (), "line 5: unparseable date '01/02/2022'"),
        ([("A", "2022-02-01", -5)], (), "line 5: negative amount -5 in column 'value'"),
        ([("A", "2022-02-01", "abc")], (), "line 5: amount 'abc' in column 'value' is not a number"),
        ([("", "2022-02-01", 5)], (), "line 5: empty customer id"),
        (
            None,
            ("--calibration-end", "2021-06-30"),
            "calibration end 2021-06-30 is before the first transaction",
        ),
        (None, ("--calibration-end", "2022/12/31"), "invalid date '2022/12/31': use YYYY-MM-DD or YYYYMMDD"),
        (None, ("--holdout-end", "2022-06-30"), "holdout end 2022-06-30 must come after the calibration end"),
        ([], ("--calibration-end", "2022-01-10"), "no customer has a repeat purchase"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, rows, args, message):
    base = [
        ("A", dt.date(2022, 1, 1), 10.0),
        ("B", dt.date(2022, 1, 3), 12.0),
        ("A", dt.date(2022, 2, 1), 8.0),
    ]
    path = write(tmp_path / "bad.csv", base + (rows or []))
    defaults = {"--calibration-end": "2022-12-31"}
    extra = dict(zip(args[::2], args[1::2]))
    cols = dict(zip(COLS[::2], COLS[1::2]))
    cols.update({k: v for k, v in extra.items() if k in cols})
    defaults.update({k: v for k, v in extra.items() if k not in cols})
    flat = [x for kv in {**cols, **defaults}.items() for x in kv]
    code, out, err = run(capsys, path, *flat)
    assert code == 2, (out, err)
    assert message in err
    assert err.startswith("clv: error: ") and err.count("\n") == 1


def test_missing_file_and_missing_argument(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path / "nope.csv", "--calibration-end", "2022-12-31")
    assert code == 2 and "no such file" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["fit", str(tmp_path / "x.csv")])
    assert e.value.code == 2
    assert "--calibration-end" in capsys.readouterr().err


def test_parameter_standard_errors_and_intervals(tmp_path, capsys, tx):
    """`clv fit` reports each parameter's standard error and 95% interval (the analytic Hessian,
    clv.stats.uncertainty), in JSON and in text; the intervals bracket the estimates and match
    the model's own covariance."""
    from clv.stats import btyd, uncertainty

    path = write(tmp_path / "tx.csv", tx)
    code, out, err = run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--json")
    assert code == 0, err
    a = json.loads(out)
    for model, names in (("bgnbd", "r alpha a b"), ("gamma_gamma", "p q v")):
        iv = a[model]["intervals"]
        assert sorted(iv) == sorted(names.split())
        for name, v in iv.items():
            assert v["se"] > 0
            assert v["lower_95"] < a[model][name] < v["upper_95"]
    # the same numbers as the fit's own covariance, from the summary the command fitted
    df = pd.DataFrame(tx, columns=["c", "d", "v"])
    df = df[df.d <= dt.date(2022, 12, 31)]
    days = df.groupby(["c", "d"]).v.sum().reset_index()
    g = days.groupby("c").d
    x = (g.count() - 1).to_numpy(float)
    first, last = g.min(), g.max()
    tx_ = np.array([(b - f).days for f, b in zip(first, last)], float)
    T = np.array([(dt.date(2022, 12, 31) - f).days for f in first], float)
    r_se = {p.name: p.standard_error for p in uncertainty.parameter_intervals(btyd.fit_bgnbd(x, tx_, T))}["r"]
    assert a["bgnbd"]["intervals"]["r"]["se"] == pytest.approx(r_se, rel=1e-5)
    code, out, _ = run(capsys, path, *COLS, "--calibration-end", "2022-12-31")
    assert "standard error" in out and "95% interval" in out and "std. error" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("  BG/NBD") and " alpha " in ln)
    assert f"{a['bgnbd']['intervals']['alpha']['lower_95']:.6g}" in line
