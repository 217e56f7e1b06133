"""The trigger forms (clv.airflow.params) validated by Airflow's own Param validation — the JSON
schema check the form, the REST API and `airflow dags test` apply — and the same rules in code
for the first task."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import ParamValidationError

from clv import transform
from clv.airflow import params
from clv.errors import UserError
from clv.names import BACKFILL_DAG, DAILY_DAG, DEPLOY_DAG, QUALITY_DAG, QUARANTINE_DAG

FORMS = {
    DAILY_DAG: params.daily_refresh,
    QUALITY_DAG: params.quality_checks,
    BACKFILL_DAG: params.backfill,
    DEPLOY_DAG: params.deploy,
    QUARANTINE_DAG: params.quarantine_reprocess,
}
DATES = [
    (dag_id, name)
    for dag_id, form in FORMS.items()
    for name, p in form().items()
    if p.schema.get("format") == "date"
]
BAD_DATES = ["2024-13-45", "2024-02-30", "31/12/2024", "2024-1-5", "yesterday", ""]
GOOD_NAMES = ["backfill", "fix1", "deploy_2", "a", "prod1", "production", "x" * 40]
BAD_NAMES = ["prod", "PROD", "Prod", "my env!", "Dev-1", "1fix", "", "_x", "x" * 41, "fix1 ", "marts.x"]


def refused(param, value) -> bool:
    try:
        param.resolve(value)
    except ParamValidationError:
        return True
    return False


def test_every_date_param_is_an_optional_date():
    assert len(DATES) == 5  # business_date (daily, quality, quarantine), start and end (backfill)
    for dag_id, name in DATES:
        p = FORMS[dag_id]()[name]
        assert p.schema["type"] == ["null", "string"], (dag_id, name)
        assert p.resolve() is None and p.resolve("2024-02-29") == "2024-02-29"
        for value in BAD_DATES:
            assert refused(FORMS[dag_id]()[name], value), (dag_id, name, value)


@pytest.mark.parametrize("name", GOOD_NAMES + BAD_NAMES)
def test_the_environment_schema_and_the_code_agree(name):
    """The form's pattern is the rule clv.transform.environment_name applies (prod refused)."""
    try:
        transform.environment_name(name)
        code_accepts = name == name.strip()  # the code strips blanks; the form takes none
    except UserError:
        code_accepts = False
    for form in (params.backfill, params.deploy):
        assert refused(form()["environment"], name) != code_accepts, name
    assert (name in GOOD_NAMES) == code_accepts


def test_models_are_a_list_of_selectors_or_empty():
    p = params.backfill()["models"]
    assert p.schema["type"] == ["null", "array"]
    assert p.resolve() == [] and p.resolve(None) is None
    assert p.resolve(["marts.mart_clv", "+intermediate.int_customer_clv+", "(marts.* | core.*) & tag:daily"])
    for bad in (["marts.mart_clv; drop"], ['"marts"."mart_clv"'], [""], "marts.*", ["git:--output=x"]):
        assert refused(params.backfill()["models"], bad), bad


def test_booleans_are_toggles():
    for dag_id, name in [
        (BACKFILL_DAG, "promote"),
        (DEPLOY_DAG, "promote"),
        (DAILY_DAG, "next_simulated_day"),
    ]:
        p = FORMS[dag_id]()[name]
        assert p.schema == {"type": "boolean"}, (dag_id, name)
        assert refused(p, "yes") and refused(FORMS[dag_id]()[name], 1)


def test_nothing_required_whose_empty_value_is_allowed():
    """Airflow's form marks a field required when its type does not allow null: such a field must
    refuse its empty value (a toggle has none); every field has a description."""
    for dag_id, form in FORMS.items():
        for name, p in form().items():
            assert p.description, (dag_id, name)
            types = p.schema["type"] if isinstance(p.schema["type"], list) else [p.schema["type"]]
            if "null" in types or types == ["boolean"]:
                continue
            empty = [] if "array" in types else ""
            assert refused(form()[name], empty), f"{dag_id}.{name} is required but accepts {empty!r}"


def test_the_schema_patterns_are_valid_for_browsers_and_python():
    """The form checks patterns in the browser (ECMAScript) and Airflow in Python: both read these."""
    for pattern in (params.ENVIRONMENT_SCHEMA_PATTERN, params.SELECTOR_SCHEMA_PATTERN):
        re.compile(pattern)
        assert "(?P" not in pattern and "(?<" not in pattern  # no Python-only syntax
