# parity: two commands on a fresh Debian 12 machine.
#   make report   install what is missing, then run the six politeness models
#   make test     install what is missing, then the test suite through tox
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYVER := $(shell $(PYTHON) -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')
CONSTRAINTS := constraints/$(PYVER).txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The R packages of every R engine, as the registry lists them (src/parity/registry.py),
# and jsonlite, which every R script writes its record with.
R_LIBRARIES := $(shell PYTHONPATH=src $(PYTHON) -m parity.registry r-packages)
# Boost's C++ headers, which rstan compiles brms's models with: Debian's r-cran-bh is an
# empty package, and brms_fit.R points rstan at these instead.
R_HEADERS := libboost-dev
R_PACKAGES := r-base-core r-base-dev $(foreach p,$(R_LIBRARIES),r-cran-$(shell echo $(p) | tr A-Z a-z)) \
	$(R_HEADERS)
# Headless Chromium renders the HTML report in the test suite.
BROWSER_PACKAGES := chromium
# py311 runs as engines311 and suite311 (the same tests, cut in two so that the two
# lanes below finish together). Longest first: each environment starts as a lane frees,
# in this order, so the short ones fill the end of both lanes.
TOX_ENVS ?= engines311,suite311,py312,seed,nor,type,lint
# Environments run two at a time: a test process keeps about 1.2 of the 2 cores busy
# (R and a compile run on one core, the samplers on both), so two side by side take less
# than one after another. TOX_PARALLEL=0 runs them in turn.
TOX_PARALLEL ?= 2
# pyenv installs several Pythons but shims only the global one: name them all (3.11 first,
# so `python3` stays 3.11) so that tox finds python3.10 … python3.13.
PYENV_PYTHONS := $(shell command -v pyenv >/dev/null 2>&1 && { pyenv versions --bare | grep -E '^3\.11\.[0-9]+$$'; pyenv versions --bare | grep -E '^3\.1[023]\.[0-9]+$$'; } | paste -sd: -)
ifneq ($(PYENV_PYTHONS),)
export PYENV_VERSION := $(PYENV_PYTHONS)
endif

.PHONY: report test r-deps browser-deps venv lint type lock clean

report: r-deps venv
	$(VENV)/bin/parity run --out reports/
	@echo "reports/: results.json, comparison.md, comparison.html, comparison.csv, figures/"

test: r-deps browser-deps venv
	$(VENV)/bin/tox run-parallel --parallel $(TOX_PARALLEL) --parallel-no-spinner -e $(TOX_ENVS)

# R, every R engine's packages, R's headers (rpy2 compiles against them) and Boost's
# (rstan compiles against them) from Debian, only when missing.
r-deps:
	@if command -v Rscript >/dev/null && Rscript -e '$(foreach p,$(R_LIBRARIES),library($(p));)' >/dev/null 2>&1 \
		&& test -f /usr/include/boost/version.hpp; then \
		echo "R with $(R_LIBRARIES) and Boost's headers: present"; \
	else \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(R_PACKAGES); \
	fi

# Debian's chromium, only when no Chromium is on PATH; where none can be installed, the
# browser test says so and skips.
browser-deps:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
		echo "Chromium: present"; \
	else \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			$(BROWSER_PACKAGES) || echo "Chromium could not be installed: the browser test will skip"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard constraints/*.txt)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	PIP_CONSTRAINT=$(if $(wildcard $(CONSTRAINTS)),$(CONSTRAINTS),) \
		$(VENV)/bin/python -m pip install -q -e ".[r,dev,study]"
	touch $@

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

type: venv
	$(VENV)/bin/mypy

# Regenerate the pins of every Python from pyproject.toml (uv resolves for each version).
lock: venv
	for v in 3.10 3.11 3.12 3.13; do \
		extra=$$([ $$v = 3.11 ] && echo "--extra dev"); \
		$(VENV)/bin/uv pip compile pyproject.toml constraints/test.in --extra r --extra study $$extra \
			--python-version $$v -q --custom-compile-command "make lock" \
			-o constraints/py$${v/./}.txt || exit 1; \
	done

clean:
	rm -rf $(VENV) .tox reports
