"""The Assets the UI shows: one per mart (named after the SQLMesh model) and the serving file."""

from __future__ import annotations

from clv import settings


def mart_assets() -> list:
    from airflow.sdk import Asset

    folder = settings.SQLMESH_PROJECT / "models" / "marts"
    return [
        Asset(name=f"marts.{p.stem}", uri=f"duckdb://warehouse/marts/{p.stem}", group="clv")
        for p in sorted(folder.glob("*.sql"))
    ]


def serving_asset():
    from airflow.sdk import Asset

    return Asset(name="serving.duckdb", uri="file://clv/serving.duckdb", group="clv")
