"""The `clv` command: every step of the pipeline, runnable without Airflow.

Errors a user can cause print one line and exit with code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from clv import settings


class UsageError(Exception):
    """A mistake in how the command was called or what it was pointed at (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_generate(args: argparse.Namespace) -> int:
    from generator.cli import main as generator_main

    return generator_main(args.generator_args)


def _cmd_fit(args: argparse.Namespace) -> int:
    """BG/NBD + Gamma-Gamma on any transaction log (bring your own data)."""
    from pathlib import Path

    from clv import btyd
    from clv import fit as byod

    try:
        result = byod.fit_file(
            Path(args.transactions),
            args.customer_col,
            args.date_col,
            args.amount_col,
            byod.parse_date(args.calibration_end),
            byod.parse_date(args.holdout_end) if args.holdout_end else None,
            args.time_unit,
        )
    except (byod.FitInputError, btyd.BtydError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print("\n".join(result.lines()))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """The main job so far: generate the default history if absent, load what landed, reconcile,
    and bring the SQLMesh models up to the latest business date."""
    from clv import ingest
    from clv.warehouse import WarehouseBusy, connect
    from generator import runner

    paths = settings.paths(args.data_dir)
    if not (paths.state / runner.META).exists():
        summary = runner.history(
            paths, args.customers, args.start, args.end, chaos=args.chaos, progress=sys.stderr.isatty()
        )
        print(summary.line())
    try:
        loaded = ingest.load(paths.data_dir)
        print("\n".join(loaded.lines()))
        con = connect(paths.warehouse)
    except (ingest.IngestError, WarehouseBusy) as e:
        raise UsageError(str(e)) from None
    rows = ingest.reconcile(con)
    con.close()
    bad = [r for r in rows if not r["reconciled"]]
    print(
        f"reconcile: {len(rows)} files, {sum(r['rows_in_file'] for r in rows):,} rows in files = "
        f"{sum(r['rows_in_raw'] for r in rows):,} in raw + {sum(r['rows_quarantined'] for r in rows):,} "
        f"quarantined; {len(bad)} mismatched"
    )
    from clv import quality, transform

    business_date = _latest_batch_date(paths)
    run_id = f"{business_date.isoformat()}-run"
    ctx = transform.context(paths.data_dir)
    try:
        con = ctx.engine_adapter.connection  # scans share the layer's connection: one writer
        raw = quality.scan(
            con, "raw", business_date, run_id=run_id, data_dir=paths.data_dir, raise_on_failure=False
        )
        print(raw.line())
        if not raw.ok:
            print("  raw checks failed: the models were not refreshed; see the report")
            return 1
        how = transform.refresh(ctx, business_date)
        print(f"transform: {how} the SQLMesh models up to business date {business_date}")
        for layer in quality.LAYERS[1:]:
            result = quality.scan(
                con, layer, business_date, run_id=run_id, data_dir=paths.data_dir, raise_on_failure=False
            )
            print(result.line())
            if not result.ok:
                print(f"  {layer} checks failed: " + ", ".join(c["name"] for c in result.failed))
                return 1
        marts = _marts_summary(ctx)
    finally:
        ctx.close()
    print(dataset_summary(paths))
    print(marts)
    print(f"Warehouse: {paths.warehouse} (raw, staging, core, intermediate, marts; ops.load_manifest)")
    return 1 if bad or loaded.failed else 0


def _marts_summary(ctx) -> str:
    q = ctx.engine_adapter.fetchall
    ((customers, at_risk, clv12, hist),) = q(
        "SELECT count(*), sum(revenue_at_risk_usd), sum(predicted_clv_12m_usd), sum(historical_clv_usd) "
        "FROM marts.mart_customer_360"
    )
    lines = [
        f"Marts: {customers:,} customers; historical CLV ${hist:,.0f}; predicted 12-month CLV "
        f"${clv12:,.0f}; revenue at risk ${at_risk:,.0f}"
    ]
    lines.append("  Top customers by predicted 12-month CLV:")
    for cid, p12, tier in q(
        "SELECT customer_id, predicted_clv_12m_usd, value_tier FROM marts.mart_clv "
        "ORDER BY predicted_clv_12m_usd DESC, customer_id LIMIT 5"
    ):
        lines.append(f"    {cid}  ${p12:>10,.2f}  {tier}")
    lines.append("  High-value customers most at risk:")
    for cid, prob, risk, tier in q(
        "SELECT customer_id, churn_probability, revenue_at_risk_usd, value_tier FROM marts.mart_churn_risk "
        "WHERE value_tier IN ('Top 10%', 'High') ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 5"
    ):
        lines.append(f"    {cid}  churn {prob:.0%}  at risk ${risk:>9,.2f}  {tier}")
    return "\n".join(lines)


def _cmd_load(args: argparse.Namespace) -> int:
    from clv import ingest
    from clv.warehouse import WarehouseBusy

    try:
        summary = ingest.load(
            settings.data_dir(args.data_dir),
            allow_additive_columns=args.allow_additive_columns,
            max_rows_per_file=args.max_rows_per_file,
        )
    except (ingest.IngestError, WarehouseBusy, ingest.RunawayBatch) as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from clv import ingest
    from clv.warehouse import WarehouseBusy, connect

    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UsageError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    try:
        con = connect(paths.warehouse)
    except WarehouseBusy as e:
        raise UsageError(str(e)) from None
    rows = ingest.reconcile(con)
    con.close()
    bad = [r for r in rows if not r["reconciled"]]
    if args.json:
        print(json.dumps({"files": len(rows), "mismatched": bad}, indent=2, default=str))
    else:
        total = sum(r["rows_in_file"] for r in rows)
        print(
            f"reconcile: {len(rows)} files, {total:,} rows in files = "
            f"{sum(r['rows_in_raw'] for r in rows):,} in raw + "
            f"{sum(r['rows_quarantined'] for r in rows):,} quarantined; {len(bad)} mismatched"
        )
        for r in bad:
            print(
                f"  MISMATCH {r['source_file']}: {r['rows_in_file']:,} in file, {r['rows_in_raw']:,} in raw, "
                f"{r['rows_quarantined']:,} quarantined (difference {r['difference']:,})"
            )
    return 1 if bad else 0


def _cmd_transform(args: argparse.Namespace) -> int:
    from clv import transform

    if args.write_external_models:
        transform.EXTERNAL_MODELS.write_text(transform.external_models_yaml())
        print(f"wrote {transform.EXTERNAL_MODELS}")
        return 0
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UsageError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = args.business_date or _latest_batch_date(paths)
    ctx = transform.context(paths.data_dir)
    try:
        if args.plan:
            transform.plan_prod(ctx, business_date)
            print(f"transform: planned and applied prod up to business date {business_date}")
            return 0
        ok = transform.run(ctx, business_date, layer=args.layer)
    finally:
        ctx.close()
    print(
        f"transform: run {'succeeded' if ok else 'FAILED'} up to business date {business_date}"
        + (f" (layer {args.layer})" if args.layer else "")
    )
    return 0 if ok else 1


def _latest_batch_date(paths: settings.Paths) -> dt.date:
    from clv.warehouse import connect

    con = connect(paths.warehouse)
    try:
        row = con.execute("SELECT max(batch_date) FROM ops.load_manifest WHERE status = 'loaded'").fetchone()
    finally:
        con.close()
    if not row or row[0] is None:
        raise UsageError("nothing loaded yet; run `clv load` first or pass --business-date")
    return row[0]


def _cmd_scan(args: argparse.Namespace) -> int:
    from clv import quality
    from clv.warehouse import WarehouseBusy, connect

    if args.write_raw_checks:
        for p in quality.write_raw_checks():
            print(f"wrote {p}")
        return 0
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UsageError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = args.business_date or _latest_batch_date(paths)
    try:
        con = connect(paths.warehouse)
    except WarehouseBusy as e:
        raise UsageError(str(e)) from None
    try:
        result = quality.scan(con, args.layer, business_date, data_dir=paths.data_dir, raise_on_failure=False)
    finally:
        con.close()
    print(result.line())
    for c in result.failed:
        print(f"  FAILED {c['name']} (value {c['value']})")
    for c in result.warned:
        print(f"  warned {c['name']} (value {c['value']})")
    for e in result.errors:
        print(f"  ERROR {e}")
    return 0 if result.ok else 1


def dataset_summary(paths: settings.Paths) -> str:
    """A short report on the landed data and the ground truth behind it."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from generator import runner

    meta = runner.read_meta(paths)
    lines = [
        f"Data directory: {paths.data_dir}",
        f"History: {meta['customers']:,} customers, {meta['start']} .. {meta['end']} "
        f"(seed {meta['seed']}, chaos {meta['chaos']})",
    ]
    batches = sorted(p for p in paths.landing.iterdir() if (p / "_manifest.json").exists())
    for b in batches:
        m = json.loads((b / "_manifest.json").read_text())
        rows = sum(f["rows"] for f in m["files"].values())
        size = sum(f["bytes"] for f in m["files"].values())
        lines.append(f"  batch {b.name:<24} {m['kind']:<8} {rows:>12,} rows {size / 1e6:>9,.1f} MB")
    truth = pcsv.read_csv(paths.truth / "customers.csv")
    churned = pc.sum(truth["churned"]).as_py()
    fut = pc.sum(truth["future_revenue_365d"]).as_py()
    lines += [
        f"Ground truth ({paths.truth}): {churned:,} of {truth.num_rows:,} customers "
        f"({churned / truth.num_rows:.1%}) had churned by {meta['end']}; "
        f"actual revenue in the next 365 days: ${fut:,.0f}",
    ]
    return "\n".join(lines)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {value!r}: use YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="clv", description="Customer lifetime value & churn pipeline.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser(
        "generate", help="synthetic source data (same as `python -m generator`)", add_help=False
    )
    g.add_argument("generator_args", nargs=argparse.REMAINDER)
    g.set_defaults(func=_cmd_generate)
    f = sub.add_parser(
        "fit",
        help="fit BG/NBD and Gamma-Gamma to a transaction CSV (with --holdout-end: predicted vs actual)",
    )
    f.add_argument("transactions", help="CSV file with a header row, one transaction per line")
    f.add_argument("--customer-col", default="customer_id", help="customer id column (default customer_id)")
    f.add_argument(
        "--date-col", default="date", help="transaction date column: YYYY-MM-DD or YYYYMMDD (default date)"
    )
    f.add_argument(
        "--amount-col", default="amount", help="transaction value column, 0 or more (default amount)"
    )
    f.add_argument(
        "--calibration-end", required=True, help="last day of the fitting period (YYYY-MM-DD or YYYYMMDD)"
    )
    f.add_argument(
        "--holdout-end", default=None, help="compare predictions with the transactions up to this day"
    )
    f.add_argument("--time-unit", choices=["day", "week"], default="day", help="unit of recency, T and alpha")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=_cmd_fit)
    ld = sub.add_parser("load", help="load landed batches into the warehouse's raw zone")
    ld.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    ld.add_argument(
        "--allow-additive-columns",
        action="store_true",
        help="load files whose only schema change is extra columns (dropped, with a warning)",
    )
    ld.add_argument(
        "--max-rows-per-file",
        type=int,
        default=None,
        help="refuse any file with more rows (default: $CLV_MAX_ROWS_PER_FILE, no limit)",
    )
    ld.add_argument("--json", action="store_true", help="print the summary as JSON")
    ld.set_defaults(func=_cmd_load)
    rc = sub.add_parser("reconcile", help="prove every landed row is in raw or in quarantine")
    rc.add_argument("--data-dir", default=None)
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=_cmd_reconcile)
    t = sub.add_parser("transform", help="run the SQLMesh models (plan with --plan)")
    t.add_argument("--data-dir", default=None)
    t.add_argument(
        "--business-date",
        type=_date,
        default=None,
        help="process intervals up to this date (default: the latest loaded batch)",
    )
    t.add_argument(
        "--layer",
        choices=["staging", "core", "intermediate", "marts"],
        default=None,
        help="run only this layer's models",
    )
    t.add_argument(
        "--plan",
        action="store_true",
        help="create or change models in prod and backfill (deploy), instead of a run",
    )
    t.add_argument(
        "--write-external-models",
        action="store_true",
        help="regenerate sqlmesh_project/external_models.yaml from the contract",
    )
    t.set_defaults(func=_cmd_transform)
    sc = sub.add_parser("scan", help="run a layer's Soda checks (exit 1 when a check fails or errors)")
    sc.add_argument("--layer", choices=["raw", "staging", "core", "intermediate", "marts"], default="raw")
    sc.add_argument("--data-dir", default=None)
    sc.add_argument("--business-date", type=_date, default=None, help="default: the latest loaded batch")
    sc.add_argument(
        "--write-raw-checks", action="store_true", help="regenerate soda_checks/raw/*.yml from the contract"
    )
    sc.set_defaults(func=_cmd_scan)
    r = sub.add_parser("run", help="the main job: generate the default data if absent, load it, reconcile")
    r.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    r.add_argument("--customers", type=int, default=settings.default_customers())
    r.add_argument("--start", type=_date, default=dt.date(2022, 1, 1))
    r.add_argument("--end", type=_date, default=dt.date(2024, 12, 31))
    r.add_argument("--chaos", default="realistic", choices=["none", "realistic", "heavy"])
    r.set_defaults(func=_cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"clv: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # user-facing errors raised by library modules
        from generator.profiles import GeneratorError

        if isinstance(e, GeneratorError):
            print(f"clv: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
