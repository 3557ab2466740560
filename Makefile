# Orca's developer entry points. Needs only Python 3.11+ and make on a fresh clone.
#   make install   create .venv (if missing) and install Orca with its dev extras
#   make test      run the test suite
#   make up        start the webserver and daemon on the embedded default instance
#   make bench     run the benchmarks (bench/run.py)
#   make bench-search  search at a million chunks (docs/benchmarks-search.md; about 20 minutes)
#   make bench-client  the client's CPU per input (docs/benchmarks-client.md; a few minutes)
#   make clean     remove caches and build leftovers (keeps .venv and .orca)
#   make distclean clean, and remove .venv too

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Reinstalls when the dependencies change, and is instant otherwise.
STAMP := $(VENV)/.orca-installed

.DEFAULT_GOAL := help
.PHONY: help install test up bench bench-search bench-client clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# The interpreter is checked only when .venv is created; afterwards .venv's own Python counts.
$(VENV_PYTHON):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
		echo "error: '$(PYTHON)' not found. Orca needs Python 3.11 or newer: install it, or run 'make PYTHON=/path/to/python3.11 install'." >&2; \
		exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: Orca needs Python 3.11 or newer, but '$(PYTHON)' is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())')." >&2; \
		echo "       Install a newer Python, or run 'make PYTHON=/path/to/python3.11 install'." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
		echo "error: could not create $(VENV). On Debian/Ubuntu, install the venv module: apt-get install python3-venv" >&2; \
		rm -rf $(VENV); exit 1; }

$(STAMP): pyproject.toml | $(VENV_PYTHON)
	@$(VENV_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(VENV) was made with Python older than 3.11; run 'make distclean install'." >&2; \
		exit 1; }
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: install
	$(VENV_PYTHON) -m pytest

up: install
	$(VENV)/bin/orca up

bench: install
	@if [ -f bench/run.py ]; then \
		$(VENV_PYTHON) bench/run.py; \
	else \
		echo "No benchmarks yet (bench/run.py does not exist)."; \
	fi

bench-search: install
	$(VENV_PYTHON) bench/run.py --only search_million --output docs/benchmarks-search.md

bench-client: install
	$(VENV_PYTHON) bench/run.py --only client --output docs/benchmarks-client.md

clean:
	rm -rf build dist .pytest_cache .hypothesis *.egg-info $(STAMP)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
