"""The project's Airflow plugin: the listener that writes each run's note (``clv.airflow.notes``).
Airflow loads this folder through ``AIRFLOW__CORE__PLUGINS_FOLDER`` (``clv.airflow.home`` sets it,
and so does docker-compose.yaml)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from clv.airflow import notes


class ClvPlugin(AirflowPlugin):
    name = "clv"
    listeners = (notes,)
