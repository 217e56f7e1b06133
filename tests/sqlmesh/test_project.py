"""The project's files agree with the contract."""

from __future__ import annotations

from clv import transform


def test_external_models_are_generated_from_the_contract():
    assert transform.EXTERNAL_MODELS.read_text() == transform.external_models_yaml(), (
        "sqlmesh_project/external_models.yaml is stale: run `clv transform --write-external-models`"
    )
