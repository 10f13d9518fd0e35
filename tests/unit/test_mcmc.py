"""Summaries and diagnostics computed from draws, checked against ArviZ where present."""

from __future__ import annotations

import numpy as np
import pytest

from parity.engines.posterior import (
    ess_bulk,
    ess_tail,
    mcse_mean,
    mcse_sd,
    p_direction,
    rhat,
    sampler_diagnostics,
    summarize,
)
from parity.schema import Diagnostics
from parity.settings import Settings


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
    s = summarize(x, 0.95)
    flat = x.ravel()
    assert s.mean == pytest.approx(flat.mean())
    assert s.sd == pytest.approx(flat.std(ddof=1))
    assert s.lower == pytest.approx(np.quantile(flat, 0.025))
    assert s.upper == pytest.approx(np.quantile(flat, 0.975))
    assert s.p_direction == p_direction(x) == 1.0  # every draw is above 0


@pytest.mark.parametrize(("draws", "expected"), [
    ([[0.1, 2.0, 3.0, 0.5]], 1.0),                  # all positive
    ([[-0.1, -2.0], [-3.0, -0.5]], 1.0),            # all negative, over chains
    ([[-1.0, 1.0, -2.0, 2.0]], 0.5),                # half each side
    ([[-1.0, 1.0, 2.0, 3.0]], 0.75),                # the median's side: above 0
    ([[-1.0, -2.0, -3.0, 4.0, 0.0]], 0.6),          # a draw at exactly 0 counts to neither
])
def test_probability_of_direction_counts_draws_on_the_median_side(
        draws: list[list[float]], expected: float) -> None:
    assert p_direction(np.array(draws)) == pytest.approx(expected, abs=1e-15)


def test_probability_of_direction_is_the_median_sides_share_and_at_least_half() -> None:
    x = ar1(0.5, seed=7) * 0.8 + 0.3
    flat = x.ravel()
    side = np.sign(np.median(flat))
    assert p_direction(x) == pytest.approx(np.mean(np.sign(flat) == side), abs=1e-15)
    assert 0.5 <= p_direction(x) <= 1.0
    assert p_direction(-x) == p_direction(x)
    assert np.isnan(p_direction(np.array([[1.0, np.nan]])))
    assert np.isnan(p_direction(np.empty((1, 0))))


def _arviz_number(value: object) -> float:
    """A scalar from what ArviZ returns for one array (a float, a 0-d array or a
    one-variable Dataset, by version)."""
    data_vars = getattr(value, "data_vars", None)
    if data_vars is not None:
        (name,) = list(data_vars)
        return float(value[name].values)  # type: ignore[index]
    return float(np.asarray(value))


def _old_mcse_sd(az: object) -> bool:
    """Whether this ArviZ computes the MCSE of an SD by its older approximation
    (sd * sqrt(e (1 - 1/ESS)^(ESS-1) - 1)), not by the delta method parity follows."""
    import inspect

    try:
        from arviz.stats.diagnostics import _mcse_sd
    except ImportError:
        return False
    return "fac_mcse_sd" in inspect.getsource(_mcse_sd)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.95])
def test_tail_ess_and_monte_carlo_errors_match_arviz(phi: float) -> None:
    """The tail ESS and the MCSEs of a mean and an SD that the trust rule and the
    tolerances read are ArviZ's, computed from the same draws."""
    az = pytest.importorskip("arviz", reason="arviz not installed")
    if not hasattr(az, "mcse") or not hasattr(az, "ess"):
        pytest.skip("this arviz has no mcse/ess at top level")
    numba = getattr(az, "Numba", None)
    was = bool(getattr(numba, "numba_flag", False))
    if was:  # ArviZ 0.23's numba path of mcse(method="sd") fails on arrays
        numba.disable_numba()  # type: ignore[union-attr]
    x = ar1(phi, seed=4) * 3.0 + 1.0
    x[2] += 0.05
    try:
        want = {m: _arviz_number(az.mcse(x, method=m)) for m in ("mean", "sd")}
        want["tail"] = _arviz_number(az.ess(x, method="tail"))
    except (TypeError, ValueError) as exc:
        pytest.skip(f"this arviz takes no bare (chain, draw) array: {exc}")
    finally:
        if was:
            numba.enable_numba()  # type: ignore[union-attr]
    assert mcse_mean(x) == pytest.approx(want["mean"], rel=1e-6)
    assert ess_tail(x) == pytest.approx(want["tail"], rel=1e-6)
    if _old_mcse_sd(az):  # ArviZ before 0.23 approximated it from the ESS of the SD alone
        assert mcse_sd(x) == pytest.approx(want["sd"], rel=0.5)
    else:
        assert mcse_sd(x) == pytest.approx(want["sd"], rel=1e-6)
    s = summarize(x, 0.95)
    assert (s.mcse_mean, s.mcse_sd, s.ess_tail) == (mcse_mean(x), mcse_sd(x), ess_tail(x))


def test_monte_carlo_error_shrinks_with_more_draws() -> None:
    assert mcse_mean(ar1(0.5, n=4000)) < mcse_mean(ar1(0.5, n=400))
    assert mcse_sd(ar1(0.5, n=4000)) < mcse_sd(ar1(0.5, n=400))


def _diag(values: list[np.ndarray], divergences: int | None = 0,
          ran: dict[str, int] | None = None) -> Diagnostics:
    return sampler_diagnostics(values, settings=Settings(chains=4, draws=1000),
                               ran=ran or {"chains": 4, "draws": 1000},
                               divergences=divergences, notes=["a note", "a note"],
                               singular=False)


def test_one_sampler_rule_reads_the_worst_value_and_the_divergences() -> None:
    """Every sampler's fit is judged by one rule: the worst R-hat and ESS over every
    sampled value, and no divergence."""
    mixed, stuck = ar1(0.0), ar1(0.0, seed=1)
    stuck[0] += 5.0
    good = _diag([mixed, ar1(0.5, seed=2)])
    assert good.converged and good.r_hat_max == pytest.approx(
        max(rhat(mixed), rhat(ar1(0.5, seed=2))))
    assert good.ess_bulk_min == pytest.approx(min(ess_bulk(mixed), ess_bulk(ar1(0.5, seed=2))))
    assert good.warnings == ("a note",)  # the engine's notes, once each
    assert not _diag([mixed, stuck]).converged
    diverged = _diag([mixed], divergences=3)
    assert not diverged.converged and "3 divergent transitions" in diverged.warnings
    short = _diag([mixed], ran={"chains": 2, "draws": 1000})
    assert "asked for chains=4 but the fit ran chains=2" in short.warnings
    assert short.chains == 2
    nothing = _diag([np.full((4, 1000), np.nan)])
    assert nothing.r_hat_max is None and not nothing.converged
