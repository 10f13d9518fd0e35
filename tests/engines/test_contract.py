"""The engine contract: one suite over every registered engine (like scikit-learn's
`check_estimator` and ibis's backend suite). An engine joins it by its registry row; what
it fits differently from lme4 is declared in that row (`cannot`), with a reason, and
checked here rather than skipped. What it does not fit at all (a family outside the
row's `families`, a structure it `cannot` fit) is a strict expected failure with the
row's reason (ibis's `notimpl` / `never`): the suite fails the day the limit goes away.

Each engine must: name coefficients and components as lme4 does; report the structure it
fitted for exactly the model's grouping factors; carry a residual SD; count the rows it
saw as parity prepared them; record the versions that ran; set `singular` by the one
boundary rule; turn a library failure into `status="failed"` with a reason, never an
exception; and publish each coefficient as its library reports it: every interval at the
run's level and named by its method, a p-value that is its own statistic's (z, or t on
its degrees of freedom), or for a posterior its probability of direction.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import engine_missing
from parity import boundary
from parity.compare.trust import assess
from parity.engines import ENGINE_NAMES, engine_info
from parity.engines.invariance import Case, sleepstudy_like
from parity.pipeline.vetting import scale_of, shipped_rules
from parity.registry import CAPABILITIES
from parity.rows.design import build_design
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.spec.models import make_model
from support import SAMPLER, Workers, worker_pool

FRAME = sleepstudy_like()
FRAME.loc[3, "y"] = None  # one incomplete row: every engine must count it as dropped
# Counts for the Poisson case: log E[k] = 1 + 0.1 x + u_g.
_RNG = np.random.default_rng(5)
_U = dict(zip(sorted(FRAME["g"].unique()), _RNG.normal(0, 0.4, FRAME["g"].nunique()),
              strict=True))
FRAME["k"] = _RNG.poisson(np.exp(1.0 + 0.1 * FRAME["x"] + FRAME["g"].map(_U))).astype(float)
FRAME.loc[3, "k"] = None
CASES = {
    "fixed": Case("fixed", FRAME, "y ~ f * x"),
    "correlated": Case("correlated", FRAME, "y ~ x + (x | g)"),
    "crossed": Case("crossed", FRAME, "y ~ x + f + (1 | g) + (x || h)"),
    "counts": Case("counts", FRAME, "k ~ x + (1 | g)", family="poisson"),
}


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    yield from worker_pool()


def missing(engine: str) -> str | None:
    return engine_missing(engine)


class Unsupported(Exception):
    """The engine refused the case: its fit is `unsupported`, with this reason."""


def limit(engine: str, case: str) -> str | None:
    """What the registry row says the engine does not fit in `case`, or None."""
    info = engine_info(engine)
    c = CASES[case]
    crossed = len({b.group_label for b in c.model().spec.random}) > 1
    return info.family_problem(c.family) or (info.cannot_do("crossed") if crossed else None)


def engine_cases(cases: list[str] | None = None) -> list[Any]:
    """(engine, case) pairs, ids `engine-case`; a pair the registry declares out of the
    engine's reach is a strict xfail, with the row's reason, raising `Unsupported`."""
    out = []
    for engine in ENGINE_NAMES:
        for case in cases or list(CASES):
            why = limit(engine, case)
            marks = [pytest.mark.xfail(reason=why, raises=Unsupported, strict=True)] if why \
                else []
            out.append(pytest.param(engine, case, marks=marks, id=f"{engine}-{case}"))
    return out


class _Fits(dict[tuple[str, str], Fit]):
    """Each (engine, case) fitted the first time a test asks for it, then kept: a run of
    some engines' tests (`-k bambi`) fits only theirs."""

    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers = workers

    def __missing__(self, key: tuple[str, str]) -> Fit:
        engine, name = key
        fit = self.workers.fit(engine, CASES[name])
        self[key] = fit
        return fit


@pytest.fixture(scope="module")
def fits(workers: Workers) -> dict[tuple[str, str], Fit]:
    return _Fits(workers)


def _fit(fits: dict[tuple[str, str], Fit], engine: str, case: str) -> Fit:
    reason = missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")
    fit = fits[(engine, case)]
    if fit.status == "unsupported":  # an expected failure where the registry declares it
        assert fit.reason
        raise Unsupported(f"{engine}: {fit.reason}")
    # The contract is about what a fit holds; whether it converged at the suite's small
    # sampler settings is the trust rule's, checked below.
    assert fit.has_numbers, fit.reason
    return fit


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_every_fit_comes_back_vetted_by_the_trust_rule(
        engine: str, case: str, fits: dict[tuple[str, str], Fit]) -> None:
    """Whatever the engine, its fit's status is what the one trust rule says of its
    numbers against the data (parity.compare.trust), and a fit that is not trusted says
    why; a sampler's fit carries what the rule reads (R-hat, bulk and tail ESS, chains
    and draws) and the Monte-Carlo error of every posterior mean and SD."""
    fit = _fit(fits, engine, case)
    c = CASES[case]
    model = c.model()
    data = prepare(c.frame, model.spec, (), c.family)
    assert assess(fit, shipped_rules(), scale_of(model, data)).state == fit.status
    if fit.status != "ok":
        assert fit.reason and fit.reason.startswith(f"{engine} did not converge (")
    if engine_info(engine).kind == "bayesian":  # a sampler (brms's draws are not saved)
        d = fit.diagnostics
        assert None not in (d.r_hat_max, d.ess_bulk_min, d.ess_tail_min, d.chains, d.draws)
        assert all(fe.mcse is not None and fe.mcse > 0 and fe.se_mcse is not None
                   for fe in fit.fixed_effects)
        assert all(v.mcse is not None for v in fit.variance_components)
        assert all(g.mcse is not None for g in fit.group_effects)
    else:
        assert all(fe.mcse is None for fe in fit.fixed_effects)


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_names_rows_and_residual(engine: str, case: str,
                                 fits: dict[tuple[str, str], Fit]) -> None:
    fit = _fit(fits, engine, case)
    c = CASES[case]
    model = make_model(c.name, c.formula, family=c.family)
    data = prepare(c.frame, model.spec, (), c.family)
    design = build_design(data.frame, model.spec.fixed, model.spec.intercept, data.levels)
    assert [fe.term for fe in fit.fixed_effects] == list(design.names)
    assert (fit.n_obs, fit.n_dropped) == (data.n_obs, data.n_dropped) == (len(FRAME) - 1, 1)
    assert set(fit.structure) == set(model.spec.grouping_labels())
    assert (fit.family, fit.link) == (c.family, {"gaussian": "identity", "poisson": "log"}[
        c.family])
    resid = fit.component("Residual", None)
    if c.family == "gaussian":
        assert resid is not None and resid.estimate > 0
    else:  # a Poisson model has no residual SD
        assert resid is None
    for block in model.spec.random:
        names = build_design(data.frame.head(1), block.terms, block.intercept,
                             data.levels).names
        for term in names:
            assert fit.component(block.group_label, term) is not None, (block, term)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_declared_structure_is_the_structure_fitted(engine: str,
                                                    fits: dict[tuple[str, str], Fit]) -> None:
    """`(x | g)` is correlated unless the engine declares it cannot be; `||` and crossed
    factors are independent in lme4 too, unless the engine declares otherwise."""
    info = engine_info(engine)
    assert {c for c, _ in info.cannot} <= set(CAPABILITIES), info.cannot
    fit = _fit(fits, engine, "correlated")
    expected = "independent" if info.cannot_do("correlations") else "correlated"
    assert fit.structure == {"g": expected}, info.cannot_do("correlations")
    has_corr = any(v.kind == "corr" for v in fit.variance_components)
    assert has_corr is (expected == "correlated")
    if limit(engine, "crossed") is None:
        crossed = _fit(fits, engine, "crossed")
        assert set(crossed.structure.values()) == {"independent"}


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_provenance_and_singular_rule(engine: str, case: str,
                                      fits: dict[tuple[str, str], Fit]) -> None:
    fit = _fit(fits, engine, case)
    assert fit.provenance.engine_version
    for package in engine_info(engine).stack:
        try:
            installed = version(package)
        except PackageNotFoundError:
            continue
        assert fit.provenance.versions.get(package) == installed, package
    info = engine_info(engine)
    if info.embeds_r:  # and R's versions: R and every package of the row
        assert "r" in fit.provenance.versions
        assert set(info.r_packages) <= set(fit.provenance.versions), info.r_packages
        assert fit.provenance.engine_version == fit.provenance.versions[info.r_packages[0]]
    if boundary.on_boundary(fit.variance_components):
        assert fit.diagnostics.singular


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_library_failure_is_a_failed_fit(engine: str, workers: Workers) -> None:
    """A constant response: each library fails in its own way (lme4 errors, statsmodels
    returns NaN, Bambi's priors scale by sd(y) = 0); each becomes `failed`, with a
    reason, and nothing is raised."""
    reason = missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")
    frame = pd.DataFrame({"y": [5.0] * 30, "x": [float(i % 7) for i in range(30)],
                          "g": ["abcde"[i % 5] for i in range(30)]})
    fit = workers.fit(engine, Case("constant", frame, "y ~ x + (1 | g)"))
    assert fit.status == "failed" and fit.reason, (fit.status, fit.reason)
    assert fit.engine == engine and not fit.fixed_effects


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_group_effects_cover_every_level_and_term(engine: str, case: str,
                                                  fits: dict[tuple[str, str], Fit]) -> None:
    """One group effect per level of each grouping factor and per random term, under
    lme4's names, with a non-negative SD; none for a model without grouping terms."""
    fit = _fit(fits, engine, case)
    c = CASES[case]
    model = make_model(c.name, c.formula, family=c.family)
    data = prepare(c.frame, model.spec, (), c.family)
    expected = set()
    for block in model.spec.random:
        levels = data.frame[list(block.group)].astype(str).agg(":".join, axis=1).unique()
        terms = build_design(data.frame.head(1), block.terms, block.intercept,
                             data.levels).names
        expected |= {(block.group_label, str(lv), t) for lv in levels for t in terms}
    got = [(g.group, g.level, g.term) for g in fit.group_effects]
    assert len(got) == len(set(got))
    assert set(got) == expected
    assert all(g.std_error is not None and g.std_error >= 0 for g in fit.group_effects)


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_covariance_of_fixed_effects_matches_the_ses(engine: str, case: str,
                                                     fits: dict[tuple[str, str], Fit]) -> None:
    """`fixed_effects_cov` is symmetric, in the fixed effects' order, and its diagonal is
    the squared SEs (posterior SDs), so a contrast's SE can be read from it."""
    fit = _fit(fits, engine, case)
    cov = np.asarray(fit.fixed_effects_cov)
    k = len(fit.fixed_effects)
    assert cov.shape == (k, k)
    assert np.allclose(cov, cov.T, rtol=1e-10, atol=0.0)
    ses = np.array([fe.std_error for fe in fit.fixed_effects])
    assert np.allclose(np.sqrt(np.diag(cov)), ses, rtol=1e-6)
    assert np.linalg.eigvalsh(cov).min() > -1e-8 * np.abs(cov).max()


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_likelihood_statistics_belong_to_the_criterion(
        engine: str, case: str, fits: dict[tuple[str, str], Fit]) -> None:
    """A frequentist fit names its criterion and reports logLik, AIC, BIC and deviance
    consistent with each other; a Bayesian fit names none and reports none."""
    fit = _fit(fits, engine, case)
    stats = fit.fit_statistics
    if (fit.kind or engine_info(engine).kind) != "frequentist":
        assert fit.criterion is None and "loglik" not in stats
        return
    # Least squares for a fixed-only model, unless the engine fits it by REML too
    # (glmmTMB); the rows of two criteria are then not comparable, and say so. A
    # Poisson mixed model's is the Laplace approximation.
    expected = {"fixed": ("OLS", "REML"), "counts": ("Laplace",)}.get(case, ("REML",))
    assert fit.criterion in expected
    ll, df = stats["loglik"], stats["df"]
    assert stats["deviance"] == pytest.approx(-2 * ll, rel=1e-12)
    assert stats["aic"] == pytest.approx(-2 * ll + 2 * df, rel=1e-12)
    assert stats["bic"] == pytest.approx(-2 * ll + df * np.log(fit.n_obs), rel=1e-12)


def _posterior(engine: str, fit: Fit) -> bool:
    """Whether the fit is a posterior (sampled, or statsmodels' variational one)."""
    return (fit.kind or engine_info(engine).kind) != "frequentist"


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_intervals_are_at_the_runs_level_and_named(engine: str, case: str,
                                                   fits: dict[tuple[str, str], Fit]) -> None:
    """Every fit records the level of its intervals, the run's; each coefficient's
    interval says how it was found and holds the estimate, and so does each variance
    component's that has one."""
    fit = _fit(fits, engine, case)
    assert fit.interval == SAMPLER.interval
    for fe in fit.fixed_effects:
        assert fe.interval_method, fe
        assert fe.lower <= fe.estimate <= fe.upper, fe
    for v in fit.variance_components:
        if v.lower is not None and v.upper is not None:
            assert v.interval_method, v
            assert v.lower <= v.upper, v


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_p_values_are_their_own_statistics(engine: str, case: str,
                                           fits: dict[tuple[str, str], Fit]) -> None:
    """A z statistic's p-value is 2 (1 - Phi(|z|)), without degrees of freedom; a t
    statistic's is 2 (1 - F_t(|t|, df)), on positive degrees of freedom that say how they
    were found; a posterior has no test, only its probability of direction, which
    agrees with whether its equal-tailed interval holds 0."""
    fit = _fit(fits, engine, case)
    for fe in fit.fixed_effects:
        if _posterior(engine, fit):
            assert (fe.statistic, fe.statistic_kind, fe.df, fe.p_value) == (None,) * 4, fe
            assert fe.p_direction is not None and 0.5 <= fe.p_direction <= 1.0, fe
            # An equal-tailed interval at level L excludes 0 exactly when more than
            # (1 + L) / 2 of the posterior lies on one side (to a draw's share or so).
            edge = (1 + SAMPLER.interval) / 2
            if fe.excludes_zero:
                assert fe.p_direction >= edge - 0.01, fe
            else:
                assert fe.p_direction <= edge + 0.01, fe
            continue
        assert fe.statistic is not None and fe.p_value is not None, fe
        assert fe.p_direction is None, fe
        if fe.statistic_kind == "z":
            assert fe.df is None and fe.df_method is None, fe
            p = 2 * stats.norm.sf(abs(fe.statistic))
        else:
            assert fe.statistic_kind == "t", fe
            assert fe.df is not None and fe.df > 0 and fe.df_method, fe
            p = 2 * stats.t.sf(abs(fe.statistic), fe.df)
        assert fe.p_value == pytest.approx(p, rel=1e-6), fe


# Each closed-form interval method's critical value at a level (and df for Wald-t).
_CRITICAL = {
    "Wald-z": lambda level, df: stats.norm.ppf(1 - (1 - level) / 2),
    "Wald-t": lambda level, df: stats.t.ppf(1 - (1 - level) / 2, df),
    "variational normal (parity)": lambda level, df: stats.norm.ppf(1 - (1 - level) / 2),
}


@pytest.mark.parametrize(("engine", "case"), engine_cases())
def test_intervals_have_the_asked_coverage(engine: str, case: str,
                                           fits: dict[tuple[str, str], Fit]) -> None:
    """A Wald interval (and a normal approximation's) is the estimate -/+ the critical
    value at the run's level times the SE, to 1e-6 relative; a posterior's equal-tailed
    interval is near that of a normal of its SD (within the sampling error of two
    quantiles of the suite's few draws), which tells the level of any other apart."""
    fit = _fit(fits, engine, case)
    level = SAMPLER.interval
    for fe in fit.fixed_effects:
        width = fe.upper - fe.lower
        critical = _CRITICAL.get(fe.interval_method or "")
        if critical is not None:
            assert width == pytest.approx(2 * critical(level, fe.df) * fe.std_error,
                                          rel=1e-6), fe
            assert (fe.lower + fe.upper) / 2 == pytest.approx(
                fe.estimate, rel=1e-6, abs=1e-9 * fe.std_error), fe
        elif fe.interval_method == "posterior equal-tailed":
            ratio = width / (2 * stats.norm.ppf(1 - (1 - level) / 2) * fe.std_error)
            assert 0.85 < ratio < 1.15, (ratio, fe)
