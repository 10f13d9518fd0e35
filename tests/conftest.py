"""Shared fixtures: the seed models fitted once per session by every available engine.

Engine and parity tests read the same real fits (one run of each library per session);
a test that needs a library that is missing is skipped with a reason naming it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import parity.compare.rules as rules
from parity.compare.tolerances import load_policy
from parity.engines import DEFAULT_ENGINES, engine_info
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.job import compare_outcome, vet_outcome
from parity.pipeline.workers import Outcome, prepare_all, run_models
from parity.schema import Comparison, Fit, RunResults
from parity.settings import Settings
from parity.spec.models import Model
from support import misplaced_blame

SEED_NAMES = [m.name for m in seed_models()]


@cache
def _r_packages_missing(packages: tuple[str, ...]) -> str | None:
    """Why R with `packages` cannot run here, or None; asked of Rscript in a child
    process, so that the test process never embeds R (rpy2 beside JAX is not safe)."""
    if shutil.which("Rscript") is None:
        return "R is not installed (Rscript not on PATH; `make r-deps` installs it)"
    code = "; ".join(f"library({p})" for p in packages)
    probe = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    if probe.returncode != 0:
        debian = " ".join(f"r-cran-{p.lower()}" for p in packages)
        return (f"R packages {'/'.join(packages)} missing (`make r-deps`: apt-get install "
                f"{debian})")
    return None


# Engines a tox environment leaves to another one on the same stack (`nor` leaves the
# Bayesian engines to py311, whose constraints it shares): comma-separated names.
LEFT_OUT = "PARITY_TESTS_LEAVE_OUT"


@cache
def engine_missing(engine: str) -> str | None:
    """Why `engine` cannot fit live here, or None, read from its registry row: the Python
    modules it requires, and for an R engine, R with its packages (and jsonlite, which
    every R script writes its record with). A new engine needs no edit here."""
    left_out = [e.strip() for e in os.environ.get(LEFT_OUT, "").split(",") if e.strip()]
    if engine in left_out:
        return (f"{engine} is tested in another environment on the same stack "
                f"({LEFT_OUT}={','.join(left_out)})")
    info = engine_info(engine)
    if info.embeds_r:
        reason = _r_packages_missing(("jsonlite", *info.r_packages))
        if reason:
            return reason
    for module in info.requires:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (needed by {engine})"
    return None


def r_missing() -> str | None:
    """Why lme4 cannot run live here (R, its packages, rpy2), or None."""
    return engine_missing("lme4")


def bambi_missing() -> str | None:
    return engine_missing("bambi")


def glmmtmb_missing() -> str | None:
    return engine_missing("glmmtmb")


def available_engines() -> list[str]:
    """The default engines present here; an R engine always: without R it uses the
    shipped recorded references."""
    return [e for e in DEFAULT_ENGINES if engine_info(e).embeds_r or not engine_missing(e)]


@pytest.fixture(autouse=True)
def _r_is_never_embedded_here() -> Iterator[None]:
    """The test process never embeds R: rpy2 beside JAX is not safe, and starting R sets
    LD_LIBRARY_PATH (R's and the system's libraries first) for every process the suite
    starts after it, which then loads the system's libpython under this Python's. Fits
    and R's judgements run in spawned workers, as in a run."""
    yield
    assert "rpy2.rinterface" not in sys.modules, (
        "this test embedded R in the test process; run R in a spawned worker")


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy as R gives it, read once for every module that fits it (do not
    modify it: it is shared)."""
    need("R")
    from parity.inputs.r_datasets import load_r_dataset

    return load_r_dataset("lme4::sleepstudy").frame


@pytest.fixture(scope="session")
def seed_outcome() -> Outcome:
    """All six seed models by every available engine, default settings (the seed's),
    with the matched-structure lme4 refits and optimum checks, vetted as a run vets them."""
    models, frame = seed_models(), politeness()
    outcome = run_models(models, frame, available_engines(), Settings())
    return vet_outcome(outcome, models, prepare_all(models, frame),
                       load_policy(project=Path(os.devnull)))


@pytest.fixture(scope="session")
def seed_fits(seed_outcome: Outcome) -> dict[tuple[str, str], Fit]:
    return {(f.model, f.engine): f for f in seed_outcome.fits}


@pytest.fixture(scope="session")
def seed_comparisons(seed_outcome: Outcome) -> list[Comparison]:
    """The comparison rows under the shipped default tolerance policy."""
    return compare_outcome(seed_outcome, load_policy(project=Path("/nonexistent")))


@pytest.fixture(scope="session")
def cbpp() -> Any:
    """lme4's cbpp, read once per session through Rscript (the GLMM and nAGQ tests)."""
    need("R")
    from parity.inputs.r_datasets import load_r_dataset

    return load_r_dataset("lme4::cbpp").frame


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


# ---- no row blames a method on a fit that did not converge, in any run of the suite -----
# Every comparison made in this process passes through `compare_pair`, checked here as it
# returns; every run made in a child process (the CLI) left a results.json under the
# session's temporary directory, checked when the session ends.

_compare_pair = rules.compare_pair
CHECKED = {"pairs": 0, "files": 0}


def _checked_compare_pair(fit: Fit, ref: Fit, *args: Any, **kwargs: Any) -> list[Comparison]:
    rows: list[Comparison] = _compare_pair(fit, ref, *args, **kwargs)
    bad = misplaced_blame(rows, [fit, ref])
    assert not bad, "a row blames a method on an unconverged fit:\n" + "\n".join(bad[:5])
    CHECKED["pairs"] += 1
    return rows


rules.compare_pair = _checked_compare_pair


def _results_files(base: Path) -> Sequence[Path]:
    return sorted(base.rglob("results.json")) if base.is_dir() else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    bad: list[str] = []
    for path in _results_files(base):
        try:
            results = RunResults.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a test's deliberately broken file
        CHECKED["files"] += 1
        bad += [f"{path}: {b}" for b in misplaced_blame(
            results.comparisons, [*results.fits, *results.reference_fits])]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"parity: no row blames a method on an unconverged fit "
                            f"({CHECKED['pairs']} pairs compared in process, "
                            f"{CHECKED['files']} results files of child runs)")
    if bad:
        if reporter is not None:
            for line in bad[:20]:
                reporter.write_line(f"MISPLACED BLAME: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
