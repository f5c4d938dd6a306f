# Arbiter: `make run` sets up and starts the platform; `make test` installs what tests need and runs them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
# The CPU wheel of PyTorch: found on this machine's disk, else on PyTorch's CPU index.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
NPM_STAMP := frontend/node_modules/.installed
FRONTEND_BUILD := frontend/dist/index.html
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -type f 2>/dev/null)

# Processes under the supervisor; the local model server only when no external one is set.
PROCESSES := web worker gpu beat $(if $(VLLM_BASE_URL)$(MODEL_BASE_URL),,model)

.PHONY: help run test setup lint pytest frontend-test e2e migrate models seed services browser schema clean

help:
	@echo "make run   - set up everything and start Arbiter on http://$(HOST):$(PORT)"
	@echo "make test  - install test dependencies and run lint, unit, integration, frontend and browser tests"

$(RUN_STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	# A CPU wheel on local disk (pip's find-links) wins; otherwise PyTorch's CPU index.
	$(PIP) install -q --no-deps --no-index "$(TORCH_SPEC)" 2>/dev/null \
	  || $(PIP) install -q "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX)
	$(PIP) install -q "$(TORCH_SPEC)" 2>&1 | grep -v "is ignored: it is neither" || true
	$(PIP) install -q -e . 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import django, celery, transformers, trl"  # fail here, not later, if the install broke
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) install -q -e '.[test]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import pytest, playwright, ruff, mypy"
	touch $@

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(FRONTEND_BUILD): $(NPM_STAMP) $(FRONTEND_SRC)
	cd frontend && npm run build

setup: $(RUN_STAMP) $(FRONTEND_BUILD)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py build_tiny_models
	$(PY) manage.py seed_demo

run: setup
	@echo ""
	@echo "  Arbiter is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops everything)"
	@echo ""
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/honcho -f Procfile start $(PROCESSES)

# --- tests -------------------------------------------------------------------------------
# Tests use real Postgres and Redis; these defaults are the services on 127.0.0.1.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/arbiter
test: export REDIS_URL ?= redis://127.0.0.1:6379/15
test: export ARBITER_VAR_DIR ?= $(CURDIR)/var/test
test: $(TEST_STAMP) browser services lint frontend-test pytest

services: $(TEST_STAMP)
	$(PY) tests/ensure_services.py

browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; \
	  else sudo apt-get install -y -q chromium; fi; }
	@command -v chromium >/dev/null || { echo "chromium is missing: sudo apt-get install chromium"; exit 1; }

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy  # files and plugins: [tool.mypy] in pyproject.toml

frontend-test: $(NPM_STAMP)
	cd frontend && npm run typecheck && npm test

pytest: $(TEST_STAMP) $(FRONTEND_BUILD) services
	$(PY) manage.py build_tiny_models
	$(VENV)/bin/pytest

# Regenerate the OpenAPI schema and the frontend's API types from it.
schema: $(RUN_STAMP) $(NPM_STAMP)
	$(PY) manage.py spectacular --format openapi-json --file frontend/openapi.json
	cd frontend && npm run gen:api

clean:
	rm -rf var/ frontend/dist
