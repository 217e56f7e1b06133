"""Injected faults: what a real pipeline meets, at rates set by ``--chaos``.

Every fault the generator injects is recorded in the ground truth (``truth/faults/``) so tests
can prove the pipeline caught it. Rates are per row (row faults) or per file/batch.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clv.contract import Source
from generator.profiles import PROFILES, ChaosProfile, profile

__all__ = ["PROFILES", "ChaosProfile", "profile"]


ROW_FAULTS = ("bad_date", "bad_quantity", "bad_enum", "missing_id", "orphan_fk")

BAD_DATES = np.array(["2024-02-30", "31/12/2023", "not a date", "2023-13-01 10:00:00", "20240115T99"])
BAD_ENUMS = np.array(["N/A", "legacy", "tbd", "??", "deprecated"])
BAD_QUANTITIES = np.array(["99999", "-9999", "250000"])
#: Orphan customer ids come from a range no generated customer uses.
ORPHAN_ID_BASE = 900_000_000

FAULT_FIELDS = pa.schema(
    [
        ("batch", pa.string()),
        ("source", pa.string()),
        ("fault", pa.string()),
        ("row_number", pa.int64()),
        ("key", pa.string()),
        ("column", pa.string()),
        ("value", pa.string()),
        ("detail", pa.string()),
    ]
)


def _rate(p: ChaosProfile, kind: str) -> float:
    return getattr(p, f"{kind.replace('orphan_fk', 'orphan')}_rate")


def _eligible_column(src: Source, kind: str) -> str | None:
    if kind == "bad_date":
        dated = [c.name for c in src.columns if c.type in ("DATE", "TIMESTAMP")]
        return src.event_time or (dated[0] if dated else None)
    if kind == "bad_quantity":
        return "quantity" if src.name == "orders" else None
    if kind == "bad_enum":
        enums = [c.name for c in src.columns if c.enum]
        return enums[0] if enums else None
    if kind == "missing_id":
        return "customer_id"
    if kind == "orphan_fk":
        return "customer_id" if "customer_id" in src.foreign_keys else None
    raise ValueError(kind)


def inject_row_faults(
    table: pa.Table, src: Source, p: ChaosProfile, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, list]]:
    """Corrupt a few rows in place and append duplicates; return the table and the fault log.

    Row numbers in the log are 1-based positions within ``table`` (the caller adds offsets).
    Each corrupted row carries exactly one fault; duplicates copy already-final rows.
    """
    n = table.num_rows
    log: dict[str, list] = {f.name: [] for f in FAULT_FIELDS if f.name not in ("batch", "source")}
    if n == 0:
        return table, log
    pk = src.primary_key[0]
    keys = table.column(pk)
    plan = []
    for kind in ROW_FAULTS:
        col = _eligible_column(src, kind)
        rate = _rate(p, kind)
        if col is None or rate <= 0:
            continue
        plan.append((kind, col, int(rng.binomial(n, rate))))
    total = sum(k for _, _, k in plan)
    if total:
        rows = rng.choice(n, size=min(total, n), replace=False)
        pos = 0
        columns = {name: table.column(name) for name in table.column_names}
        for kind, col, k in plan:
            idx = np.sort(rows[pos : pos + k])
            pos += k
            if len(idx) == 0:
                continue
            if kind == "missing_id":
                new = pa.nulls(len(idx), pa.string())
            elif kind == "orphan_fk":
                ids = ORPHAN_ID_BASE + rng.integers(0, 99_999_999, len(idx))
                new = pa.array(np.char.add("C", ids.astype(str)))
            else:
                pool = {"bad_date": BAD_DATES, "bad_enum": BAD_ENUMS, "bad_quantity": BAD_QUANTITIES}[kind]
                new = pa.array(pool[rng.integers(0, len(pool), len(idx))])
            mask = np.zeros(n, dtype=bool)
            mask[idx] = True
            as_text = pc.cast(columns[col], pa.string())
            key_values = pc.take(keys, pa.array(idx)).to_pylist()
            columns[col] = pc.replace_with_mask(as_text, pa.array(mask), new)
            log["fault"] += [kind] * len(idx)
            log["row_number"] += (idx + 1).tolist()
            log["key"] += ["" if x is None else str(x) for x in key_values]
            log["column"] += [col] * len(idx)
            log["value"] += new.to_pylist()
            log["detail"] += [""] * len(idx)
        table = pa.table(list(columns.values()), names=list(columns))
    k = int(rng.binomial(n, p.duplicate_rate)) if p.duplicate_rate > 0 else 0
    if k:
        idx = np.sort(rng.choice(n, size=k, replace=False))
        dup = table.take(pa.array(idx))
        table = pa.concat_tables([table, dup.cast(table.schema)])
        log["fault"] += ["duplicate"] * k
        log["row_number"] += (n + 1 + np.arange(k)).tolist()
        log["key"] += [
            "" if x is None else str(x) for x in pc.take(table.column(pk), pa.array(idx)).to_pylist()
        ]
        log["column"] += [""] * k
        log["value"] += [""] * k
        log["detail"] += [f"copy of row {i + 1}" for i in idx]
    return table, log


DRIFT_KINDS = ("renamed_column", "missing_column", "extra_column")
EXTRA_COLUMN = "source_system_version"


def drift_columns(src: Source, rng: np.random.Generator) -> tuple[list[str], str, str]:
    """A file's header after an upstream release changed it; return columns, kind, detail."""
    kind = DRIFT_KINDS[int(rng.integers(0, len(DRIFT_KINDS)))]
    names = list(src.column_names)
    if kind == "renamed_column":
        i = int(rng.integers(0, len(names)))
        old = names[i]
        parts = old.split("_")
        names[i] = parts[0] + "".join(w.title() for w in parts[1:]) if len(parts) > 1 else old + "Id"
        return names, kind, f"{old} renamed to {names[i]}"
    if kind == "missing_column":
        optional = [c.name for c in src.columns if c.name not in src.required_ids]
        col = optional[int(rng.integers(0, len(optional)))]
        return [c for c in names if c != col], kind, f"{col} missing"
    return [*names, EXTRA_COLUMN], kind, f"{EXTRA_COLUMN} added"
