# dsstack: the two commands a newcomer needs are `make deploy` (the main job) and `make test`.
# Prerequisites: Python 3.11, git, make. Node.js and the CDK CLI come with the project.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TOOL   := $(PY) -m dsstack.toolchain
CONFIG ?= config/example.yaml
PYTEST_ARGS ?=

.PHONY: help setup synth test test-fast lint deploy down bench clean

help:
	@echo "make deploy   deploy config/example.yaml (embedded emulator without AWS credentials, TARGET=aws for AWS)"
	@echo "make down     stop the embedded emulator that make deploy started"
	@echo "make synth    synthesize every stack of CONFIG=$(CONFIG) into cdk.out"
	@echo "make test     create .venv and node_modules if missing, then run the whole test suite"
	@echo "make lint     ruff + mypy"
	@echo "make bench    print the benchmarks (synth, deploy, handlers)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(TOOL) npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

synth: setup
	$(TOOL) cdk synth --quiet -c config=$(CONFIG)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check dsstack lambda tests bench app.py
	$(VENV)/bin/mypy dsstack

bench: setup
	$(PY) bench/synth.py

clean:
	rm -rf cdk.out cdk.out.* .pytest_cache .hypothesis

# The main job. Without AWS credentials (or TARGET=local): start the embedded emulator (.dsstack/emulator/)
# and deploy CONFIG into it with the real CDK CLI, then verify. TARGET=aws: plain `cdk deploy --all`.
TARGET ?= auto
deploy: setup
	$(PY) -m dsstack.local deploy --config $(CONFIG) --target $(TARGET)

# Stops exactly the emulator `make deploy` started (its PID is in .dsstack/emulator/emulator.json).
down:
	$(PY) -m dsstack.local down
