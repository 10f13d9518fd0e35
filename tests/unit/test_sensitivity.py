"""Power-scaling sensitivity (parity.engines.sensitivity) on a model whose posterior is
known exactly: y_i ~ Normal(θ, 1), θ ~ Normal(0, τ). A tight prior (τ small against the
data's 1/√n) is flagged, a wide one is not; the values agree with arviz_stats'
published implementation where it is installed; and the distance and the diagnosis
behave as the method says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from parity.engines.sensitivity import (
    THRESHOLD,
    cjs_distance,
    diagnosis,
    log_density,
    pair,
    sensitivity,
)

N, YBAR = 20, 1.0


def conjugate(tau: float, draws: int = 4000, seed: int = 1
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact posterior draws of θ (2 chains), with each draw's log prior and log
    likelihood."""
    precision = 1 / tau**2 + N
    mean, sd = N * YBAR / precision, 1 / math.sqrt(precision)
    theta = np.random.default_rng(seed).normal(mean, sd, size=(2, draws // 2))
    y = YBAR + np.linspace(-1, 1, N) * 0  # the data: n values at their mean
    log_prior = stats.norm.logpdf(theta, 0, tau)
    log_lik = stats.norm.logpdf(y[None, None, :], theta[..., None], 1).sum(axis=-1)
    return theta, log_prior, log_lik


def test_a_tight_prior_is_flagged_and_a_wide_one_is_not() -> None:
    tight = pair(*conjugate(tau=0.05))
    wide = pair(*conjugate(tau=100.0))
    assert tight[0] is not None and tight[0] > THRESHOLD
    assert wide[0] is not None and wide[0] < THRESHOLD / 5
    assert wide[1] is not None and wide[1] > THRESHOLD  # the likelihood decides
    assert diagnosis(*tight) == "prior-data conflict"
    assert diagnosis(*wide) == "none"
    assert diagnosis(0.2, 0.01) == "strong prior / weak likelihood"
    assert diagnosis(None, 0.3) is None


def test_it_agrees_with_arviz_stats_where_installed() -> None:
    arviz_stats = pytest.importorskip("arviz_stats", reason="arviz_stats is not installed "
                                                           "with this stack")
    import xarray as xr

    for tau in (0.05, 0.3, 100.0):
        theta, lp, ll = conjugate(tau)
        dims = ("chain", "draw")
        data = xr.DataTree.from_dict({
            "posterior": xr.Dataset({"theta": (dims, theta)}),
            "log_prior": xr.Dataset({"theta": (dims, lp)}),
            "log_likelihood": xr.Dataset({"y": (dims, ll)})})
        table = arviz_stats.psense_summary(data, round_to=6)
        theirs = (float(table.loc["theta", "prior"]), float(table.loc["theta", "likelihood"]))
        ours = (sensitivity(theta, lp), sensitivity(theta, ll))
        for a, b in zip(ours, theirs, strict=True):
            assert abs(a - b) <= max(0.005, 0.05 * b), (tau, ours, theirs)


def test_the_distance_is_zero_for_equal_weights_and_grows_with_a_shift() -> None:
    x = np.random.default_rng(2).normal(size=2000)
    assert cjs_distance(x, np.full(x.size, 1 / x.size)) == pytest.approx(0, abs=1e-3)
    tilts = [cjs_distance(x, np.exp(k * x) / np.exp(k * x).sum()) for k in (0.05, 0.2, 0.5)]
    assert tilts == sorted(tilts) and tilts[0] > 0


def test_the_prior_densities_are_the_distributions() -> None:
    x = np.array([0.5, 2.0])
    assert np.allclose(log_density("HalfNormal", {"sigma": 2}, x),
                       stats.halfnorm.logpdf(x, scale=2))
    assert np.allclose(log_density("HalfStudentT", {"nu": 4, "sigma": 2}, x),
                       np.log(2) + stats.t.logpdf(x, 4, 0, 2))
    assert np.allclose(log_density("Exponential", {"lam": 0.5}, x),
                       stats.expon.logpdf(x, scale=2))
    assert np.allclose(log_density("Normal", {"mu": [1, 2], "sigma": [1, 3]}, x),
                       stats.norm.logpdf(x, [1, 2], [1, 3]))
    with pytest.raises(KeyError):
        log_density("Cauchy", {}, x)
