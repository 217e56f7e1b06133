"""Raw zone: load landed batches into the warehouse, atomically, idempotently, losing nothing.

For each landed file not loaded before (by path and sha256), in batch order:

0. Only regular files inside the landing folder are read. A link out of it, a FIFO, a device or a
   folder is quarantined whole from its metadata, never opened. A batch whose ``_manifest.json``
   is corrupt loads nothing (its files are failed, retried once a valid manifest arrives). When the
   manifest lists files, a listed file must match its bytes and sha256 (else: failed, retried —
   still being written, or a truncated copy) and an unlisted file is quarantined whole.
1. The header is checked against the contract (``clv.contract``). A drifted file (missing,
   renamed or unexpected column) is quarantined whole in ``raw_invalid.files``; with
   ``allow_additive_columns`` a file whose only change is extra columns loads without them.
2. DuckDB's CSV reader parses it with the contract's types, in parallel. Lines it cannot parse
   (wrong field count, bad encoding, a value that is not a date, ...) are kept by its reject
   facility (``store_rejects``) with the line number and the reason.
3. In SQL, parsed rows that break the contract's row rules (a required id or time missing, a value
   outside its enum or range) join the rejected lines in ``raw_invalid.<source>``; every other row
   goes to ``raw_data.<source>`` with its lineage (load id, batch date, row number in the file,
   load time). ``raw.<source>`` is a view that adds the file path and sha256 from the manifest.
4. The file's rows, its quarantine and its ``ops.load_manifest`` row commit in one transaction.
   A crash leaves nothing of the file behind; the next run loads it whole. Out of memory, a full
   disk or an I/O error on the way (``_transient``) says nothing about the file: it is recorded as
   failed, never quarantined, and read again on the next run.

``ops.load_reconciliation`` then shows, per file, that the rows counted in the file equal rows in
raw plus rows quarantined.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from duckdb import sqltypes

from clv import csv_lines, settings, sql_text
from clv.contract import SOURCES, Source
from clv.errors import UserError

MANIFEST = "_manifest.json"
LOADED, QUARANTINED, FAILED, DUPLICATE = "loaded", "quarantined", "failed", "duplicate"
LINEAGE = ("_load_id", "_batch_date", "_row_number", "_loaded_at")
MAX_LINE_BYTES = csv_lines.MAX_LINE_BYTES


class IngestError(UserError):
    """A user mistake: the landing directory is missing or not a directory (exit code 2)."""


class RunawayBatch(UserError):
    """A file is far larger than the configured guard allows (``CLV_MAX_ROWS_PER_FILE``)."""


@dataclass
class FileResult:
    batch: str
    source: str
    path: str
    status: str
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    seconds: float = 0.0
    message: str = ""
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadSummary:
    files: list[FileResult] = field(default_factory=list)
    skipped: int = 0
    incomplete_batches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == FAILED]

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for k, v in f.reasons.items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def as_dict(self) -> dict:
        return {
            "files": len(self.files),
            "files_by_status": {
                s: sum(f.status == s for f in self.files) for s in (LOADED, QUARANTINED, DUPLICATE, FAILED)
            },
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": self.reasons(),
            "skipped_already_loaded": self.skipped,
            "incomplete_batches": self.incomplete_batches,
            "seconds": round(self.seconds, 3),
            "failed": [{"file": f.path, "message": f.message} for f in self.failed],
        }

    def lines(self) -> list[str]:
        d = self.as_dict()
        s = d["files_by_status"]
        out = [
            f"load: {d['files']} files ({s[LOADED]} loaded, {s[QUARANTINED]} quarantined, "
            f"{s[DUPLICATE]} duplicate deliveries skipped, {s[FAILED]} failed), "
            f"{self.rows_loaded:,} rows loaded, {self.rows_quarantined:,} quarantined, "
            f"{self.skipped} already loaded, {self.seconds:.1f} s"
        ]
        for reason, n in d["quarantine_reasons"].items():
            out.append(f"  quarantined {n:>9,}  {reason}")
        for b in self.incomplete_batches:
            out.append(f"  waiting: batch {b} has no {MANIFEST} yet (still arriving)")
        for f in self.failed:
            out.append(f"  FAILED {f.path}: {f.message}")
        return out


# --- schema ------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw zone's schemas, tables and views if absent (idempotent)."""
    for schema in ("raw", "raw_data", "raw_invalid", "ops"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("""
        CREATE TABLE IF NOT EXISTS ops.load_manifest (
            load_id INTEGER PRIMARY KEY,
            batch VARCHAR NOT NULL,
            batch_date DATE,
            source VARCHAR,
            source_file VARCHAR NOT NULL,
            file_sha256 VARCHAR,
            file_bytes BIGINT,
            rows_in_file BIGINT,
            rows_delivered BIGINT,
            rows_loaded BIGINT NOT NULL DEFAULT 0,
            rows_quarantined BIGINT NOT NULL DEFAULT 0,
            status VARCHAR NOT NULL,
            message VARCHAR,
            duplicate_of INTEGER,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            seconds DOUBLE
        )""")
    con.execute("""
        CREATE TABLE IF NOT EXISTS raw_invalid.files (
            load_id INTEGER NOT NULL,
            batch VARCHAR NOT NULL,
            batch_date DATE,
            source VARCHAR,
            source_file VARCHAR NOT NULL,
            file_sha256 VARCHAR,
            reason VARCHAR NOT NULL,
            expected_columns VARCHAR[],
            found_columns VARCHAR[],
            rows_in_file BIGINT,
            recorded_at TIMESTAMP NOT NULL
        )""")
    for src in SOURCES.values():
        cols = ", ".join(f"{_q(c.name)} {c.type}" for c in src.columns)
        con.execute(f"""CREATE TABLE IF NOT EXISTS raw_data.{src.name} ({cols},
            _load_id INTEGER NOT NULL, _batch_date DATE NOT NULL, _row_number BIGINT NOT NULL,
            _loaded_at TIMESTAMP NOT NULL)""")
        text_cols = ", ".join(f"{_q(c.name)} VARCHAR" for c in src.columns)
        con.execute(f"""CREATE TABLE IF NOT EXISTS raw_invalid.{src.name} ({text_cols},
            _raw_line VARCHAR, _reason VARCHAR NOT NULL, _load_id INTEGER NOT NULL,
            _batch_date DATE NOT NULL, _row_number BIGINT NOT NULL, _loaded_at TIMESTAMP NOT NULL)""")
        con.execute(f"""CREATE OR REPLACE VIEW raw.{src.name} AS
            SELECT d.*, m.source_file AS _source_file, m.file_sha256 AS _file_sha256, m.batch AS _batch
            FROM raw_data.{src.name} AS d JOIN ops.load_manifest AS m ON m.load_id = d._load_id""")
    _create_reconciliation_view(con)


def _create_reconciliation_view(con: duckdb.DuckDBPyConnection) -> None:
    """Per file: rows counted in the file = rows in raw + rows quarantined (``reconciled``), with
    the row count its manifest announced and the outcome's reason. A file whose latest attempt
    failed (unreadable, not matching its manifest, a corrupt manifest) is listed too, with
    ``pending_retry``: none of its rows are in the warehouse, so it counts none until it loads."""
    raw_counts = " UNION ALL ".join(
        f"SELECT _load_id, count(*) AS n FROM raw_data.{s} GROUP BY ALL" for s in SOURCES
    )
    bad_counts = " UNION ALL ".join(
        f"SELECT _load_id, count(*) AS n FROM raw_invalid.{s} GROUP BY ALL" for s in SOURCES
    )
    con.execute(f"""
        CREATE OR REPLACE VIEW ops.load_reconciliation AS
        WITH in_raw AS (SELECT _load_id AS load_id, sum(n) AS n FROM ({raw_counts}) GROUP BY ALL),
             in_bad AS (SELECT _load_id AS load_id, sum(n) AS n FROM ({bad_counts}) GROUP BY ALL),
             bad_files AS (SELECT load_id, sum(rows_in_file) AS n FROM raw_invalid.files GROUP BY ALL)
        SELECT m.load_id, m.batch, m.source, m.source_file, m.file_sha256, m.status,
               m.rows_in_file,
               coalesce(r.n, 0) AS rows_in_raw,
               coalesce(b.n, 0) + coalesce(f.n, 0) AS rows_quarantined,
               m.rows_in_file - coalesce(r.n, 0) - coalesce(b.n, 0) - coalesce(f.n, 0) AS difference,
               m.rows_delivered,
               (m.rows_in_file = coalesce(r.n, 0) + coalesce(b.n, 0) + coalesce(f.n, 0)) AS reconciled,
               m.message,
               false AS pending_retry
        FROM ops.load_manifest m
        LEFT JOIN in_raw r USING (load_id)
        LEFT JOIN in_bad b USING (load_id)
        LEFT JOIN bad_files f USING (load_id)
        WHERE m.status IN ('{LOADED}', '{QUARANTINED}')
        UNION ALL
        SELECT m.load_id, m.batch, m.source, m.source_file, m.file_sha256, m.status,
               0, 0, 0, 0, m.rows_delivered, true, m.message, true
        FROM ops.load_manifest m
        WHERE m.status = '{FAILED}' AND NOT EXISTS (
            SELECT 1 FROM ops.load_manifest later
            WHERE later.source_file = m.source_file AND later.load_id > m.load_id)
    """)


# --- finding work ------------------------------------------------------------------------


@dataclass
class Landed:
    batch: str
    batch_date: dt.date | None
    path: Path
    source: str | None  # None: not a file of the contract
    rows_delivered: int | None
    # what the batch's manifest says of this file: {"bytes": ..., "sha256": ...} when it lists it
    expected: dict | None = None
    listed: bool | None = None  # None: the manifest lists no files
    refused: str | None = None  # why the entry is quarantined whole without being read
    manifest_error: str | None = None  # the batch's manifest is corrupt: nothing of it loads
    real: Path | None = None  # the file to read (links resolved; inside the landing folder)


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _printable(path: str, most: int = 200) -> str:
    text = path.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return text if len(text) <= most else text[: most - 3] + "..."


def _refuse(path: Path, landing_real: Path) -> tuple[str | None, Path]:
    """Why a landed entry is not read at all (a reason), or None; and the file to read.

    Only regular files inside the landing folder are read: a link out of it (to ``/etc/passwd``,
    to ``/dev/zero``, into another system's folder) or a FIFO, device or socket is refused from
    its metadata alone, so nothing of its content reaches a message and a scan cannot hang on it.
    A link to a file that does not exist (yet) inside the folder is read, fails and is retried."""
    real = Path(os.path.realpath(path))
    if real != landing_real and landing_real not in real.parents:
        if path.is_symlink():
            return f"symlink out of the landing folder: points to {_printable(os.readlink(path))}", real
        return f"outside the landing folder: resolves to {_printable(str(real))}", real
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return None, real  # dangling: the read fails and the file is retried
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        via = " (through a symlink)" if path.is_symlink() else ""
        return f"not a regular file: {kind}{via}", real
    return None, real


def _batch_date(batch: str, manifest: dict) -> dt.date | None:
    value = manifest.get("batch_date") or batch[:10]
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _read_manifest(mpath: Path, landing_real: Path) -> tuple[dict, dict[str, dict] | None]:
    """The batch's manifest and the files it lists by name (None: it lists none). Raises
    ``ValueError`` with what is wrong when the manifest is corrupt: an unreadable or half-written
    manifest is not an empty one, whose files would load unverified."""
    refused, real = _refuse(mpath, landing_real)
    if refused:
        raise ValueError(refused)
    try:
        manifest = json.loads(real.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ValueError(f"cannot be read: {e.strerror or e}") from None
    except ValueError as e:  # not UTF-8, not JSON
        raise ValueError(f"not valid JSON: {str(e)[:200]}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"not a JSON object but {type(manifest).__name__}")
    files = manifest.get("files")
    if files is None:
        return manifest, None
    if not isinstance(files, dict):
        raise ValueError('"files" is not an object')
    listed: dict[str, dict] = {}
    for key, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError(f'the entry "{key}" of "files" names no file')
        size, sha, rows = entry.get("bytes"), entry.get("sha256"), entry.get("rows")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError(f'the entry "{key}" has bytes {size!r}, not a size')
        if sha is not None and not (isinstance(sha, str) and re.fullmatch("[0-9a-fA-F]{64}", sha)):
            raise ValueError(f'the entry "{key}" has sha256 {str(sha)[:80]!r}, not a SHA-256')
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            raise ValueError(f'the entry "{key}" has rows {rows!r}, not a count')
        listed[entry["file"]] = entry
    return manifest, listed


def discover(landing: Path) -> tuple[list[Landed], list[str]]:
    """Entries of complete batches (those with a manifest), in batch order; and incomplete batches.

    Every entry of a batch folder is returned but hidden ones (``.``) and the manifest's kind
    (``_``): directories, links and devices too, so that what will not be read is quarantined
    with its reason instead of passing unnoticed."""
    if not landing.exists():
        raise IngestError(
            f"landing directory {landing} does not exist; generate data first "
            "(`make run` or `python -m generator history`) or set CLV_DATA_DIR"
        )
    if not landing.is_dir():
        raise IngestError(f"landing path {landing} is not a directory")
    landing_real = Path(os.path.realpath(landing))
    by_file = {s.filename: s.name for s in SOURCES.values()}
    order = {s.filename: i for i, s in enumerate(SOURCES.values())}
    files: list[Landed] = []
    waiting: list[str] = []
    for batch_dir in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".")):
        mpath = batch_dir / MANIFEST
        if not mpath.exists():
            waiting.append(batch_dir.name)
            continue
        error = None
        try:
            manifest, listed = _read_manifest(mpath, landing_real)
        except ValueError as e:
            manifest, listed = {}, None
            error = (
                f"the batch manifest {_printable(str(mpath))} is corrupt ({e}): nothing of batch "
                f"{_printable(batch_dir.name)} is loaded; it is retried once a valid manifest is delivered"
            )
        bdate = _batch_date(batch_dir.name, manifest)
        entries = sorted(
            (p for p in batch_dir.iterdir() if not p.name.startswith((".", "_"))),
            key=lambda p: (order.get(p.name, len(order)), p.name),
        )
        for p in entries:
            refused, real = _refuse(p, landing_real)
            entry = listed.get(p.name) if listed is not None else None
            files.append(
                Landed(
                    batch_dir.name,
                    bdate,
                    p,
                    by_file.get(p.name),
                    entry.get("rows") if entry else None,
                    expected=entry,
                    listed=None if listed is None else entry is not None,
                    refused=refused,
                    manifest_error=error,
                    real=real,
                )
            )
    return files, waiting


# --- loading -------------------------------------------------------------------------------


class NotRegularFile(OSError):
    """The path no longer names a regular file (swapped for a FIFO or a directory mid-load)."""


def _open_regular(path: Path):
    """Open a file for reading, refusing anything but a regular file without blocking on it (a
    FIFO swapped in after discovery would otherwise hang the read)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(
                0, f"not a regular file any more ({_KINDS.get(stat.S_IFMT(mode), 'not a file')})"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _scan_file(path: Path) -> tuple[str, int, int, bytes]:
    """sha256, size, line count (records, when no field holds a line break), first line."""
    h = hashlib.sha256()
    size = lines = 0
    first = b""
    last = b""
    with _open_regular(path) as f:
        while block := f.read(8 << 20):
            if not first:
                first = block[:MAX_LINE_BYTES]
            h.update(block)
            size += len(block)
            lines += block.count(b"\n")
            last = block[-1:]
    if size and last != b"\n":
        lines += 1  # a last line without a line break is still a line
    rows = max(lines - 1, 0)  # minus the header
    return h.hexdigest(), size, rows, first.split(b"\n", 1)[0]


def _scan_landed(f: Landed) -> tuple[str, int, int, bytes] | OSError | None:
    """The scan of a landed file, its reading error, or None for an entry that is not read (refused,
    or in a batch whose manifest is corrupt)."""
    if f.refused or f.manifest_error:
        return None
    try:
        return _scan_file(f.real or f.path)
    except OSError as e:
        return e


def _parse_header(first_line: bytes) -> list[str] | None:
    try:
        text = first_line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None
    return [c.strip() for c in next(csv.reader(io.StringIO(text)), [])]


def _names(columns: list[str], most: int = 12, width: int = 60) -> str:
    """Column names for a one-line message: a garbage header can be one 2 MB "column"."""
    shown = [c if len(c) <= width else c[: width - 3] + "..." for c in columns[:most]]
    more = f" and {len(columns) - most} more" if len(columns) > most else ""
    return ", ".join(shown) + more


def _row_rules(src: Source) -> str:
    """A SQL expression: '' for a row that meets the contract's row rules, else the reasons."""
    parts = []
    for c in src.columns:
        col = _q(c.name)
        if c.required:
            kind = "id" if c.name in src.required_ids else "value"
            parts.append(f"CASE WHEN {col} IS NULL THEN 'missing required {kind} {c.name}' END")
        if c.enum:
            allowed = ", ".join(sql_text.literal(v.lower()) for v in c.enum)
            parts.append(
                f"CASE WHEN lower(trim({col})) NOT IN ({allowed}) "
                f"THEN 'invalid {c.name}: not one of {'/'.join(c.enum)}' END"
            )
        if c.min is not None:
            parts.append(f"CASE WHEN {col} < {c.min} THEN 'out of range {c.name}: below {c.min:g}' END")
        if c.max is not None:
            parts.append(f"CASE WHEN {col} > {c.max} THEN 'out of range {c.name}: above {c.max:g}' END")
    return "concat_ws('; ', " + ", ".join(parts) + ")" if parts else "''"


def _row_violations(src: Source) -> str:
    """A SQL boolean: the row breaks a row rule. Cheap (no strings built) for the common path."""
    preds = []
    for c in src.columns:
        col = _q(c.name)
        if c.required:
            preds.append(f"{col} IS NULL")
        if c.enum:
            exact = ", ".join(sql_text.literal(v) for v in c.enum)
            folded = ", ".join(sql_text.literal(v.lower()) for v in c.enum)
            preds.append(f"coalesce({col} NOT IN ({exact}) AND lower(trim({col})) NOT IN ({folded}), false)")
        if c.min is not None:
            preds.append(f"coalesce({col} < {c.min}, false)")
        if c.max is not None:
            preds.append(f"coalesce({col} > {c.max}, false)")
    return "(" + " OR ".join(preds) + ")" if preds else "false"


_ROW_NUMBER_UDF = "clv_file_row_number"
_REJECT_REASONS = {
    "MISSING COLUMNS": "too few fields",
    "TOO MANY COLUMNS": "too many fields",
    "UNQUOTED VALUE": "unterminated quote",
    "INVALID ENCODING": "not UTF-8",
    "LINE SIZE OVER MAXIMUM": f"line longer than {MAX_LINE_BYTES:,} bytes",
    # only found by the line-by-line path (``Loader._stage_lines``)
    "EMPTY LINE": "empty line",
    "MALFORMED QUOTES": "malformed quotes",
    "LINE BREAK IN FIELD": "line break inside a field",
    "NUL BYTE": "NUL byte",
}
_REJECT_REASON_SQL = (
    "CASE WHEN error_type = 'CAST' AND column_name IS NOT NULL THEN 'unparseable ' || column_name "
    + " ".join(
        f"WHEN error_type = {sql_text.literal(k)} THEN {sql_text.literal(v)}"
        for k, v in _REJECT_REASONS.items()
    )
    + " ELSE lower(error_type) END"
)


def _reject_reason(error_type: str, column: str | None) -> str:
    """Parser rejects grouped by kind and column, as in the quarantine's reason."""
    if error_type == "CAST" and column:
        return f"unparseable {column}"
    return _REJECT_REASONS.get(error_type, error_type.lower())


def _transient(e: BaseException) -> bool:
    """An error that says nothing about the file: out of memory, a full disk, an I/O error (in
    Python's reader or DuckDB's). The file is failed and retried, never quarantined."""
    return isinstance(e, (OSError, MemoryError, duckdb.OutOfMemoryException, duckdb.IOException))


def _why(e: BaseException) -> str:
    """An error's first line, short enough for a one-line message."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _manifest_mismatch(f: Landed, sha: str, size: int) -> str | None:
    """Why a listed file does not match its manifest entry (bytes, sha256), or None."""
    want_size, want_sha = (f.expected or {}).get("bytes"), (f.expected or {}).get("sha256")
    if (want_size is None or want_size == size) and (want_sha is None or want_sha.lower() == sha):
        return None
    listed = ", ".join(
        x
        for x in (
            f"{want_size:,} bytes" if want_size is not None else "",
            f"sha256 {want_sha[:12].lower()}..." if want_sha is not None else "",
        )
        if x
    )
    return (
        f"does not match its manifest: {size:,} bytes, sha256 {sha[:12]}... where the manifest lists "
        f"{listed} (still being written, or a truncated copy?); not loaded, retried on the next run"
    )


def _readable(f: Landed) -> Path:
    """The file to hand to a reader, checked again just before: still a regular file (a FIFO or a
    directory swapped in since discovery raises ``NotRegularFile``, an ``OSError``: retried)."""
    path = f.real or f.path
    _open_regular(path).close()
    return path


@dataclass
class _Rows:
    """A file whose header passed: load its rows."""

    source: Source
    header: list[str]
    message: str
    by_line: bool = False  # staged line by line (``Loader._stage_lines``): rows carry their number


class Loader:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        allow_additive_columns: bool = False,
        max_rows_per_file: int | None = None,
    ) -> None:
        self.con = con
        self.allow_additive = allow_additive_columns
        self.max_rows = max_rows_per_file
        self._gaps = np.zeros(0, dtype=np.int64)
        if _ROW_NUMBER_UDF in {
            r[0]
            for r in con.execute(
                "SELECT function_name FROM duckdb_functions() WHERE function_type = 'scalar'"
            ).fetchall()
        }:
            con.remove_function(_ROW_NUMBER_UDF)  # a previous Loader on this connection registered it
        con.create_function(
            _ROW_NUMBER_UDF,
            self._file_row_number,
            [sqltypes.BIGINT],
            sqltypes.BIGINT,
            type="arrow",
            side_effects=False,
        )

    def _file_row_number(self, parsed: pa.Array) -> pa.Array:
        """File row number of the k-th parsed row: vectorised over DuckDB's chunks."""
        k = parsed.to_numpy()
        return pa.array(k + 1 + np.searchsorted(self._gaps, k, side="right"))

    def _next_load_id(self) -> int:
        return self.con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM ops.load_manifest").fetchone()[0]

    def _already(self, path: str, sha: str) -> tuple[str, int | None] | None:
        """('same', id) if this exact file was processed; ('dup', id) if its bytes came before."""
        row = self.con.execute(
            f"SELECT load_id FROM ops.load_manifest WHERE source_file = ? AND file_sha256 = ? "
            f"AND status IN ('{LOADED}', '{QUARANTINED}', '{DUPLICATE}') LIMIT 1",
            [path, sha],
        ).fetchone()
        if row:
            return "same", row[0]
        row = self.con.execute(
            f"SELECT load_id FROM ops.load_manifest WHERE file_sha256 = ? "
            f"AND status IN ('{LOADED}', '{QUARANTINED}') ORDER BY load_id LIMIT 1",
            [sha],
        ).fetchone()
        return ("dup", row[0]) if row else None

    def _manifest_row(
        self,
        load_id,
        f: Landed,
        sha,
        size,
        rows_in_file,
        loaded,
        quarantined,
        status,
        message,
        started,
        dup_of=None,
    ) -> None:
        finished = dt.datetime.now()
        self.con.execute(
            "INSERT INTO ops.load_manifest (load_id, batch, batch_date, source, source_file, file_sha256, "
            "file_bytes, rows_in_file, rows_delivered, rows_loaded, rows_quarantined, status, message, "
            "duplicate_of, started_at, finished_at, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                f.batch,
                f.batch_date,
                f.source,
                str(f.path),
                sha,
                size,
                rows_in_file,
                f.rows_delivered,
                loaded,
                quarantined,
                status,
                message,
                dup_of,
                started,
                finished,
                (finished - started).total_seconds(),
            ],
        )

    def guard(self, f: Landed, rows_in_file: int, seen: tuple | None) -> None:
        """The count guard: refuse a file with more rows than ``max_rows`` (a file already loaded,
        or a byte-for-byte redelivery that loads nothing, is not refused)."""
        if self.max_rows is not None and not seen and rows_in_file > self.max_rows:
            raise RunawayBatch(
                f"{f.path} has {rows_in_file:,} rows, more than the guard of {self.max_rows:,} "
                f"(CLV_MAX_ROWS_PER_FILE); refusing to load batch {f.batch} — nothing of it was loaded; "
                "check the delivery or raise the guard"
            )

    def guard_batch(self, batch: list[Landed], scanned: list[tuple | OSError | None]) -> None:
        """Count every file of a batch before any of them loads, so a runaway file stops its
        whole batch (and everything after it) instead of half of it."""
        for f, scan in zip(batch, scanned):
            if isinstance(scan, tuple):
                self.guard(f, scan[2], self._already(str(f.path), scan[0]))

    def load_file(self, f: Landed, scanned: tuple | OSError | None = None) -> FileResult | None:
        t0 = time.perf_counter()
        started = dt.datetime.now()
        path = str(f.path)
        if f.refused:
            return self._refuse_file(f, started, t0)
        if f.manifest_error:
            return self._fail(f, f.manifest_error, started, t0)
        if scanned is None:
            scanned = _scan_landed(f)
        if isinstance(scanned, OSError):
            return self._fail(f, f"cannot read file: {_why(scanned)}; retried on the next run", started, t0)
        sha, size, rows_in_file, first = scanned
        seen = self._already(path, sha)
        if seen and seen[0] == "same":
            return None
        mismatch = _manifest_mismatch(f, sha, size)
        if mismatch:
            return self._fail(f, mismatch, started, t0, sha, size, rows_in_file)
        self.guard(f, rows_in_file, seen)
        load_id = self._next_load_id()
        plan = None if seen else self._check(f, size, first)
        try:
            if isinstance(plan, _Rows):
                plan = self._parse(load_id, f, plan, rows_in_file)
            self.con.execute("BEGIN")
            try:
                if seen:
                    res = FileResult(
                        f.batch,
                        f.source or "?",
                        path,
                        DUPLICATE,
                        rows_in_file,
                        message=f"same bytes as load {seen[1]}; nothing loaded",
                    )
                    self._manifest_row(
                        load_id,
                        f,
                        sha,
                        size,
                        rows_in_file,
                        0,
                        0,
                        DUPLICATE,
                        res.message,
                        started,
                        dup_of=seen[1],
                    )
                elif isinstance(plan, _Rows):
                    res = self._load_rows(load_id, f, plan, sha, size, rows_in_file, started)
                else:
                    reason, found = plan
                    res = self._quarantine_file(
                        load_id, f, sha, size, rows_in_file if size else 0, reason, found, started
                    )
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        except Exception as e:
            # Out of memory, a full disk, an I/O error: the world's fault, not the file's. Nothing
            # of the file was committed; it is recorded as failed and read again on the next run.
            if not _transient(e):
                raise
            message = f"cannot read file: {_why(e)}; retried on the next run"
            return self._fail(f, message, started, t0, sha, size, rows_in_file)
        finally:
            self._drop_stage(load_id)
        res.seconds = time.perf_counter() - t0
        return res

    def _parse(self, load_id: int, f: Landed, plan: _Rows, rows_in_file: int) -> _Rows | tuple[str, list]:
        """Stage the file's rows (outside the transaction: the staged rows' rowids are then their
        parse order). A stray quote or a line break inside a field makes DuckDB's reader join
        lines, an empty line it skips: then its rows no longer map one to one to the file's lines,
        and the file is read again line by line (slower, exact), each line judged on its own.
        Transient errors (``_transient``) propagate: they say nothing about the file."""
        try:
            self._stage(load_id, f, plan)
            exact = self._staged_lines(load_id) == rows_in_file
        except duckdb.Error as e:
            if _transient(e):
                raise
            exact = False
        if not exact:
            try:
                self._stage_lines(load_id, f, plan)
            except duckdb.Error as e:
                if _transient(e):
                    raise
                return (f"unreadable as CSV: {_why(e)}", plan.header)
        return plan

    def _fail(self, f: Landed, message: str, started, t0, sha=None, size=None, rows=None) -> FileResult:
        """Record a file that could not be loaded this time: nothing of it is in the warehouse, and
        the next run tries it again (``_already`` only skips loaded, quarantined and duplicate)."""
        self.con.execute("BEGIN")
        try:
            self._manifest_row(self._next_load_id(), f, sha, size, rows, 0, 0, FAILED, message, started)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        res = FileResult(f.batch, f.source or "?", str(f.path), FAILED, message=message)
        res.seconds = time.perf_counter() - t0
        return res

    def _refuse_file(self, f: Landed, started, t0) -> FileResult | None:
        """Quarantine an entry that is not read (a link out of the landing folder, a FIFO, a
        device), once: it has no sha256, so it is known by its path and its reason."""
        if self.con.execute(
            f"SELECT 1 FROM ops.load_manifest WHERE source_file = ? AND file_sha256 IS NULL "
            f"AND status = '{QUARANTINED}' AND message = ? LIMIT 1",
            [str(f.path), f.refused],
        ).fetchone():
            return None
        self.con.execute("BEGIN")
        try:
            res = self._quarantine_file(self._next_load_id(), f, None, None, 0, f.refused, None, started)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        res.seconds = time.perf_counter() - t0
        return res

    def _quarantine_file(
        self, load_id, f: Landed, sha, size, rows_in_file, reason, found, started
    ) -> FileResult:
        src = SOURCES.get(f.source) if f.source else None
        self.con.execute(
            "INSERT INTO raw_invalid.files (load_id, batch, batch_date, source, source_file, file_sha256, "
            "reason, expected_columns, found_columns, rows_in_file, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                f.batch,
                f.batch_date,
                f.source,
                str(f.path),
                sha,
                reason,
                list(src.column_names) if src else None,
                found,
                rows_in_file,
                dt.datetime.now(),
            ],
        )
        self._manifest_row(load_id, f, sha, size, rows_in_file, 0, rows_in_file, QUARANTINED, reason, started)
        return FileResult(
            f.batch,
            f.source or "?",
            str(f.path),
            QUARANTINED,
            rows_in_file,
            0,
            rows_in_file,
            message=reason,
            reasons={f"file: {reason.split(':')[0]}": rows_in_file},
        )

    def _check(self, f: Landed, size: int, first: bytes) -> _Rows | tuple[str, list[str] | None]:
        """Decide from the header alone: load the rows, or quarantine the whole file (reason, header)."""
        if f.listed is False:
            return f"not listed in the batch manifest: {MANIFEST} lists other files", None
        if f.source is None:
            return "not a file of the source contract", None
        if f.batch_date is None:
            return "batch date unknown: name the folder YYYY-MM-DD or set batch_date in its manifest", None
        src = SOURCES[f.source]
        if size == 0:
            return "empty file: no header", None
        header = _parse_header(first)
        if header is None:
            return "header is not valid UTF-8", None
        expected = list(src.column_names)
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        duplicated = len(set(header)) != len(header)
        if missing or duplicated or (extra and not self.allow_additive):
            detail = "; ".join(
                x
                for x in (
                    f"missing {_names(missing)}" if missing else "",
                    f"unexpected {_names(extra)}" if extra else "",
                    "duplicated column names" if duplicated else "",
                )
                if x
            )
            return f"schema drift: {detail}", header
        return _Rows(src, header, f"additive columns dropped: {', '.join(extra)}" if extra else "")

    def _stage(self, load_id: int, f: Landed, plan: _Rows) -> None:
        src = plan.source
        types = {c.name: c.type for c in src.columns}
        spec = ", ".join(
            f"{sql_text.literal(h)}: {sql_text.literal(types.get(h, 'VARCHAR'))}" for h in plan.header
        )
        rej_t, rej_s = f"rejects_{load_id}", f"reject_scans_{load_id}"
        self.con.execute(f"DROP TABLE IF EXISTS {rej_t}; DROP TABLE IF EXISTS {rej_s}")
        # Parse in parallel with the contract's types; insertion order is preserved, so a staged
        # row's rowid is its position among the file's parsed rows.
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS
            SELECT *, {_row_violations(src)} AS _broken FROM read_csv({sql_text.literal(sql_text.exact_file(_readable(f)))}, header = true,
                delim = ',', quote = '"', escape = '"', auto_detect = false, columns = {{{spec}}},
                store_rejects = true, rejects_table = '{rej_t}', rejects_scan = '{rej_s}',
                max_line_size = {MAX_LINE_BYTES}, timestampformat = '%Y-%m-%d %H:%M:%S',
                dateformat = '%Y-%m-%d', encoding = 'utf-8')
        """)

    def _staged_lines(self, load_id: int) -> int:
        """Lines the fast parse accounted for: rows parsed plus distinct lines rejected."""
        return self.con.execute(
            f"SELECT (SELECT count(*) FROM _stage) + (SELECT count(DISTINCT line) FROM rejects_{load_id})"
        ).fetchone()[0]

    def _stage_lines(self, load_id: int, f: Landed, plan: _Rows) -> None:
        """Stage a file line by line (`clv.csv_lines`): one line is one row, whatever its quotes.

        Lines that cannot be a row on their own are rejected by the reader; the others are cast to
        the contract's types in SQL, and a value that does not cast rejects its line. The file is
        staged a chunk of lines at a time, so memory stays flat in the file's size."""
        src, header = plan.source, plan.header
        types = {c.name: c.type for c in src.columns}

        def cast(i: int, name: str) -> str:
            col = f"c{i}"
            kind = types.get(name, "VARCHAR")
            if kind == "TIMESTAMP":
                return f"try_strptime({col}, '%Y-%m-%d %H:%M:%S')"
            if kind == "DATE":
                return f"CAST(try_strptime({col}, '%Y-%m-%d') AS DATE)"
            return f"TRY_CAST({col} AS {kind})"

        con = self.con
        rej_t = f"rejects_{load_id}"
        con.execute(f"DROP TABLE IF EXISTS {rej_t}; DROP TABLE IF EXISTS reject_scans_{load_id}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {rej_t} (line BIGINT, csv_line VARCHAR, error_type VARCHAR, "
            "column_name VARCHAR, error_message VARCHAR)"
        )
        typed = ", ".join(f"{cast(i, h)} AS {_q(h)}" for i, h in enumerate(header))
        failed = " OR ".join(f"(c{i} IS NOT NULL AND {_q(h)} IS NULL)" for i, h in enumerate(header))
        names = ", ".join(_q(h) for h in header)
        first = True
        for chunk in csv_lines.read(_readable(f), len(header)):
            con.register("_clv_lines", chunk.rows)
            con.register("_clv_line_rejects", chunk.rejects)
            try:
                con.execute(
                    f"INSERT INTO {rej_t} (line, csv_line, error_type, column_name, error_message) "
                    "SELECT line, csv_line, error_type, column_name, error_message FROM _clv_line_rejects"
                )
                con.execute(f"""CREATE OR REPLACE TEMP TABLE _typed AS
                    SELECT {typed}, _row_number, _text, {failed} AS _cast_failed FROM _clv_lines""")
                for i, h in enumerate(header):
                    con.execute(
                        f"""INSERT INTO {rej_t} (line, csv_line, error_type, column_name, error_message)
                        SELECT t._row_number + 1, t._text, 'CAST', {sql_text.literal(h)},
                            'could not convert ' || l.c{i} || ' to {types.get(h, "VARCHAR")}'
                        FROM _typed t JOIN _clv_lines l USING (_row_number)
                        WHERE l.c{i} IS NOT NULL AND t.{_q(h)} IS NULL"""
                    )
                rows = f"""SELECT {names}, _row_number, {_row_violations(src)} AS _broken FROM _typed
                    WHERE NOT _cast_failed ORDER BY _row_number"""
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE _stage AS {rows}"
                    if first
                    else f"INSERT INTO _stage {rows}"
                )
                first = False
            finally:
                con.unregister("_clv_lines")
                con.unregister("_clv_line_rejects")
                con.execute("DROP TABLE IF EXISTS _typed")
        plan.by_line = True

    def _drop_stage(self, load_id: int) -> None:
        self.con.execute(
            f"DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _rejected; "
            f"DROP TABLE IF EXISTS rejects_{load_id}; DROP TABLE IF EXISTS reject_scans_{load_id}"
        )

    def _load_rows(self, load_id, f: Landed, plan: _Rows, sha, size, rows_in_file, started) -> FileResult:
        con, src = self.con, plan.source
        rej_t = f"rejects_{load_id}"
        loaded_at = dt.datetime.now()
        base = con.execute("SELECT coalesce(min(rowid), 0) FROM _stage").fetchone()[0]
        # Parser rejects: one quarantine row per rejected line, all its errors as the reason.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rejected AS
            SELECT line - 1 AS rn, any_value(csv_line) AS raw_line,
                   string_agg(DISTINCT error_type || coalesce(':' || column_name, ''), ',') AS kinds,
                   string_agg(DISTINCT {_REJECT_REASON_SQL}, '; ') || ' (' || any_value(error_message) || ')'
                       AS messages
            FROM {rej_t} GROUP BY line
        """)
        bad_lines = np.array(
            [r[0] for r in con.execute("SELECT rn FROM _rejected ORDER BY rn").fetchall()], dtype=np.int64
        )
        rejected = len(bad_lines)
        # The k-th parsed row (rowid k of the staged table) is file row k + 1 + the number of
        # rejected lines before it; the i-th rejected line b_i has b_i - i parsed rows before it.
        self._gaps = bad_lines - np.arange(1, rejected + 1)
        parsed = f"(rowid - {base})"
        row_number = f"{_ROW_NUMBER_UDF}{parsed}" if rejected else f"{parsed} + 1"
        if plan.by_line:
            row_number = "_row_number"
        cols = ", ".join(_q(c) for c in src.column_names)
        text_cols = ", ".join(f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in src.column_names)
        lineage = (
            f"{load_id} AS _load_id, DATE '{f.batch_date.isoformat()}' AS _batch_date, "
            f"{row_number} AS _row_number, TIMESTAMP '{loaded_at.isoformat(sep=' ')}' AS _loaded_at"
        )
        con.execute("SET preserve_insertion_order = false")
        try:
            loaded = con.execute(
                f"INSERT INTO raw_data.{src.name} SELECT {cols}, {lineage} FROM _stage WHERE NOT _broken"
            ).fetchone()[0]
            ruled = con.execute(
                f"INSERT INTO raw_invalid.{src.name} SELECT {text_cols}, NULL, "
                f"{_row_rules(src)}, {lineage} FROM _stage WHERE _broken"
            ).fetchone()[0]
        finally:
            con.execute("SET preserve_insertion_order = true")
        nulls = ", ".join("NULL" for _ in src.column_names)
        con.execute(f"""INSERT INTO raw_invalid.{src.name}
            SELECT {nulls}, raw_line, messages, {load_id}, DATE '{f.batch_date.isoformat()}', rn,
                   TIMESTAMP '{loaded_at.isoformat(sep=" ")}' FROM _rejected""")
        reasons: dict[str, int] = {}
        for why, n in con.execute(
            f"SELECT _reason, count(*) FROM raw_invalid.{src.name} "
            f"WHERE _load_id = {load_id} AND _raw_line IS NULL GROUP BY 1"
        ).fetchall():
            for part in why.split("; "):
                key = re.sub(r": .*", "", part) if part.startswith(("invalid", "out of range")) else part
                reasons[key] = reasons.get(key, 0) + n
        for kinds, n in con.execute("""SELECT kinds, count(*) FROM _rejected GROUP BY 1""").fetchall():
            # a line with several errors of one kind (too few fields: one per missing column)
            # counts once per reason
            for key in {_reject_reason(*k.partition(":")[::2]) for k in kinds.split(",")}:
                reasons[key] = reasons.get(key, 0) + n
        quarantined = ruled + rejected
        self._manifest_row(
            load_id, f, sha, size, rows_in_file, loaded, quarantined, LOADED, plan.message, started
        )
        return FileResult(
            f.batch,
            src.name,
            str(f.path),
            LOADED,
            rows_in_file,
            loaded,
            quarantined,
            message=plan.message,
            reasons=reasons,
        )


def load(
    data_dir: Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    allow_additive_columns: bool = False,
    max_rows_per_file: int | None = None,
) -> LoadSummary:
    """Load every landed file not yet loaded. The one entry point for the CLI and Airflow."""
    paths = settings.paths(data_dir)
    t0 = time.perf_counter()
    files, waiting = discover(paths.landing)
    own = con is None
    if own:
        from clv.warehouse import connect

        con = connect(paths.warehouse)
    if max_rows_per_file is None:
        max_rows_per_file = settings.max_rows_per_file()
    try:
        con.execute("SET preserve_insertion_order = true")
        ensure_schema(con)
        loader = Loader(con, allow_additive_columns, max_rows_per_file)
        summary = LoadSummary(incomplete_batches=waiting)
        # Hash and count the next file on a thread while DuckDB loads the current one. With a
        # count guard, every file of a batch is counted before the batch's first file loads.
        with ThreadPoolExecutor(1) as pool:
            scans: dict[int, Future] = {}

            def scan(j: int) -> Future:
                if j not in scans:
                    scans[j] = pool.submit(_scan_landed, files[j])
                return scans[j]

            for i, f in enumerate(files):
                if max_rows_per_file is not None and (i == 0 or files[i - 1].batch != f.batch):
                    same = [j for j in range(i, len(files)) if files[j].batch == f.batch]
                    loader.guard_batch([files[j] for j in same], [scan(j).result() for j in same])
                if i + 1 < len(files):
                    scan(i + 1)
                res = loader.load_file(f, scan(i).result())
                if res is None:
                    summary.skipped += 1
                else:
                    summary.files.append(res)
        summary.seconds = time.perf_counter() - t0
        return summary
    finally:
        if own:
            con.close()


def reconcile(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per file: rows in file vs rows in raw + quarantined. Empty warehouse: no rows."""
    ensure_schema(con)
    cur = con.execute("SELECT * FROM ops.load_reconciliation ORDER BY load_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
