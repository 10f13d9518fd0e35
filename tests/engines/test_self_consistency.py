"""Before an optimum is blamed, an engine's fixed effects must be the ones its own variance
components imply: lme4 profiles the GLS fixed effects at them (real R, real statsmodels)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import need
from parity.compare.rules import compare_all
from parity.compare.tolerances import load_policy
from parity.engines import engine_kind
from parity.engines.invariance import sleepstudy_like
from parity.pipeline.workers import run_models
from parity.settings import Settings
from parity.spec.models import make_model
from support import by_design  # type: ignore[import-not-found]

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def outcome():  # type: ignore[no-untyped-def]
    need("R")
    models = [make_model("indep", "y ~ x + (x || g)"), make_model("corr", "y ~ x + (x | g)")]
    return run_models(models, sleepstudy_like(), ["lme4", "statsmodels"], Settings())


@pytest.mark.parametrize("model", ["indep", "corr"])
def test_statsmodels_is_consistent_with_its_own_components(outcome, model: str) -> None:  # type: ignore[no-untyped-def]
    (check,) = [c for c in outcome.optimum_checks if c.model == model]
    sm = next(f for f in outcome.fits if f.model == model and f.engine == "statsmodels")
    assert set(check.fixed_at_solution) == {fe.term for fe in sm.fixed_effects}
    for fe in sm.fixed_effects:
        gap = abs(check.fixed_at_solution[fe.term] - fe.estimate) / fe.std_error
        assert gap < 1e-6, (fe.term, gap)
    policy = load_policy(project=Path("/nonexistent"))
    rows = compare_all(outcome.fits, outcome.reference_fits, policy, engine_kind,
                       outcome.optimum_checks)
    assert all(r.verdict == "agree" or by_design(r.quantity, r.verdict, r.reason)
               for r in rows if r.engine == "statsmodels"), [
        (r.term, r.reason) for r in rows if r.verdict != "agree"]


def test_a_corrupted_fit_is_called_inconsistent_not_a_worse_optimum(outcome) -> None:  # type: ignore[no-untyped-def]
    """Shift statsmodels' slope by 3 SE, keeping its components: the optimum check still
    rates the components, but the reason names the inconsistency."""
    fits = []
    for f in outcome.fits:
        if f.model == "indep" and f.engine == "statsmodels":
            fe = [replace(e, estimate=e.estimate + 3 * e.std_error) if e.term == "x" else e
                  for e in f.fixed_effects]
            f = replace(f, fixed_effects=tuple(fe))
        fits.append(f)
    policy = load_policy(project=Path("/nonexistent"))
    rows = compare_all(fits, outcome.reference_fits, policy, engine_kind,
                       outcome.optimum_checks)
    bad = [r for r in rows if r.model == "indep" and r.engine == "statsmodels"
           and r.verdict == "disagree"]
    assert bad
    for r in bad:
        assert "inconsistent with its own variance components" in (r.reason or "")
        assert "stopped at a lower REML optimum" not in (r.reason or "")
