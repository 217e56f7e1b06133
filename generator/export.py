"""Turn simulated versions into landed batches: CSV files to the contract, a manifest, a fault log.

A batch is a folder ``landing/<batch>/`` holding one ``<source>.csv`` per source and
``_manifest.json`` (row counts, bytes, sha256). Each file is written under a temporary name and
renamed into place, and the manifest is written last, so a reader never sees half a file and can
treat a folder without a manifest as still arriving.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from clv.contract import SOURCES, Source
from generator import chaos as chaos_mod
from generator.chaos import FAULT_FIELDS, ChaosProfile

#: Sources whose rows are states of an entity: a batch carries the latest state per key.
STATEFUL = {"customers": "customer_id", "subscriptions": "subscription_id", "support_tickets": "ticket_id"}
MANIFEST = "_manifest.json"
_PLAIN = pcsv.WriteOptions(include_header=False, quoting_style="none")
_QUOTED = pcsv.WriteOptions(include_header=False, quoting_style="needed")


def csv_bytes(table: pa.Table) -> bytes:
    """CSV rows without a header. Fields are quoted only when a value needs it: Arrow's writer
    either quotes every string or none, so try none first and fall back for the rare chunk with a
    delimiter or quote in a value."""
    # One chunk per column: Arrow 26's writer emitted garbage bytes between rows for some
    # multi-chunk tables (seen with quoting "none" on tables read from several parquet files).
    table = table.combine_chunks()
    buf = io.BytesIO()
    try:
        pcsv.write_csv(table, buf, _PLAIN)
    except pa.ArrowInvalid:
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, _QUOTED)
    return buf.getvalue()


def latest_versions(table: pa.Table, source: str) -> pa.Table:
    """For stateful sources keep one row per key: the latest version (by ``_t``)."""
    key = STATEFUL.get(source)
    if key is None or table.num_rows == 0:
        return table
    table = table.sort_by([(key, "ascending"), ("_t", "ascending")])
    k = table.column(key)
    n = table.num_rows
    differs = pc.not_equal(k.slice(1), k.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    last = np.append(differs, True)
    return table.filter(pa.array(last))


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar month arithmetic on days-since-1970, clamping to the month's last day."""
    d = days.astype("datetime64[D]")
    mo = d.astype("datetime64[M]")
    dom = (d - mo.astype("datetime64[D]")).astype(np.int64)
    target = mo + months.astype("timedelta64[M]")
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return (target.astype("datetime64[D]") + np.minimum(dom, month_len - 1)).astype(np.int64)


def renewal_dates(start_days: np.ndarray, billing_months: np.ndarray, as_of: int) -> np.ndarray:
    """The first renewal strictly after ``as_of``: start plus a whole number of billing cycles."""
    start_mo = start_days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    asof_mo = np.datetime64(as_of, "D").astype("datetime64[M]").astype(np.int64)
    k = np.maximum((asof_mo - start_mo) // billing_months, 1) * billing_months
    cand = add_months(start_days, k)
    k = np.where(cand <= as_of, k + billing_months, k)
    return add_months(start_days, k)


def finalize(source: Source, table: pa.Table, as_of_day: int) -> pa.Table:
    """The visible columns of the contract, in order, with fields derived at export time."""
    if source.name == "subscriptions":
        active = pc.equal(table.column("status"), "active").to_numpy(zero_copy_only=False)
        start = table.column("start_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
        months = table.column("_billing_months").to_numpy(zero_copy_only=False)
        renew = (
            renewal_dates(start.astype(np.int64), months.astype(np.int64), as_of_day) if len(start) else start
        )
        renew_arr = pa.array(np.asarray(renew, dtype=np.int32), pa.date32(), mask=~active)
        table = table.append_column("renewal_date", renew_arr)
    table = table.select(list(source.column_names))
    return table.cast(_wire_schema(table.schema))


def _wire_schema(schema: pa.Schema) -> pa.Schema:
    """Timestamps at whole seconds, whatever a parquet round trip made of them."""
    return pa.schema(
        [pa.field(f.name, pa.timestamp("s")) if pa.types.is_timestamp(f.type) else f for f in schema]
    )


@dataclass
class Rendered:
    """One chunk of one source's file: CSV rows without header, and its fault log (1-based rows)."""

    data: bytes
    rows: int
    log: dict[str, list]


def _empty_log() -> dict[str, list]:
    return {f.name: [] for f in FAULT_FIELDS if f.name not in ("batch", "source")}


def render(
    source_name: str,
    versions: pa.Table,
    as_of_day: int,
    chaos: ChaosProfile,
    rng: np.random.Generator,
    columns: list[str] | None = None,
) -> Rendered:
    """Finalize versions to the contract, record late events, inject row faults, render CSV.

    ``columns`` is the file's header when its schema drifted; rows are reshaped to match it.
    Pure function of its inputs, so chunks can be rendered in worker processes.
    """
    source = SOURCES[source_name]
    log = _empty_log()
    if versions.num_rows == 0:
        return Rendered(b"", 0, log)
    table = finalize(source, versions, as_of_day)
    if source.event_time and "_event_day" in versions.column_names:
        lag = pc.subtract(versions.column("_delivery"), versions.column("_event_day")).to_numpy(
            zero_copy_only=False
        )
        late = np.flatnonzero(lag > 0)
        if len(late):
            log["fault"] += ["late_event"] * len(late)
            log["row_number"] += (late + 1).tolist()
            log["key"] += pc.take(table.column(source.primary_key[0]), pa.array(late)).to_pylist()
            log["column"] += [source.event_time] * len(late)
            log["value"] += [""] * len(late)
            log["detail"] += [f"{d} days late" for d in lag[late].tolist()]
    table, faults = chaos_mod.inject_row_faults(table, source, chaos, rng)
    for k, v in faults.items():
        log[k] += v
    if columns is not None and columns != list(source.column_names):
        table = reshape(source, table, columns)
    return Rendered(csv_bytes(table), table.num_rows, log)


def reshape(source: Source, table: pa.Table, columns: list[str]) -> pa.Table:
    """Rows of a drifted file: a renamed column keeps its position, an extra one says 'v2'."""
    renamed = len(columns) == len(source.columns)
    out = {}
    for pos, name in enumerate(columns):
        if name in table.column_names:
            out[name] = table.column(name)
        elif name == chaos_mod.EXTRA_COLUMN:
            out[name] = pa.array(np.full(table.num_rows, "v2"))
        elif renamed:
            out[name] = table.column(source.column_names[pos])
        else:
            raise ValueError(f"cannot place column {name!r} of drifted {source.name}")
    return pa.table(out)


@dataclass
class FileStats:
    columns: list[str]
    rows: int = 0
    bytes: int = 0
    sha: hashlib._Hash = field(default_factory=hashlib.sha256)


class BatchWriter:
    """Writes one batch folder; a source's rows may arrive in several rendered chunks."""

    def __init__(
        self,
        landing: Path,
        batch: str,
        batch_date: str,
        kind: str,
        chaos: ChaosProfile,
        faults_dir: Path,
        meta: dict | None = None,
    ) -> None:
        self.dir = landing / batch
        self.dir.mkdir(parents=True, exist_ok=True)
        self.batch, self.batch_date, self.kind, self.chaos = batch, batch_date, kind, chaos
        self.faults_dir = faults_dir
        self.meta = meta or {}
        self.stats: dict[str, FileStats] = {}
        self.handles: dict[str, io.BufferedWriter] = {}
        self.header: dict[str, list[str]] = {}
        # the fault log streams to disk chunk by chunk: late events alone are ~2% of all rows
        faults_dir.mkdir(parents=True, exist_ok=True)
        self.faults_path = faults_dir / f"{batch}.csv"
        self.faults_tmp = faults_dir / f".{batch}.csv.tmp"
        self.fault_writer = pcsv.CSVWriter(
            str(self.faults_tmp),
            pa.schema(FAULT_FIELDS),
            write_options=pcsv.WriteOptions(quoting_style="needed"),
        )

    def drift(self, source_name: str, rng: np.random.Generator) -> None:
        """Give this source's file a drifted schema (before any of its rows are added)."""
        source = SOURCES[source_name]
        columns, kind, detail = chaos_mod.drift_columns(source, rng)
        self.header[source_name] = columns
        self._log_many(
            source_name,
            {
                "fault": ["schema_drift"],
                "row_number": [None],
                "key": [""],
                "column": [""],
                "value": [kind],
                "detail": [detail],
            },
        )

    def columns(self, source_name: str) -> list[str] | None:
        return self.header.get(source_name)

    def add(self, source_name: str, part: Rendered) -> None:
        if source_name not in self.stats:
            columns = self.header.get(source_name, list(SOURCES[source_name].column_names))
            self.stats[source_name] = FileStats(columns)
            tmp = self.dir / f".{SOURCES[source_name].filename}.tmp"
            self.handles[source_name] = open(tmp, "wb")  # noqa: SIM115 - closed in close()
            self._emit(source_name, (",".join(columns) + "\n").encode())
        st = self.stats[source_name]
        log = dict(part.log)
        log["row_number"] = [st.rows + r for r in log["row_number"]]
        self._log_many(source_name, log)
        self._emit(source_name, part.data)
        st.rows += part.rows

    def _emit(self, source: str, data: bytes) -> None:
        st = self.stats[source]
        st.sha.update(data)
        st.bytes += len(data)
        self.handles[source].write(data)

    def _log_many(self, source: str, log: dict[str, list]) -> None:
        n = len(log["fault"])
        if n:
            full = {**log, "batch": [self.batch] * n, "source": [source] * n}
            self.fault_writer.write_table(
                pa.table({f.name: pa.array(full[f.name], f.type) for f in FAULT_FIELDS})
            )

    def close(self) -> dict:
        """Rename every file into place, then write the manifest and the fault log."""
        for name in SOURCES:
            if name not in self.stats:
                self.add(name, Rendered(b"", 0, _empty_log()))
        files = {}
        for name, st in self.stats.items():
            self.handles[name].close()
            final = self.dir / SOURCES[name].filename
            os.replace(self.dir / f".{final.name}.tmp", final)
            files[name] = {
                "file": final.name,
                "rows": st.rows,
                "bytes": st.bytes,
                "sha256": st.sha.hexdigest(),
                "columns": st.columns,
            }
        manifest = {
            "batch": self.batch,
            "batch_date": self.batch_date,
            "kind": self.kind,
            "chaos": self.chaos.name,
            **self.meta,
            "files": files,
        }
        atomic_write_text(self.dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        self.fault_writer.close()
        os.replace(self.faults_tmp, self.faults_path)
        return manifest


def write_faults(path: Path, faults: dict[str, list]) -> None:
    table = pa.table({f.name: pa.array(faults[f.name], f.type) for f in FAULT_FIELDS})
    tmp = path.with_name(f".{path.name}.tmp")
    pcsv.write_csv(table, tmp, pcsv.WriteOptions(quoting_style="needed"))
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
