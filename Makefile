# Quickstart:  make demo   (every job end to end on tiny models and generated data, CPU is enough)
#              make test   (isolated environment in .venv, lint, every CPU test)
PYTHON ?= python3
# VENV=<folder> uses another environment; `make -o <folder>/.installed VENV=<folder> test` takes
# it as it is, without reinstalling.
VENV ?= .venv
PY := $(VENV)/bin/python
# The tests run on the CPU: the CPU build of torch (a 192 MB wheel for Python 3.11) rather than the
# CUDA build that plain PyPI gives on Linux (several GB with its CUDA libraries), on any machine.
# TORCH_INDEX is where the CPU build comes from; where it cannot be reached within 10 s, torch comes
# from pip's usual places instead (TORCH_INDEX= asks for that), and a line says so.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# Test processes (pytest-xdist): `auto` is one per core this process may use, at most 4;
# PYTEST_JOBS=1 runs every test in one process.
# Each test file runs whole in one of them, so that a file's shared set-up (a starter, a grading
# session, tiny models) is made once, as in one process.
PYTEST_JOBS ?= auto
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-gan demo-diffusion demo-sds clean

venv: $(VENV)/.installed

# One line per step; pip shows the progress of the large download (torch).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "set-up 1/3: a virtual environment in $(VENV), once (later commands reuse it)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ] && $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=10)' "$(TORCH_INDEX)" 2>/dev/null; then \
	    echo "set-up 2/3: $(TORCH_SPEC), the CPU build, from $(TORCH_INDEX)"; \
	    $(PY) -m pip install --progress-bar on --extra-index-url "$(TORCH_INDEX)" "$(TORCH_SPEC)"; \
	else \
	    echo "set-up 2/3: $(TORCH_SPEC) from pip's usual index$(if $(TORCH_INDEX), ($(TORCH_INDEX) cannot be reached)); on Linux that is the CUDA build (several GB) unless pip finds the CPU build locally"; \
	    $(PY) -m pip install --progress-bar on "$(TORCH_SPEC)"; \
	fi
	@echo "set-up 3/3: requirements-dev.txt (the homework's libraries, pytest, ruff), a minute or two"
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# In the course tree (it has tools/release.py) lint and formatting must pass; in a student's
# starter they are reported and never stop the tests.
STRICT_LINT := $(if $(wildcard tools/release.py),1,)

lint: venv
ifeq ($(STRICT_LINT),1)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
else
	-@$(PY) -m ruff check --quiet . || echo "(lint findings above: worth fixing, they do not stop the tests)"
	-@$(PY) -m ruff format --check --quiet . || echo "(run '$(PY) -m ruff format .' to format; it does not stop the tests)"
endif

# The project tests, then a line per TODO: done, not done yet, or wrong with the reason.
# Fails for a broken test or a wrong TODO, never for a TODO that is simply not done yet.
test: lint
	@jobs="$(PYTEST_JOBS)"; [ "$$jobs" != auto ] || jobs=$$($(PY) -c 'import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))'); \
	if [ "$$jobs" -gt 1 ] 2>/dev/null; then parallel="-n $$jobs --dist loadfile"; else parallel=""; fi; \
	$(PY) -m pytest $$parallel $(PYTEST_ARGS); status=$$?; \
	echo; $(PY) tools/grade.py --submission . --status || status=1; \
	exit $$status

demo: demo-gan demo-diffusion demo-sds

demo-gan: venv
	$(PY) -m tools.demo.gan

demo-diffusion: venv
	$(PY) -m tools.demo.diffusion

demo-sds: venv
	$(PY) -m tools.demo.sds_vsd

clean:
	rm -rf demo-output build .pytest_cache .ruff_cache
