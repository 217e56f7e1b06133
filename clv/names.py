"""The names the pipeline's parts share, each written once: layers, DAG ids, the warehouse pool,
the daily task order and the default history. The DAG files, the CLI, the steps and the tests
import them from here."""

from __future__ import annotations

import datetime as dt

# The SQLMesh layers, in build order; Soda checks each of them and the raw zone before them.
LAYERS = ("staging", "core", "intermediate", "marts")
CHECKED_LAYERS = ("raw", *LAYERS)

# A SQLMesh environment a user may name (backfills, deploys): lower-case letters, digits and
# underscores, starting with a letter. `clv.transform.environment_name` also refuses prod.
ENVIRONMENT_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

# The Airflow pool every warehouse-writing task runs in: one slot, so one writer at a time.
POOL = "clv_warehouse"

DAILY_DAG = "clv_daily_refresh"
QUALITY_DAG = "clv_quality_checks"
BACKFILL_DAG = "clv_backfill"
DEPLOY_DAG = "clv_deploy"
QUARANTINE_DAG = "clv_quarantine_reprocess"
ROLLBACK_DAG = "clv_rollback"
BACKUP_DAG = "clv_backup"
DAG_IDS = (DAILY_DAG, QUALITY_DAG, BACKFILL_DAG, DEPLOY_DAG, QUARANTINE_DAG, ROLLBACK_DAG, BACKUP_DAG)
# Every DAG writes the warehouse (or, like the backup, holds its lock). Runs waiting for it go in
# this order (clv.airflow.sensors): undoing a bad promotion first, then the scheduled refresh and
# its checks, then corrections and manual changes, the backup last.
WRITER_DAGS = (ROLLBACK_DAG, DAILY_DAG, QUALITY_DAG, QUARANTINE_DAG, BACKFILL_DAG, DEPLOY_DAG, BACKUP_DAG)

# The daily refresh's pipeline steps in order (the DAG adds resolve_business_date and the writer
# sensor before them); `clv run --no-airflow` runs the same steps in the same order.
DAILY_TASKS = (
    "extract",
    "load_raw",
    "scan_raw",
    *(f"transform_{layer}" for layer in LAYERS),
    "publish",
)

# Each task's log ends with a line that starts so (clv.airflow.tasks.summary_line); `clv run`
# prints those lines as `airflow dags test` moves through the tasks (clv.airflow.home.Progress).
SUMMARY_PREFIX = "clv summary:"

# The generated history's default span (`make run`, `clv run`, the daily DAG's first run).
DEFAULT_HISTORY_START = dt.date(2022, 1, 1)
DEFAULT_HISTORY_END = dt.date(2024, 12, 31)
