# wdp: `make run` starts the local stack, `make test` runs the whole suite.
# Both bootstrap .venv themselves; nothing is needed beforehand but Python 3.11/3.12 and make.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The first interpreter on PATH that is 3.11 or 3.12 (pgserver ships wheels up to 3.12).
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: run test lint fmt typecheck check-migrations screenshots lock clean venv peers-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or 3.12 is required (set PYTHON=...)" >&2; exit 1; }
	@echo "bootstrapping $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/wdp run

# The peers benchmarked beside wdp's LangGraph handler (benchmarks/langgraph_peers.py),
# in an environment of their own so they never change what the project runs with.
PEERS := .venv-peers
LANGFUSE_VERSION := 5.2.0
peers-venv:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet -c constraints.txt -e '.[langgraph]' 'langfuse==$(LANGFUSE_VERSION)'
	$(PEERS)/bin/python -m pip list 2>/dev/null | grep -iE '^(langfuse|langgraph|langchain-core|opentelemetry-sdk) '

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

check-migrations: $(STAMP)
	$(BIN)/alembic check

# docs/images/aggregates-plots.png: three days materialised, the Dagster Plots view
# photographed with /usr/bin/chromium (apt-get install -y chromium).
screenshots: $(STAMP)
	$(BIN)/python -m benchmarks.screenshots

# Re-pin every transitive dependency after changing pyproject.toml.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet --upgrade pip
	.lockvenv/bin/python -m pip install --quiet -e '.[all,dev]'
	{ sed -n '1,3p' constraints.txt; .lockvenv/bin/python -m pip freeze --exclude-editable | grep -v '^wdp'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lockvenv

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .mypy_cache .ruff_cache
