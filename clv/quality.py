"""Soda Core scans after each layer: on the layer's own DuckDB connection, with the business date
as a variable, reports on disk, every outcome in ``ops.check_results``, and a gate.

A scan fails its step when any check fails at error level or the scan logged an error (a missing
table is an error, not a pass). Warnings are recorded and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv import anomalies, settings
from clv.business_date import soda_now
from clv.contract import SOURCES, Source
from clv.errors import CheckFailed, UserError
from clv.names import CHECKED_LAYERS
from clv.soda_runtime import new_scan

CHECKS_DIR = settings.PROJECT_ROOT / "soda_checks"
QUARANTINE_WARN, QUARANTINE_FAIL = 0.01, 0.10
#: A rate over a handful of rows is noise (one bad row of four is 25%): the quarantine rate counts
#: a batch of fewer rows as this many, so a tiny batch fails only when several rows are bad.
QUARANTINE_MIN_ROWS = 50
SAMPLE_ROWS = 5


def _row_sampler(samples: dict[str, list[dict]]):
    """A Soda sampler that keeps the first few failing rows of each check, for the report."""
    from soda.sampler.default_sampler import DefaultSampler

    class RowSampler(DefaultSampler):
        def store_sample(self, sample_context):
            try:
                columns = [c.name for c in sample_context.sample.get_schema().columns]
                rows = sample_context.sample.get_rows()[:SAMPLE_ROWS]
                name = sample_context.check_name or sample_context.sample_name
                samples[name] = [dict(zip(columns, (str(v) for v in r))) for r in rows]
            except Exception as e:  # a sample is a courtesy: never fail the scan over it
                samples[sample_context.check_name or "?"] = [{"sample error": str(e)}]
            return super().store_sample(sample_context)

    return RowSampler()


class ScanFailed(CheckFailed):
    """A layer's checks failed (error level) or the scan could not run them."""


@dataclass
class ScanResult:
    layer: str
    run_id: str
    business_date: dt.date
    checks: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: dict[str, list[dict]] = field(default_factory=dict)
    soda_results: dict = field(default_factory=dict)
    report: Path | None = None

    @property
    def failed(self) -> list[dict]:
        return [c for c in self.checks if c["outcome"] == "fail"]

    @property
    def warned(self) -> list[dict]:
        return [c for c in self.checks if c["outcome"] == "warn"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def failure_names(self) -> str:
        """The failed checks' names, each with the explanations its failing rows carry (a column
        ``explanation``: the anomaly and model-health checks), so that the alert says which metric
        broke which rule and its history; else the scan's errors."""
        parts = []
        for c in self.failed:
            said = [r["explanation"] for r in self.samples.get(c["name"]) or [] if r.get("explanation")]
            parts.append(f"{c['name']} [{'; '.join(said)}]" if said else c["name"])
        return ", ".join(parts) or "; ".join(self.errors)[:300]

    def line(self) -> str:
        n = len(self.checks)
        return (
            f"scan {self.layer}: {n - len(self.failed) - len(self.warned)}/{n} passed, "
            f"{len(self.warned)} warned, {len(self.failed)} failed, {len(self.errors)} errors"
            + (f" -> {self.report}" if self.report else "")
        )


def raw_checks_yaml(src: Source) -> str:
    """SodaCL for one raw source, written from the contract (kept in sync by a test)."""
    name = src.name
    q = "'"
    lines = [
        "# Generated from clv/contract.py by `clv scan --write-raw-checks`; do not edit.",
        f"filter {name} [batch]:",
        "  where: _batch_date = DATE '${BUSINESS_DATE}'",
        "",
        f"checks for {name}:",
        # Soda's own schema check matches tables by name across schemas (raw_data and raw_invalid
        # hold tables of the same names), so the contract is checked against information_schema.
        "  - contract_column_mismatches = 0:",
        f"      name: {name} has the contract's columns and types",
        "      contract_column_mismatches query: |",
        "        WITH expected(column_name, data_type) AS (VALUES "
        + ", ".join(f"('{c.name}', '{c.type.replace(' ', '')}')" for c in src.columns)
        + ")",
        "        SELECT count(*) FROM expected AS e LEFT JOIN information_schema.columns AS c",
        f"          ON c.table_schema = 'raw' AND c.table_name = '{name}' AND c.column_name = e.column_name",
        "        WHERE c.data_type IS DISTINCT FROM e.data_type",
    ]
    lines += [
        "  - row_count > 0:",
        f"      name: {name} holds rows",
        # Rows quarantined by the contract's row rules in the files that loaded; a file
        # quarantined whole (schema drift) is the next check's business, and raises an alert.
        "  - quarantine_rate:",
        f"      name: {name} quarantine rate of the batch",
        "      quarantine_rate query: |",
        "        SELECT coalesce(sum(rows_quarantined)::DOUBLE / "
        f"greatest(sum(rows_in_file), {QUARANTINE_MIN_ROWS}), 0)",
        f"        FROM ops.load_manifest WHERE source = {q}{name}{q}",
        "          AND batch_date = DATE '${BUSINESS_DATE}' AND status = 'loaded'",
        f"      warn: when > {QUARANTINE_WARN}",
        f"      fail: when > {QUARANTINE_FAIL}",
        "  - quarantined_files:",
        f"      name: {name} files of the batch quarantined whole",
        "      quarantined_files query: |",
        f"        SELECT count(*) FROM ops.load_manifest WHERE source = {q}{name}{q}",
        "          AND batch_date = DATE '${BUSINESS_DATE}' AND status = 'quarantined'",
        "      warn: when > 0",
        "",
        f"checks for {name} [batch]:",
        "  - row_count:",
        f"      name: {name} rows delivered in the batch",
        "      warn: when = 0",
    ]
    for col in src.required_ids:
        lines += [f"  - missing_count({col}) = 0:", f"      name: {name}.{col} present"]
    for c in src.columns:
        if c.enum:
            lines += [
                f"  - invalid_count({c.name}) = 0:",
                f"      name: {name}.{c.name} within the contract's values",
                f"      valid values: [{', '.join(c.enum)}]",
            ]
        if c.min is not None:
            lines += [f"  - min({c.name}) >= {c.min:g}:", f"      name: {name}.{c.name} not below {c.min:g}"]
        if c.max is not None:
            lines += [f"  - max({c.name}) <= {c.max:g}:", f"      name: {name}.{c.name} not above {c.max:g}"]
    return "\n".join(lines) + "\n"


def write_raw_checks() -> list[Path]:
    out = []
    for src in SOURCES.values():
        path = CHECKS_DIR / "raw" / f"{src.name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(raw_checks_yaml(src))
        out.append(path)
    return out


MODEL_SCHEMA = re.compile(r"\b(staging|core|intermediate|marts)\.(?=[A-Za-z_])")


def env_schema(layer: str, environment: str | None) -> str:
    """The schema a layer's models live in, in a SQLMesh environment (prod: the layer's name)."""
    if layer == "raw" or environment in (None, "", "prod"):
        return layer
    return f"{layer}__{environment}"


def for_environment(sodacl: str, environment: str) -> str:
    """Point a check file's schema-qualified references at an environment's schemas."""
    return MODEL_SCHEMA.sub(lambda m: env_schema(m.group(1), environment) + ".", sodacl)


def ensure_results_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute("""CREATE TABLE IF NOT EXISTS ops.check_results (
        run_id VARCHAR NOT NULL, layer VARCHAR NOT NULL, dataset VARCHAR, check_name VARCHAR NOT NULL,
        outcome VARCHAR NOT NULL, value DOUBLE, business_date DATE NOT NULL, scanned_at TIMESTAMP NOT NULL)""")


def scan(
    con: duckdb.DuckDBPyConnection,
    layer: str,
    business_date: dt.date,
    run_id: str | None = None,
    data_dir: Path | None = None,
    raise_on_failure: bool = True,
    environment: str | None = None,
) -> ScanResult:
    """Run the layer's checks on this connection; record and report them; raise when they fail.

    With ``environment`` (a SQLMesh virtual environment other than prod), the checks run against
    that environment's schemas (``marts__<env>``, ...) and the run id carries ``@<env>``.
    """
    if layer not in CHECKED_LAYERS:
        raise UserError(f"unknown layer {layer!r}; use one of {', '.join(CHECKED_LAYERS)}")
    paths = settings.paths(data_dir)
    run_id = run_id or f"{business_date.isoformat()}-{uuid.uuid4().hex[:8]}"
    env = None if environment in (None, "", "prod") else environment
    if env:
        run_id = f"{run_id}@{env}"
    files = sorted((CHECKS_DIR / layer).glob("*.yml"))
    result = ScanResult(layer, run_id, business_date)
    ensure_results_table(con)
    anomalies.ensure_tables(con)  # the anomaly checks read it, even before any metric is recorded
    if not files:
        result.errors.append(f"no checks in {CHECKS_DIR / layer}")
    else:
        previous = con.execute("SELECT current_setting('search_path')").fetchone()[0]
        con.execute(f"SET search_path = '{env_schema(layer, env)}'")
        try:
            s = new_scan(
                con,
                f"clv_{layer}",
                variables={
                    "BUSINESS_DATE": business_date.isoformat(),
                    "NOW": soda_now(business_date),
                    "ENVIRONMENT": env or "prod",
                },
                data_dir=paths.data_dir,
            )
            s.sampler = _row_sampler(result.samples)
            for f in files:
                if env:
                    s.add_sodacl_yaml_str(for_environment(f.read_text(), env), file_name=str(f))
                else:
                    s.add_sodacl_yaml_file(str(f))
            s.execute()
        finally:
            con.execute(f"SET search_path = '{previous}'")
        results = s.get_scan_results()
        result.soda_results = results
        for c in results.get("checks", []):
            value = (c.get("diagnostics") or {}).get("value")
            result.checks.append(
                {
                    "dataset": c.get("table"),
                    "name": c.get("name"),
                    "outcome": c.get("outcome") or "error",
                    "value": value if isinstance(value, int | float) else None,
                }
            )
        result.errors += [log["message"] for log in results.get("logs", []) if log.get("level") == "ERROR"]
    ensure_results_table(con)
    now = dt.datetime.now()
    for c in result.checks:
        con.execute(
            "INSERT INTO ops.check_results (run_id, layer, dataset, check_name, outcome, value, "
            "business_date, scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, layer, c["dataset"], c["name"], c["outcome"], c["value"], business_date, now],
        )
    result.report = _write_report(paths.reports / run_id, result)
    if raise_on_failure and not result.ok:
        raise ScanFailed(f"{layer} checks failed: {result.failure_names()}")
    return result


def _write_report(folder: Path, result: ScanResult) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{result.layer}.json").write_text(
        json.dumps(
            {
                "layer": result.layer,
                "run_id": result.run_id,
                "business_date": result.business_date.isoformat(),
                "checks": result.checks,
                "errors": result.errors,
                "failing_row_samples": result.samples,
                "soda_scan_results": result.soda_results,
            },
            indent=2,
            default=str,
        )
    )
    lines = [
        f"# {result.layer} checks — business date {result.business_date}",
        "",
        result.line(),
        "",
        "| dataset | check | outcome | value |",
        "| --- | --- | --- | ---: |",
    ]
    for c in sorted(
        result.checks, key=lambda c: ({"fail": 0, "warn": 1}.get(c["outcome"], 2), c["name"] or "")
    ):
        lines.append(
            f"| {c['dataset']} | {c['name']} | {c['outcome']} | {'' if c['value'] is None else c['value']} |"
        )
    for c in [*result.failed, *result.warned]:
        rows = result.samples.get(c["name"])
        if rows:
            cols = list(rows[0])
            lines += [
                "",
                f"## {c['name']}: first {len(rows)} failing rows",
                "",
                "| " + " | ".join(cols) + " |",
                "|" + " --- |" * len(cols),
            ]
            lines += ["| " + " | ".join(r.get(k, "") for k in cols) + " |" for r in rows]
    for e in result.errors:
        lines.append(f"\n**Scan error:** {e}")
    path = folder / f"{result.layer}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
