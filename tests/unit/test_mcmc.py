"""Summaries and diagnostics computed from draws, checked against ArviZ where present."""

from __future__ import annotations

import numpy as np
import pytest

from parity.engines.posterior import ess_bulk, rhat, summarize


def ar1(phi: float, chains: int = 4, n: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(chains, n))
    x = np.zeros((chains, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_mixed_chains_have_low_rhat_and_high_ess() -> None:
    x = ar1(0.0)
    assert rhat(x) < 1.01
    assert ess_bulk(x) > 3000


def test_stuck_chains_are_flagged() -> None:
    x = ar1(0.0)
    x[0] += 5.0
    assert rhat(x) > 1.5


def test_autocorrelation_lowers_ess() -> None:
    assert ess_bulk(ar1(0.95)) < ess_bulk(ar1(0.5)) < ess_bulk(ar1(0.0))


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.95])
def test_matches_arviz(phi: float) -> None:
    az = pytest.importorskip("arviz", reason="arviz not installed")
    if not hasattr(az, "rhat") or not hasattr(az, "ess"):
        pytest.skip("this arviz has no rhat/ess at top level")
    x = ar1(phi)
    x[1] += 0.1
    assert rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-9)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-9)


def test_summary_is_from_the_draws() -> None:
    x = ar1(0.3, seed=3) * 2.0 + 10.0
    s = summarize(x, 0.94)
    flat = x.ravel()
    assert s.mean == pytest.approx(flat.mean())
    assert s.sd == pytest.approx(flat.std(ddof=1))
    assert s.lower == pytest.approx(np.quantile(flat, 0.03))
    assert s.upper == pytest.approx(np.quantile(flat, 0.97))
