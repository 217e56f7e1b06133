"""The data steward's loop for quarantined rows: list them, export them for correction, and hand
the corrected file back as a new delivery that says which rows it replaces.

1. ``summary``: what is quarantined, by batch, source and reason, and how much of it has been
   reprocessed since (``clv quarantine list``).
2. ``export``: the rows of one source in one batch that are still quarantined, to a CSV with the
   contract's columns filled from each row's original line (read again from the landed file,
   byte for byte), plus ``_corrects`` (``<load_id>:<row_number>``: which quarantined row this
   is), ``_reason`` and ``_original_line`` (``clv quarantine export``).
3. ``reprocess``: the corrected CSV becomes a new batch in the landing folder,
   ``<batch>-fix-<n>/``, whose ``_manifest.json`` carries ``corrects: <batch>``, the original
   batch date, each file's rows, bytes and sha256, and per row the quarantined row it replaces
   (``clv quarantine reprocess``, or the ``clv_quarantine_reprocess`` DAG).

The correction then loads like any delivery (its rows are checked against the contract again).
``record_corrections`` writes the lineage of each loaded correction to
``ops.quarantine_corrections`` (the quarantined row, and the row of the correction that replaces
it), and ``ops.quarantine_reconciliation`` shows each quarantined row as still ``quarantined`` or
``reprocessed`` (a correction of it — or of a correction of it — is in raw). The correction's
batch date is in the past, so the next transform restates that date (`clv.transform`) and the
marts reflect it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
from contextlib import closing
from pathlib import Path

import duckdb

from clv import ingest, settings
from clv.contract import SOURCES
from clv.errors import UserError

CORRECTS = "_corrects"
EXPORT_EXTRA = (CORRECTS, "_reason", "_original_line")
FIX = re.compile(r"^(?P<batch>.+)-fix-(?P<n>\d+)$")

DDL = """CREATE TABLE IF NOT EXISTS ops.quarantine_corrections (
    load_id INTEGER NOT NULL, row_number BIGINT NOT NULL,
    corrected_by_load_id INTEGER NOT NULL, corrected_row_number BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL)"""


def _reconciliation_view() -> str:
    """One row per quarantined row (each row of a file quarantined whole, too) and its status."""
    rows = " UNION ALL ".join(
        f"SELECT '{s}' AS source, _load_id AS load_id, _row_number AS row_number, _reason AS reason, "
        f"false AS whole_file FROM raw_invalid.{s}"
        for s in SOURCES
    )
    in_raw = " UNION ALL ".join(
        f"SELECT _load_id, _row_number FROM raw_data.{s} "
        "WHERE _load_id IN (SELECT corrected_by_load_id FROM ops.quarantine_corrections)"
        for s in SOURCES
    )
    return f"""CREATE OR REPLACE VIEW ops.quarantine_reconciliation AS
        WITH RECURSIVE quarantined AS (
            {rows}
            UNION ALL
            SELECT source, load_id, unnest(generate_series(1, coalesce(rows_in_file, 0))) AS row_number,
                   'file: ' || reason AS reason, true AS whole_file
            FROM raw_invalid.files
        ), up(load_id, row_number, root_load_id, root_row_number) AS (
            -- each correction row up its chain of corrections to the row first quarantined
            SELECT corrected_by_load_id, corrected_row_number, load_id, row_number
            FROM ops.quarantine_corrections
            UNION
            SELECT u.load_id, u.row_number, c.load_id, c.row_number
            FROM up u JOIN ops.quarantine_corrections c
              ON c.corrected_by_load_id = u.root_load_id AND c.corrected_row_number = u.root_row_number
        ), roots AS (
            SELECT * FROM up u WHERE NOT EXISTS (
                SELECT 1 FROM ops.quarantine_corrections c
                WHERE c.corrected_by_load_id = u.root_load_id AND c.corrected_row_number = u.root_row_number)
        ), resolved AS (  -- first rows whose chain of corrections reached raw, and the row that did
            SELECT r.root_load_id, r.root_row_number, min(r.load_id) AS load_id,
                   min(r.row_number) AS row_number
            FROM roots r JOIN ({in_raw}) x ON x._load_id = r.load_id AND x._row_number = r.row_number
            GROUP BY ALL
        )
        SELECT m.batch, m.batch_date, q.source, m.source_file, q.load_id, q.row_number, q.reason,
               q.whole_file,
               CASE WHEN s.load_id IS NULL THEN 'quarantined' ELSE 'reprocessed' END AS status,
               s.load_id AS reprocessed_as_load_id, s.row_number AS reprocessed_as_row_number
        FROM quarantined q
        JOIN ops.load_manifest m USING (load_id)
        LEFT JOIN roots rt ON rt.load_id = q.load_id AND rt.row_number = q.row_number
        LEFT JOIN resolved s
          ON s.root_load_id = coalesce(rt.root_load_id, q.load_id)
         AND s.root_row_number = coalesce(rt.root_row_number, q.row_number)"""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    ingest.ensure_schema(con)
    con.execute(DDL)
    con.execute(_reconciliation_view())


def _open(data_dir: Path | None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    from clv.warehouse import connect

    paths = settings.paths(data_dir)
    if not paths.warehouse.exists():
        raise UserError(f"no warehouse at {paths.warehouse}; run `clv load` first")
    return connect(paths.warehouse, read_only=read_only)


# --- lineage of loaded corrections ---------------------------------------------------------------


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / ingest.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_corrections(con: duckdb.DuckDBPyConnection, landing: Path) -> int:
    """Write the lineage of every loaded correction not recorded yet (idempotent): for row i of a
    correction file, the quarantined row its manifest says it replaces. Returns the rows added."""
    ensure_schema(con)
    loads = con.execute(
        "SELECT load_id, batch, source FROM ops.load_manifest WHERE status = 'loaded' "
        "AND batch LIKE '%-fix-%' AND load_id NOT IN "
        "(SELECT DISTINCT corrected_by_load_id FROM ops.quarantine_corrections)"
    ).fetchall()
    now = dt.datetime.now()
    added = 0
    for load_id, batch, source in loads:
        entry = _manifest(landing / batch).get("files", {}).get(source) or {}
        refs = [_parse_ref(r) for r in entry.get("corrects") or []]
        rows = [(ref[0], ref[1], load_id, i, now) for i, ref in enumerate(refs, start=1) if ref]
        if rows:
            con.executemany("INSERT INTO ops.quarantine_corrections VALUES (?, ?, ?, ?, ?)", rows)
            added += len(rows)
    return added


def _parse_ref(value: str) -> tuple[int, int] | None:
    load, sep, row = str(value).strip().partition(":")
    if not sep or not load.isdigit() or not row.isdigit():
        return None
    return int(load), int(row)


# --- list -------------------------------------------------------------------------------------------


def summary(
    data_dir: Path | None = None,
    batch: str | None = None,
    source: str | None = None,
    reason: str | None = None,
) -> list[dict]:
    """Quarantined rows by batch, source and reason: how many, how many reprocessed since."""
    paths = settings.paths(data_dir)
    with closing(_open(data_dir)) as con:
        record_corrections(con, paths.landing)
        where, params = [], []
        for column, value in (("batch", batch), ("source", source)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if reason:
            where.append("reason ILIKE '%' || ? || '%'")
            params.append(reason)
        cur = con.execute(
            f"""SELECT batch, batch_date, coalesce(source, '?') AS source,
                       CASE WHEN whole_file THEN reason ELSE regexp_replace(reason, ' \\(.*$', '') END AS reason,
                       count(*) AS rows_quarantined,
                       count(*) FILTER (WHERE status = 'reprocessed') AS rows_reprocessed,
                       count(*) FILTER (WHERE status = 'quarantined') AS rows_still_quarantined
                FROM ops.quarantine_reconciliation
                {"WHERE " + " AND ".join(where) if where else ""}
                GROUP BY ALL ORDER BY batch, source, rows_quarantined DESC, reason""",
            params,
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def summary_lines(groups: list[dict]) -> list[str]:
    if not groups:
        return ["nothing quarantined matches"]
    out = [f"{'batch':<24} {'source':<18} {'quarantined':>11} {'reprocessed':>11} {'still':>7}  reason"]
    for g in groups:
        out.append(
            f"{g['batch']:<24} {g['source']:<18} {g['rows_quarantined']:>11,} {g['rows_reprocessed']:>11,} "
            f"{g['rows_still_quarantined']:>7,}  {g['reason']}"
        )
    total = sum(g["rows_quarantined"] for g in groups)
    still = sum(g["rows_still_quarantined"] for g in groups)
    out.append(f"{total:,} rows quarantined, {total - still:,} reprocessed, {still:,} still quarantined")
    return out


# --- export -----------------------------------------------------------------------------------------


def _lines(path: Path, wanted: set[int]) -> tuple[str, dict[int, str]]:
    """The header and the wanted data rows (1-based) of a landed file, as the bytes say: one line is
    one row, its line break (LF or CRLF) removed, bytes that are not UTF-8 replaced."""
    found: dict[int, str] = {}
    header = ""
    last = max(wanted, default=0)
    with open(path, "rb") as f:
        for i, raw in enumerate(f):
            text = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="replace")
            if i == 0:
                header = text.lstrip("\ufeff")
            elif i in wanted:
                found[i] = text
            if i >= last:
                break
    return header, found


def _fields(line: str) -> list[str] | None:
    try:
        rows = list(csv.reader(io.StringIO(line)))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def export(batch: str, source: str, out: Path, data_dir: Path | None = None) -> dict:
    """Write the rows of ``source`` still quarantined in ``batch`` to ``out`` for correction."""
    if source not in SOURCES:
        raise UserError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    out = Path(out)
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: folder {out.parent} does not exist")
    paths = settings.paths(data_dir)
    src = SOURCES[source]
    with closing(_open(data_dir)) as con:
        record_corrections(con, paths.landing)
        rows = con.execute(
            "SELECT load_id, row_number, reason, whole_file, source_file FROM ops.quarantine_reconciliation "
            "WHERE batch = ? AND source = ? AND status = 'quarantined' ORDER BY load_id, row_number",
            [batch, source],
        ).fetchall()
        if not rows:
            raise UserError(
                f"no {source} rows are still quarantined in batch {batch!r}; see `clv quarantine list`"
            )
        columns = ", ".join(f'"{c}"' for c in src.column_names)
        stored = {
            (load_id, rn): (raw_line, values)
            for load_id, rn, raw_line, *values in con.execute(
                f"SELECT _load_id, _row_number, _raw_line, {columns} FROM raw_invalid.{source} "
                "WHERE _load_id IN (SELECT load_id FROM ops.load_manifest WHERE batch = ?)",
                [batch],
            ).fetchall()
        }
    by_load: dict[int, list[tuple]] = {}
    for row in rows:
        by_load.setdefault(row[0], []).append(row)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*src.column_names, *EXPORT_EXTRA])
        for load_id, group in by_load.items():
            # the landed file, by its batch folder (a moved data directory keeps the old paths)
            landed = paths.landing / batch / Path(group[0][4]).name
            header, lines = _lines(landed, {rn for _, rn, *_ in group}) if landed.exists() else ("", {})
            names = _fields(header) or []
            for _, rn, reason, whole_file, _ in group:
                line = lines.get(rn)
                raw_line, values = stored.get((load_id, rn), (None, None))
                if line is None and not whole_file:  # the landed file is gone: what quarantine kept
                    line = raw_line
                if line is None and values is None:
                    raise UserError(
                        f"the original line of {source} row {load_id}:{rn} is gone ({landed} no longer "
                        "holds it); restore the landed file first"
                    )
                fields = _fields(line) if line is not None else None
                if fields is not None and len(fields) == len(names):
                    by_name = dict(zip((n.strip() for n in names), fields))
                    cells = [by_name.get(c, "") for c in src.column_names]
                elif line is None:
                    cells = ["" if v is None else str(v) for v in values]
                    line = ",".join(cells)
                else:  # not a row on its own (too few fields, a stray quote): the steward splits it
                    cells = [""] * len(src.column_names)
                writer.writerow([*cells, f"{load_id}:{rn}", reason, line])
    os.replace(tmp, out)
    return {"batch": batch, "source": source, "rows": len(rows), "out": str(out)}


# --- reprocess --------------------------------------------------------------------------------------


def _read_corrected(file: Path) -> tuple[list[str], list[list[str]]]:
    if not file.is_file():
        raise UserError(f"corrected file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{file} is not UTF-8: save the corrected file as UTF-8 CSV") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise UserError(f"{file} is not a readable CSV: {e}") from None
    if not rows:
        raise UserError(f"{file} is empty: it needs the exported header and the corrected rows")
    header = [c.strip() for c in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    return header, body


def _fix_folders(landing: Path, batch: str) -> dict[int, Path]:
    out = {}
    for p in landing.glob(f"{batch}-fix-*") if landing.is_dir() else []:
        m = FIX.match(p.name)
        if p.is_dir() and m and m.group("batch") == batch:
            out[int(m.group("n"))] = p
    return out


def reprocess(file: Path, data_dir: Path | None = None) -> dict:
    """Write a corrected export into the landing folder as a new batch that references the
    original one. Writing the same corrections again finds the batch already written."""
    file = Path(file)
    paths = settings.paths(data_dir)
    header, body = _read_corrected(file)
    if CORRECTS not in header:
        raise UserError(
            f"{file} has no {CORRECTS} column: start from `clv quarantine export` and keep that column"
        )
    if not body:
        raise UserError(f"{file} has no rows to reprocess")
    at = header.index(CORRECTS)
    refs: list[tuple[int, int]] = []
    for line_no, row in enumerate(body, start=2):
        ref = _parse_ref(row[at]) if at < len(row) else None
        if ref is None:
            value = row[at] if at < len(row) else ""
            raise UserError(
                f"{file}, row {line_no - 1}: {CORRECTS} {value!r} is not <load_id>:<row_number>; every "
                "corrected row keeps the value the export gave it"
            )
        if ref in refs:
            raise UserError(
                f"{file}, row {line_no - 1}: quarantined row {ref[0]}:{ref[1]} is corrected twice"
            )
        refs.append(ref)
    with closing(_open(data_dir)) as con:
        record_corrections(con, paths.landing)
        con.execute("CREATE OR REPLACE TEMP TABLE _clv_refs (load_id INTEGER, row_number BIGINT, i INTEGER)")
        con.executemany(
            "INSERT INTO _clv_refs VALUES (?, ?, ?)", [(a, b, i) for i, (a, b) in enumerate(refs)]
        )
        found = con.execute(
            """SELECT r.i, q.batch, q.batch_date, q.source, q.status, q.reprocessed_as_load_id,
                      q.reprocessed_as_row_number
               FROM _clv_refs r LEFT JOIN ops.quarantine_reconciliation q USING (load_id, row_number)
               ORDER BY r.i"""
        ).fetchall()
        con.execute("DROP TABLE _clv_refs")
        loaded_batches = {
            b for (b,) in con.execute("SELECT DISTINCT batch FROM ops.load_manifest").fetchall()
        }
    for i, batch, *_ in found:
        if batch is None:
            a, b = refs[i]
            raise UserError(
                f"{file}, row {i + 1}: {a}:{b} is not a quarantined row; see `clv quarantine list`"
            )
    originals = {(batch, bdate, source) for _, batch, bdate, source, *_ in found}
    if len(originals) > 1:
        raise UserError(
            f"{file} corrects rows of {len(originals)} batches or sources; export and reprocess one "
            "batch and source at a time"
        )
    ((batch, batch_date, source),) = originals
    src = SOURCES[source]
    unexpected = [c for c in header if c not in src.column_names and c not in EXPORT_EXTRA]
    missing = [c for c in src.column_names if c not in header]
    if unexpected or missing:
        raise UserError(
            f"{file} does not have the exported columns of {source}: "
            + "; ".join(
                x
                for x in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(unexpected)}" if unexpected else "",
                )
                if x
            )
        )
    pos = [header.index(c) for c in src.column_names]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(src.column_names)
    for row in body:
        writer.writerow([row[j] if j < len(row) else "" for j in pos])
    data = buf.getvalue().encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    corrects = [f"{a}:{b}" for a, b in refs]

    folders = _fix_folders(paths.landing, batch)
    for _, folder in sorted(folders.items()):
        entry = _manifest(folder).get("files", {}).get(source) or {}
        if entry.get("sha256") == sha and entry.get("corrects") == corrects:
            return _result(folder, source, batch, batch_date, len(body), written=False)
    for i, *_, status, as_load, as_row in found:
        if status == "reprocessed":
            a, b = refs[i]
            raise UserError(
                f"{file}, row {i + 1}: quarantined row {a}:{b} was already reprocessed (load {as_load}, "
                f"row {as_row}); leave it out"
            )
    for _, folder in sorted(folders.items()):
        entry = _manifest(folder).get("files", {}).get(source) or {}
        if folder.name not in loaded_batches and set(entry.get("corrects") or []) & set(corrects):
            raise UserError(
                f"batch {folder.name} in {paths.landing} corrects some of these rows and has not loaded yet: "
                "run the pipeline first (or remove that folder), then reprocess what is still quarantined"
            )
    fixed = [FIX.match(b) for b in loaded_batches]
    taken = set(folders) | {int(m.group("n")) for m in fixed if m and m.group("batch") == batch}
    name = f"{batch}-fix-{max(taken, default=0) + 1}"
    manifest = {
        "batch": name,
        "batch_date": batch_date.isoformat(),
        "corrects": batch,
        "kind": "correction",
        "corrected_from": str(file),
        "files": {
            source: {
                "file": src.filename,
                "rows": len(body),
                "bytes": len(data),
                "sha256": sha,
                "columns": list(src.column_names),
                "corrects": corrects,
            }
        },
    }
    final = paths.landing / name
    tmp = paths.landing / f".{name}.tmp"  # hidden: the loader never sees a half-written batch
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / src.filename).write_bytes(data)
    (tmp / ingest.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, final)
    return _result(final, source, batch, batch_date, len(body), written=True)


def _result(folder: Path, source: str, batch: str, batch_date, rows: int, written: bool) -> dict:
    return {
        "batch": folder.name,
        "folder": str(folder),
        "source": source,
        "corrects": batch,
        "batch_date": batch_date.isoformat(),
        "rows": rows,
        "written": written,
    }
