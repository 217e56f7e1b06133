"""The Airflow room: what the DAG files in ``dags/`` import.

``tasks`` turns an Airflow task context into a pipeline step call, ``policy`` holds the retry
policies and the failure callback, ``sensors`` the writer exclusion, ``assets`` the lineage the UI
shows, and ``home`` the local Airflow home (metadata database, pool, login, `airflow dags test`).
Imported when Airflow parses the DAG files, so nothing heavy is imported at module level.
"""
