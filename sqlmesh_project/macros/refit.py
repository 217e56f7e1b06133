"""The refit cadence of the fitted models (int_churn_model, int_subscription_model_fit): refit
when the stored fit is ``model_refit_days`` old (project variable, default 7), else score with it.

Fitting the churn model (two maximum-likelihood fits over every customer's history) and the
renewal model is most of the intermediate layer's daily time, and a week's more data barely moves
their coefficients. Both models are FULL, so SQLMesh evaluates them for every new day; the model
first reads its own current table (``context.resolve_table`` on its own name: SQLMesh maps a
model being evaluated to the physical table of its version) and returns those rows unchanged
while they are fresh. It refits when:

- there is no stored fit: the first build, or a new version of the model (its code, an upstream
  model's code, or a variable it reads changed: SQLMesh gives the version a new, empty table);
- the fit's business date is ``model_refit_days`` or more before the business date (0 refits at
  every evaluation, the behaviour before the cadence), or after it (an earlier date rerun);
- ``CLV_FORCE_REFIT=1`` is set in the environment of the run (``clv.settings.force_refit``):
  read when the model runs, so forcing a refit needs no plan.

The fit's business date is a column of the fit (``fit_date`` / ``business_date``), so the marts
show how old the fit is that scored them (``marts.mart_model_fits``).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlglot import exp

from clv import settings

DEFAULT_REFIT_DAYS = 7


def refit_days(context) -> int:
    """The variable ``model_refit_days``: days a fit is kept before the next refit."""
    days = int(context.var("model_refit_days", DEFAULT_REFIT_DAYS))
    if days < 0:
        raise ValueError(f"model_refit_days is {days}: use 0 (refit every run) or more days")
    return days


def refit_due(fitted: dt.date | None, business: dt.date, every_days: int, forced: bool = False) -> bool:
    """Whether a fit made on business date ``fitted`` (None: none stored) must be redone on
    ``business`` with a cadence of ``every_days``."""
    if forced or fitted is None or every_days <= 0:
        return True
    age = (business - fitted).days
    return not 0 <= age < every_days


def stored_fit(context, model_name: str, business: dt.date, date_column: str) -> pd.DataFrame | None:
    """The model's own stored rows when the fit they hold is to be kept on ``business`` (see the
    module's docstring); None when the model must refit."""
    every = refit_days(context)
    forced = settings.force_refit()
    if forced or every <= 0:
        return None
    table = exp.to_table(context.resolve_table(model_name), dialect=context.default_dialect)
    if not context.engine_adapter.table_exists(table):
        return None
    stored = context.fetchdf(exp.select("*").from_(table))
    dates = pd.to_datetime(stored[date_column]).dropna() if date_column in stored else pd.Series([])
    fitted = dates.max().date() if not stored.empty and len(dates) else None
    # A logger is looked up here: SQLMesh serializes the model's helpers, and a Logger object is not.
    logger = logging.getLogger("clv.refit")
    if refit_due(fitted, business, every):
        logger.info(
            "%s: refitting on %s (stored fit: %s, refit every %d days)", model_name, business, fitted, every
        )
        return None
    logger.info(
        "%s: keeping the fit of %s (%d days old, refit every %d days)",
        model_name,
        fitted,
        (business - fitted).days,
        every,
    )
    return stored
