# The commands a person runs locally are the ones CI runs.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup lint test test-unit up down

setup:
	@scripts/bootstrap.sh

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy .

test: lint
	$(VENV)/python -m pytest

test-unit: setup
	$(VENV)/python -m pytest tests/unit
