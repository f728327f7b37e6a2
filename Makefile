# volflow — one entry point for set-up, demo, tests, lint, benchmarks and the UIs.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH if present, else bootstrapped from PyPI into .tools/ (override: make UV=...)
UV ?= $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
VOLFLOW_HOME ?= $(CURDIR)/.volflow

# Offline by default: no telemetry, no network lookups; see README "Configuration".
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export OMP_WAIT_POLICY := PASSIVE
export UV_PYTHON_DOWNLOADS := never
export VOLFLOW_HOME
export PREFECT_HOME ?= $(VOLFLOW_HOME)/prefect
# prefect.yaml's pull step runs flows from here (templated when a worker starts a run)
export VOLFLOW_REPO ?= $(CURDIR)

.PHONY: setup demo test test-fast lint format bench prefect-ui mlflow-ui deploy worker clean

## setup: create or update .venv from uv.lock (bootstraps uv from PyPI if missing); idempotent
setup:
	@if [ ! -x "$(UV)" ]; then \
		echo "bootstrapping uv into .tools/ from PyPI"; \
		$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet --disable-pip-version-check uv; \
	fi
	@"$(UV)" sync --locked --python "$(PYTHON)" --quiet
	@mkdir -p "$(PREFECT_HOME)"

## demo: the embedded end-to-end job on the synthetic market
demo: setup
	$(VENV)/bin/volflow demo

## test: the whole test suite (what CI runs), one worker per core (two here), whole
## files per worker so module fixtures are built once (TEST_WORKERS=0: one process)
TEST_WORKERS ?= 2
test: setup
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

## test-fast: skip slow and integration tests
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not slow and not integration"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: benchmarks with their baselines (figures go to docs/BENCHMARKS.md by hand)
bench: setup
	$(VENV)/bin/python benchmarks/bench_ingest.py
	$(VENV)/bin/python benchmarks/bench_import.py
	$(VENV)/bin/python benchmarks/bench_lean.py --data $(or $(VOLFLOW_LEAN_DATA),../shared/data/lean)

## prefect-ui: a Prefect server with the UI at http://127.0.0.1:4200 (runs stay in $(PREFECT_HOME))
prefect-ui: setup
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

## mlflow-ui: the MLflow UI at http://127.0.0.1:5000 over the tracking store of volflow train
mlflow-ui: setup
	@mkdir -p "$(VOLFLOW_HOME)/mlflow"
	$(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$(VOLFLOW_HOME)/mlflow/mlflow.db" --host 127.0.0.1 --port 5000

## deploy: register the deployments of prefect.yaml (needs a running server: make prefect-ui)
deploy: setup
	PREFECT_API_URL=http://127.0.0.1:4200/api $(VENV)/bin/prefect work-pool create volflow-process --type process --overwrite
	PREFECT_API_URL=http://127.0.0.1:4200/api VOLFLOW_REPO=$(CURDIR) $(VENV)/bin/prefect --no-prompt deploy --all

## worker: run scheduled and UI-triggered flow runs (process work pool)
worker: setup
	PREFECT_API_URL=http://127.0.0.1:4200/api $(VENV)/bin/prefect worker start --pool volflow-process

clean:
	rm -rf .volflow .pytest_cache .mypy_cache .ruff_cache
