"""`clv fit` on small transaction CSVs: both date formats, the holdout report, and one-line errors
with exit code 2 for bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys

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


HOLD = ("--calibration-end", "2022-12-31", "--holdout-end", "2023-12-31")


def actual_holdout(tx) -> pd.DataFrame:
    """Each calibration customer's repeat purchase days and revenue in 2023, from the rows."""
    df = pd.DataFrame(tx, columns=["c", "d", "v"])
    cal = sorted(set(df.loc[df.d <= dt.date(2022, 12, 31), "c"]))
    later = df[(df.d > dt.date(2022, 12, 31)) & df.c.isin(cal)]
    out = pd.DataFrame(index=pd.Index(cal, name="customer_id"))
    out["days"] = later.groupby("c").d.nunique()
    out["revenue"] = later.groupby("c").v.sum()
    return out.fillna(0.0)


def test_both_models_and_their_comparison(tmp_path, capsys, tx):
    path = write(tmp_path / "tx.csv", tx)
    code, out, err = run(capsys, path, *COLS, *HOLD, "--model", "both", "--json")
    assert code == 0, err
    a = json.loads(out)
    assert a["models"] == ["bgnbd", "pareto_nbd"]
    assert set(a["pareto_nbd"]) >= {"r", "alpha", "s", "beta", "log_likelihood", "intervals", "aic", "bic"}
    n = a["customers"]
    table = {row["model"]: row for row in a["comparison"]}
    for key in ("bgnbd", "pareto_nbd"):
        ll = a[key]["log_likelihood"]
        assert table[key]["aic"] == pytest.approx(8 - 2 * ll)
        assert table[key]["bic"] == pytest.approx(4 * np.log(n) - 2 * ll)
        h = a["holdout_by_model"][key]
        assert table[key]["purchases_error"] == h["purchases_error"]
        assert set(table[key]["by_frequency"]) == {b["frequency"] for b in h["by_frequency"]}
    # the same fits as one model at a time
    code, out, _ = run(capsys, path, *COLS, *HOLD, "--model", "pareto-nbd", "--json")
    alone = json.loads(out)
    assert alone["models"] == ["pareto_nbd"] and "bgnbd" not in alone
    assert alone["pareto_nbd"]["s"] == pytest.approx(a["pareto_nbd"]["s"], rel=1e-9)
    assert alone["holdout"]["model"] == "pareto_nbd" and alone["comparison"] is None
    code, out, _ = run(capsys, path, *COLS, *HOLD, "--model", "both")
    assert "Comparison" in out and "Pareto/NBD" in out and "lower BIC:" in out


def test_holdout_metrics_beyond_totals(tmp_path, capsys, tx):
    path = write(tmp_path / "tx.csv", tx)
    out_csv = tmp_path / "customers.csv"
    code, out, err = run(capsys, path, *COLS, *HOLD, "--json", "--output", out_csv, "--horizon-days", "365")
    assert code == 0, err
    h = json.loads(out)["holdout"]
    act = actual_holdout(tx)
    rows = pd.read_csv(out_csv).set_index("customer_id").loc[act.index]
    # --output's expected purchases over 365 days are the holdout's predictions
    assert h["purchases_mae"] == pytest.approx(
        np.mean(np.abs(rows["expected_purchases"] - act["days"])), rel=1e-6
    )
    assert len(h["deciles"]) == 10
    assert sum(d["actual_revenue"] for d in h["deciles"]) == pytest.approx(act["revenue"].sum())
    assert sum(d["predicted_revenue"] for d in h["deciles"]) == pytest.approx(h["predicted_revenue"])
    # deciles of predicted revenue rise, and the top decile holds more actual revenue than the bottom
    pred = [d["predicted_revenue"] for d in h["deciles"]]
    assert pred == sorted(pred) and h["deciles"][-1]["actual_revenue"] > 5 * h["deciles"][0]["actual_revenue"]
    assert 0.3 < h["normalized_gini"] <= 1
    bought = (act["days"] > 0).mean()
    assert np.mean([c["observed"] for c in h["p_purchase_calibration"]]) == pytest.approx(bought, abs=0.01)
    for c in h["p_purchase_calibration"]:  # calibrated within 0.15 in every decile on 1,500 customers
        assert abs(c["predicted"] - c["observed"]) < 0.15
    for c in h["p_alive_calibration"]:  # who bought was alive: P(alive) bounds the share from above
        assert c["p_alive"] >= c["observed_purchase"] - 0.1
    assert 0 < h["p_purchase_brier"] < 0.25


def test_normalized_gini():
    from clv.stats.fit_file import normalized_gini

    actual = np.array([0.0, 5, 1, 9, 3, 0, 2])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, actual * 3 + 1) == pytest.approx(1.0)  # only the order counts
    assert normalized_gini(actual, -actual) < -0.9


def test_output_file_one_row_per_customer(tmp_path, capsys, tx):
    path = write(tmp_path / "tx.csv", tx)
    csv_out, pq_out, disc_out = tmp_path / "a.csv", tmp_path / "a.parquet", tmp_path / "d.csv"
    for target, extra in ((csv_out, ()), (pq_out, ()), (disc_out, ("--discount-rate", "0.2"))):
        code, _, err = run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--output", target, *extra)
        assert code == 0, err
    a, b, d = pd.read_csv(csv_out), pd.read_parquet(pq_out), pd.read_csv(disc_out)
    df = pd.DataFrame(tx, columns=["c", "d", "v"])
    assert sorted(a["customer_id"]) == sorted(set(df.loc[df.d <= dt.date(2022, 12, 31), "c"]))
    expected_cols = ["customer_id", "frequency", "recency", "T", "monetary_value", "p_alive", "p_purchase_90d",
                     "p_purchase_365d", "expected_purchases", "expected_spend", "remaining_value", "horizon_value",
                     "value_p10", "value_p50", "value_p90"]  # fmt: skip
    assert list(a.columns) == expected_cols and list(b.columns) == expected_cols
    pd.testing.assert_frame_equal(a, b, check_exact=False, check_dtype=False, rtol=1e-9)
    assert a["horizon_value"].to_numpy() == pytest.approx(
        (a["p_alive"] * a["remaining_value"]).to_numpy(), rel=1e-8
    )
    assert (a["p_purchase_90d"] <= a["p_purchase_365d"] + 1e-12).all() and (
        a["p_purchase_365d"] <= a["p_alive"] + 1e-12
    ).all()
    assert (a["value_p10"] <= a["value_p50"] + 1e-9).all() and (a["value_p50"] <= a["value_p90"] + 1e-9).all()
    # a customer's summary from the rows themselves
    c = df[df.d <= dt.date(2022, 12, 31)].groupby(["c", "d"]).v.sum().reset_index()
    row = a.set_index("customer_id").loc[c.c.iloc[0]]
    mine = c[c.c == c.c.iloc[0]]
    assert row["frequency"] == len(mine) - 1
    assert row["T"] == (dt.date(2022, 12, 31) - mine.d.min()).days
    # discounting lowers every positive value, and only the value columns change
    assert (d["remaining_value"] <= a["remaining_value"] + 1e-9).all()
    assert (d["remaining_value"] < a["remaining_value"])[a["remaining_value"] > 1].all()
    assert d["p_alive"].equals(a["p_alive"])
    # a longer horizon: more purchases expected
    long = tmp_path / "long.csv"
    run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--output", long, "--horizon-days", "730")
    longer = pd.read_csv(long)
    assert (longer["expected_purchases"] >= a["expected_purchases"] - 1e-12).all()
    assert longer["expected_purchases"].sum() > 1.3 * a["expected_purchases"].sum()
    # both models: suffixed columns
    both = tmp_path / "both.csv"
    run(capsys, path, *COLS, "--calibration-end", "2022-12-31", "--output", both, "--model", "both")
    cols = pd.read_csv(both).columns
    assert {"p_alive_bgnbd", "p_alive_pareto_nbd", "value_p90_pareto_nbd"} <= set(cols)


def test_plots_are_written_and_not_blank(tmp_path, capsys, tx):
    from PIL import Image

    path = write(tmp_path / "tx.csv", tx)
    folder = tmp_path / "figures"
    code, out, err = run(capsys, path, *COLS, *HOLD, "--model", "both", "--plots", folder, "--json")
    assert code == 0, err
    written = json.loads(out)["plots"]
    names = {"calibration_vs_holdout.png", "cumulative_repeat_purchases.png", "weekly_repeat_purchases.png",
             "p_alive_matrix_bgnbd.png", "p_alive_matrix_pareto_nbd.png", "predicted_value_distribution.png"}  # fmt: skip
    assert {p.split("/")[-1] for p in written} == names == {p.name for p in folder.iterdir()}
    for name in names:
        img = Image.open(folder / name)
        assert img.format == "PNG" and img.size == (1100, 680)
        px = np.asarray(img.convert("RGB"), dtype=float)
        inked = (px.min(axis=2) < 200).mean()  # share of pixels that are not near-white
        assert inked > 0.02, name
        assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20, name  # lines, text and colours, not one fill
    # the model lines are drawn: both models' colours appear in the tracking plot
    px = np.asarray(Image.open(folder / "cumulative_repeat_purchases.png").convert("RGB"))
    for colour in ((31, 119, 180), (214, 39, 40)):
        assert (np.abs(px.astype(int) - colour).sum(axis=2) < 10).sum() > 500


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_quiet_with_json_or_a_pipe(tmp_path, capsys, tx, monkeypatch):
    path = write(tmp_path / "tx.csv", tx)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    code = main(
        ["fit", str(path), *COLS, "--calibration-end", "2022-12-31", "--output", str(tmp_path / "o.csv")]
    )
    assert code == 0
    shown = [part for part in term.getvalue().split("\r\033[K") if part]
    stages = [line.split(": ", 1)[1].split()[0] for line in shown]
    assert stages == ["read", "summarised", "fitted", "fitted", "scored", "wrote"]
    assert term.getvalue().endswith("\r\033[K")  # erased at the end: the report starts on a clean line
    # an error after progress: the line is erased first, the message stays one line
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert (
        main(["fit", str(path), *COLS, "--calibration-end", "2022-01-01", "--holdout-end", "2022-01-02"]) == 2
    )
    assert term.getvalue().split("\r\033[K")[-1].count("\n") == 1
    assert term.getvalue().split("\r\033[K")[-1].startswith("clv: error: ")
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["fit", str(path), *COLS, "--calibration-end", "2022-12-31", "--json"]) == 0
    assert term.getvalue() == ""
    monkeypatch.undo()
    code, _, err = run(capsys, path, *COLS, "--calibration-end", "2022-12-31")
    assert code == 0 and err == ""  # not a terminal: nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--horizon-days", "0"), "--horizon-days: '0': use a positive number"),
        (("--horizon-days", "abc"), "--horizon-days: 'abc' is not a number"),
        (("--discount-rate", "-0.1"), "--discount-rate: '-0.1': use an annual rate of 0 or more"),
        (("--output", "customers.txt"), "use a file name ending in .csv or .parquet"),
        (("--output", "no/such/folder/c.csv"), "does not exist"),
        (("--model", "weibull"), "argument --model: invalid choice: 'weibull'"),
        (("--plots", "tx.csv"), "is a file: give a folder for the figures"),
    ],
)
def test_bad_flags_are_one_line_and_exit_code_2(tmp_path, capsys, tx, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "tx.csv", tx[:50])
    try:
        code = main(["fit", "tx.csv", *COLS, "--calibration-end", "2022-12-31", *args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1, err
    assert not any(p.suffix in (".csv", ".parquet") and p.name != "tx.csv" for p in tmp_path.iterdir())


def test_clean_pass_reads_the_same_rows_as_the_checked_pass(tmp_path):
    """An ISO-dated file takes the one typed pass (`_load_clean`); the same rows with compact dates
    take the checked pass. Both must leave the same `tx` table, values at the edges included."""
    import duckdb

    from clv.stats import fit_file

    rows = [
        (" C1 ", dt.date(2022, 1, 1), "10.5"),  # ids are trimmed by both
        ("C1", dt.date(2022, 1, 1), "0"),  # a zero amount is allowed
        ("C2", dt.date(2024, 2, 29), "1e2"),
        ("C2", dt.date(2022, 12, 31), "0.01"),
        ("C3", dt.date(2023, 6, 1), "12345678.9"),
    ]
    tables = {}
    for fmt, name in (("%Y-%m-%d", "clean"), ("%Y%m%d", "checked")):
        con = duckdb.connect()
        n = fit_file.load(con, write(tmp_path / f"{name}.csv", rows, fmt), "customer", "day", "value")
        assert n == len(rows)
        columns = [r[0] for r in con.execute("DESCRIBE tx").fetchall()]
        assert ("line" in columns) == (name == "checked")  # which pass read it
        tables[name] = con.execute(
            "SELECT customer_id, purchase_date, amount FROM tx ORDER BY ALL"
        ).fetchall()
        con.close()
    assert tables["clean"] == tables["checked"]
    assert tables["clean"][0] == ("C1", dt.date(2022, 1, 1), 0.0)
    assert [r[2] for r in tables["clean"]].count(100.0) == 1
