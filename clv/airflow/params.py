"""The trigger forms: every DAG's params, each with the JSON-schema type Airflow's form enforces.

Airflow renders a param by its schema (a date picker for ``format: date``, a toggle for a boolean,
one line per entry for an array of strings) and validates the whole conf against it when a run is
created — in the form, through the REST API (HTTP 400) and ``airflow dags test`` alike. The rules:

- dates are ``["null", "string"]`` with ``format: date``: empty means "the default" and is allowed,
  so the field is not marked required (Airflow marks a field required when null is not allowed);
- environment names follow ``clv.names.ENVIRONMENT_PATTERN`` and refuse ``prod`` in the same
  schema, the rule ``clv.transform.environment_name`` applies in code;
- models are a list of model names or SQLMesh selectors (empty: all), each entry made of the
  characters a selector has; ``clv.transform.model_selectors`` checks the grammar itself;
- booleans are toggles.

The first task of each DAG checks the same values again in code (``clv.airflow.tasks``), so a run
whose conf escaped the schema (created before a DAG changed, say) fails there with one line and no
retry, before anything is touched. Parsed with the DAG files: only Airflow's SDK is imported.
"""

from __future__ import annotations

from airflow.sdk import Param

from clv.names import ENVIRONMENT_PATTERN

# The environment rule as one JSON-schema pattern: ENVIRONMENT_PATTERN, and not `prod`.
ENVIRONMENT_SCHEMA_PATTERN = "^(?!prod$)" + ENVIRONMENT_PATTERN.removeprefix("^")
# The characters of model names and SQLMesh selectors (`marts.*`, `+model`, `tag:x`, `git:branch`,
# `^`, `&`, `|`, parentheses); the grammar is checked by clv.transform.model_selectors.
SELECTOR_SCHEMA_PATTERN = r"^[A-Za-z0-9_.*+^:/()&| -]+$"


def date(description: str) -> Param:
    """An optional date: YYYY-MM-DD or empty."""
    return Param(None, type=["null", "string"], format="date", description=f"YYYY-MM-DD; {description}")


def environment(default: str) -> Param:
    return Param(
        default,
        type="string",
        pattern=ENVIRONMENT_SCHEMA_PATTERN,
        minLength=1,
        maxLength=40,
        description="the isolated SQLMesh environment: lower-case letters, digits and underscores, "
        "starting with a letter; never prod",
    )


def models() -> Param:
    return Param(
        [],
        type=["null", "array"],
        items={"type": "string", "minLength": 1, "pattern": SELECTOR_SCHEMA_PATTERN},
        description="one model name or SQLMesh selector per line (marts.mart_clv, marts.*, +model, "
        "tag:x); empty: all models",
    )


def toggle(default: bool, description: str) -> Param:
    return Param(default, type="boolean", description=description)


def daily_refresh() -> dict[str, Param]:
    return {
        "business_date": date(
            "the business day to process; empty: the business date of the run's data interval "
            "(the day before the 02:30 run)"
        ),
        "next_simulated_day": toggle(
            False,
            "demo with the synthetic generator: process the day after the latest generated batch "
            "(leave business_date empty)",
        ),
    }


def quality_checks() -> dict[str, Param]:
    return {"business_date": date("the business day to check; empty: the latest loaded batch")}


def backfill() -> dict[str, Param]:
    return {
        "start": date("first day to build; empty: the models' start"),
        "end": date("last day to build; empty: the latest loaded batch"),
        "models": models(),
        "environment": environment("backfill"),
        "promote": toggle(
            False, "promote without asking when every check passed (off: approve on the task's page)"
        ),
        "restate": toggle(
            False,
            "recompute unchanged models (models, required) for [start, end] after a source "
            "correction: in prod, in place (SQLMesh restates only there); the serving file is "
            "republished only if prod's checks pass",
        ),
    }


def deploy() -> dict[str, Param]:
    return {
        "environment": environment("deploy"),
        # off: a deploy triggered from the UI stops at its approval page; on for unattended use
        "promote": toggle(
            False, "promote without asking when every check passed (off: approve on the task's page)"
        ),
    }


def quarantine_reprocess() -> dict[str, Param]:
    return {
        "file": Param(
            "",
            type="string",
            minLength=1,
            description="path of the corrected CSV, as the Airflow workers see it",
        ),
        "business_date": date("the date the layers run for; empty: the latest loaded batch"),
    }
