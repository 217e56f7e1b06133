"""The review of a candidate: what a person deciding whether to promote an isolated SQLMesh
environment (a deploy or a backfill) to prod needs to see, on one page.

Four parts, each against prod: the plan (models added, removed, directly and indirectly modified
with SQLMesh's change category, and the intervals this plan backfilled), the data diff of every
changed mart (SQLMesh's ``table_diff`` on the model's grain: rows only in prod, only in the
candidate, changed, the share of rows matching per column, a few changed rows), the candidate's
check results (Soda per layer and SQLMesh audits, failures first), and the business figures
(customers, predicted value, revenue at risk, customers per value tier and risk band, the churn
model's holdout scores) side by side.

The plan is read from SQLMesh's state — the environment's snapshots against prod's — not from
the plan object, so planning the same environment again (nothing new to build) still shows what
separates it from prod. A review is plain data (``to_dict``/``from_dict``, JSON) so it travels as
Airflow XCom and is written beside the environment's layer reports; ``markdown`` renders it for
the approval task's page and ``text`` for the CLI, from the same sections.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clv.quality import ScanResult, env_schema

SAMPLE_ROWS = 5  # changed rows shown per mart
SAMPLE_COLUMNS = 4  # changed columns shown in that sample (prod and candidate value each)

# The business figures, prod vs candidate: (name, layer, table, SQL aggregate, unit).
TOTALS = (
    ("customers", "marts", "mart_clv", "count(*)", "count"),
    ("predicted value, next 12 months", "marts", "mart_clv", "sum(predicted_clv_12m_usd)", "usd"),
    ("remaining value if retained", "marts", "mart_clv", "sum(predicted_remaining_clv_usd)", "usd"),
    ("revenue at risk", "marts", "mart_churn_risk", "sum(revenue_at_risk_usd)", "usd"),
    ("value already lost", "marts", "mart_churn_risk", "sum(value_lost_usd)", "usd"),
    ("churn model holdout AUC", "intermediate", "int_churn_model", "max(holdout_auc)", "ratio"),
    ("BG/NBD alone holdout AUC", "intermediate", "int_churn_model", "max(holdout_auc_bgnbd)", "ratio"),
    ("churn model holdout log-loss", "intermediate", "int_churn_model", "max(holdout_log_loss)", "ratio"),
)
# Customers per group, ordered the way the mart ranks them: (what, table, column, order key).
BREAKDOWNS = (
    ("value tier", "mart_clv", "value_tier", "min(value_rank)"),
    ("risk band", "mart_churn_risk", "risk_band", "-max(churn_probability)"),
)


@dataclass
class Review:
    environment: str
    business_date: str
    changes: list[dict] = field(default_factory=list)  # model, change, category
    backfills: list[dict] = field(default_factory=list)  # model, intervals, start, end
    diffs: list[dict] = field(default_factory=list)  # one per changed mart (see mart_diff)
    checks: list[dict] = field(default_factory=list)  # layer, dataset, name, outcome, value
    scan_errors: list[dict] = field(default_factory=list)  # layer, message
    reports: dict[str, str] = field(default_factory=dict)  # layer -> Soda report path
    audits: list[dict] = field(default_factory=list)  # model, passed, failed
    figures: list[dict] = field(default_factory=list)  # group, name, prod, candidate, unit

    # -- verdicts --------------------------------------------------------------------------------

    @property
    def failed(self) -> list[dict]:
        return [c for c in self.checks if c["outcome"] == "fail"]

    @property
    def warned(self) -> list[dict]:
        return [c for c in self.checks if c["outcome"] == "warn"]

    @property
    def ok(self) -> bool:
        """No error-level check failed and every scan ran: the candidate may be promoted (and the
        ``promote`` param promotes it without asking). Warnings and failed non-blocking audits do
        not block, as everywhere in the pipeline; the review lists them first."""
        return not self.failed and not self.scan_errors

    @property
    def changed_models(self) -> list[str]:
        return [c["model"] for c in self.changes]

    def verdict(self) -> str:
        if not self.ok:
            problems = len(self.failed) + len(self.scan_errors)
            return (
                f"{problems} checks failed or could not run: the candidate cannot be promoted "
                "(prod and the serving file are unchanged)."
            )
        warned = len(self.warned) + sum(1 for a in self.audits if a["failed"])
        if warned:
            return f"No check failed; {warned} warned (listed first under Checks)."
        audits = sum(a["passed"] for a in self.audits)
        return f"Every check passed ({len(self.checks)} Soda checks, {audits} SQLMesh audits)."

    # -- plain data ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Review:
        return cls(**data)

    @classmethod
    def read(cls, markdown_path: str | Path) -> Review:
        """The review ``write`` wrote (from the ``review.json`` beside its Markdown)."""
        return cls.from_dict(json.loads(Path(markdown_path).with_name("review.json").read_text()))

    def write(self, folder: Path) -> Path:
        """Write ``review.md`` and ``review.json`` into ``folder``; return the Markdown's path."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "review.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))
        path = folder / "review.md"
        path.write_text(self.markdown())
        return path

    # -- rendering -------------------------------------------------------------------------------

    def title(self) -> str:
        return f"Review of environment `{self.environment}` against prod — business date {self.business_date}"

    def sections(self) -> list[tuple[str, list]]:
        """The review as (heading, blocks); a block is a paragraph (str) or a ``Table``."""
        return [
            ("Verdict", [self.verdict()]),
            ("Plan", self._plan_blocks()),
            ("Data diff of the changed marts", self._diff_blocks()),
            ("Checks (failures first)", self._check_blocks()),
            ("Business figures: prod vs candidate", self._figure_blocks()),
        ]

    def markdown(self) -> str:
        out = [f"## {self.title()}", ""]
        for heading, blocks in self.sections():
            out += [f"### {heading}", ""]
            for block in blocks:
                out += [*(block.markdown() if isinstance(block, Table) else [block]), ""]
        return "\n".join(out).rstrip() + "\n"

    def text(self) -> str:
        title = self.title().replace("`", "")
        out = [title, "=" * len(title)]
        for heading, blocks in self.sections():
            out += ["", heading, "-" * len(heading)]
            for block in blocks:
                out += (
                    block.text() if isinstance(block, Table) else [block.replace("`", "").replace("**", "")]
                )
        return "\n".join(out) + "\n"

    def _plan_blocks(self) -> list:
        blocks: list = []
        if not self.changes:
            blocks.append("The candidate holds the same model versions as prod.")
        else:
            counts = {}
            for c in self.changes:
                counts[c["change"]] = counts.get(c["change"], 0) + 1
            blocks.append(", ".join(f"{n} {what}" for what, n in counts.items()) + ".")
            rows = [[f"`{c['model']}`", c["change"], c["category"] or ""] for c in self.changes]
            blocks.append(Table(["model", "change", "category"], rows))
        if self.backfills:
            rows = [[f"`{b['model']}`", b["start"], b["end"], f"{b['intervals']:,}"] for b in self.backfills]
            blocks.append(f"This plan backfilled {len(self.backfills)} models:")
            blocks.append(Table(["model", "from", "to (exclusive)", "intervals"], rows, right={3}))
        else:
            blocks.append("This plan backfilled nothing (the environment already held these versions).")
        return blocks

    def _diff_blocks(self) -> list:
        if not self.diffs:
            return ["No mart holds different data from prod (no mart has a new version)."]
        blocks: list = []
        for d in self.diffs:
            blocks.append(f"**`{d['model']}`** (joined on {', '.join(d['grain'])})")
            blocks.append(
                Table(
                    ["rows in prod", "rows in candidate", "only in prod", "only in candidate", "changed", "unchanged"],
                    [[f"{d[k]:,}" for k in ("prod_rows", "candidate_rows", "only_in_prod", "only_in_candidate", "changed", "unchanged")]],
                    right=set(range(6)),
                )
            )  # fmt: skip
            schema = [
                f"added: {', '.join(f'`{c}`' for c in d['columns_added'])}" if d["columns_added"] else "",
                f"removed: {', '.join(f'`{c}`' for c in d['columns_removed'])}"
                if d["columns_removed"]
                else "",
                f"type changed: {', '.join(f'`{c}`' for c in d['columns_retyped'])}"
                if d["columns_retyped"]
                else "",
            ]
            blocks.append(
                "Columns " + "; ".join(s for s in schema if s) + "." if any(schema) else "Same columns."
            )
            if d["column_match"]:
                rows = [[f"`{col}`", f"{pct:.2f}%"] for col, pct in d["column_match"].items()]
                blocks.append(Table(["column", "rows matching"], rows, right={1}))
            if d["sample_rows"]:
                blocks.append(f"First {len(d['sample_rows'])} changed rows:")
                blocks.append(Table(d["sample_columns"], d["sample_rows"]))
        return blocks

    def _check_blocks(self) -> list:
        order = {"fail": 0, "error": 0, "warn": 1}
        problems = sorted(
            (c for c in self.checks if c["outcome"] in order),
            key=lambda c: (order[c["outcome"]], c["layer"], c["name"] or ""),
        )
        rows = [["scan error", e["layer"], "", e["message"][:200], ""] for e in self.scan_errors]
        rows += [
            [c["outcome"], c["layer"], c["dataset"] or "", c["name"] or "", _plain(c["value"])]
            for c in problems
        ]
        rows += [["audit failed", "", f"`{a['model']}`", f"{a['failed']} non-blocking audits failed", ""]
                 for a in self.audits if a["failed"]]  # fmt: skip
        blocks: list = []
        if rows:
            blocks.append(Table(["outcome", "layer", "dataset", "check", "value"], rows))
        passed = {}
        for c in self.checks:
            if c["outcome"] == "pass":
                passed[c["layer"]] = passed.get(c["layer"], 0) + 1
        totals = {}
        for c in self.checks:
            totals[c["layer"]] = totals.get(c["layer"], 0) + 1
        lines = [
            f"{layer}: {passed.get(layer, 0)}/{n} passed" + (f" (report: {self.reports[layer]})" if layer in self.reports else "")
            for layer, n in totals.items()
        ]  # fmt: skip
        blocks.append("Soda: " + "; ".join(lines) + "." if lines else "No Soda check ran.")
        audited = [a for a in self.audits if a["passed"] or a["failed"]]
        if audited:
            passed_audits = sum(a["passed"] for a in audited)
            blocks.append(
                f"SQLMesh audits of the {len(audited)} models this plan built: {passed_audits} passed, "
                f"{sum(a['failed'] for a in audited)} failed (a blocking audit that fails stops the plan)."
            )
        else:
            blocks.append("SQLMesh audits: this plan built no model, so none ran.")
        return blocks

    def _figure_blocks(self) -> list:
        if not self.figures:
            return ["No business figures: the marts are not there."]
        rows = []
        for f in self.figures:
            name = f["name"] if f["group"] == "total" else f"customers in {f['group']} {f['name']}"
            rows.append([name, _fmt(f["prod"], f["unit"]), _fmt(f["candidate"], f["unit"]), _delta(f)])
        return [Table(["figure", "prod", "candidate", "change"], rows, right={1, 2, 3})]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    right: set[int] = field(default_factory=set)  # right-aligned columns (numbers)

    def markdown(self) -> list[str]:
        def cell(value) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        rule = ["---:" if i in self.right else "---" for i in range(len(self.header))]
        return [
            "| " + " | ".join(cell(h) for h in self.header) + " |",
            "| " + " | ".join(rule) + " |",
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows),
        ]

    def text(self) -> list[str]:
        cells = [[str(h) for h in self.header]] + [
            [str(v).replace("`", "") for v in row] for row in self.rows
        ]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.header))]

        def line(row: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if i in self.right else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        return [
            "  " + line(cells[0]),
            "  " + "  ".join("-" * w for w in widths),
            *("  " + line(r) for r in cells[1:]),
        ]


def _plain(value) -> str:
    if value is None:
        return ""
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "usd":
        return f"${value:,.2f}"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:.4f}"


def _delta(figure: dict) -> str:
    prod, cand, unit = figure["prod"], figure["candidate"], figure["unit"]
    if prod is None or cand is None:
        return "—" if prod == cand else ("new" if prod is None else "gone")
    diff = cand - prod
    if diff == 0:
        return "="
    text = _fmt(abs(diff), unit)
    text = ("+" if diff > 0 else "-") + text
    return text + (f" ({diff / prod:+.1%})" if prod else "")


# -- Building a review from a SQLMesh context -------------------------------------------------------


def _short(name: str) -> str:
    return ".".join(name.replace('"', "").split(".")[-2:])


def _category(snapshot) -> str | None:
    cat = getattr(snapshot, "change_category", None)
    if cat is None:
        return None
    return cat.name.lower().replace("_", " ").replace("non ", "non-")


def candidate_changes(ctx, environment: str) -> list[dict]:
    """The environment's models against prod's: added, removed, directly or indirectly modified
    (by SQLMesh's change category of the environment's version), or metadata only."""
    from sqlmesh.core.snapshot import SnapshotChangeCategory as Cat

    env = ctx.state_reader.get_environment(environment)
    prod = ctx.state_reader.get_environment("prod")
    if env is None or prod is None:
        return []
    ours = {s.name: s for s in env.snapshots}
    theirs = {s.name: s for s in prod.snapshots}
    changed = {
        ours[n].snapshot_id for n in ours if n not in theirs or ours[n].fingerprint != theirs[n].fingerprint
    }
    full = ctx.state_reader.get_snapshots(changed)
    out = []
    for name in sorted(set(ours) | set(theirs), key=_short):
        if name not in ours:
            out.append({"model": _short(name), "change": "removed", "category": None})
            continue
        if ours[name].snapshot_id not in changed:
            continue
        snapshot = full.get(ours[name].snapshot_id)
        if name not in theirs:
            change = "added"
        elif snapshot is not None and snapshot.change_category == Cat.METADATA:
            change = "metadata only"
        elif snapshot is not None and snapshot.change_category in (
            Cat.INDIRECT_BREAKING,
            Cat.INDIRECT_NON_BREAKING,
        ):
            change = "indirectly modified"
        else:
            change = "directly modified"
        out.append({"model": _short(name), "change": change, "category": _category(snapshot)})
    rank = {"added": 0, "removed": 1, "directly modified": 2, "indirectly modified": 3, "metadata only": 4}
    return sorted(out, key=lambda c: (rank[c["change"]], c["model"]))


def mart_diffs(ctx, environment: str, marts: list[str]) -> list[dict]:
    """SQLMesh's table diff of each changed mart, prod (source) against the environment
    (target), on the model's grain; marts whose data version did not change are not diffed."""
    if not marts:
        return []
    diffs = ctx.table_diff("prod", environment, select_models=marts, show=False, limit=SAMPLE_ROWS)
    out = [mart_diff(d, environment) for d in diffs]
    return sorted(out, key=lambda d: marts.index(d["model"]) if d["model"] in marts else len(marts))


def mart_diff(table_diff, environment: str) -> dict:
    schema = table_diff.schema_diff()
    rows = table_diff.row_diff()
    _, _, grain = table_diff.key_columns
    stats = rows.column_stats
    column_match = {
        str(col): round(float(pct), 2)
        for col, pct in (stats["pct_match"].items() if "pct_match" in stats else [])
        if float(pct) < 100
    }
    sample = rows.joined_sample
    keep = [c for c in sample.columns if "__" not in c]  # the grain columns
    pairs = [c for c in sample.columns if "__" in c]
    keep += pairs[: 2 * SAMPLE_COLUMNS]
    sample = sample[keep].head(SAMPLE_ROWS)
    return {
        "model": _short(table_diff.model_name or table_diff.target),
        "grain": list(grain),
        "prod_rows": rows.source_count,
        "candidate_rows": rows.target_count,
        "only_in_prod": rows.s_only_count,
        "only_in_candidate": rows.t_only_count,
        "changed": rows.partial_match_count,
        "unchanged": rows.full_match_count,
        "columns_added": [c for c, _ in schema.added],
        "columns_removed": [c for c, _ in schema.removed],
        "columns_retyped": sorted(schema.modified),
        "column_match": column_match,
        "sample_columns": [c.replace(f"{environment.upper()}__", "candidate: ").replace("PROD__", "prod: ") for c in keep],
        "sample_rows": [[_plain(v) for v in row] for row in sample.itertuples(index=False)],
    }  # fmt: skip


def totals(
    con, environment: str | None = None, layers: tuple[str, ...] = ("marts", "intermediate")
) -> list[dict]:
    """The headline figures of one environment (None: prod), those of ``layers`` only: name,
    value (None where the table or column is missing) and unit."""
    return [
        {"name": name, "value": _scalar(con, f'SELECT {aggregate} FROM {env_schema(layer, environment)}."{table}"'), "unit": unit}
        for name, layer, table, aggregate, unit in TOTALS
        if layer in layers
    ]  # fmt: skip


def business_figures(con, environment: str) -> list[dict]:
    """The marts' headline figures in prod and in the environment (None where a table or column
    is missing on one side)."""
    out = [
        {"group": "total", "name": p["name"], "prod": p["value"], "candidate": c["value"], "unit": p["unit"]}
        for p, c in zip(totals(con), totals(con, environment))
    ]
    for what, table, column, order in BREAKDOWNS:
        sides = [
            _rows(con, f'SELECT {column}, count(*), {order} FROM {env_schema("marts", e)}."{table}" GROUP BY 1 ORDER BY 3')
            for e in (None, environment)
        ]  # fmt: skip
        keys = [k for k, _, _ in sides[0]] + [k for k, _, _ in sides[1] if k not in {r[0] for r in sides[0]}]
        for key in keys:
            prod, cand = ({k: n for k, n, _ in side}.get(key) for side in sides)
            out.append({"group": what, "name": str(key), "prod": prod, "candidate": cand, "unit": "count"})
    return out


def _scalar(con, sql: str) -> float | None:
    rows = _rows(con, sql)
    return float(rows[0][0]) if rows and rows[0][0] is not None else None


def _rows(con, sql: str) -> list[tuple]:
    import duckdb

    try:
        return con.execute(sql).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):  # not on this side: shown as "—"
        return []


def build(
    ctx,
    environment: str,
    business_date: dt.date,
    backfills: list,
    scans: list[ScanResult],
    audits: dict[str, tuple[int, int]],
) -> Review:
    """The review of ``environment`` against prod, on the context's open warehouse connection."""
    changes = candidate_changes(ctx, environment)
    marts = [c["model"] for c in changes if c["model"].startswith("marts.") and c["change"] != "removed"]
    return Review(
        environment=environment,
        business_date=business_date.isoformat(),
        changes=changes,
        backfills=[
            {"model": b.model, "intervals": b.intervals, "start": _day(b.start_ms), "end": _day(b.end_ms)}
            for b in backfills
        ],
        diffs=mart_diffs(ctx, environment, marts),
        checks=[{"layer": s.layer, **c} for s in scans for c in s.checks],
        scan_errors=[{"layer": s.layer, "message": e} for s in scans for e in s.errors],
        reports={s.layer: str(s.report) for s in scans if s.report},
        audits=[{"model": m, "passed": p, "failed": f} for m, (p, f) in sorted(audits.items())],
        figures=business_figures(ctx.engine_adapter.connection, environment),
    )


def _day(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).date().isoformat()


def restatement_markdown(plan, figures: list[dict] | None = None) -> str:
    """The approval page of a restatement (``clv.transform.RestatementPlan``): SQLMesh restates
    unchanged models in prod only, so there is no candidate to diff; the page says so plainly and
    lists what will be recomputed. Plain text reads the same (the CLI prints it)."""
    lines = [
        "## Restatement in prod",
        "",
        f"**{plan.line()}; the serving file is republished only if prod's checks pass.**",
        "",
        "SQLMesh restates unchanged models only in prod (their version is prod's), so there is no "
        "isolated build and no data diff: after approval the intervals below are cleared and a prod "
        "run recomputes them, then every layer's Soda checks run on prod. A failed error-level check "
        "fails the run and leaves the serving file as it was (prod's tables keep the recomputed rows: "
        "fix the source and restate again).",
        "",
        f"{len(plan.cleared)} models recomputed:",
        "",
        "| model | from | to (exclusive) |",
        "|---|---|---|",
    ]
    lines += [f"| {m} | {_day(a)} | {_day(b)} |" for m, (a, b) in plan.cleared.items()]
    if figures:
        lines += ["", "Prod's figures now (before the restatement):", ""]
        lines += [f"- {f['name']}: {f['value']} {f['unit'] or ''}".rstrip() for f in figures]
    return "\n".join(lines) + "\n"
