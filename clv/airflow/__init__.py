"""The Airflow room: what the DAG files in ``dags/`` import.

``tasks`` turns an Airflow task context into a pipeline step call, ``params`` holds every DAG's
trigger form, ``policy`` the retry policies and the failure callback, ``sensors`` the writer
exclusion, ``assets`` the lineage the UI shows, ``notes`` the run notes (a listener, registered by
``plugins/clv_plugin.py``), and ``home`` the local Airflow home (metadata database, pool, login,
sizing, `airflow dags test` and its progress).
Imported when Airflow parses the DAG files, so nothing heavy is imported at module level.
"""
