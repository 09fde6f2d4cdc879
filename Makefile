# nursery developer commands.  `make help` lists them.
#
# Every target works in a virtualenv of its own per interpreter version,
# .venv/py3.11, .venv/py3.12, ...  The interpreter is $(PYTHON) (default
# python3); with pyenv, `PYENV_VERSION=3.12.1 make test` selects 3.12 through
# the pyenv shim, and `make test PYTHON=/path/to/python3.13` works anywhere.
#
# The venv is (re)installed only when pyproject.toml changes: a stamp file in
# the venv records the last successful install.

PYTHON ?= python3

# "3.11" for the selected interpreter; empty if it cannot be run (reported by
# the setup recipe, so that `make clean` and `make help` still work).
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV       := .venv/py$(PY_VERSION)
VPY        := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

# Extra arguments for pytest / python -m bench, e.g.
#   make test PYTEST_ARGS='-k cancel -x'
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.DEFAULT_GOAL := help
.PHONY: help setup tour test test-all test-libs docs bench clean

help:
	@echo "nursery: make targets (interpreter: $(PYTHON) -> Python $(or $(PY_VERSION),?), venv $(VENV))"
	@echo "  make tour      run the guided tour (python -m nursery)"
	@echo "  make test      run the default (fast) test suite"
	@echo "  make test-all  run every test, including the slow, libs and cpython markers"
	@echo "  make test-libs run the real-library tests (aiohttp, httpx, websockets, aiosqlite, asyncpg)"
	@echo "  make docs      build the HTML docs into docs/_build/html (warnings are errors)"
	@echo "  make bench     install the benchmark peers and run the benchmark suite"
	@echo "  make setup     create/update the virtualenv (done automatically by the above)"
	@echo "  make clean     remove every virtualenv and build artefact"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: nursery needs Python 3.11 or newer, but PYTHON=$(PYTHON) is" \
	       "'$$($(PYTHON) --version 2>&1 | head -n1)'." >&2; \
	  echo "       Run e.g. 'make $(or $(MAKECMDGOALS),setup) PYTHON=python3.11'." >&2; \
	  exit 1; }
	@if ! $(VPY) -c '' 2>/dev/null; then \
	  echo "==> creating $(VENV) with $$($(PYTHON) -c 'import sys; print(sys.executable)')"; \
	  $(PYTHON) -m venv --clear $(VENV); \
	fi
	@echo "==> upgrading pip in $(VENV)"
	@$(VPY) -m pip install -qq --upgrade pip
	@echo "==> installing nursery (editable) with the test, docs and libs extras"
	@$(VPY) -m pip install -qq -e '.[test,docs,libs]'
	@touch $@
	@echo "==> $(VENV) is ready"

$(BENCH_STAMP): $(STAMP)
	@echo "==> installing the benchmark extras (trio, uvloop, rloop, matplotlib)"
	@$(VPY) -m pip install -qq -e '.[bench]'
	@touch $@

tour: $(STAMP)
	@$(VPY) -m nursery

test: $(STAMP)
	$(VPY) -m pytest -q $(PYTEST_ARGS)

# -m "" replaces the default marker deselection in pyproject's addopts.
test-all: $(STAMP)
	$(VPY) -m pytest -q -m "" $(PYTEST_ARGS)

# The libs marker: real asyncio libraries on stock asyncio and compat's loop.
# The asyncpg tests start a throwaway PostgreSQL (Debian: apt-get install
# postgresql); without it they skip, except under CI=true, where they fail.
test-libs: $(STAMP)
	$(VPY) -m pytest -q -m libs tests/libs $(PYTEST_ARGS)

docs: $(STAMP)
	$(VPY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "==> docs built: docs/_build/html/index.html"

bench: $(BENCH_STAMP)
	$(VPY) -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv docs/_build build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
