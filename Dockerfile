# The project's image: Airflow 3, SQLMesh, Soda, the dashboard and the clv package, installed from
# the lock file at build time (nothing is installed when a container starts).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    CLV_AIRFLOW_HOME=/opt/airflow \
    CLV_DATA_DIR=/data \
    SQLMESH__DISABLE_ANONYMIZED_ANALYTICS=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    MAX_FORK_WORKERS=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --create-home --home-dir /home/clv clv \
    && mkdir -p /opt/airflow /data /serving /opt/clv \
    && chown -R clv:0 /opt/airflow /data /serving /opt/clv

WORKDIR /opt/clv
COPY requirements.txt requirements.lock requirements-nodeps.txt ./
RUN pip install -c requirements.lock -r requirements.txt \
    && pip install --no-deps -r requirements-nodeps.txt

COPY --chown=clv:0 pyproject.toml README.md ./
COPY --chown=clv:0 .soda ./.soda
COPY --chown=clv:0 clv ./clv
COPY --chown=clv:0 generator ./generator
COPY --chown=clv:0 dags ./dags
COPY --chown=clv:0 plugins ./plugins
COPY --chown=clv:0 sqlmesh_project ./sqlmesh_project
COPY --chown=clv:0 soda_checks ./soda_checks
COPY --chown=clv:0 dashboard ./dashboard
COPY --chown=clv:0 .streamlit ./.streamlit
RUN pip install --no-deps -e .

USER clv
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["clv", "--help"]
