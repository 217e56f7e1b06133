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
    """The main job: generate the default history if absent, then the daily refresh end to end
    through Airflow (`airflow dags test clv_daily_refresh`), then a summary of what came out."""
    import time

    from clv import airflow_env, pipeline
    from generator import runner

    paths = settings.paths(args.data_dir)
    t0 = time.perf_counter()
    if not (paths.state / runner.META).exists():
        summary = runner.history(
            paths, args.customers, args.start, args.end, chaos=args.chaos, progress=sys.stderr.isatty()
        )
        print(summary.line())
    business_date = args.business_date or pipeline.latest_batch(paths.data_dir) or args.end
    if args.no_airflow:
        run_id = f"cli-{dt.datetime.now():%Y%m%dT%H%M%S}"
        print(f"daily refresh for business date {business_date} (in this process, run {run_id})")
        try:
            pipeline.daily(paths.data_dir, business_date, run_id)
            rc = 0
        except (pipeline.CheckFailed, pipeline.SourceNotReady) as e:
            print(f"  FAILED: {e}")
            rc = 1
        dag_id, log = "clv-cli", None
    else:
        print(f"Airflow: {airflow_env.home(paths.data_dir)} (bootstrapping the metadata database and pool)")
        try:
            airflow_env.bootstrap(paths.data_dir)
        except RuntimeError as e:
            raise UsageError(str(e)) from None
        print(f"airflow dags test clv_daily_refresh (business date {business_date}) ...", flush=True)
        rc, log = airflow_env.dags_test("clv_daily_refresh", business_date, paths.data_dir)
        dag_id, run_id = "clv_daily_refresh", None
    print(run_report(paths, dag_id, business_date, run_id))
    if rc != 0:
        print(f"The daily refresh FAILED; the marts and serving file keep the last good data. Log: {log}")
        return 1
    print(serving_summary(paths))
    print(
        f"Done in {time.perf_counter() - t0:,.0f} s. Airflow UI: `make ui`; dashboard data: {paths.serving}"
    )
    return 0


def run_report(paths: settings.Paths, dag_id: str, business_date: dt.date, run_id: str | None) -> str:
    """Per-task status, duration and rows of the latest run (from ops.pipeline_runs), and its alerts."""
    import duckdb

    from clv.warehouse import WarehouseBusy, connect

    if not paths.warehouse.exists():
        return "no warehouse yet"
    try:
        con = connect(paths.warehouse, read_only=True)  # waits while a manual `clv load` writes
    except WarehouseBusy as e:
        return f"no run report: {e}"
    try:
        if run_id is None:
            row = con.execute(
                "SELECT run_id FROM ops.pipeline_runs WHERE dag_id = ? AND business_date = ? "
                "ORDER BY finished_at DESC LIMIT 1",
                [dag_id, business_date],
            ).fetchone()
            run_id = row[0] if row else ""
        steps = con.execute(
            "SELECT task_id, status, duration_seconds, rows_processed FROM ops.pipeline_runs "
            "WHERE dag_id = ? AND run_id = ? ORDER BY started_at",
            [dag_id, run_id],
        ).fetchall()
        alerts = con.execute(
            "SELECT severity, task_id, summary FROM ops.alerts WHERE run_id = ? ORDER BY alerted_at",
            [run_id],
        ).fetchall()
    except duckdb.CatalogException:
        return "no pipeline runs recorded yet"
    finally:
        con.close()
    lines = [f"Run {run_id} (business date {business_date}):"]
    for task_id, status, seconds, rows in steps:
        rows_txt = "" if rows is None else f"{rows:>12,} rows"
        lines.append(f"  {task_id:<24} {status:<8} {seconds:>7.1f} s {rows_txt}")
    lines += [f"  ALERT [{sev}] {task}: {summary}" for sev, task, summary in alerts]
    return "\n".join(lines)


def serving_summary(paths: settings.Paths) -> str:
    """What a manager asks first, read from the serving file (never the warehouse)."""
    import duckdb

    con = duckdb.connect(str(paths.serving), read_only=True)
    try:
        q = con.execute
        ((day, published),) = q("SELECT business_date, published_at FROM serving_info").fetchall()
        ((customers, at_risk, clv12, hist),) = q(
            "SELECT count(*), sum(revenue_at_risk_usd), sum(predicted_clv_12m_usd), sum(historical_clv_usd) "
            "FROM mart_customer_360"
        ).fetchall()
        lines = [
            f"Serving file {paths.serving} (business date {day}, published {published:%Y-%m-%d %H:%M:%S})",
            f"  {customers:,} customers; historical CLV ${hist:,.0f}; predicted 12-month CLV ${clv12:,.0f}; "
            f"revenue at risk ${at_risk:,.0f}",
            "  Top customers by predicted 12-month CLV:",
        ]
        for cid, p12, tier in q(
            "SELECT customer_id, predicted_clv_12m_usd, value_tier FROM mart_clv "
            "ORDER BY predicted_clv_12m_usd DESC, customer_id LIMIT 5"
        ).fetchall():
            lines.append(f"    {cid}  ${p12:>10,.2f}  {tier}")
        lines.append("  High-value customers most at risk:")
        for cid, prob, risk, tier in q(
            "SELECT customer_id, churn_probability, revenue_at_risk_usd, value_tier FROM mart_churn_risk "
            "WHERE value_tier IN ('Top 10%', 'High') ORDER BY revenue_at_risk_usd DESC, customer_id LIMIT 5"
        ).fetchall():
            lines.append(f"    {cid}  churn {prob:.0%}  at risk ${risk:>9,.2f}  {tier}")
        checks = q(
            "SELECT layer, count(*) FILTER (outcome = 'pass'), count(*) FILTER (outcome = 'warn'), "
            "count(*) FILTER (outcome NOT IN ('pass', 'warn')) FROM check_results GROUP BY layer "
            "ORDER BY list_position(['raw', 'staging', 'core', 'intermediate', 'marts'], layer)"
        ).fetchall()
        lines.append(
            "  Checks: "
            + "; ".join(f"{layer} {p} passed, {w} warned, {f} failed" for layer, p, w, f in checks)
        )
    finally:
        con.close()
    lines.append(f"  Reports: {paths.reports}")
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
    from clv.spark import SparkSyncError
    from clv.warehouse import WarehouseBusy

    if args.write_external_models:
        transform.EXTERNAL_MODELS.write_text(transform.external_models_yaml())
        print(f"wrote {transform.EXTERNAL_MODELS}")
        return 0
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UsageError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = args.business_date or _latest_batch_date(paths)
    try:  # on the Spark gateway this also exports the raw zone to Spark (clv/spark.py)
        ctx = transform.context(paths.data_dir)
    except (ValueError, WarehouseBusy, SparkSyncError) as e:
        raise UsageError(str(e)) from None
    try:
        if args.plan:
            transform.plan_prod(ctx, business_date)
            ok = True
            print(f"transform: planned and applied prod up to business date {business_date}")
        else:
            ok = transform.run(ctx, business_date, layer=args.layer)
            print(
                f"transform: run {'succeeded' if ok else 'FAILED'} up to business date {business_date}"
                + (f" (layer {args.layer})" if args.layer else "")
            )
        slowest = transform.slowest_models(ctx)
    finally:
        ctx.close()
    if slowest:
        print("slowest models: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in slowest))
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


def _business_date(paths: settings.Paths, given: dt.date | None) -> dt.date:
    if given:
        return given
    if not paths.warehouse.exists():
        raise UsageError(f"no warehouse at {paths.warehouse}; run `clv run` first")
    return _latest_batch_date(paths)


def _step_errors():
    from clv import pipeline, transform
    from clv.publish import PublishError
    from clv.warehouse import WarehouseBusy

    return (WarehouseBusy, transform.TransformError, PublishError, pipeline.CheckFailed, ValueError)


def _cmd_publish(args: argparse.Namespace) -> int:
    from clv import pipeline

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, args.business_date)
    try:
        out = pipeline.publish(paths.data_dir, day)
    except _step_errors() as e:
        raise UsageError(str(e)) from None
    print(f"published {len(out['tables'])} tables ({sum(out['tables'].values()):,} rows) to {out['serving']}")
    return 0


def _cmd_environment(args: argparse.Namespace) -> int:
    """`clv deploy` and `clv backfill`: build in an isolated environment, check, maybe promote."""
    from clv import pipeline

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, getattr(args, "end", None))
    models = getattr(args, "models", None) or None
    try:
        staged = pipeline.stage_environment(
            paths.data_dir,
            day,
            args.environment,
            start=getattr(args, "start", None),
            end=getattr(args, "end", None),
            models=models,
        )
        print(f"environment {staged['environment']}: built {len(staged['changed'])} changed models")
        for name in staged["changed"]:
            print(f"  {name}")
        for line in staged["checks"]:
            print(f"  {line}")
        if not args.promote:
            print(
                f"not promoted: prod is unchanged (promote with --promote after inspecting *__{args.environment})"
            )
            return 0
        promoted = pipeline.promote(paths.data_dir, day, args.environment, models=models)
        print(f"promoted {len(promoted['promoted'])} models from {args.environment} to prod")
        out = pipeline.publish(paths.data_dir, day)
        print(f"published {out['serving']}")
    except pipeline.CheckFailed as e:
        print(
            f"clv: checks failed in environment {args.environment}; prod is unchanged: {e}", file=sys.stderr
        )
        return 1
    except _step_errors() as e:
        raise UsageError(str(e)) from None
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from clv import pipeline

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, args.business_date)
    pipeline.reset_quality_report(paths.data_dir, day)
    try:
        for func in (
            pipeline.sqlmesh_tests,
            pipeline.sqlmesh_audits,
            pipeline.full_scan,
            pipeline.reconcile_loads,
        ):
            func(paths.data_dir, day)
        out = pipeline.quality_report(paths.data_dir, day)
    except pipeline.CheckFailed as e:
        print(f"clv: {e}", file=sys.stderr)
        return 1
    except _step_errors() as e:
        raise UsageError(str(e)) from None
    print("\n".join(out["lines"]))
    print(f"report: {out['report']}")
    return 0


def _cmd_airflow(args: argparse.Namespace) -> int:
    from clv import airflow_env

    airflow_env.bootstrap(args.data_dir)
    return airflow_env.airflow(args.airflow_args, args.data_dir, check=False).returncode


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from clv import airflow_env

    try:
        h = airflow_env.bootstrap(args.data_dir, force=True)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    print(
        f"Airflow home {h}: metadata database migrated, pool {airflow_env.POOL} "
        f"({airflow_env.pool_slots(args.data_dir)} slot), login {airflow_env.ADMIN} "
        f"(password in {h / 'passwords.json'})"
    )
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from clv import airflow_env

    h = airflow_env.bootstrap(args.data_dir)
    print(
        f"Airflow UI: http://localhost:{airflow_env.port()}  user: {airflow_env.ADMIN}  "
        f"password: {airflow_env.admin_password(args.data_dir)}  (stored in {h / 'passwords.json'})\n"
        "DAGs start paused: unpause one with its toggle, or trigger it with the play button. Ctrl-C stops.",
        flush=True,
    )
    env = airflow_env.environ(args.data_dir)
    os.execve(airflow_env.airflow_bin(), [airflow_env.airflow_bin(), "standalone"], env)
    return 0  # not reached


def dashboard_argv(port: int) -> list[str]:
    """`streamlit run dashboard/app.py` on localhost only, headless, without usage statistics."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(settings.PROJECT_ROOT / "dashboard" / "app.py"),
        "--server.headless=true",
        "--server.address=localhost",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--browser.serverAddress=localhost",
        f"--browser.serverPort={port}",
        "--client.toolbarMode=minimal",
    ]


def _cmd_dashboard(args: argparse.Namespace) -> int:
    import os

    paths = settings.paths(args.data_dir)
    try:
        port = settings.dashboard_port() if args.port is None else args.port
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number (1-65535)")
    print(f"Dashboard: http://localhost:{port}  (reads {paths.serving}; Ctrl-C stops)", flush=True)
    if not paths.serving.exists():
        print("  no serving file yet: the page will say to run `make run` first", flush=True)
    env = {
        **os.environ,
        "CLV_DATA_DIR": str(paths.data_dir),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    argv = dashboard_argv(port)
    os.execve(argv[0], argv, env)
    return 0  # not reached


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
    r = sub.add_parser(
        "run",
        help="the main job: generate the default data if absent, then the daily refresh through Airflow",
    )
    r.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    r.add_argument("--customers", type=int, default=settings.default_customers())
    r.add_argument("--start", type=_date, default=dt.date(2022, 1, 1), help="history start (first run)")
    r.add_argument("--end", type=_date, default=dt.date(2024, 12, 31), help="history end (first run)")
    r.add_argument("--chaos", default="realistic", choices=["none", "realistic", "heavy"])
    r.add_argument(
        "--business-date",
        type=_date,
        default=None,
        help="the business day to process (default: the latest landed batch); later days are generated",
    )
    r.add_argument("--no-airflow", action="store_true", help="run the same steps in this process")
    r.set_defaults(func=_cmd_run)
    pb = sub.add_parser("publish", help="rebuild the serving file from the marts (atomic swap)")
    pb.add_argument("--data-dir", default=None)
    pb.add_argument("--business-date", type=_date, default=None)
    pb.set_defaults(func=_cmd_publish)
    dp = sub.add_parser(
        "deploy", help="model changes: plan into an isolated environment, check, promote to prod, publish"
    )
    dp.add_argument("--data-dir", default=None)
    dp.add_argument("--environment", default="deploy")
    dp.add_argument("--no-promote", dest="promote", action="store_false", help="build and check only")
    dp.set_defaults(func=_cmd_environment)
    bf = sub.add_parser(
        "backfill", help="build a date range in an isolated environment, check it, promote with --promote"
    )
    bf.add_argument("--data-dir", default=None)
    bf.add_argument("--start", type=_date, default=None)
    bf.add_argument("--end", type=_date, default=None)
    bf.add_argument("--models", nargs="*", default=None, help="model names or selectors (marts.*)")
    bf.add_argument("--environment", default="backfill")
    bf.add_argument("--promote", action="store_true")
    bf.set_defaults(func=_cmd_environment)
    qc = sub.add_parser(
        "quality", help="SQLMesh tests + audits, every Soda check, the reconciliation: one report"
    )
    qc.add_argument("--data-dir", default=None)
    qc.add_argument("--business-date", type=_date, default=None)
    qc.set_defaults(func=_cmd_quality)
    af = sub.add_parser(
        "airflow",
        help="the airflow CLI with this project's settings (e.g. clv airflow dags list)",
        add_help=False,
    )
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=_cmd_airflow, data_dir=None)
    bs = sub.add_parser(
        "bootstrap", help="create or migrate Airflow's metadata database, the warehouse pool and the login"
    )
    bs.add_argument("--data-dir", default=None)
    bs.set_defaults(func=_cmd_bootstrap)
    ui = sub.add_parser("ui", help="Airflow's web UI on localhost (airflow standalone)")
    ui.add_argument("--data-dir", default=None)
    ui.set_defaults(func=_cmd_ui)
    db = sub.add_parser("dashboard", help="the Streamlit dashboard over the serving file, on localhost")
    db.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    db.add_argument(
        "--port", type=int, default=None, help="default: $CLV_DASHBOARD_PORT or 8501 (localhost only)"
    )
    db.set_defaults(func=_cmd_dashboard)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, settings.SettingError) as e:
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
