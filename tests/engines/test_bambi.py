"""Bambi on real fits: names, what the sampler actually ran, diagnostics from the draws."""

from __future__ import annotations

import pytest

from conftest import SEED_NAMES, need
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.workers import run_fits
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import select


@pytest.mark.bambi
@pytest.mark.parametrize("name", SEED_NAMES)
def test_fits_with_canonical_names(name: str, seed_fits: dict[tuple[str, str], Fit]) -> None:
    need("bambi")
    fit = seed_fits[(name, "bambi")]
    other = seed_fits[(name, "statsmodels")]
    assert fit.has_numbers, fit.reason
    assert [fe.term for fe in fit.fixed_effects] == [fe.term for fe in other.fixed_effects]
    d = fit.diagnostics
    assert d.r_hat_max is not None and d.ess_bulk_min is not None and d.divergences is not None
    ran = fit.provenance.settings["ran"]
    assert ran["sampler"] == "numpyro"
    assert (ran["chains"], ran["draws"]) == (4, 2000)
    assert fit.provenance.settings["priors"]


@pytest.mark.bambi
def test_random_blocks_are_independent(seed_fits: dict[tuple[str, str], Fit]) -> None:
    need("bambi")
    fit = seed_fits[("crossed_slopes", "bambi")]
    assert fit.structure == {"subject": "independent", "scenario": "independent"}
    for group in ("subject", "scenario"):
        for term in ("(Intercept)", "attitudepol"):
            vc = fit.component(group, term)
            assert vc is not None and vc.estimate > 0
            assert vc.lower is not None and vc.upper is not None and vc.lower < vc.upper
    assert not any(v.kind == "corr" for v in fit.variance_components)


@pytest.mark.bambi
def test_settings_read_back_from_the_fit() -> None:
    need("bambi")
    settings = Settings(draws=150, tune=100, chains=2, seed=7)
    (fit,) = run_fits(select(seed_models(), ["additive"]), politeness(), ["bambi"], settings)
    assert fit.has_numbers, fit.reason
    ran = fit.provenance.settings["ran"]
    assert (ran["chains"], ran["draws"], ran["tune"]) == (2, 150, 100)
    assert fit.provenance.settings["requested"]["seed"] == 7
    # The run's interval level, the equal-tailed posterior interval, no test.
    assert fit.interval == settings.interval == 0.95
    for fe in fit.fixed_effects:
        assert fe.interval_method == "posterior equal-tailed"
        assert (fe.statistic, fe.df, fe.p_value) == (None, None, None)
        assert fe.p_direction is not None and 0.5 <= fe.p_direction <= 1.0
    assert all(v.interval_method == "posterior equal-tailed"
               for v in fit.variance_components)
    again = run_fits(select(seed_models(), ["additive"]), politeness(), ["bambi"], settings)[0]
    assert again.fixed_effects == fit.fixed_effects  # a fixed seed reproduces the draws
