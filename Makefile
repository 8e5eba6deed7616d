# Jupyter Workbench: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8888
PYTEST_ARGS ?=

.PHONY: run test install lint typecheck docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

## run: a local JupyterLab with the workbench on embedded defaults (SQLite in the Jupyter data dir)
run: install
	@$(BIN)/python -m jupyter_workbench.run --host $(HOST) --port $(PORT)

## test: lint, type-check and the whole suite (SQLite and PostgreSQL)
test: install lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check jupyter_workbench tests benchmarks
	$(BIN)/ruff format --check jupyter_workbench tests benchmarks

typecheck: install
	$(BIN)/mypy

## docs: regenerate the generated tables (settings, routes) in README.md and docs/api.md
docs: install
	$(BIN)/python -m jupyter_workbench.docs README.md docs/api.md

bench: install
	$(BIN)/python benchmarks/api_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
