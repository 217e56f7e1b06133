"""The same SQLMesh models on DuckDB and on Spark (a real local SparkSession through SQLMesh's Spark
gateway) against the same raw data: every mart must come out the same.

Small scale: 600 customers with realistic faults, loaded by the project's loader into a real DuckDB
warehouse; Spark reads the raw zone that clv/spark.py exports from it. Numbers are compared with a
relative tolerance of 1e-6 (floating-point sums in another order, the CLV and churn fits on the same
inputs); money columns are DECIMAL(…, 2), rounded from those floats, so they may also differ by one
cent when a value sits on a rounding boundary. Strings, dates, keys and row counts must be equal.

Needs Java (Spark runs in a JVM): skipped with the reason when it is missing, failed instead under
``CLV_REQUIRE_SPARK=1`` (CI).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlglot import exp

from clv import ingest, settings, spark, transform
from tests.conftest import DAYS, END, START, make_dataset

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

MARTS = sorted(p.stem for p in (settings.SQLMESH_PROJECT / "models" / "marts").glob("*.sql"))
BUSINESS_DATE = END + dt.timedelta(days=2)
RELATIVE = 1e-6
CENT = 0.01 + 1e-9


def _require_spark() -> None:
    try:
        import pyspark  # noqa: F401

        spark.require_java()
    except (ImportError, spark.SparkSyncError) as e:
        reason = f"Spark cannot run here: {e}"
        if os.environ.get("CLV_REQUIRE_SPARK"):
            pytest.fail(reason + " (CLV_REQUIRE_SPARK is set)")
        pytest.skip(reason)


def _build(data_dir: Path, gateway: str) -> dict[str, tuple[pd.DataFrame, list[str], dict[str, str]]]:
    """Plan prod on the gateway; every mart as (rows, grain, column types)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLV_SQLMESH_GATEWAY", gateway)
        ctx = transform.context(data_dir)
        try:
            transform.plan_prod(ctx, BUSINESS_DATE)
            out = {}
            for name in MARTS:
                model = ctx.get_model(f"marts.{name}")
                grain = [column.name for g in model.grains for column in g.find_all(exp.Column)]
                types = {c: t.sql() for c, t in model.columns_to_types.items()}
                out[name] = (ctx.fetchdf(f"SELECT * FROM marts.{name}"), grain, types)
            return out
        finally:
            session = ctx.engine_adapter.spark if gateway == "spark" else None
            ctx.close()
            if session is not None:
                session.stop()


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    _require_spark()
    paths = make_dataset(tmp_path_factory.mktemp("spark") / "data", 600, "realistic", DAYS[:2])
    ingest.load(paths.data_dir)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLV_START_DATE", START.isoformat())  # one backfill batch per model
        env.setenv("CLV_SPARK_SHUFFLE_PARTITIONS", "2")
        duck = _build(paths.data_dir, "duckdb")
        on_spark = _build(paths.data_dir, "spark")
    return paths, duck, on_spark


def _plain(column: pd.Series) -> pd.Series:
    """DuckDB and Spark hand pandas the same values in different clothes: Decimal objects or
    floats, datetime.date or datetime64, int32 or int64."""
    values = column.dropna()
    if len(values) and isinstance(values.iloc[0], decimal.Decimal):
        return pd.to_numeric(column.astype(object).where(column.notna(), None), errors="raise").astype(float)
    if len(values) and isinstance(values.iloc[0], dt.date | pd.Timestamp | np.datetime64):
        return pd.to_datetime(column)
    return column


def test_the_raw_zone_and_every_mart_are_the_same_on_spark(marts):
    """One test, so that one xdist worker builds the models on Spark (a JVM and minutes of work);
    every mart is compared and every difference reported."""
    paths, duck, on_spark = marts
    files = sorted((paths.spark / "raw" / "orders").glob("*.parquet"))
    assert files, "no Parquet export of raw.orders"
    import duckdb

    con = duckdb.connect()
    exported = con.execute(
        f"SELECT count(*) FROM read_parquet('{paths.spark}/raw/orders/*.parquet')"
    ).fetchone()[0]
    warehouse = duckdb.connect(str(paths.warehouse), read_only=True)
    loaded = warehouse.execute("SELECT count(*) FROM raw.orders").fetchone()[0]
    warehouse.close()
    assert exported == loaded > 0
    problems = []
    for mart in MARTS:
        try:
            _assert_same(mart, duck, on_spark)
        except AssertionError as e:
            problems.append(f"{mart}: {e}")
    assert not problems, "\n".join(problems)


def _assert_same(mart: str, duck: dict, on_spark: dict) -> None:
    d, grain, types = duck[mart]
    s, _, _ = on_spark[mart]
    assert list(s.columns) == list(d.columns)
    assert len(s) == len(d) > 0
    d = d.sort_values(grain).reset_index(drop=True)
    s = s.sort_values(grain).reset_index(drop=True)
    for key in grain:
        assert _plain(s[key]).tolist() == _plain(d[key]).tolist(), f"{mart}: keys differ in {key}"
    for column in d.columns:
        left, right = _plain(d[column]), _plain(s[column])
        assert (left.isna() == right.isna()).all(), f"{mart}.{column}: NULLs in different rows"
        left, right = left[left.notna()], right[right.notna()]
        if pd.api.types.is_bool_dtype(left) or pd.api.types.is_bool_dtype(right):
            assert left.astype(bool).tolist() == right.astype(bool).tolist(), f"{mart}.{column}"
        elif pd.api.types.is_numeric_dtype(left):
            a, b = left.to_numpy(dtype=float), right.to_numpy(dtype=float)
            cent = (
                CENT
                if types[column].upper().startswith("DECIMAL") and types[column].endswith(", 2)")
                else 0.0
            )
            worst = np.max(np.abs(a - b) - np.maximum(RELATIVE * np.abs(a), cent), initial=-1.0)
            assert worst <= 0, f"{mart}.{column}: DuckDB and Spark differ beyond tolerance by {worst:.3g}"
        else:
            assert left.tolist() == right.tolist(), f"{mart}.{column}: values differ"
