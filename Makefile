# Two commands set everything up on a fresh clone:
#   make demo   creates .venv with emkit and its plotting extra, then runs `emkit demo`
#   make test   creates .venv with the test tools (and PyTorch's CPU build), then runs the suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: demo test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot,io]"
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/emkit demo

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks examples

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.test
	$(BIN)/python benchmarks/bench_gaussian_mixture.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
