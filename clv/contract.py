"""The source data contract: the seven CSV exports, written down once.

The generator writes files to this contract, the loader enforces it, and Soda's raw checks and the
SQLMesh external models are derived from it. Column order is the order of the header row.

Wire formats (what a conforming file contains):
- UTF-8, comma-delimited, one header row, fields quoted only when needed (RFC 4180).
- DATE as ``YYYY-MM-DD``; TIMESTAMP as ``YYYY-MM-DD HH:MM:SS`` (UTC, no zone suffix).
- BOOLEAN as ``true`` / ``false``; an empty field is NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Event-time sources may deliver a row up to this many days after its event date. The SQLMesh
#: facts' lookback must cover it.
MAX_LATENESS_DAYS = 7

GENDERS = ("M", "F", "Other", "Unknown")
ORDER_DEVICES = ("web", "ios", "android")
ORDER_CHANNELS = ("site", "app", "phone")
LOYALTY_TIERS = ("Bronze", "Silver", "Gold", "Platinum")
SUBSCRIPTION_STATUSES = ("active", "cancelled", "paused")
TICKET_STATUSES = ("open", "pending", "closed")
TICKET_CHANNELS = ("email", "chat", "phone", "social")
TICKET_ISSUE_TYPES = ("billing", "technical", "account", "other")
SESSION_DEVICES = ("desktop", "mobile", "tablet")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB SQL type the loader casts to
    required: bool = False  # NOT NULL in the contract
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Source:
    name: str
    system: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    #: Columns that identify the row or its owner: a row missing any of them is quarantined.
    required_ids: tuple[str, ...]
    #: Column holding the event time used for lateness and incremental processing, if any.
    event_time: str | None = None
    foreign_keys: dict[str, str] = field(default_factory=dict)  # column -> "source.column"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


_CUSTOMER_FK = {"customer_id": "customers.customer_id"}

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "customers",
            "CRM API",
            (
                Column("customer_id", "VARCHAR", True, description="Primary key"),
                Column("first_name", "VARCHAR"),
                Column("last_name", "VARCHAR"),
                Column("email", "VARCHAR"),
                Column("gender", "VARCHAR", enum=GENDERS),
                Column("date_of_birth", "DATE"),
                Column("signup_datetime", "TIMESTAMP", True, description="Account creation"),
                Column("city", "VARCHAR", description="From latest profile address"),
                Column("country", "VARCHAR", description="ISO-3166 alpha-2"),
                Column("marketing_opt_in", "BOOLEAN", description="GDPR/CCPA consent flag"),
            ),
            primary_key=("customer_id",),
            required_ids=("customer_id",),
        ),
        Source(
            "financial_profiles",
            "Credit-bureau export",
            (
                Column("customer_id", "VARCHAR", True),
                Column("profile_effective_date", "DATE", True),
                Column("income_usd", "DECIMAL(12,2)", min=0, description="Annual, self-reported"),
                Column("credit_score", "INTEGER", min=300, max=850),
            ),
            primary_key=("customer_id", "profile_effective_date"),
            required_ids=("customer_id",),
            event_time="profile_effective_date",
            foreign_keys=_CUSTOMER_FK,
        ),
        Source(
            "orders",
            "E-commerce API",
            (
                Column("order_id", "VARCHAR", True, description="Primary key; refunds end in -R"),
                Column("customer_id", "VARCHAR", True),
                Column("order_datetime", "TIMESTAMP", True),
                Column("product_id", "VARCHAR"),
                Column("product_category", "VARCHAR"),
                Column("quantity", "INTEGER", min=-50, max=50, description="Negative on refunds"),
                Column("unit_price_usd", "DECIMAL(10,2)", min=0, max=5000),
                Column("device_type", "VARCHAR", enum=ORDER_DEVICES),
                Column("order_channel", "VARCHAR", enum=ORDER_CHANNELS),
                Column("city", "VARCHAR", description="Shipping city"),
                Column("country", "VARCHAR", description="Shipping country, ISO-3166 alpha-2"),
                Column("loyalty_points_earned", "INTEGER"),
            ),
            primary_key=("order_id",),
            required_ids=("order_id", "customer_id"),
            event_time="order_datetime",
            foreign_keys=_CUSTOMER_FK,
        ),
        Source(
            "loyalty_balances",
            "Loyalty system snapshot",
            (
                Column("customer_id", "VARCHAR", True),
                Column("snapshot_date", "DATE", True),
                Column("points_balance", "INTEGER", min=0),
                Column("loyalty_tier", "VARCHAR", enum=LOYALTY_TIERS),
            ),
            primary_key=("customer_id", "snapshot_date"),
            required_ids=("customer_id",),
            event_time="snapshot_date",
            foreign_keys=_CUSTOMER_FK,
        ),
        Source(
            "subscriptions",
            "Billing/ERP API",
            (
                Column("subscription_id", "VARCHAR", True),
                Column("customer_id", "VARCHAR", True),
                Column("plan_id", "VARCHAR"),
                Column("plan_name", "VARCHAR"),
                Column("status", "VARCHAR", enum=SUBSCRIPTION_STATUSES),
                Column("start_date", "DATE"),
                Column("end_date", "DATE", description="Set when cancelled"),
                Column("renewal_date", "DATE", description="Next scheduled renewal"),
                Column("is_auto_renew", "BOOLEAN"),
            ),
            primary_key=("subscription_id",),
            required_ids=("subscription_id", "customer_id"),
            foreign_keys=_CUSTOMER_FK,
        ),
        Source(
            "support_tickets",
            "Customer-support export",
            (
                Column("ticket_id", "VARCHAR", True),
                Column("customer_id", "VARCHAR", True),
                Column("opened_datetime", "TIMESTAMP", True),
                Column("closed_datetime", "TIMESTAMP", description="Null while open"),
                Column("status", "VARCHAR", enum=TICKET_STATUSES),
                Column("channel", "VARCHAR", enum=TICKET_CHANNELS),
                Column("issue_type", "VARCHAR", enum=TICKET_ISSUE_TYPES),
                Column("resolution_time_minutes", "INTEGER", min=0, description="Set on close"),
                Column("csat_score", "SMALLINT", min=1, max=5),
            ),
            primary_key=("ticket_id",),
            required_ids=("ticket_id", "customer_id"),
            event_time="opened_datetime",
            foreign_keys=_CUSTOMER_FK,
        ),
        Source(
            "device_sessions",
            "Web / mobile logs",
            (
                Column("session_id", "VARCHAR", True),
                Column("customer_id", "VARCHAR", True),
                Column("session_start_ts", "TIMESTAMP", True),
                Column("session_end_ts", "TIMESTAMP"),
                Column("device_type", "VARCHAR", enum=SESSION_DEVICES),
                Column("os_version", "VARCHAR"),
                Column("app_version", "VARCHAR", description="Set for app sessions"),
                Column("pages_viewed", "INTEGER", min=0),
                Column("events_fired", "INTEGER", min=0),
            ),
            primary_key=("session_id",),
            required_ids=("session_id", "customer_id"),
            event_time="session_start_ts",
            foreign_keys=_CUSTOMER_FK,
        ),
    )
}

SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)}") from None


# The loader adds these lineage columns to every raw table (after the contract's columns): which
# delivery, file and line each row came from. Staging picks the latest delivery of a key by them.
RAW_LINEAGE = {
    "_load_id": "INT",
    "_batch_date": "DATE",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_source_file": "TEXT",
    "_file_sha256": "TEXT",
    "_batch": "TEXT",
}
