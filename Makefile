# The project's commands. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run CUSTOMERS=10000` (or CLV_CUSTOMERS in the environment) sets the generated history's size.
CUSTOMERS ?= $(or $(CLV_CUSTOMERS),100000)
CLV_CUSTOMERS := $(CUSTOMERS)
CLV_DATA_DIR ?= data
export CLV_CUSTOMERS CLV_DATA_DIR
# Offline by default: no telemetry from SQLMesh (Soda's is switched off by clv itself).
export SQLMESH__DISABLE_ANONYMIZED_ANALYTICS := 1
# SQLMesh loads models in one process (forking beside DuckDB's threads can crash; clv/transform.py).
export MAX_FORK_WORKERS := 1

.PHONY: setup run ui dashboard test lint fmt bench clean lock

setup: $(STAMP)  ## virtualenv in .venv with the pinned dependency tree

$(STAMP): requirements.txt requirements.lock requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	touch $(STAMP)

run: setup  ## generate the default dataset (if absent), then the daily refresh end to end through Airflow
	$(BIN)/clv run

ui: setup  ## Airflow's web UI on http://localhost:8080 (login printed; Ctrl-C stops)
	$(BIN)/clv ui

dashboard: setup  ## the Streamlit dashboard over the serving file on http://localhost:8501 (CLV_DASHBOARD_PORT; Ctrl-C stops)
	$(BIN)/clv dashboard

test: setup  ## lint + the whole test suite
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup bench-lifetimes-env  ## benchmarks; results land in bench/RESULTS.md (reliability: bench/RELIABILITY.md)
	$(BIN)/python bench/bench_btyd.py
	$(BIN)/python bench/bench_clv.py --data-dir "$(CLV_DATA_DIR)"
	$(BIN)/python bench/bench_ledger.py --data-dir "$(CLV_DATA_DIR)"
	$(BIN)/python bench/bench_generator.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_transform.py
	$(BIN)/python bench/bench_quality.py --data-dir "$(CLV_DATA_DIR)"
	$(BIN)/python bench/bench_airflow.py
	$(BIN)/python bench/bench_daily_cost.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/reliability_report.py

# lifetimes (the reference the CLV fits are compared with) lives only in this benchmark environment:
# it needs the numpy 1.x stack and is never a project dependency.
LIFETIMES_VENV := bench/.venv-lifetimes
.PHONY: bench-lifetimes-env
bench-lifetimes-env: $(LIFETIMES_VENV)/.installed

$(LIFETIMES_VENV)/.installed: bench/requirements-lifetimes.txt
	test -x $(LIFETIMES_VENV)/bin/python || $(PYTHON) -m venv $(LIFETIMES_VENV)
	$(LIFETIMES_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-lifetimes.txt
	touch $@

lock: setup  ## re-resolve requirements.lock after changing requirements.txt
	{ echo "# The full resolved dependency tree (pip freeze), used as constraints by \`make setup\`."; \
	  echo "# Regenerate with \`make lock\` after changing requirements.txt."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -iE '^(soda-core-duckdb|clv-churn)=='; } > requirements.lock

clean:  ## remove generated data (not the virtualenv)
	rm -rf "$(CLV_DATA_DIR)" .pytest_cache .ruff_cache bench/out
