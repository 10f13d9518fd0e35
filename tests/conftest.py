"""Shared fixtures: the seed models fitted once per session by every available engine.

Engine and parity tests read the same real fits (one run of each library per session);
a test that needs a library that is missing is skipped with a reason naming it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from parity.compare.tolerances import load_policy
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.job import compare_outcome
from parity.pipeline.workers import Outcome, run_models
from parity.schema import Comparison, Fit
from parity.settings import Settings
from parity.spec.models import Model

SEED_NAMES = [m.name for m in seed_models()]


@cache
def r_missing() -> str | None:
    """Why lme4 cannot run here, or None."""
    if shutil.which("Rscript") is None:
        return "R is not installed (Rscript not on PATH; `make r-deps` installs it)"
    probe = subprocess.run(["Rscript", "-e", "library(lme4); library(jsonlite)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return "R packages lme4/jsonlite missing (apt-get install r-cran-lme4 r-cran-jsonlite)"
    if importlib.util.find_spec("rpy2") is None:
        return "rpy2 is not installed (pip install 'parity[r]')"
    return None


@cache
def bambi_missing() -> str | None:
    for pkg in ("bambi", "numpyro", "jax"):
        if importlib.util.find_spec(pkg) is None:
            return f"{pkg} is not installed"
    return None


@cache
def glmmtmb_missing() -> str | None:
    reason = r_missing()
    if reason:
        return reason
    probe = subprocess.run(["Rscript", "-e", "library(glmmTMB)"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        return "R package glmmTMB missing (apt-get install r-cran-glmmtmb)"
    return None


@cache
def pymc_missing() -> str | None:
    return bambi_missing() or (None if importlib.util.find_spec("pymc") else
                               "pymc is not installed")


def engine_missing(engine: str) -> str | None:
    """Why `engine` cannot fit live here, or None."""
    check = {"lme4": r_missing, "glmmtmb": glmmtmb_missing, "bambi": bambi_missing,
             "pymc": pymc_missing}.get(engine)
    return check() if check else None


def available_engines() -> list[str]:
    """lme4 always: without R its engine uses the shipped recorded references."""
    engines = ["lme4", "statsmodels"]
    if bambi_missing() is None:
        engines.append("bambi")
    return engines


@pytest.fixture(scope="session")
def seed_outcome() -> Outcome:
    """All six seed models by every available engine, default settings (the seed's),
    with the matched-structure lme4 refits and optimum checks."""
    return run_models(seed_models(), politeness(), available_engines(), Settings())


@pytest.fixture(scope="session")
def seed_fits(seed_outcome: Outcome) -> dict[tuple[str, str], Fit]:
    return {(f.model, f.engine): f for f in seed_outcome.fits}


@pytest.fixture(scope="session")
def seed_comparisons(seed_outcome: Outcome) -> list[Comparison]:
    """The comparison rows under the shipped default tolerance policy."""
    return compare_outcome(seed_outcome, load_policy(project=Path("/nonexistent")))


@pytest.fixture(scope="session")
def seed_models_by_name() -> dict[str, Model]:
    return {m.name: m for m in seed_models()}


def lme4_results_missing() -> str | None:
    """lme4 numbers come from live R or, without it, from recorded references."""
    if r_missing() is None or recorded_dir().is_dir():
        return None
    return f"no R ({r_missing()}) and no recorded lme4 references"


def recorded_dir() -> Path:
    from parity.engines.recorded import shipped_dir

    return shipped_dir()


def need(what: str) -> None:
    """Skip, naming what is missing: "R" (live R with lme4 and rpy2), "lme4" (lme4
    results, live or recorded), "bambi"."""
    check = {"R": r_missing, "lme4": lme4_results_missing, "bambi": bambi_missing}[what]
    reason = check()
    if reason:
        pytest.skip(f"{what}: {reason}")
