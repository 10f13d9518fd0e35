"""Priors as data through the Bayesian engines: a tight HalfNormal on sd(subject) pulls
Bambi's and the PyMC model's posterior down from the data's estimate (brms's:
tests/engines/test_brms.py), each engine
records the priors its built model holds, and a prior an engine cannot express is refused
up front, by name, while the others fit."""

from __future__ import annotations

import pytest

from conftest import engine_missing
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness

FORMULA = "frequency ~ gender + attitude + (1 | subject) + (1 | scenario)"
SMALL = {"draws": 300, "tune": 300, "chains": 2}
# Enough for the rows to be compared: a fit that did not converge has no measured reason.
CONVERGED = {"draws": 1000, "tune": 1000, "chains": 2}
TIGHT = {"sd": {"subject": {"dist": "HalfNormal", "sigma": 2.0}}, "lkj": {"eta": 3.0}}


def _need(*engines: str) -> None:
    for engine in engines:
        reason = engine_missing(engine)
        if reason:
            pytest.skip(f"{engine}: {reason}")


@pytest.mark.bambi
def test_a_tight_sd_prior_pulls_the_posterior_down_and_is_recorded() -> None:
    _need("bambi", "pymc", "lme4")
    import parity

    run = parity.run({"m": FORMULA}, politeness(), POLITENESS_CATEGORICAL,
                     engines=["lme4", "bambi", "pymc"], cache=False, priors=TIGHT,
                     **CONVERGED)
    fits = {f.engine: f for f in run.results.fits}
    lme4 = fits["lme4"].component("subject", "(Intercept)")
    assert lme4 is not None and lme4.estimate > 15  # the data's answer: about 25 Hz
    for engine in ("bambi", "pymc"):
        fit = fits[engine]
        assert fit.has_numbers, fit.reason
        sd = fit.component("subject", "(Intercept)")
        assert sd is not None and sd.estimate < 8, (engine, sd)
        # The prior as the built model holds it, and the other priors Bambi's defaults.
        priors = fit.provenance.settings["priors"]
        assert "HalfNormal(sigma: 2.0)" in priors["1|subject"], priors  # Bambi's own text
        assert "HalfNormal(sigma: 2.0)" not in priors["1|scenario"], priors
        assert fit.provenance.settings["requested"]["priors"] == run_priors_json()
    assert fits["pymc"].provenance.settings["priors"]["correlation"].startswith(
        "LKJCorr(eta=3)")
    assert fits["bambi"].provenance.settings["priors"]["correlation"].startswith("none")
    scenario = fits["bambi"].component("scenario", "(Intercept)")
    assert scenario is not None and scenario.estimate > 8  # untouched by the document
    # Measured: the tight prior makes sd(subject) prior-sensitive, and the row against
    # lme4 says the gap comes from the prior.
    for engine in ("bambi", "pymc"):
        fit = fits[engine]
        sd = fit.component("subject", "(Intercept)")
        assert sd is not None and sd.prior_sensitivity is not None, engine
        assert sd.prior_sensitivity > 0.05, (engine, sd)
        assert all(f.prior_sensitivity is not None and f.likelihood_sensitivity is not None
                   for f in fit.fixed_effects), engine
        assert fit.provenance.settings["sensitivity"].startswith("power-scaling"), engine
    bambi = fits["bambi"]
    assert bambi.status == "ok", bambi.reason
    row = next(c for c in run.results.comparisons if c.engine == "bambi"
               and c.reference == "lme4" and c.quantity == "sd"
               and c.term == "sd(subject: (Intercept))")
    assert row.verdict == "disagree"
    assert "bambi's sd(subject: (Intercept)) is prior-sensitive (" in str(row.reason)
    assert "the gap to lme4's comes from the prior" in str(row.reason)


def run_priors_json() -> str:
    from parity.spec.priors import parse_priors

    return parse_priors(TIGHT).to_json()


@pytest.mark.bambi
def test_a_prior_the_pymc_model_cannot_express_is_refused_by_name() -> None:
    _need("bambi", "pymc")
    import parity

    student = {"fixed": {"gender": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 20}}}
    run = parity.run({"m": FORMULA}, politeness(), POLITENESS_CATEGORICAL,
                     engines=["bambi", "pymc"], cache=False, priors=student, **SMALL)
    fits = {f.engine: f for f in run.results.fits}
    assert fits["pymc"].status == "unsupported"
    assert "pymc cannot express the prior StudentT(nu: 3, mu: 0, sigma: 20) of gender" in \
        str(fits["pymc"].reason)
    assert fits["bambi"].has_numbers, fits["bambi"].reason
    recorded = fits["bambi"].provenance.settings["priors"]["gender"]
    assert recorded.startswith("StudentT(") and "nu: 3" in recorded, recorded

