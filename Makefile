# parity: two commands on a fresh Debian 12 machine.
#   make report   install what is missing, then run the six politeness models
#   make test     install what is missing, then the test suite through tox
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYVER := $(shell $(PYTHON) -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')
CONSTRAINTS := constraints/$(PYVER).txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
R_PACKAGES := r-base-core r-base-dev r-cran-lme4 r-cran-jsonlite
TOX_ENVS ?= lint,type,py311

.PHONY: report test r-deps venv lint type lock clean

report: r-deps venv
	$(VENV)/bin/parity run --out reports/
	@echo "tables: reports/comparison.md   results: reports/results.json"

test: r-deps venv
	$(VENV)/bin/tox run -e $(TOX_ENVS)

# R, lme4 and R's headers (rpy2 compiles against them) from Debian, only when missing.
r-deps:
	@if command -v Rscript >/dev/null && Rscript -e 'library(lme4); library(jsonlite)' >/dev/null 2>&1; then \
		echo "R with lme4: present"; \
	else \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(R_PACKAGES); \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard constraints/*.txt)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	PIP_CONSTRAINT=$(if $(wildcard $(CONSTRAINTS)),$(CONSTRAINTS),) \
		$(VENV)/bin/python -m pip install -q -e ".[r,dev]"
	touch $@

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

type: venv
	$(VENV)/bin/mypy

# Regenerate the pins for the Python in use from a fresh, unpinned install.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q ".[r,dev]" "matplotlib<3.11"
	{ echo "# Pinned stack for $(PYVER) (pip freeze of a working install; regenerate with 'make lock')."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^parity'; } > $(CONSTRAINTS)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .tox reports
