"""The Assets the UI shows: every SQLMesh model (named after it: ``staging.stg_orders``), the raw
tables it reads (``raw_data.orders``) and the serving file. The layer tasks declare the layer
below as their inlets and their own models as outlets, so the Assets view draws the lineage raw ->
staging -> core -> intermediate -> marts -> serving file; each model's event carries what the run
did to it (``clv.airflow.tasks.model_events``). Read from the project's files, not from a SQLMesh
context: DAG files are parsed often and must stay cheap."""

from __future__ import annotations

from clv import settings

LAYERS = ("staging", "core", "intermediate", "marts")  # the SQLMesh layers, in order


def _asset(schema: str, table: str):
    from airflow.sdk import Asset

    return Asset(name=f"{schema}.{table}", uri=f"duckdb://warehouse/{schema}/{table}", group="clv")


def model_names(layer: str) -> list[str]:
    """The layer's models, one per SQL or Python file of its folder (the file is named after the
    model)."""
    folder = settings.SQLMESH_PROJECT / "models" / layer
    files = [p for p in folder.iterdir() if p.suffix in (".sql", ".py") and not p.stem.startswith("_")]
    return sorted(p.stem for p in files)


def model_assets(layer: str) -> list:
    return [_asset(layer, name) for name in model_names(layer)]


def mart_assets() -> list:
    return model_assets("marts")


def raw_assets() -> list:
    from clv.contract import SOURCES

    return [_asset("raw_data", name) for name in sorted(SOURCES)]


def upstream_assets(layer: str) -> list:
    """What a layer's models read: the raw tables for staging, else the layer below."""
    i = LAYERS.index(layer)
    return raw_assets() if i == 0 else model_assets(LAYERS[i - 1])


def model_asset(name: str):
    """The Asset of a model given as ``schema.model``."""
    schema, table = name.split(".", 1)
    return _asset(schema, table)


def serving_asset():
    from airflow.sdk import Asset

    return Asset(name="serving.duckdb", uri="file://clv/serving.duckdb", group="clv")
