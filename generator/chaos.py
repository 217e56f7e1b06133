"""Injected faults: what a real pipeline meets, at rates set by ``--chaos``.

Every fault the generator injects is recorded in the ground truth (``truth/faults/``) so tests
can prove the pipeline caught it. Rates are per row (row faults) or per file/batch.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# Delivery-level anomalies: a whole day's file of one source is wrong in a way no single row
# shows, which only a comparison with the source's own history catches (clv.anomalies). They are
# never drawn at random: a caller (bench/bench_anomalies.py, the tests) plans them for a day, and
# each one is recorded in the truth's fault log with the source, the kind and its size.
DELIVERY_ANOMALIES = ("partial_delivery", "duplicated_day", "value_shift", "category_surge", "silent_source")


@dataclass(frozen=True)
class DeliveryAnomaly:
    """``partial_delivery``: only ``factor`` of the day's rows arrive; ``duplicated_day``: every
    row of the day arrives twice (different bytes from a redelivery, so the loader keeps both);
    ``value_shift``: order prices multiplied by ``factor``; ``category_surge``: a ``factor`` share
    of the day's other orders switch to ``category``; ``silent_source``: the file comes empty."""

    kind: str
    source: str = "orders"
    factor: float = 0.3
    category: str = "electronics"

    def __post_init__(self) -> None:
        if self.kind not in DELIVERY_ANOMALIES:
            raise ValueError(
                f"unknown delivery anomaly {self.kind!r}; use one of {', '.join(DELIVERY_ANOMALIES)}"
            )
        if self.kind in ("value_shift", "category_surge") and self.source != "orders":
            raise ValueError(f"{self.kind} applies to orders, not {self.source}")

    def detail(self) -> str:
        return {
            "partial_delivery": f"only {self.factor:.0%} of the day's rows delivered",
            "duplicated_day": "every row of the day delivered twice",
            "value_shift": f"order prices multiplied by {self.factor:g}",
            "category_surge": f"{self.factor:.0%} of the day's other orders switched to {self.category}",
            "silent_source": "no rows delivered",
        }[self.kind]


def apply_delivery_anomaly(
    table: pa.Table, anomaly: DeliveryAnomaly, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, list]]:
    """The day's rows of one source as the faulty delivery has them, and the fault log row."""
    n = table.num_rows
    column = ""
    if anomaly.kind == "partial_delivery":
        keep = np.sort(rng.choice(n, size=round(n * anomaly.factor), replace=False)) if n else []
        table = table.take(pa.array(keep, pa.int64()))
    elif anomaly.kind == "duplicated_day":
        table = pa.concat_tables([table, table])
    elif anomaly.kind == "silent_source":
        table = table.slice(0, 0)
    elif anomaly.kind == "value_shift" and n:
        column = "unit_price_usd"
        price = table.column(column)
        shifted = pc.round(pc.multiply(pc.cast(price, pa.float64()), anomaly.factor), 2).cast(price.type)
        table = table.set_column(table.schema.get_field_index(column), column, shifted)
    elif anomaly.kind == "category_surge" and n:
        column = "product_category"
        cat = table.column(column)
        other = np.flatnonzero(~pc.equal(cat, anomaly.category).to_numpy(zero_copy_only=False))
        moved = rng.choice(other, size=round(len(other) * anomaly.factor), replace=False)
        mask = np.zeros(n, dtype=bool)
        mask[moved] = True
        new = pc.replace_with_mask(cat, pa.array(mask), pa.array([anomaly.category] * len(moved), cat.type))
        table = table.set_column(table.schema.get_field_index(column), column, new)
    log = {
        "fault": [anomaly.kind],
        "row_number": [None],
        "key": [""],
        "column": [column],
        "value": [f"{anomaly.factor:g}"],
        "detail": [f"{anomaly.detail()} ({n:,} rows planned, {table.num_rows:,} delivered)"],
    }
    return table, log
