"""The one rule for "singular": thresholds relative to the residual SD, ±1 correlations,
degenerate blocks, and an engine's own flag."""

from __future__ import annotations

import pytest

from parity.boundary import BOUNDARY_CORR, BOUNDARY_SD, on_boundary, singular
from parity.schema import VarianceComponent


def sd(group: str, term: str | None, value: float) -> VarianceComponent:
    return VarianceComponent(group, term, None, "sd", value)


def corr(group: str, a: str, b: str, value: float) -> VarianceComponent:
    return VarianceComponent(group, a, b, "corr", value)


RESID = sd("Residual", None, 25.0)


def test_regular_fit_is_not_singular() -> None:
    comps = [sd("g", "(Intercept)", 24.0), sd("g", "x", 6.0), corr("g", "(Intercept)", "x", 0.1),
             RESID]
    assert not on_boundary(comps)
    assert not singular(comps)
    assert singular(comps, engine_flag=True)  # the engine's own flag is kept


@pytest.mark.parametrize("value, expected", [(0.0024, True), (25.0 * BOUNDARY_SD * 0.99, True),
                                             (25.0 * BOUNDARY_SD * 1.01, False)])
def test_sd_is_judged_relative_to_the_residual(value: float, expected: bool) -> None:
    """statsmodels' 0.0024 where lme4 gives 0 is on the boundary at a residual SD of 25."""
    assert on_boundary([sd("g", "x", value), sd("g", "(Intercept)", 20.0), RESID]) is expected


def test_unit_correlation_is_on_the_boundary() -> None:
    comps = [sd("g", "a", 10.0), sd("g", "b", 5.0), corr("g", "a", "b", -BOUNDARY_CORR), RESID]
    assert on_boundary(comps)


def test_degenerate_three_by_three_block() -> None:
    """Pairwise correlations all below 1 can still make a singular covariance matrix."""
    comps = [sd("g", t, 10.0) for t in "abc"] + [
        corr("g", "a", "b", 0.5), corr("g", "a", "c", 0.5), corr("g", "b", "c", -0.5), RESID]
    assert on_boundary(comps)


def test_residual_alone_is_never_singular() -> None:
    assert not on_boundary([RESID])
