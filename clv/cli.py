"""The `clv` command: every step of the pipeline, runnable without Airflow.

Errors the pipeline raises on purpose (``clv.errors``) print one line and exit with their code
(2 for a user's mistake or a busy warehouse, 1 for failed checks); tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from clv import settings
from clv.errors import ClvError, UserError
from clv.names import CHECKED_LAYERS, DAILY_DAG, DEFAULT_HISTORY_END, DEFAULT_HISTORY_START, LAYERS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_generate(args: argparse.Namespace) -> int:
    from generator.cli import main as generator_main

    return generator_main(args.generator_args)


def _cmd_fit(args: argparse.Namespace) -> int:
    """BG/NBD and/or Pareto/NBD + Gamma-Gamma on any transaction log (bring your own data)."""
    import time
    from pathlib import Path

    from clv.stats import fit_file

    models = {"bgnbd": ("bgnbd",), "pareto-nbd": ("pareto_nbd",), "both": ("bgnbd", "pareto_nbd")}[args.model]
    plots = Path(args.plots) if args.plots else None
    if plots is not None:
        from clv.stats import fit_plots

        fit_plots.check_folder(plots)
    t0 = time.perf_counter()
    # one progress line on a terminal, rewritten in place and erased at the end (or before an
    # error, which stays one line); nothing when stderr is a file or a pipe, or with --json
    live = sys.stderr.isatty() and not args.json

    def progress(line: str) -> None:
        sys.stderr.write(f"\r\033[Kclv fit: {line} ({time.perf_counter() - t0:.1f} s)")
        sys.stderr.flush()

    try:
        result = fit_file.fit_file(
            Path(args.transactions),
            args.customer_col,
            args.date_col,
            args.amount_col,
            fit_file.parse_date(args.calibration_end),
            fit_file.parse_date(args.holdout_end) if args.holdout_end else None,
            args.time_unit,
            models=models,
            horizon_days=args.horizon_days,
            discount_rate=args.discount_rate,
            output=Path(args.output) if args.output else None,
            series=plots is not None,
            progress=progress if live else None,
        )
        written = []
        if plots is not None:
            if live:
                progress(f"drawing the figures in {plots}")
            written = fit_plots.write_all(result, plots)
    finally:
        if live:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
    if args.json:
        out = result.as_dict()
        out["plots"] = [str(p) for p in written]
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(result.lines()))
        for p in written:
            print(f"figure: {p}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """The main job: generate the default history if absent, then the daily refresh end to end
    through Airflow (`airflow dags test clv_daily_refresh`), then a summary of what came out."""
    import time

    from clv import ops, pipeline, publish
    from clv.airflow import home as airflow_home
    from generator import runner

    paths = settings.paths(args.data_dir)
    t0 = time.perf_counter()
    if not (paths.state / runner.META).exists():
        customers = settings.customers() if args.customers is None else args.customers
        summary = runner.history(
            paths, customers, args.start, args.end, chaos=args.chaos, progress=sys.stderr.isatty()
        )
        print(summary.line())
    if args.next_day and args.business_date:
        raise UserError("give --business-date or --next-day, not both")
    if args.next_day:
        business_date = pipeline.next_simulated_day(paths.data_dir)
    else:
        business_date = args.business_date or pipeline.latest_batch(paths.data_dir) or args.end
    if not args.rerun:
        from clv import confirm

        published = confirm.check(business_date, paths.data_dir)
        if published:
            print(published.line())
            confirm.record(published, paths.data_dir, run_id=f"confirm-{dt.datetime.now():%Y%m%dT%H%M%S}")
            print(ops.run_report(paths, published.dag_id, business_date, published.run_id))
            print(publish.serving_summary(paths))
            print(f"Done in {time.perf_counter() - t0:,.1f} s. Dashboard data: {paths.serving}")
            return 0
    if args.no_airflow:
        run_id = f"cli-{dt.datetime.now():%Y%m%dT%H%M%S}"
        print(f"daily refresh for business date {business_date} (in this process, run {run_id})")
        try:
            pipeline.daily(business_date, run_id, data_dir=paths.data_dir)
            rc = 0
        except (pipeline.CheckFailed, pipeline.SourceNotReady) as e:
            print(f"  FAILED: {e}")
            rc = 1
        dag_id, log = "clv-cli", None
    else:
        print(f"Airflow: {airflow_home.home(paths.data_dir)} (bootstrapping the metadata database and pool)")
        airflow_home.bootstrap(paths.data_dir)
        print(f"airflow dags test {DAILY_DAG} (business date {business_date}) ...", flush=True)
        rc, log = airflow_home.dags_test(
            DAILY_DAG, business_date, paths.data_dir, echo=lambda line: print(line, flush=True)
        )
        dag_id, run_id = DAILY_DAG, None
    print(ops.run_report(paths, dag_id, business_date, run_id))
    if rc != 0:
        print(f"The daily refresh FAILED; the marts and serving file keep the last good data. Log: {log}")
        return 1
    print(publish.serving_summary(paths))
    print(
        f"Done in {time.perf_counter() - t0:,.0f} s. Airflow UI: `make ui`; dashboard data: {paths.serving}"
    )
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from clv import ingest

    summary = ingest.load(
        settings.data_dir(args.data_dir),
        allow_additive_columns=args.allow_additive_columns,
        max_rows_per_file=args.max_rows_per_file,
    )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from clv import ingest
    from clv.warehouse import connect

    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    con = connect(paths.warehouse)
    rows = ingest.reconcile(con)
    con.close()
    bad = [r for r in rows if not r["reconciled"]]
    pending = [r for r in rows if r["pending_retry"]]
    if args.json:
        print(
            json.dumps(
                {"files": len(rows), "mismatched": bad, "pending_retry": pending}, indent=2, default=str
            )
        )
    else:
        total = sum(r["rows_in_file"] for r in rows)
        print(
            f"reconcile: {len(rows)} files, {total:,} rows in files = "
            f"{sum(r['rows_in_raw'] for r in rows):,} in raw + "
            f"{sum(r['rows_quarantined'] for r in rows):,} quarantined; {len(bad)} mismatched; "
            f"{len(pending)} waiting for a retry"
        )
        for r in pending:
            print(
                f"  PENDING {r['source_file']} (batch {r['batch']}): not loaded yet, retried on the next run: {r['message']}"
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
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = _business_date(paths, args.business_date)
    # on the Spark gateway this also exports the raw zone to Spark (clv/spark.py)
    ctx = transform.context(paths.data_dir)
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


def _cmd_scan(args: argparse.Namespace) -> int:
    from clv import quality
    from clv.warehouse import connect

    if args.write_raw_checks:
        for p in quality.write_raw_checks():
            print(f"wrote {p}")
        return 0
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = _business_date(paths, args.business_date)
    con = connect(paths.warehouse)
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


def _cmd_metrics(args: argparse.Namespace) -> int:
    from clv import anomalies, pipeline

    if args.write_checks:
        for p in anomalies.write_checks():
            print(f"wrote {p}")
        return 0
    paths = settings.paths(args.data_dir)
    if not paths.warehouse.exists():
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    business_date = _business_date(paths, args.business_date)
    layers = CHECKED_LAYERS if args.layer == "all" else (args.layer,)
    out = pipeline.observe(business_date, layers=layers, data_dir=paths.data_dir)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for o in out.values():
            counts = ", ".join(f"{n} {s}" for s, n in o["statuses"].items())
            print(f"{o['line']}: {counts}")
            for line in o["anomalies"]:
                print(f"  {line}")
    return 1 if any(o["failed"] for o in out.values()) else 0


def _business_date(paths: settings.Paths, given: dt.date | None) -> dt.date:
    """The date given, else the latest loaded batch."""
    from clv import pipeline

    if given:
        return given
    if not paths.warehouse.exists():
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv run` first")
    day = pipeline.latest_loaded_date(paths.data_dir)
    if day is None:
        raise UserError("nothing loaded yet; run `clv load` first or pass --business-date")
    return day


def _cmd_publish(args: argparse.Namespace) -> int:
    from clv import pipeline

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, args.business_date)
    out = pipeline.publish(day, data_dir=paths.data_dir)
    print(f"published {len(out['tables'])} tables ({sum(out['tables'].values()):,} rows) to {out['serving']}")
    return 0


def _cmd_environment(args: argparse.Namespace) -> int:
    """`clv deploy` and `clv backfill`: build in an isolated environment, check, print the review
    (clv.review), and promote when asked and every check passed (the DAGs' ``promote`` rule)."""
    from clv import pipeline, review, transform

    # Refused before anything is touched: prod in any spelling, a name SQLMesh would not take,
    # anything in --models but model names and SQLMesh selectors.
    args.environment = transform.environment_name(args.environment)
    models = transform.model_selectors(getattr(args, "models", None)) or None
    if getattr(args, "restate", False) and not models:
        raise UserError("--restate needs --models: name the models to recompute (e.g. staging.stg_orders)")
    paths = settings.paths(args.data_dir)
    if getattr(args, "restate", False):
        return _restate(args, models, paths)
    day = _business_date(paths, getattr(args, "end", None))
    try:
        staged = pipeline.stage_environment(
            day,
            args.environment,
            data_dir=paths.data_dir,
            start=getattr(args, "start", None),
            end=getattr(args, "end", None),
            models=models,
        )
    except pipeline.CandidateFailed as e:
        print(e.review.text())
        print(
            f"clv: checks failed in environment {args.environment}; prod is unchanged: {e}", file=sys.stderr
        )
        return 1
    candidate = review.Review.read(staged["review_report"])
    print(candidate.text())
    print(f"review: {staged['review_report']}")
    if not args.promote:
        print(
            f"not promoted: prod is unchanged (promote with --promote after inspecting *__{args.environment})"
        )
        return 0
    promoted = pipeline.promote(day, args.environment, data_dir=paths.data_dir, models=models)
    print(f"promoted {len(promoted['promoted'])} models from {args.environment} to prod")
    out = pipeline.publish(day, data_dir=paths.data_dir)
    print(f"published {out['serving']}")
    return 0


def _restate(args: argparse.Namespace, models: list[str] | None, paths) -> int:
    """`clv backfill --restate`: review the restatement (in prod, in place: SQLMesh restates
    unchanged models only there), and with --promote restate, check prod and republish."""
    from clv import pipeline

    day = _business_date(paths, args.end)
    reviewed = pipeline.review_restatement(
        day, data_dir=paths.data_dir, models=models, start=args.start, end=args.end
    )
    print(reviewed["review_markdown"])
    if not args.promote:
        print("not restated: prod is unchanged (restate with --promote)")
        return 0
    try:
        out = pipeline.restate(day, data_dir=paths.data_dir, models=models, start=args.start, end=args.end)
    except pipeline.CheckFailed as e:
        print(
            f"clv: prod's checks failed after the restatement; the serving file is unchanged: {e}",
            file=sys.stderr,
        )
        return 1
    print(f"{out['line']}: {len(out['cleared'])} models recomputed, prod's checks passed")
    published = pipeline.publish(day, data_dir=paths.data_dir)
    print(f"published {published['serving']}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    """Undo the latest promotion: prod back to the versions it served before, then republish."""
    from clv import pipeline, rollback

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, args.business_date)
    out = rollback.roll_back(day, data_dir=paths.data_dir)
    print(
        f"rolled back {out['promotion']}: prod serves its previous versions of {', '.join(out['restored'])}"
    )
    if out["caught_up"]:
        print(f"  brought up to {day}: {', '.join(out['caught_up'])}")
    published = pipeline.publish(day, data_dir=paths.data_dir)
    print(f"published {published['serving']}")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clv import backup

    out = backup.backup(out=Path(args.out) if args.out else None, data_dir=args.data_dir)
    print("\n".join(out["lines"]))
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clv import backup

    out = backup.restore(Path(args.folder), data_dir=args.data_dir, force=args.force)
    print(
        f"restored the backup of {out['created_at']} from {out['restored']}; landed files it had not "
        "loaded load on the next run"
    )
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from clv import quality_run
    from clv.errors import CheckFailed

    paths = settings.paths(args.data_dir)
    day = _business_date(paths, args.business_date)
    quality_run.reset_report(day, data_dir=paths.data_dir)
    try:
        for part in (
            quality_run.sqlmesh_tests,
            quality_run.sqlmesh_audits,
            quality_run.full_scan,
            quality_run.reconcile_loads,
        ):
            part(day, data_dir=paths.data_dir)
        out = quality_run.report(day, data_dir=paths.data_dir)
    except CheckFailed as e:
        print(f"clv: {e}", file=sys.stderr)
        return 1
    print("\n".join(out["lines"]))
    print(f"report: {out['report']}")
    return 0


def _cmd_notify(args: argparse.Namespace) -> int:
    """The Slack and e-mail notifiers: a test message to every destination, or the open problems."""
    from clv import notify

    paths = settings.paths(args.data_dir)
    if args.test:
        messages = notify.send_test(data_dir=paths.data_dir)
        for m in messages:
            print(f"  {m.target}: " + ("sent" if m.delivered else f"FAILED ({m.error})"))
        failed = sum(not m.delivered for m in messages)
        print(f"{len(messages) - failed}/{len(messages)} test messages sent")
        return 1 if failed else 0
    conf = settings.notify_settings()
    owners = notify.load_owners(conf)  # a malformed owners file is a one-line error here
    state = notify.read_state(paths.data_dir)
    if not conf.configured:
        print("notifications: off (set CLV_SLACK_WEBHOOK_URL or CLV_SMTP_HOST; see README)")
    else:
        targets = notify.targets_of([owners.default, *owners.rules], conf)
        print(f"notifications: {len(targets)} destinations, {len(owners.rules)} owner rules")
    print(f"open problems: {len(state)}")
    for entry in sorted(state.values(), key=lambda e: e["first_seen"]):
        print(f"  {entry['line'][:160]} (since {entry['first_seen'][:16]}, seen {entry['seen']} times)")
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    """The data steward's loop: list what is quarantined, export rows for correction, reprocess
    the corrected file as a new batch (and, unless --no-run, load it and refresh every layer)."""
    from pathlib import Path

    from clv import pipeline, quarantine

    paths = settings.paths(args.data_dir)
    if args.quarantine_command == "list":
        groups = quarantine.summary(paths.data_dir, args.batch, args.source, args.reason)
        if args.json:
            print(json.dumps(groups, indent=2, default=str))
        else:
            print("\n".join(quarantine.summary_lines(groups)))
        return 0
    if args.quarantine_command == "export":
        out = quarantine.export(args.batch, args.source, Path(args.out), paths.data_dir)
        print(
            f"exported {out['rows']:,} quarantined {out['source']} rows of batch {out['batch']} to {out['out']}: "
            f"correct the values (keep {quarantine.CORRECTS}; delete rows you cannot fix), then "
            f"`clv quarantine reprocess {out['out']}`"
        )
        return 0
    day = _business_date(paths, args.business_date)
    out = pipeline.write_correction(day, Path(args.file), data_dir=paths.data_dir)
    print(
        f"{'wrote' if out['written'] else 'already written:'} batch {out['batch']} ({out['rows']:,} corrected "
        f"{out['source']} rows of batch {out['corrects']}) in {out['folder']}"
    )
    if args.no_run:
        print("not loaded: the next daily run (or `clv quarantine reprocess` without --no-run) takes it in")
        return 0
    run_id = f"quarantine-{dt.datetime.now():%Y%m%dT%H%M%S}"
    print(
        f"refreshing business date {day} (load, raw checks, every layer restating {out['batch_date']}, publish)"
    )
    try:
        pipeline.refresh(day, run_id, data_dir=paths.data_dir)
    except pipeline.CheckFailed as e:
        print(f"  FAILED: {e}")
        return 1
    return 0


def _cmd_airflow(args: argparse.Namespace) -> int:
    from clv.airflow import home as airflow_home

    airflow_home.bootstrap(args.data_dir)
    return airflow_home.airflow(args.airflow_args, args.data_dir, check=False).returncode


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from clv.airflow import home as airflow_home

    h = airflow_home.bootstrap(args.data_dir, force=True)
    print(
        f"Airflow home {h}: metadata database migrated, pool {airflow_home.POOL} "
        f"({airflow_home.pool_slots(args.data_dir)} slot), login {airflow_home.ADMIN} "
        f"(password in {h / 'passwords.json'})"
    )
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from clv.airflow import home as airflow_home

    h = airflow_home.bootstrap(args.data_dir)
    print(
        f"Airflow UI: http://localhost:{settings.airflow_port()}  user: {airflow_home.ADMIN}  "
        f"password: {airflow_home.admin_password(args.data_dir)}  (stored in {h / 'passwords.json'})\n"
        "DAGs start paused: unpause one with its toggle, or trigger it with the play button. Ctrl-C stops.",
        flush=True,
    )
    env = airflow_home.environ(args.data_dir)
    os.execve(airflow_home.airflow_bin(), [airflow_home.airflow_bin(), "standalone"], env)
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
    port = settings.dashboard_port() if args.port is None else args.port
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port} is not a port number (1-65535)")
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


def _positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"{value!r}: use a positive number")
    return v


def _rate(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"{value!r}: use an annual rate of 0 or more (0.1 = 10%)")
    return v


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
        help="fit BG/NBD and/or Pareto/NBD and Gamma-Gamma to a transaction CSV (with --holdout-end: predicted vs actual)",
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
    f.add_argument(
        "--model",
        choices=["bgnbd", "pareto-nbd", "both"],
        default="bgnbd",
        help="purchase model (default bgnbd); both: fit both and compare them",
    )
    f.add_argument(
        "--output",
        default=None,
        help="write one row per customer with every prediction: FILE.csv or FILE.parquet",
    )
    f.add_argument(
        "--horizon-days",
        type=_positive_float,
        default=365.0,
        help="horizon of the value columns of --output, in days (default 365)",
    )
    f.add_argument(
        "--discount-rate",
        type=_rate,
        default=0.0,
        help="annual discount rate of the value columns (0.1 = 10%% a year; default 0)",
    )
    f.add_argument("--plots", default=None, help="write PNG figures to this folder (created if missing)")
    f.add_argument("--json", action="store_true", help="print one JSON object (and no progress lines)")
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
        choices=LAYERS,
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
    sc.add_argument("--layer", choices=CHECKED_LAYERS, default="raw")
    sc.add_argument("--data-dir", default=None)
    sc.add_argument("--business-date", type=_date, default=None, help="default: the latest loaded batch")
    sc.add_argument(
        "--write-raw-checks", action="store_true", help="regenerate soda_checks/raw/*.yml from the contract"
    )
    sc.set_defaults(func=_cmd_scan)
    me = sub.add_parser(
        "metrics",
        help="record the metric history of a business date and judge it against its history (exit 1 on a fail-level anomaly)",
    )
    me.add_argument("--layer", choices=("all", *CHECKED_LAYERS), default="all")
    me.add_argument("--data-dir", default=None)
    me.add_argument("--business-date", type=_date, default=None, help="default: the latest loaded batch")
    me.add_argument("--json", action="store_true")
    me.add_argument(
        "--write-checks", action="store_true", help="regenerate soda_checks/*/metric_anomalies.yml"
    )
    me.set_defaults(func=_cmd_metrics)
    r = sub.add_parser(
        "run",
        help="the main job: generate the default data if absent, then the daily refresh through Airflow",
    )
    r.add_argument("--data-dir", default=None, help="default: $CLV_DATA_DIR or ./data")
    r.add_argument(
        "--customers",
        type=int,
        default=None,
        help="customers in the history (default: $CLV_CUSTOMERS or 100000)",
    )
    r.add_argument("--start", type=_date, default=DEFAULT_HISTORY_START, help="history start (first run)")
    r.add_argument("--end", type=_date, default=DEFAULT_HISTORY_END, help="history end (first run)")
    r.add_argument("--chaos", default="realistic", choices=["none", "realistic", "heavy"])
    r.add_argument(
        "--business-date",
        type=_date,
        default=None,
        help="the business day to process (default: the latest landed batch); later days are generated",
    )
    r.add_argument(
        "--next-day",
        action="store_true",
        help="process the next simulated day: the day after the latest generated batch",
    )
    r.add_argument("--no-airflow", action="store_true", help="run the same steps in this process")
    r.add_argument(
        "--rerun",
        action="store_true",
        help="run the day even when it is already published and nothing changed (default: confirm it)",
    )
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
    dp.add_argument("--no-promote", dest="promote", action="store_false", help="build, check and review only")
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
    bf.add_argument(
        "--restate",
        action="store_true",
        help="recompute unchanged --models for [--start, --end] in prod, in place (SQLMesh restates "
        "only there); with --promote: restate, check prod, republish only if the checks pass",
    )
    bf.set_defaults(func=_cmd_environment)
    rb = sub.add_parser(
        "rollback", help="undo the latest promotion: prod back to its previous versions, republish"
    )
    rb.add_argument("--data-dir", default=None)
    rb.add_argument("--business-date", type=_date, default=None, help="default: the latest loaded batch")
    rb.set_defaults(func=_cmd_rollback)
    bk = sub.add_parser(
        "backup", help="a consistent copy of the warehouse and serving file, taken under the lock"
    )
    bk.add_argument("--data-dir", default=None)
    bk.add_argument("--out", default=None, help="a new folder (default: <data dir>/backups/<time>)")
    bk.set_defaults(func=_cmd_backup)
    rs = sub.add_parser("restore", help="put a backup's warehouse and serving file back in place")
    rs.add_argument("folder", help="a folder `clv backup` wrote")
    rs.add_argument("--data-dir", default=None)
    rs.add_argument("--force", action="store_true", help="even over a warehouse newer than the backup")
    rs.set_defaults(func=_cmd_restore)
    qc = sub.add_parser(
        "quality", help="SQLMesh tests + audits, every Soda check, the reconciliation: one report"
    )
    qc.add_argument("--data-dir", default=None)
    qc.add_argument("--business-date", type=_date, default=None)
    qc.set_defaults(func=_cmd_quality)
    qr = sub.add_parser(
        "quarantine", help="list quarantined rows, export them for correction, reprocess the corrected file"
    )
    qsub = qr.add_subparsers(dest="quarantine_command", required=True, parser_class=_Parser)
    ql = qsub.add_parser(
        "list", help="quarantined rows by batch, source and reason, and how many were reprocessed"
    )
    ql.add_argument("--data-dir", default=None)
    ql.add_argument("--batch", default=None, help="only this batch (a landing folder name)")
    ql.add_argument("--source", default=None, help="only this source (orders, customers, ...)")
    ql.add_argument("--reason", default=None, help="only reasons containing this text (case ignored)")
    ql.add_argument("--json", action="store_true")
    qe = qsub.add_parser(
        "export", help="write a batch's still-quarantined rows of one source to a CSV to correct"
    )
    qe.add_argument("--data-dir", default=None)
    qe.add_argument("--batch", required=True, help="the batch (landing folder name) the rows came in")
    qe.add_argument("--source", required=True, help="the source (orders, customers, ...)")
    qe.add_argument("--out", required=True, help="the CSV to write")
    qp = qsub.add_parser(
        "reprocess", help="hand a corrected export back as a new batch; load it and refresh every layer"
    )
    qp.add_argument("file", help="the corrected CSV (from `clv quarantine export`)")
    qp.add_argument("--data-dir", default=None)
    qp.add_argument("--business-date", type=_date, default=None, help="default: the latest loaded batch")
    qp.add_argument("--no-run", action="store_true", help="only write the batch; the next daily run loads it")
    for q in (ql, qe, qp):
        q.set_defaults(func=_cmd_quarantine)
    nt = sub.add_parser(
        "notify",
        help="the Slack and e-mail notifiers: open problems, or --test to send a test message everywhere",
    )
    nt.add_argument("--data-dir", default=None)
    nt.add_argument(
        "--test",
        action="store_true",
        help="send a test message to every configured destination (exit 1 when one fails)",
    )
    nt.set_defaults(func=_cmd_notify)
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
    except ClvError as e:  # the one rule: a one-line message, the error's exit code
        print(f"clv: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
