# The two commands a new user needs: `make demo` and `make test` (CI runs `make test`).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
ORGBOT := $(VENV)/bin/orgbot
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench train eval-tone lint clean

install: $(VENV)/.installed

# torch first, pinned to the CPU wheel: anything that depends on torch would otherwise pull a
# multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(ORGBOT) demo

# Everything, including the tests that load the real language model (marked slow).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick loop while developing.
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/run.py

# Reproduces the shipped adapter (measured: 46 minutes on 2 CPU cores, 11.6 GB peak; minutes on a GPU).
train: install
	$(ORGBOT) train --overwrite

eval-tone: install
	$(ORGBOT) eval tone --card

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache
