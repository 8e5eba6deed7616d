# Jupyter Workbench: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8888
PYTEST_ARGS ?=

.PHONY: run lab test install labextension labextension-test chromium lint typecheck docs bench clean device-wheels

NODE_DIR := .node
CHP := $(NODE_DIR)/node_modules/.bin/configurable-http-proxy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the editable install's link to the built JupyterLab extension (made by `labextension` below)
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/jupyter-workbench

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@# a link left by `labextension` must not lead pip's uninstall into the build output
	@if [ -L $(LABEXT_LINK) ]; then rm $(LABEXT_LINK); fi
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

$(CHP):
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error configurable-http-proxy@5

## labextension: build the JupyterLab extension (labextension/, npm) into jupyter_workbench/labextension
## and link it into the environment (a `pip install` of a built tree ships it as data files)
LABEXT_OUT := jupyter_workbench/labextension/package.json
LABEXT_SRC := labextension/package.json labextension/tsconfig.json \
  $(wildcard labextension/src/*.ts labextension/style/* labextension/schema/*.json)

labextension/node_modules/.package-lock.json: labextension/package-lock.json
	npm ci --prefix labextension --no-audit --no-fund --loglevel=error
	touch $@

$(LABEXT_OUT): labextension/node_modules/.package-lock.json $(LABEXT_SRC) | $(VENV)/.installed
	cd labextension && node_modules/.bin/tsc
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m jupyterlab.labextensions build labextension --core-path \
	  "$$($(BIN)/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')"
	touch $@

$(VENV)/.labextension: $(LABEXT_OUT) $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m jupyterlab.labextensions develop --overwrite jupyter_workbench
	touch $@

labextension: $(VENV)/.labextension

## labextension-test: type-check and unit-test the extension's TypeScript (vitest, no browser)
labextension-test: labextension/node_modules/.package-lock.json
	cd labextension && node_modules/.bin/tsc -p tsconfig.test.json && node_modules/.bin/vitest run

# the stock yjs + y-websocket client of the co-editing compatibility test
COLLAB_JS := tests/collab/js/node_modules/.package-lock.json
$(COLLAB_JS): tests/collab/js/package-lock.json
	npm ci --prefix tests/collab/js --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(CHP) $(VENV)/.labextension $(COLLAB_JS)

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
test: install chromium lint typecheck labextension-test
	PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH" $(BIN)/python -m pytest --durations=30 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check jupyter_workbench tests benchmarks hub_config
	$(BIN)/ruff format --check jupyter_workbench tests benchmarks hub_config

typecheck: install
	$(BIN)/mypy

## docs: regenerate the generated tables (settings, routes) in README.md and docs/api.md
docs: install
	$(BIN)/python -m jupyter_workbench.docs README.md docs/api.md

## device-wheels: the GPU kernel's packages, at this environment's versions, as wheels for the lent GPU
## machine's Python (no registry there) in .whl; benchmarks/gpu_kernel_check.py says how to run there
DEVICE_PY ?= 3.12
DEVICE_PKGS := ipykernel ipython ipython_pygments_lexers jupyter_client jupyter_core traitlets pyzmq \
  tornado comm debugpy matplotlib-inline nest-asyncio2 jedi parso prompt_toolkit wcwidth pexpect \
  ptyprocess stack-data executing asttokens pure_eval platformdirs
device-wheels: install
	rm -rf .whl && mkdir .whl
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version $(DEVICE_PY) \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
	  --platform any -d .whl $$($(BIN)/python -m pip freeze | \
	  $(BIN)/python -c 'import re, sys; want = {re.sub("[-_.]+", "-", p).lower() for p in sys.argv[1:]}; print(" ".join(l.strip() for l in sys.stdin if re.sub("[-_.]+", "-", l.split("==")[0]).lower() in want))' $(DEVICE_PKGS))
	@du -sh .whl

bench: install
	$(BIN)/python benchmarks/api_bench.py
	$(BIN)/python benchmarks/collab_bench.py

clean:
	rm -rf $(VENV) $(NODE_DIR) labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo jupyter_workbench/labextension .pytest_cache .mypy_cache .ruff_cache test-output
