# Quickstart:  make demo   (every job end to end on tiny models and generated data, CPU is enough)
#              make test   (isolated environment in .venv, lint, every CPU test)
PYTHON ?= python3
# VENV=<folder> uses another environment; `make -o <folder>/.installed VENV=<folder> test` takes
# it as it is, without reinstalling.
VENV ?= .venv
PY := $(VENV)/bin/python
# The tests run on the CPU: the CPU build of torch (a 192 MB wheel for Python 3.11) rather than the
# CUDA build that plain PyPI gives on Linux (several GB with its CUDA libraries), on any machine.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= --extra-index-url https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-gan demo-diffusion demo-sds clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
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
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
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
