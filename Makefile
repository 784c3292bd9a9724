# The two commands of the README: `make run` (the whole stack locally) and `make test` (every check).
# Both install what is missing first, and a second run reinstalls nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test lint typecheck deps system-deps node-deps clean

run: deps
	$(BIN)/lauks up

test: deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check .

typecheck: deps
	$(BIN)/mypy

deps: system-deps $(STAMP) node-deps

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# MicroPython (WebAssembly build) for the firmware's tests; filled in by the firmware's make file.
# Swagger UI's files, which the API serves at /docs itself (api/docs_assets.py); uPlot and Leaflet, which the web
# app serves at /static/vendor (web/assets.py); axe-core, which the browser tests inject. Reinstalled when the lock changes.
# They are plain files: no install script runs (swagger-ui-dist's dependency @scarf/scarf only reports installs).
WEB_NPM := --no-audit --no-fund --ignore-scripts --loglevel=error
node-deps:
	@test -f firmware/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs || \
	  (cd firmware && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
	@test web/node_modules/.package-lock.json -nt web/package-lock.json || \
	  (cd web && { npm ci $(WEB_NPM) || npm install $(WEB_NPM); } && touch node_modules/.package-lock.json)

clean:
	rm -rf $(VENV) .lauks .pytest_cache .mypy_cache .ruff_cache
