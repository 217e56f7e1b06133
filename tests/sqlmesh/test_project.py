"""The project's files agree with the contract."""

from __future__ import annotations

import yaml

from clv import settings, transform


def _unit_tests() -> dict[str, str]:
    """Every YAML unit test in sqlmesh_project/tests: its name and the model it tests."""
    tests = {}
    for f in sorted((settings.sqlmesh_project() / "tests").glob("*.yaml")):
        tests |= {name: body["model"] for name, body in yaml.safe_load(f.read_text()).items()}
    return tests


def test_external_models_are_generated_from_the_contract():
    assert transform.EXTERNAL_MODELS.read_text() == transform.external_models_yaml(), (
        "sqlmesh_project/external_models.yaml is stale: run `clv transform --write-external-models`"
    )


def test_sqlmesh_unit_tests_pass(tmp_path):
    ctx = transform.context(tmp_path)
    result = ctx.test()
    assert result.testsRun == len(_unit_tests()) >= 28
    assert result.wasSuccessful(), [str(f[1])[-800:] for f in result.failures + result.errors]


def test_every_model_outside_staging_has_a_unit_test(tmp_path):
    """STYLE: every model outside staging (and the seeds, which are data) has a YAML unit test,
    the Python models included."""
    ctx = transform.context(tmp_path)
    tested = {ctx.get_model(model).name for model in _unit_tests().values()}
    models = {
        m.name
        for m in ctx.models.values()
        if not m.kind.is_external and m.name.split(".")[0] not in ("staging", "seeds")
    }
    assert len(models) == 43  # 11 core, 19 intermediate (the 2 feature models included), 13 marts
    assert models <= tested, sorted(models - tested)
    assert {"intermediate.int_churn_model", "intermediate.int_clv_model_fit"} <= tested


def test_every_sql_model_renders_for_spark(tmp_path):
    """Portability: SQLMesh transpiles every SQL model to a distributed engine's dialect."""
    ctx = transform.context(tmp_path)
    rendered = 0
    for name, model in ctx.models.items():
        if model.kind.is_seed or model.kind.is_external:
            continue
        sql = ctx.render(name, start="2024-01-01", end="2024-01-31", execution_time="2024-02-01").sql(
            dialect="spark"
        )
        assert sql.upper().startswith(("SELECT", "WITH")), name
        rendered += 1
    assert rendered >= 25


def test_lineage_reaches_raw_from_every_mart(tmp_path):
    ctx = transform.context(tmp_path)
    marts = [n for n in ctx.models if '"marts"' in n]
    assert len(marts) == 13
    for mart in marts:
        seen, todo = set(), [mart]
        while todo:
            node = todo.pop()
            for parent in ctx.dag.upstream(node):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        assert any('"raw"' in p for p in seen), mart


def test_the_sqlmesh_gateway_applies_the_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DUCKDB_MEMORY_LIMIT", "300MB")
    ctx = transform.context(tmp_path)
    try:
        assert ctx.engine_adapter.fetchone("SELECT current_setting('memory_limit')")[0] == "286.1 MiB"
    finally:
        ctx.close()
