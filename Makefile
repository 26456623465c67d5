# The two commands of the README. Everything lands in .venv; nothing is installed system-wide.
PYTHON ?= python3
VENV ?= .venv
ADMIN ?= admin
BIN := $(VENV)/bin

.PHONY: run test sandbox

run: $(VENV)/.runtime
	$(BIN)/python init.py --admin-user $(ADMIN)
	$(BIN)/python app.py

sandbox: $(VENV)/.dev
	$(BIN)/python app.py --sandbox

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime
