# Quickstart:  make demo   (every job end to end on tiny models and generated data, CPU is enough)
#              make test   (isolated environment in .venv, lint, every CPU test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch. On a machine without the local wheel, add the CPU index:
#   make test TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-gan demo-diffusion demo-sds clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: demo-gan demo-diffusion demo-sds

demo-gan: venv
	$(PY) tools/demo/gan.py

demo-diffusion: venv
	$(PY) tools/demo/diffusion.py

demo-sds: venv
	$(PY) tools/demo/sds_vsd.py

clean:
	rm -rf demo-output build .pytest_cache .ruff_cache
