"""Business date D and the clocks that stand for it, in both directions, in one place.

A run for business date D processes the batch that landed on D. It is given SQLMesh execution
time D + 1 day (00:00), so the daily interval [D, D + 1) is the last one it processes and SCD-2
versions it opens are valid from the end of D; Soda's ``NOW`` is that same instant. Airflow's
scheduled run for D is the 02:30 (UTC) run of D + 1: its logical date is D + 1 at 02:30.

Everything else calls these functions: `clv.transform` (plans and runs), the ``@business_date``
SQLMesh macro and the Python models (``from_execution_time``), `clv.quality` (``soda_now``), the
Airflow room and `clv.pipeline` (``data_interval`` / ``from_data_interval`` / ``from_run_after``).

Airflow's calendar: the daily refresh's data intervals run from 02:30 (UTC) to 02:30 the next day
(a cron data-interval timetable). The interval that starts on day D is business date D: its
logical date is D at 02:30, its run starts at the end of the interval, D + 1 at 02:30, once D's
batch has landed. A backfill from D1 to D3 (logical dates) therefore processes D1, D2 and D3, in
order, and clearing a run processes its business date again.
"""

from __future__ import annotations

import datetime as dt

from clv.errors import UserError

ONE_DAY = dt.timedelta(days=1)
DAILY_RUN_TIME = dt.time(2, 30)  # the daily refresh's schedule, UTC


def parse(value: str | dt.date, what: str = "business_date") -> dt.date:
    """A date given by a user (YYYY-MM-DD); a one-line ``UserError`` otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise UserError(f"invalid {what} {value!r}: use YYYY-MM-DD") from None


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if hasattr(value, "date"):  # pandas Timestamp, pendulum DateTime
        return value.date()
    raise TypeError(f"not a date or time: {value!r}")


def execution_time(business_date: dt.date) -> str:
    """SQLMesh's execution time for a run of business date D: D + 1 day, ISO format."""
    return (business_date + ONE_DAY).isoformat()


def from_execution_time(value) -> dt.date:
    """The business date of a SQLMesh run: the day before its execution time."""
    return _as_date(value) - ONE_DAY


def soda_now(business_date: dt.date) -> str:
    """Soda's ``NOW`` for the checks of business date D (freshness): the run's execution time."""
    return f"{execution_time(business_date)}T00:00:00"


def data_interval(business_date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The daily refresh's Airflow data interval for business date D: [D 02:30, D + 1 02:30)."""
    start = dt.datetime.combine(business_date, DAILY_RUN_TIME, tzinfo=dt.UTC)
    return start, start + ONE_DAY


def logical_date(business_date: dt.date) -> dt.datetime:
    """The logical date of the scheduled (or backfilled) daily run for business date D: the start
    of its data interval, D at 02:30 (UTC)."""
    return data_interval(business_date)[0]


def from_data_interval(start) -> dt.date:
    """The business date of a daily run whose data interval starts at ``start`` (UTC)."""
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        start = start.astimezone(dt.UTC)
    return _as_date(start)


def run_after(business_date: dt.date) -> dt.datetime:
    """When the scheduled daily run for business date D starts: D + 1 at 02:30 (UTC)."""
    return data_interval(business_date)[1]


def from_run_after(value) -> dt.date:
    """The business date of a run that starts at ``value`` without a data interval (a manual
    run, the backup): the day before."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return _as_date(value) - ONE_DAY
