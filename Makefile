# Set-up is automatic: the first `make train` creates .venv and installs the project into it
# (editable); the first `make test` (or lint, install) adds the dev tools. pip does not
# byte-compile the ~290 packages it installs (~20 s of CPU): importing the commands once compiles
# what they use, also when PYTHONDONTWRITEBYTECODE is set (without .pyc files every command
# would compile its imports again, ~5 s of CPU each). The dev set-up compiles every package, as
# pip would: the suite starts many processes (servers, entry points) that import more.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip install --quiet
COMMANDS := train predict evaluate backtest rolling fetch_data doctor ui
ARGS ?=
# The suite on every core, a file's tests on one worker, the heaviest files first (tests/suite.py);
# TEST_WORKERS=0 runs it in this process. Budgets (seconds) of issue 28: past one the run says so,
# and fails with TEST_BUDGET_STRICT=1.
TEST_WORKERS ?= auto
PYTEST = $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
LINT_PATHS := $(wildcard src tests benchmarks scripts/*.py)

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast lint format ui clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --no-compile -e .
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -c "$(foreach c,$(COMMANDS),import ashare_autotune.$(c);)"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	touch $(DEV_STAMP)

install: $(DEV_STAMP)  ## Create .venv and install the project with dev tools

train: $(STAMP)  ## Train on the built-in synthetic market (ARGS="tuning.n_trials=10 ...")
	$(BIN)/python -m ashare_autotune.train $(ARGS)

test: $(DEV_STAMP)  ## Run the test suite (offline, <= 6 minutes on 2 cores)
	$(PYTEST) --time-budget=360 $(ARGS)

test-fast: $(DEV_STAMP)  ## Run the tests not marked slow (<= 2 minutes)
	$(PYTEST) --time-budget=120 -m "not slow" $(ARGS)

lint: $(DEV_STAMP)  ## ruff lint and format check
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(DEV_STAMP)  ## ruff format and autofix
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

ui: $(STAMP)  ## MLflow UI on ./mlflow.db; prints the address of the runs' headline view
	$(BIN)/python -m ashare_autotune.ui $(ARGS)

clean:  ## Remove local runs, studies, picks, locks and Hydra outputs (not .venv or the data cache)
	rm -rf mlruns mlartifacts outputs multirun picks
	rm -f mlflow.db mlflow.db-shm mlflow.db-wal mlflow.db-journal mlflow.db.lock
	rm -f optuna.db optuna.db-shm optuna.db-wal optuna.db-journal optuna.db.lock optuna.db.*.lock
