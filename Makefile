# Jupyter Workbench: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8888
PYTEST_ARGS ?=

.PHONY: run lab test install chromium lint typecheck docs bench clean

NODE_DIR := .node
CHP := $(NODE_DIR)/node_modules/.bin/configurable-http-proxy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

$(CHP):
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error configurable-http-proxy@5

install: $(VENV)/.installed $(CHP)

# Debian's Chromium for the browser tests (Playwright drives it; its own browser downloads are not used)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  (apt-get install -y -q chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium))

## run: a local JupyterHub on http://127.0.0.1:8000 with the workbench service (embedded defaults)
run: install
	@PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH" $(BIN)/python -m jupyter_workbench.hub.run

## lab: a single-user JupyterLab with the workbench (no hub), on $(HOST):$(PORT)
lab: install
	@$(BIN)/python -m jupyter_workbench.run --host $(HOST) --port $(PORT)

## test: lint, type-check and the whole suite (SQLite and PostgreSQL)
test: install chromium lint typecheck
	PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check jupyter_workbench tests benchmarks hub_config
	$(BIN)/ruff format --check jupyter_workbench tests benchmarks hub_config

typecheck: install
	$(BIN)/mypy

## docs: regenerate the generated tables (settings, routes) in README.md and docs/api.md
docs: install
	$(BIN)/python -m jupyter_workbench.docs README.md docs/api.md

bench: install
	$(BIN)/python benchmarks/api_bench.py

clean:
	rm -rf $(VENV) $(NODE_DIR) .pytest_cache .mypy_cache .ruff_cache test-output
