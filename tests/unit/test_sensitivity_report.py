"""The report's sensitivity table: one line per Bayesian fit's parameter with its prior
and likelihood sensitivity and priorsense's diagnosis; why it is missing where it was
not computed; nothing for frequentist fits."""

from __future__ import annotations

from dataclasses import replace

from parity.reports.content import model_blocks
from parity.reports.markdown import render_markdown
from parity.schema import Diagnostics, Fit, FixedEffect, Provenance, VarianceComponent


def fit(engine: str, settings: dict[str, object], prior: float | None = None,
        likelihood: float | None = None) -> Fit:
    return Fit("m1", "y ~ x + (1 | g)", engine, "ok", None, 50, 0,
               fixed_effects=(FixedEffect("x", 1.0, 0.1, 0.8, 1.2, prior_sensitivity=0.01,
                                          likelihood_sensitivity=0.2),),
               variance_components=(VarianceComponent(
                   "g", "(Intercept)", None, "sd", 2.0, prior_sensitivity=prior,
                   likelihood_sensitivity=likelihood),),
               diagnostics=Diagnostics(converged=True, singular=False),
               provenance=Provenance("1", None, settings, 1.0))


def test_each_parameter_gets_its_sensitivity_and_diagnosis() -> None:
    text = render_markdown(model_blocks("m1", [
        fit("lme4", {}), fit("bambi", {"sensitivity": "power-scaling ..."}, 0.31, 0.6)]))
    assert "### Prior sensitivity" in text
    assert "| bambi | `x` | 0.01 | 0.2 | - |" in text
    assert "| bambi | `sd(g: (Intercept))` | 0.31 | 0.6 | prior-data conflict |" in text
    assert "| lme4 |" not in text.split("### Prior sensitivity")[1].split("###")[0]


def test_a_fit_without_sensitivities_says_why() -> None:
    lacking = fit("bambi", {"sensitivity": "not computed: too many rows"})
    lacking = replace(lacking, fixed_effects=(FixedEffect("x", 1, 0.1, 0.8, 1.2),))
    text = render_markdown(model_blocks("m1", [lacking]))
    assert "Sensitivity bambi: not computed: too many rows." in text
    assert render_markdown(model_blocks("m1", [fit("lme4", {})])).count("Prior sensitivity") == 0
