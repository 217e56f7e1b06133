"""Backups of the warehouse, taken while no writer runs, and their restore.

A backup is a folder: ``warehouse.duckdb`` (raw and quarantine, every model's tables and views,
``ops``, and SQLMesh's state, which lives in the warehouse unless the team deployment puts it in
PostgreSQL), ``serving.duckdb`` and ``backup.json`` (what was copied, its checksums and the
warehouse's *watermark*: its latest load, SQLMesh interval and prod plan).

How: the backup opens the warehouse the way every writer does (``clv.warehouse.connect``: it waits
for the current writer, then holds DuckDB's file lock, so no other process can write or read
meanwhile), runs ``CHECKPOINT`` so the file alone holds the whole database (the write-ahead log
is folded in), and copies the file while still holding the lock. Why a file copy rather than
DuckDB's ``EXPORT DATABASE``: the copy is the database byte for byte — SQLMesh's state, the
physical tables and the views pointing at them, sequences and types all come back exactly as they
were, and a restore is one atomic rename instead of re-creating hundreds of objects in dependency
order. It is a sequential read, as fast as the disk. What it costs: the copy is DuckDB's storage
format, so it is restored by the same DuckDB (the pinned one), and it keeps the file's free
blocks. The copy is opened and its watermark read back before the backup is declared complete.

The landing folder is not copied: it is the source. After a restore, every landed file the
restored load manifest does not list is loaded by the next run, so nothing landed is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import duckdb

from clv import ops, settings
from clv.errors import UserError
from clv.warehouse import connect

MANIFEST = "backup.json"
WAREHOUSE, SERVING = "warehouse.duckdb", "serving.duckdb"
KEEP = 7  # scheduled backups kept in <data dir>/backups (the clv_backup DAG)


class BackupError(UserError):
    """A backup cannot be taken or restored as asked."""


def _scalar(con, sql: str):
    try:
        return con.execute(sql).fetchone()[0]
    except duckdb.CatalogException:  # the table does not exist (yet)
        return None


def watermark(con) -> dict:
    """How far the warehouse has got: its latest load, the latest interval SQLMesh recorded and
    when prod was last planned (None where there is none yet). Each only grows."""
    finalized = _scalar(con, "SELECT max(finalized_ts) FROM sqlmesh._environments WHERE name = 'prod'")
    return {
        "last_load_id": _scalar(con, "SELECT max(load_id) FROM ops.load_manifest"),
        "last_interval_ts": _scalar(con, "SELECT max(created_ts) FROM sqlmesh._intervals"),
        "prod_finalized_ts": finalized,
    }


def newer(current: dict, backup: dict) -> list[str]:
    """What the current warehouse has that the backup has not."""
    what = {
        "last_load_id": "later loads",
        "last_interval_ts": "later SQLMesh runs",
        "prod_finalized_ts": "a later prod plan",
    }
    return [text for key, text in what.items() if (current.get(key) or 0) > (backup.get(key) or 0)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_watermark(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return watermark(con)
    finally:
        con.close()


def default_folder(data_dir: Path) -> Path:
    return data_dir / "backups" / dt.datetime.now().strftime("%Y%m%dT%H%M%S")


def backup(
    business_date: dt.date | None = None,
    *,
    out: Path | None = None,
    data_dir: Path | None = None,
    step: ops.StepRun | None = None,
) -> dict:
    """Copy the warehouse (and the serving file) into ``out`` (default
    ``<data dir>/backups/<time>``), consistently: see the module's docstring."""
    paths = settings.paths(data_dir)
    if settings.sqlmesh_gateway() != "duckdb":
        raise BackupError("clv backup copies the DuckDB warehouse; on Spark, back up its warehouse folder")
    if not paths.warehouse.exists():
        raise BackupError(f"no warehouse at {paths.warehouse}: nothing to back up")
    out = Path(out) if out else default_folder(paths.data_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not an empty folder: choose a new one")
    step = step or ops.StepRun(task_id="backup", business_date=business_date)
    # Waits for the current writer, then no one else writes. Taken before the step is recorded:
    # a warehouse still busy after the wait is reported at once, not recorded (that would wait
    # for the same lock again).
    con = connect(paths.warehouse)
    with ops.recorded(paths.data_dir, step):
        partial = out.with_name(out.name + ".partial")  # complete backups only ever appear whole
        try:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            con.execute("CHECKPOINT")  # the write-ahead log folded into the file
            mark = watermark(con)
            has_state = _scalar(con, "SELECT count(*) FROM sqlmesh._environments") is not None
            shutil.copyfile(paths.warehouse, partial / WAREHOUSE)
            if paths.serving.exists():  # replaced only by rename: any copy of it is whole
                shutil.copyfile(paths.serving, partial / SERVING)
            con.close()
            if _read_watermark(partial / WAREHOUSE) != mark:
                raise BackupError(f"the copy in {partial} does not read back as the warehouse did")
            files = {
                p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(partial.iterdir())
            }
            manifest = {
                "created_at": dt.datetime.now().isoformat(timespec="seconds"),
                "source": str(paths.warehouse),
                "duckdb": duckdb.__version__,
                "sqlmesh_state_included": has_state,
                "watermark": mark,
                "files": files,
            }
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            if out.exists():
                out.rmdir()  # the empty folder the user named
            partial.rename(out)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            con.close()
        step.rows = sum(f["bytes"] for f in files.values())
        step.detail = {"backup": str(out)}
    lines = [f"backup {out}: " + ", ".join(f"{n} ({f['bytes']:,} bytes)" for n, f in files.items())]
    if not has_state:
        lines.append(
            "  SQLMesh's state is not in the warehouse (PostgreSQL?): back it up at the same time "
            "(pg_dump), or a restore leaves SQLMesh out of step with the tables"
        )
    return {"backup": str(out), "files": files, "watermark": mark, "lines": lines}


def scheduled(
    business_date: dt.date | None = None, *, data_dir: Path | None = None, step: ops.StepRun | None = None
) -> dict:
    """The clv_backup DAG's backup: into ``<data dir>/backups/<time>``, then only the newest
    ``KEEP`` backups there are kept (folders other than complete backups are left alone)."""
    out = backup(business_date, data_dir=data_dir, step=step)
    folder = Path(out["backup"]).parent
    complete = sorted(
        p for p in folder.iterdir() if re.fullmatch(r"\d{8}T\d{6}", p.name) and (p / MANIFEST).exists()
    )
    for old in complete[:-KEEP]:
        shutil.rmtree(old)
    out["pruned"] = [p.name for p in complete[:-KEEP]]
    return out


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"{folder} is not a backup (no {MANIFEST}); make one with `clv backup`") from None
    except json.JSONDecodeError:
        raise BackupError(f"{path} is not readable JSON: the backup is damaged") from None
    if WAREHOUSE not in manifest.get("files", {}):
        raise BackupError(f"{path} lists no {WAREHOUSE}: the backup is damaged")
    return manifest


def restore(folder: Path, *, data_dir: Path | None = None, force: bool = False) -> dict:
    """Put a backup's warehouse (and serving file) in place. Refused when the current warehouse
    is newer than the backup (later loads, runs or plans) unless ``force``."""
    folder = Path(folder)
    paths = settings.paths(data_dir)
    manifest = read_manifest(folder)
    if not manifest.get("sqlmesh_state_included", True) and not force:
        raise BackupError(
            "this backup holds no SQLMesh state (it lives in PostgreSQL): restore the state's dump "
            "from the same time first, then run again with --force"
        )
    staged: dict[str, Path] = {}
    try:
        for name, expected in manifest["files"].items():
            if name not in (WAREHOUSE, SERVING):
                raise BackupError(f"{folder / MANIFEST} lists {name!r}: not a file clv backup writes")
            src = folder / name
            if not src.exists() or _sha256(src) != expected["sha256"]:
                raise BackupError(f"{src} is missing or does not match its checksum: the backup is damaged")
            target = paths.warehouse if name == WAREHOUSE else paths.serving
            staged[name] = target.with_name(target.name + ".restoring")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staged[name])
        if _read_watermark(staged[WAREHOUSE]) != _json_safe(manifest["watermark"]):
            raise BackupError(f"{folder / WAREHOUSE} does not read back as it was backed up")
        replaced = None
        if paths.warehouse.exists():
            con = connect(paths.warehouse)  # no writer meanwhile, until the backup is in place
            try:
                current = _json_safe(watermark(con))
                ahead = newer(current, manifest["watermark"])
                if ahead and not force:
                    raise BackupError(
                        f"the warehouse is newer than the backup of {manifest['created_at']} "
                        f"({', '.join(ahead)}); restoring would lose them: use --force to restore anyway"
                    )
                con.execute("CHECKPOINT")  # no write-ahead log left to be replayed on the backup
                os.replace(staged.pop(WAREHOUSE), paths.warehouse)
                replaced = current
            finally:
                con.close()
        else:
            os.replace(staged.pop(WAREHOUSE), paths.warehouse)
        if SERVING in staged:
            os.replace(staged.pop(SERVING), paths.serving)
    finally:
        for leftover in staged.values():
            leftover.unlink(missing_ok=True)
    return {
        "restored": str(folder),
        "created_at": manifest["created_at"],
        "watermark": manifest["watermark"],
        "replaced": replaced,
    }


def _json_safe(mark: dict) -> dict:
    """A watermark as it reads back from backup.json (JSON has no timestamps)."""
    return json.loads(json.dumps(mark, default=str))
