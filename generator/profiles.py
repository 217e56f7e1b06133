"""Chaos levels: how often each kind of fault is injected. Light to import (no numpy)."""

from __future__ import annotations

from dataclasses import dataclass

from clv.contract import MAX_LATENESS_DAYS
from clv.errors import UserError


@dataclass(frozen=True)
class ChaosProfile:
    name: str
    duplicate_rate: float = 0.0  # a row delivered twice in the same file
    bad_date_rate: float = 0.0  # unparseable date or timestamp
    bad_quantity_rate: float = 0.0  # absurd order quantity (parses, breaks ranges)
    bad_enum_rate: float = 0.0  # value outside the contract's enum
    missing_id_rate: float = 0.0  # required id left empty
    orphan_rate: float = 0.0  # customer_id that no customer has
    late_rate: float = 0.0  # event delivered 1..max_lateness_days after its event date
    max_lateness_days: int = 0
    schema_drift_prob: float = 0.0  # per file of a day batch
    redelivery_prob: float = 0.0  # per day batch: the previous day batch arrives again


PROFILES: dict[str, ChaosProfile] = {
    "none": ChaosProfile("none"),
    "realistic": ChaosProfile(
        "realistic",
        duplicate_rate=0.002,
        bad_date_rate=0.0005,
        bad_quantity_rate=0.0005,
        bad_enum_rate=0.0005,
        missing_id_rate=0.0003,
        orphan_rate=0.0005,
        late_rate=0.02,
        max_lateness_days=3,
        schema_drift_prob=0.01,
        redelivery_prob=0.05,
    ),
    "heavy": ChaosProfile(
        "heavy",
        duplicate_rate=0.02,
        bad_date_rate=0.005,
        bad_quantity_rate=0.005,
        bad_enum_rate=0.005,
        missing_id_rate=0.003,
        orphan_rate=0.005,
        late_rate=0.10,
        max_lateness_days=MAX_LATENESS_DAYS,
        schema_drift_prob=0.15,
        redelivery_prob=0.3,
    ),
}


def profile(name: str) -> ChaosProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown chaos level {name!r}; use one of: {', '.join(PROFILES)}") from None


class GeneratorError(UserError):
    """A user mistake (bad argument, missing history): reported in one line, exit code 2."""
