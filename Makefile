# The two front-door commands (see README): `make gate` and `make test`. Each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
RECIPE ?= freq:0.5@english

.PHONY: setup gate record test lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build of 2.13.0 is on local disk; anything looser pulls CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

gate: setup
	$(VENV)/bin/evalsuite gate --recipe "$(RECIPE)" --html evalsuite-report/report.html

record: setup
	$(VENV)/bin/evalsuite record

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest
