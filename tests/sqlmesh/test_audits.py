"""Who checks what: SQLMesh audits hold what a model promises about itself (its grain unique and
present, ranges, invariants), Soda what spans tables or time; no rule is written in both.

The audits run for real on a copy of a SQLMesh-built warehouse: every one passes on the clean
build, and each rule moved out of Soda fails on the rows that break it (tampered inside a
transaction that is rolled back)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from contextlib import contextmanager

import pytest
import yaml
from sqlglot import exp, parse_one
from sqlmesh.core.audit.builtin import BUILT_IN_AUDITS

from clv import settings, transform
from clv.business_date import execution_time
from clv.names import LAYERS
from clv.quality import CHECKS_DIR
from tests.conftest import END

DAY2 = END + dt.timedelta(days=2)
SODA_LAYERS = LAYERS
UNIQUE_AUDITS = ("unique_values", "unique_combination_of_columns", "unique_across_intervals")
COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE)


# --------------------------------------------------------------------------------------------
# The same rule in both tools: each check and each audit reduced to the rule it states


def _columns(e: exp.Expression | None) -> tuple[str, ...]:
    return tuple(c.name for c in e.find_all(exp.Column)) if e is not None else ()


def _sql(e: exp.Expression) -> str:
    """A predicate without table qualifiers or quotes, so `a.x > b.y` in one tool equals `"x" > "y"`
    in the other."""
    e = e.copy()
    for c in e.find_all(exp.Column):
        c.set("table", None)
    for i in e.find_all(exp.Identifier):
        i.set("quoted", False)
    return e.sql(dialect="duckdb")


def _condition(e: exp.Expression | None) -> str | None:
    return None if e is None or e == exp.true() else _sql(e)


def _comparisons(query: exp.Expression) -> set[str]:
    """Every `<`, `<=`, `>`, `>=` a row-level query tests, wherever it sits (WHERE, JOIN ON)."""
    return {_sql(c) for c in query.find_all(*COMPARISONS) if not c.find(exp.AggFunc)}


def soda_rules(layer: str, text: str) -> set[tuple]:
    """The per-table rules in a SodaCL file: ("not_null" | "unique" | "range" | "accepted_values"
    | "compares", layer, table, detail). Cross-table, volume and time checks state none."""
    doc = yaml.safe_load(text) or {}
    filters = {
        key.removeprefix("filter ").strip(): parse_one(value["where"], dialect="duckdb")
        for key, value in doc.items()
        if key.startswith("filter ")
    }
    rules = set()
    for key, checks in doc.items():
        if not key.startswith("checks for "):
            continue
        dataset = key.removeprefix("checks for ").strip()
        table, condition = dataset.split(" [")[0], _condition(filters.get(dataset))
        for check in checks:
            expr, config = next(iter(check.items())) if isinstance(check, dict) else (check, {})
            config = config or {}
            if m := re.fullmatch(r"missing_count\((\w+)\) = 0", expr):
                rules.add(("not_null", layer, table, m[1]))
            elif m := re.fullmatch(r"duplicate_count\(([\w, ]+)\) = 0", expr):
                cols = tuple(c.strip() for c in m[1].split(","))
                rules.add(("unique", layer, table, (cols, condition)))
            elif m := re.fullmatch(r"invalid_count\((\w+)\) = 0", expr):
                kind = "accepted_values" if "valid values" in config else "range"
                rules.add((kind, layer, table, m[1]))
            elif m := re.fullmatch(r"(?:min|max)\((\w+)\) *(?:>=|<=|>|<) *[-\d.]+", expr):
                rules.add(("range", layer, table, m[1]))
            elif expr == "failed rows" and "fail query" in config:
                for predicate in _comparisons(parse_one(config["fail query"], dialect="duckdb")):
                    rules.add(("compares", layer, table, predicate))
    return rules


def audit_rules(model) -> set[tuple]:
    """The rules a model's audits state, in the terms of `soda_rules`."""
    layer, table = model.name.split(".")[-2:]
    rules = set()
    for audit, args in model.audits_with_args:
        name = audit.name.removesuffix("_non_blocking")
        condition = _condition(args.get("condition"))
        if name == "not_null" and condition is None:
            rules |= {("not_null", layer, table, c) for c in _columns(args["columns"])}
        elif name == "unique_values":
            rules |= {("unique", layer, table, ((c,), condition)) for c in _columns(args["columns"])}
        elif name == "unique_combination_of_columns":
            rules.add(("unique", layer, table, (_columns(args["columns"]), condition)))
        elif name == "unique_across_intervals":
            rules.add(("unique", layer, table, (_columns(args["column"]), None)))
        elif name == "accepted_range":
            rules.add(("range", layer, table, _columns(args["column"])[0]))
        elif name == "accepted_values":
            rules.add(("accepted_values", layer, table, _columns(args["column"])[0]))
        elif name not in BUILT_IN_AUDITS:  # a custom audit: the comparisons its query makes
            query = model.render_audit_query(audit, **args)
            rules |= {("compares", layer, table, p) for p in _comparisons(query)}
    return rules


@pytest.fixture(scope="module")
def sqlmesh(tmp_path_factory):
    ctx = transform.context(tmp_path_factory.mktemp("audits"))
    yield ctx
    ctx.close()


def _all_audit_rules(ctx) -> set[tuple]:
    return set().union(*(audit_rules(m) for m in ctx.models.values() if not m.kind.is_external))


def test_no_rule_is_both_a_soda_check_and_an_audit(sqlmesh):
    audits = _all_audit_rules(sqlmesh)
    checked = 0
    for layer in SODA_LAYERS:
        files = sorted((CHECKS_DIR / layer).glob("*.yml"))
        assert files, f"soda_checks/{layer} has no checks: its scan would be an error"
        for f in files:
            rules = soda_rules(layer, f.read_text())
            assert not rules & audits, f"{f.name} repeats the model's audits: {sorted(rules & audits)}"
            checked += 1
    assert checked >= 4 * 2


# What mart_churn_risk's Soda file held before the rule was applied: every check repeated an audit.
OLD_MART_CHURN_RISK = """
checks for mart_churn_risk:
  - duplicate_count(customer_id) = 0:
      name: mart_churn_risk one row per customer
  - invalid_count(churn_probability) = 0:
      name: mart_churn_risk probabilities within 0-1
      valid min: 0
      valid max: 1
  - invalid_count(p_alive) = 0:
      name: mart_churn_risk P(alive) within 0-1
      valid min: 0
      valid max: 1
  - failed rows:
      name: mart_churn_risk revenue at risk not negative
      fail query: |
        SELECT customer_id, revenue_at_risk_usd FROM marts.mart_churn_risk
        WHERE revenue_at_risk_usd < 0
  - row_count > 0:
      name: mart_churn_risk has customers
"""


def test_the_comparison_finds_a_rule_written_twice(sqlmesh):
    """The check above can fail: each kind of repeated rule is found (volume is not an audit's)."""
    repeated = soda_rules("marts", OLD_MART_CHURN_RISK) & audit_rules(
        sqlmesh.get_model("marts.mart_churn_risk")
    )
    assert repeated == {
        ("unique", "marts", "mart_churn_risk", (("customer_id",), None)),
        ("range", "marts", "mart_churn_risk", "churn_probability"),
        ("range", "marts", "mart_churn_risk", "p_alive"),
        ("compares", "marts", "mart_churn_risk", "revenue_at_risk_usd < 0"),
    }
    filtered = "filter t [current]:\n  where: valid_to IS NULL\nchecks for t [current]:\n  - duplicate_count(k) = 0\n"
    assert soda_rules("core", filtered) == {("unique", "core", "t", (("k",), "valid_to IS NULL"))}


def test_every_model_audits_its_grain_unique_and_present(sqlmesh):
    """Every model with a grain (staging included) has a uniqueness audit on exactly that grain,
    over the whole model, and not_null on each grain column."""
    models = [m for m in sqlmesh.models.values() if not m.kind.is_external]
    assert len(models) >= 38
    for model in models:
        assert model.grains, f"{model.name} declares no grain"
        grain = tuple(c for g in model.grains for c in _columns(g))
        unique, present = set(), set()
        for audit, args in model.audits_with_args:
            if _condition(args.get("condition")) is not None:
                continue
            if audit.name in UNIQUE_AUDITS:
                cols = _columns(args.get("columns", args.get("column")))
                unique |= {cols} if audit.name != "unique_values" else {(c,) for c in cols}
            elif audit.name == "not_null":
                present |= set(_columns(args["columns"]))
        assert grain in unique, f"{model.name}: no uniqueness audit on its grain {grain}"
        assert set(grain) <= present, f"{model.name}: grain columns {set(grain) - present} may be null"


def test_incremental_facts_check_their_key_across_intervals(sqlmesh):
    """An INCREMENTAL_BY_TIME_RANGE model's audits see only the interval they run for, so a key
    that is not part of the time column is checked against the whole table."""
    for model in sqlmesh.models.values():
        if not model.kind.is_incremental_by_time_range:
            continue
        grain = tuple(c for g in model.grains for c in _columns(g))
        if model.time_column.column.name in grain:
            continue  # unique per interval is unique in the table
        (audit,) = [(a, args) for a, args in model.audits_with_args if a.name == "unique_across_intervals"]
        assert audit[1]["model"].sql() == model.name, model.name


# --------------------------------------------------------------------------------------------
# The audits on a built warehouse


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    """A SQLMesh context on a copy of the built warehouse (the shared one stays untouched)."""
    paths, ctx, _ = project
    ctx.close()
    data = tmp_path_factory.mktemp("audited") / "data"
    shutil.copytree(paths.data_dir, data, ignore=shutil.ignore_patterns("reports"))
    ctx = transform.context(data)
    yield ctx
    ctx.close()


def label(audit, args) -> str:
    cols = _columns(args.get("columns", args.get("column", args.get("key"))))
    return f"{audit.name}({', '.join(cols)})" if cols else audit.name


def failures(ctx, model: str, day: dt.date = DAY2) -> dict[str, int]:
    """Each failing audit of the model over the business date's interval, with its row count."""
    results = ctx.snapshot_evaluator.audit(
        snapshot=ctx.get_snapshot(model, raise_if_missing=True),
        start=day.isoformat(),
        end=day.isoformat(),
        execution_time=execution_time(day),
        snapshots=ctx.snapshots,
    )
    return {label(r.audit, r.audit_args): r.count for r in results if r.count and not r.skipped}


@contextmanager
def tampered(ctx, model: str, sql: str):
    """Change a model's physical table for the duration of the block, then roll it back."""
    table = ctx.get_snapshot(model, raise_if_missing=True).table_name()
    ctx.engine_adapter.execute("BEGIN TRANSACTION")
    try:
        ctx.engine_adapter.execute(sql.format(t=table, day=f"DATE '{DAY2.isoformat()}'"))
        yield
    finally:
        ctx.engine_adapter.execute("ROLLBACK")


@pytest.mark.slow
def test_every_audit_passes_on_the_built_warehouse(built):
    ctx = built
    audited, failed = 0, {}
    for snapshot in ctx.snapshots.values():
        if not snapshot.is_model or snapshot.model.kind.is_external:
            continue
        audited += len(snapshot.model.audits_with_args)
        if bad := failures(ctx, snapshot.name):
            failed[snapshot.name] = bad
    assert not failed
    assert audited >= 100


# (model, how its rows are broken, the audits that must fail: no more, no fewer)
BROKEN = {
    "staging key duplicated": (
        "staging.stg_orders",
        "INSERT INTO {t} SELECT * FROM {t} LIMIT 1",
        {"unique_values(order_id)"},
    ),
    "staging composite key duplicated": (
        "staging.stg_loyalty_balances",
        "INSERT INTO {t} SELECT * FROM {t} LIMIT 1",
        {"unique_combination_of_columns(customer_id, snapshot_date)"},
    ),
    "a second current version that overlaps": (
        "core.dim_customers",
        "INSERT INTO {t} SELECT * REPLACE (TIMESTAMP '2000-01-01' AS valid_from) FROM {t} WHERE valid_to IS NULL LIMIT 1",
        {"unique_values(customer_id)", "scd2_versions_do_not_overlap(customer_id)"},
    ),
    "a customer without a current version": (
        "core.dim_customers",
        "UPDATE {t} SET valid_to = valid_from + INTERVAL 1 DAY "
        "WHERE valid_to IS NULL AND customer_id = (SELECT min(customer_id) FROM {t})",
        {"scd2_every_key_current(customer_id)"},
    ),
    "a revenue event copied into an earlier interval": (
        "core.fct_revenue",
        "INSERT INTO {t} SELECT * REPLACE (revenue_date - 30 AS revenue_date) FROM {t} WHERE revenue_date = {day} LIMIT 1",
        {"unique_across_intervals(revenue_event_id)"},
    ),
    "revenue with the wrong sign": (
        "core.fct_revenue",
        "UPDATE {t} SET revenue_usd = -revenue_usd WHERE revenue_date = {day}",
        {"revenue_sign_matches_type"},
    ),
    "an unknown device type": (
        "core.fct_activity_logs",
        "UPDATE {t} SET device_type = 'smart fridge' WHERE session_date = {day}",
        {"accepted_values(device_type)"},
    ),
    "a negative loyalty balance": (
        "core.fct_loyalty",
        "UPDATE {t} SET points_balance = -1 WHERE event_date = {day}",
        {"accepted_range(points_balance)"},
    ),
    "a support ticket twice": (
        "core.fct_support_logs",
        "INSERT INTO {t} SELECT * FROM {t} LIMIT 1",
        {"unique_values(ticket_id)"},
    ),
    "a BG/NBD churn probability above 1": (
        "intermediate.int_churn_scoring",
        "UPDATE {t} SET bgnbd_churn_probability = 1.5",
        {"accepted_range(bgnbd_churn_probability)"},
    ),
    "expected value above the value if active": (
        "intermediate.int_clv_predictions",
        "UPDATE {t} SET bgnbd_clv_12m_usd = predicted_remaining_clv_usd + 1",
        {"expected_value_within_value_if_active"},
    ),
    "a churn probability above 1 in the revenue risk": (
        "intermediate.int_revenue_risk",
        "UPDATE {t} SET churn_probability = 1.5",
        {"accepted_range(churn_probability)"},
    ),
    "more active customers than the cohort": (
        "marts.mart_retention_cohorts",
        "UPDATE {t} SET customers_active = cohort_size + 1 WHERE months_since_acquisition = 0",
        {"active_within_cohort"},
    ),
    "a retention month that loses more subscriptions than it had at risk": (
        "marts.mart_subscription_retention",
        "UPDATE {t} SET subscriptions_cancelled = subscriptions_at_risk + 1 "
        "WHERE cohort = 'all' AND months_since_start = 1",
        {"life_table_balances"},
    ),
    "revenue at risk, kept and lost not adding up to the remaining value": (
        "marts.mart_churn_risk",
        "UPDATE {t} SET revenue_at_risk_usd = predicted_remaining_clv_usd + 1",
        {"risk_within_remaining_value"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BROKEN)
def test_each_moved_rule_fails_on_the_rows_that_break_it(built, case):
    model, sql, expected = BROKEN[case]
    assert not failures(built, model)
    with tampered(built, model, sql):
        failed = failures(built, model)
    assert set(failed) == expected, failed
    assert not failures(built, model)  # rolled back


def test_the_audit_files_are_all_used(sqlmesh):
    used = {a.name for m in sqlmesh.models.values() for a, _ in m.audits_with_args}
    files = {p.stem for p in (settings.sqlmesh_project() / "audits").glob("*.sql")}
    assert files and files <= used, files - used
