"""Two posteriors of the same model under the same priors: a cross-implementation check,
Monte-Carlo error its only tolerance; and two under different priors say which prior."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from parity.compare.matched import prior_difference, same_model
from parity.compare.rules import compare_pair
from parity.compare.tolerances import Policy, load_policy
from parity.schema import Diagnostics, Fit, FixedEffect, GroupEffect, Provenance, VarianceComponent

PRIORS = {"intercept": "Normal(mu: 250, sigma: 50)", "fixed Days": "Normal(mu: 0, sigma: 20)",
          "sd Subject (Intercept)": "HalfNormal(sigma: 30)",
          "sd Subject Days": "HalfNormal(sigma: 30)", "residual": "HalfNormal(sigma: 40)"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(project=Path(tmp_path_factory.mktemp("p")) / "none.toml")


def posterior(engine: str, shift: float = 0.0, mcse: float = 0.1,
              priors: dict[str, str] | None = None, structure: str = "independent") -> Fit:
    """A posterior of `Reaction ~ Days + (Days || Subject)` whose means move by `shift`."""
    return Fit(
        model="m", formula="Reaction ~ Days + (Days || Subject)", engine=engine,
        status="ok", reason=None, n_obs=180, n_dropped=0,
        fixed_effects=(FixedEffect("(Intercept)", 251.0 + shift, 7.0, 237.0, 265.0, mcse,
                                   mcse),
                       FixedEffect("Days", 10.4 + shift, 1.7, 7.0, 13.8, mcse, mcse)),
        variance_components=(
            VarianceComponent("Subject", "(Intercept)", None, "sd", 26.0 + shift, 6.0, 15.0,
                              40.0, mcse),
            VarianceComponent("Subject", "Days", None, "sd", 6.5 + shift, 1.4, 4.0, 10.0,
                              mcse),
            VarianceComponent("Residual", None, None, "sd", 25.8 + shift, 1.5, 23.0, 29.0,
                              mcse)),
        diagnostics=Diagnostics(converged=True, singular=False, r_hat_max=1.0,
                                ess_bulk_min=800.0, divergences=0, ess_tail_min=700.0,
                                chains=2, draws=1000),
        provenance=Provenance("1", None, {"prior_set": dict(PRIORS if priors is None
                                                            else priors)}, 1.0),
        structure={"Subject": structure},
        group_effects=(GroupEffect("Subject", "308", "(Intercept)", 2.0 + shift, 12.0, mcse),),
    )


def kind(engine: str) -> str:
    return "bayesian"


def test_the_same_model_under_the_same_priors_is_matched() -> None:
    assert same_model(posterior("bambi"), posterior("brms"))
    assert not same_model(posterior("bambi"), posterior("brms", structure="correlated"))
    other = {**PRIORS, "sd Subject Days": "HalfNormal(sigma: 3)"}
    assert not same_model(posterior("bambi"), posterior("brms", priors=other))
    assert prior_difference(posterior("bambi"), posterior("brms", priors=other)) == (
        "the priors differ: bambi's sd Subject Days is HalfNormal(sigma: 30), brms's "
        "HalfNormal(sigma: 3)")
    unrecorded = replace(posterior("brms"), provenance=Provenance("1", None, {}, 1.0))
    assert not same_model(posterior("bambi"), unrecorded)


def test_matched_rows_are_held_to_monte_carlo_error_alone(policy: Policy) -> None:
    """A gap of 0.3 with MCSEs of 0.1 each (0.14 combined) is within 4 MCSE (0.57); the
    Bayesian pair's own rule (0.2 posterior SD) would have passed a gap of 1.4."""
    rows = compare_pair(posterior("brms", shift=0.3), posterior("bambi"), policy, kind)
    matched = [r for r in rows if r.quantity in ("estimate", "std_error", "sd",
                                                 "group_effect")]
    assert matched and all(r.verdict == "agree" and r.reason is None for r in matched)
    assert all(r.tolerance == pytest.approx(4 * 0.1 * 2 ** 0.5) for r in matched)
    wide = compare_pair(posterior("brms", shift=1.0), posterior("bambi"), policy, kind)
    off = [r for r in wide if r.quantity in ("estimate", "sd", "group_effect")]
    assert off and all(r.verdict == "disagree" for r in off)
    assert all("sample the same model under the same priors" in (r.reason or "")
               and "parity's translation" in (r.reason or "")
               and "7.1 MCSE" in (r.reason or "") for r in off)


def test_posteriors_under_different_priors_keep_the_pair_s_rule_and_name_the_prior(
        policy: Policy) -> None:
    other = {**PRIORS, "residual": "brms default"}
    rows = compare_pair(posterior("brms", shift=1.0, priors=other), posterior("bambi"),
                        policy, kind)
    sd = next(r for r in rows if r.quantity == "sd" and r.group == "Residual")
    # 0.05 relative of 25.8 and 0.2 posterior SD, widened by 3 MCSE: not Monte-Carlo alone.
    assert sd.tolerance is not None and sd.tolerance > 1.0
    est = next(r for r in rows if r.quantity == "estimate" and r.term == "Days")
    assert est.verdict == "disagree"
    assert "the priors differ: brms's residual is brms default, bambi's HalfNormal(sigma: 40)" \
        in (est.reason or "")


def test_a_boundary_does_not_excuse_a_gap_between_matched_posteriors(policy: Policy) -> None:
    """One sampler's subject SD collapsed to the boundary, the other's did not: between
    two samplers of one model that is the bug, not a reason to set the row apart."""
    collapsed = posterior("brms")
    collapsed = replace(collapsed, variance_components=(
        replace(collapsed.variance_components[0], estimate=0.02),
        *collapsed.variance_components[1:]))
    rows = compare_pair(collapsed, posterior("bambi"), policy, kind)
    sd = next(r for r in rows if r.term == "sd(Subject: (Intercept))")
    assert sd.verdict == "disagree" and "sample the same model" in str(sd.reason)
