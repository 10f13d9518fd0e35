"""Rows between two frequentist fits of different criteria (Laplace, AGQ(n), nAGQ=0; REML
and ML) name both criteria, and a gap beyond the tolerance is the criteria's, so such a
row is `not_comparable`, never `disagree`. The numbers are lme4's and glmmTMB's on
lme4::cbpp (`incidence ~ period + (1 | herd)`, binomial, `size` trials)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from parity.compare.quantities import criteria_note, loglik_scale
from parity.compare.rules import compare_pair
from parity.compare.tolerances import Policy, load_policy
from parity.reports.content import model_blocks
from parity.reports.markdown import render_markdown
from parity.schema import Comparison, Diagnostics, Fit, FixedEffect, VarianceComponent

KINDS = {"lme4": "frequentist", "glmmtmb": "frequentist", "statsmodels": "frequentist",
         "bambi": "bayesian"}

# (fixed effects, herd SD, logLik) of each criterion on cbpp.
CBPP = {
    "Laplace": ({"(Intercept)": (-1.398532, 0.232472), "period2": (-0.992332, 0.306642)},
                0.642262, -92.026282),
    "AGQ(25)": ({"(Intercept)": (-1.399224, 0.233511), "period2": (-0.991409, 0.306768)},
                0.647520, -50.005015),
    "nAGQ=0": ({"(Intercept)": (-1.360476, 0.227579), "period2": (-0.976173, 0.303286)},
               0.641839, -92.054347),
}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(project=Path(tmp_path_factory.mktemp("p")) / "none.toml")


def cbpp_fit(engine: str, criterion: str, numbers: str | None = None) -> Fit:
    """A binomial fit of cbpp under `criterion`, with the numbers of `numbers` (by
    default the criterion's own)."""
    fixed, sd, loglik = CBPP[numbers or criterion]
    return Fit(
        model="m1", formula="incidence ~ period + (1 | herd)", engine=engine, status="ok",
        reason=None, n_obs=56, n_dropped=0,
        fixed_effects=tuple(FixedEffect(t, e, s, e - 2 * s, e + 2 * s)
                            for t, (e, s) in fixed.items()),
        variance_components=(VarianceComponent("herd", "(Intercept)", None, "sd", sd),),
        diagnostics=Diagnostics(converged=True, singular=False),
        structure={"herd": "correlated"}, n_groups={"herd": 15},
        fit_statistics={"loglik": loglik, "aic": -2 * loglik + 10, "deviance": -2 * loglik},
        criterion=criterion, family="binomial", link="logit",
    )


def rows_of(fit: Fit, ref: Fit, policy: Policy) -> dict[tuple[str, str], Comparison]:
    return {(r.quantity, r.term): r for r in compare_pair(fit, ref, policy, KINDS.__getitem__)}


def test_laplace_against_agq_names_both_and_never_disagrees(policy: Policy) -> None:
    """The herd SD is 0.6423 under Laplace and 0.6475 under AGQ(25): that gap was a
    `disagree` that named neither criterion."""
    rows = rows_of(cbpp_fit("glmmtmb", "Laplace"), cbpp_fit("lme4", "AGQ(25)"), policy)
    assert not [r for r in rows.values() if r.verdict == "disagree"]
    sd = rows[("sd", "sd(herd: (Intercept))")]
    assert sd.verdict == "not_comparable" and sd.tolerance is not None
    assert abs((sd.value or 0) - (sd.reference_value or 0)) > sd.tolerance
    assert sd.reason is not None
    assert sd.reason.startswith("glmmtmb fitted Laplace, lme4 AGQ(25) (adaptive "
                                "quadrature, 25 points): different criteria")
    assert "beyond the tolerance" in sd.reason
    # Within the tolerance the row agrees, and still says the criteria differ.
    for key in [("estimate", "(Intercept)"), ("std_error", "period2")]:
        assert rows[key].verdict == "agree"
        assert "Laplace" in (rows[key].reason or "") and "AGQ(25)" in (rows[key].reason or "")
        assert "within the tolerance" in (rows[key].reason or "")


def test_agqs_loglik_is_said_to_be_on_another_scale(policy: Policy) -> None:
    rows = rows_of(cbpp_fit("glmmtmb", "Laplace"), cbpp_fit("lme4", "AGQ(25)"), policy)
    loglik = rows[("loglik", "logLik (AGQ(25))")]
    assert loglik.verdict == "not_comparable"
    assert "likelihoods of different criteria" in (loglik.reason or "")
    assert "lme4's AGQ(25) log-likelihood is relative to the saturated model" in (
        loglik.reason or "")


def test_nagq0_against_laplace_is_not_comparable_beyond_the_tolerance(policy: Policy) -> None:
    """nAGQ=0's intercept (-1.3605) is 2.7% from the Laplace optimum's (-1.3985): the
    criteria differ by that much, no engine erred."""
    rows = rows_of(cbpp_fit("glmmtmb", "Laplace"), cbpp_fit("lme4", "nAGQ=0"), policy)
    est = rows[("estimate", "(Intercept)")]
    assert est.verdict == "not_comparable"
    assert (est.reason or "").startswith(
        "glmmtmb fitted Laplace, lme4 nAGQ=0 (fixed effects from PIRLS, Laplace for the "
        "variances only): different criteria")
    assert rows[("sd", "sd(herd: (Intercept))")].verdict == "agree"
    assert "nAGQ=0" in (rows[("sd", "sd(herd: (Intercept))")].reason or "")
    loglik = rows[("loglik", "logLik (nAGQ=0)")]
    assert loglik.verdict == "not_comparable"
    assert "the Laplace approximation at fixed effects that do not maximise it" in (
        loglik.reason or "")
    # Either way round.
    back = rows_of(cbpp_fit("lme4", "nAGQ=0"), cbpp_fit("glmmtmb", "Laplace"), policy)
    assert not [r for r in back.values() if r.verdict == "disagree"]


def test_the_same_gap_under_one_criterion_still_disagrees(policy: Policy) -> None:
    """The criteria, not the size of the gap, set the rows apart: AGQ(25)'s numbers
    recorded as Laplace are a disagreement on the herd SD."""
    rows = rows_of(cbpp_fit("glmmtmb", "Laplace"),
                   cbpp_fit("lme4", "Laplace", numbers="AGQ(25)"), policy)
    sd = rows[("sd", "sd(herd: (Intercept))")]
    assert sd.verdict == "disagree" and "criteria" not in (sd.reason or "")
    assert rows[("estimate", "(Intercept)")].reason is None


def test_reml_against_ml_is_a_difference_of_criteria_too(policy: Policy) -> None:
    reml = replace(cbpp_fit("lme4", "Laplace"), criterion="REML", family="gaussian",
                   link="identity")
    ml = replace(reml, engine="statsmodels", criterion="ML", variance_components=(
        VarianceComponent("herd", "(Intercept)", None, "sd", 0.60),))
    sd = rows_of(ml, reml, policy)[("sd", "sd(herd: (Intercept))")]
    assert sd.verdict == "not_comparable"
    assert (sd.reason or "").startswith("statsmodels fitted ML, lme4 REML: different criteria")


def test_no_note_where_the_criteria_answer_the_same_question() -> None:
    """Least squares gives a fixed-only model's coefficients as REML does; a fit that
    records no criterion (a posterior, an old reference) is not said to differ."""
    laplace = cbpp_fit("lme4", "Laplace")
    assert criteria_note(replace(laplace, criterion="OLS"),
                         replace(laplace, criterion="REML")) is None
    assert criteria_note(replace(laplace, criterion=None), laplace) is None
    assert criteria_note(laplace, replace(laplace, engine="glmmtmb")) is None
    assert loglik_scale(laplace) is None
    # A criterion a newer parity wrote is named as it is, not refused.
    note = criteria_note(replace(laplace, criterion="AGQ(x)"), laplace)
    assert note is not None and note.startswith("lme4 fitted AGQ(x), lme4 Laplace")


def test_a_posterior_against_an_agq_fit_has_no_criteria_note(policy: Policy) -> None:
    bambi = replace(cbpp_fit("bambi", "Laplace"), criterion=None, fit_statistics={})
    rows = compare_pair(bambi, cbpp_fit("lme4", "AGQ(25)"), policy, KINDS.__getitem__)
    assert not [r for r in rows if "criteria" in (r.reason or "") and r.quantity != "loglik"]


def test_the_likelihood_table_says_which_logliks_are_on_another_scale() -> None:
    fits = [cbpp_fit("lme4", "AGQ(25)"), cbpp_fit("glmmtmb", "Laplace")]
    text = render_markdown(model_blocks("m1", fits))
    assert "lme4's AGQ(25) log-likelihood is relative to the saturated model" in text
    same = render_markdown(model_blocks("m1", [cbpp_fit("lme4", "Laplace"),
                                               cbpp_fit("glmmtmb", "Laplace")]))
    assert "saturated" not in same
