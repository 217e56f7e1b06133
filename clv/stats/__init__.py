"""The statistics room: BG/NBD and Gamma-Gamma (``btyd``), the churn model (``churn``), the
per-customer scoring the SQLMesh Python models call (``scoring``) and `clv fit`'s file handling
(``fit_file``).

Pure numpy, scipy and pandas: nothing here opens the warehouse or imports Airflow, SQLMesh or the
pipeline steps, so a notebook or another pipeline can use the models as they are
(tests/test_architecture.py enforces it).
"""
