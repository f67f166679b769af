# taskclf — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
AWVENV := .venv-aw
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUNSTAMP := $(VENV)/.installed
AWSTAMP := $(AWVENV)/.installed

.PHONY: demo test check lint format typecheck pytest bench clean venv dev aw docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUNSTAMP) $@

# The ActivityWatch test peer lives in its own venv: its pins must not constrain ours.
$(AWSTAMP):
	$(PYTHON) -m venv $(AWVENV)
	$(AWVENV)/bin/python -m pip install --quiet --upgrade pip
	$(AWVENV)/bin/python -m pip install --quiet 'aw-server==0.12.0' 'peewee<4' 'flask<2.3'
	touch $@

venv: $(RUNSTAMP)
dev: $(STAMP)
aw: $(AWSTAMP)

demo: $(RUNSTAMP)
	$(BIN)/taskclf demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(AWSTAMP)
	$(BIN)/python -m pytest -q

check: lint typecheck pytest

test: check

bench: $(RUNSTAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(AWVENV) .mypy_cache .pytest_cache .ruff_cache

docs: $(RUNSTAMP)
	$(BIN)/python -m taskclf.cli._reference
