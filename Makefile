# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV ?= .venv
# The venv's interpreter. player-sim spends its CPU in the interpreter, and builds of one CPython version
# differ: Debian's python3.11 (static, built with profile-guided and link-time optimisation) ran the
# collector's request handling about 1.5x faster than pyenv's default build of 3.11 (shared libpython,
# neither). So the system's python3 is taken when it is 3.11 or newer and can make a venv; else python3
# from PATH. `make PYTHON=/path/to/python3` chooses another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo /usr/bin/python3 || echo python3)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean compiled

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,compiled]'
	touch $(STAMP)

# The collector's request path compiled by Cython (sim/compiled): built into the venv, rebuilt when one of its
# sources changed (a no-op otherwise); where it cannot be built (no C compiler) it runs as Python, and says so.
compiled: $(STAMP)
	-@$(PY) -m sim.compiled build

run: compiled
	$(VENV)/bin/player-sim demo

test: compiled
	$(PY) -m pytest -q

# Lint and format check (configured in pyproject.toml); `ruff format` and `ruff check --fix` make the changes.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: compiled
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
