"""CLV & churn pipeline: the library behind the `clv` CLI, the Airflow DAGs and the tests."""

__version__ = "0.1.0"
