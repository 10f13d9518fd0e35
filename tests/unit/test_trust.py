"""The trust rule (parity.compare.trust) on hand-made records, the rows it makes of an
unconverged fit, Monte-Carlo error in the tolerances, and the headline's counts.

These are the records of the fits the hostile pass found trusted: a diverged variational
fit, glmmTMB's false convergence, a sampler at R-hat 1.026 and bulk ESS 87."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from parity.compare.rules import compare_all, compare_pair
from parity.compare.tolerances import Policy, load_policy
from parity.compare.trust import assess, data_scale, vet
from parity.errors import UsageError
from parity.reports.summary import headline, summary_matrix
from parity.reports.terminal import verdict_line
from parity.schema import Comparison, Diagnostics, Fit, FixedEffect, VarianceComponent
from support import misplaced_blame  # type: ignore[import-not-found]

KINDS = {"lme4": "frequentist", "statsmodels": "frequentist", "glmmtmb": "frequentist",
         "bambi": "bayesian", "pymc": "bayesian"}


def kind_of(engine: str) -> str:
    return KINDS[engine]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(project=Path(os.devnull))


def fit(engine: str, fixed: dict[str, tuple[float, float]], sd: float = 2.0,
        diagnostics: Diagnostics | None = None, variant: str | None = None,
        family: str = "gaussian", mcse: float | None = None) -> Fit:
    return Fit(
        model="m", formula="y ~ x + (1 | g)", engine=engine, status="ok", reason=None,
        n_obs=60, n_dropped=0,
        fixed_effects=tuple(FixedEffect(t, e, s, e - 2 * s, e + 2 * s, mcse, mcse)
                            for t, (e, s) in fixed.items()),
        variance_components=(VarianceComponent("g", "(Intercept)", None, "sd", sd, 0.5,
                                               mcse=mcse),
                             VarianceComponent("Residual", None, None, "sd", 1.0, 0.1,
                                               mcse=mcse)),
        diagnostics=diagnostics or Diagnostics(converged=True, singular=False),
        structure={"g": "independent"}, n_groups={"g": 6}, variant=variant, family=family,
    )


def scale(link: str = "identity") -> object:
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = 10 + 2 * x + rng.normal(size=60) if link == "identity" else (x > 0).astype(float)
    return data_scale(("(Intercept)", "x"), np.column_stack([np.ones(60), x]), y, link)


GOOD = {"(Intercept)": (10.0, 0.5), "x": (2.0, 0.2)}
SAMPLED = Diagnostics(converged=True, singular=False, r_hat_max=1.002, ess_bulk_min=900,
                      ess_tail_min=800, divergences=0, chains=4, draws=1000)


def test_a_sound_fit_is_trusted(policy: Policy) -> None:
    assert assess(fit("lme4", GOOD), policy.trust, scale()).state == "ok"  # type: ignore[arg-type]
    assert assess(fit("bambi", GOOD, diagnostics=SAMPLED), policy.trust).state == "ok"


def test_a_diverged_variational_fit_fails_with_its_numbers(policy: Policy) -> None:
    """statsmodels on grouseticks: (Intercept) -1.17e35, cHEIGHT 1.07e37, SEs 0."""
    diverged = fit("statsmodels", {"(Intercept)": (-1.17e35, 0.0), "x": (1.07e37, 0.0)},
                   diagnostics=Diagnostics(False, False, ("RuntimeWarning: overflow "
                                                          "encountered in exp",)))
    trust = assess(diverged, policy.trust, scale("log"))  # type: ignore[arg-type]
    assert trust.state == "failed"
    text = trust.text("statsmodels")
    assert "no SE for (Intercept), x" in text and "1.07e+37" in text and "overflow" in text
    vetted = vet(diverged, policy.trust, scale("log"))  # type: ignore[arg-type]
    assert vetted.status == "failed" and not vetted.fixed_effects and vetted.reason == text
    # A failed fit has no rows at all.
    assert compare_all([fit("lme4", GOOD), vetted], [], policy, kind_of) == []


def test_an_se_beyond_the_data_scale_fails(policy: Policy) -> None:
    """glmmTMB on an all-ones response: (Intercept) 75.5 with SE 2.67e9."""
    ones = fit("glmmtmb", {"(Intercept)": (75.5, 2.67e9), "x": (0.1, 1e3)}, family="binomial")
    trust = assess(ones, policy.trust, scale("logit"))  # type: ignore[arg-type]
    assert trust.state == "failed" and "SE((Intercept)) = 2.67e+09" in trust.reasons[0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_number_fails(policy: Policy, bad: float) -> None:
    assert assess(fit("lme4", {"(Intercept)": (bad, 1.0)}), policy.trust).state == "failed"
    assert assess(fit("lme4", GOOD, sd=bad), policy.trust).state == "failed"


def test_optimiser_warnings_make_a_fit_unconverged(policy: Policy) -> None:
    said = Diagnostics(False, True, ("Model convergence problem; false convergence (8).",
                                     "nlminb: false convergence (8)", "boundary (singular)"))
    trust = assess(fit("glmmtmb", GOOD, diagnostics=said), policy.trust, scale())  # type: ignore[arg-type]
    assert trust.state == "unconverged"
    assert trust.text("glmmtmb").startswith("glmmtmb did not converge (Model convergence "
                                            "problem; false convergence")
    assert not any("singular" in r for r in trust.reasons)


@pytest.mark.parametrize(("change", "said"), [
    (dict(r_hat_max=1.026), "R-hat 1.026 > 1.01"),
    (dict(ess_bulk_min=87.0), "bulk ESS 87 < 400"),
    (dict(ess_tail_min=120.0), "tail ESS 120 < 400"),
    (dict(divergences=40), "40 divergent transitions (1.00% of the draws"),
])
def test_sampler_diagnostics_make_a_fit_unconverged(policy: Policy, change: dict[str, float],
                                                    said: str) -> None:
    diagnostics = replace(SAMPLED, **change)  # type: ignore[arg-type]
    trust = assess(fit("bambi", GOOD, diagnostics=diagnostics), policy.trust)
    assert trust.state == "unconverged" and any(said in r for r in trust.reasons)


def test_a_stray_divergence_is_within_the_stated_share(policy: Policy) -> None:
    one = replace(SAMPLED, divergences=1)
    assert assess(fit("bambi", GOOD, diagnostics=one), policy.trust).state == "ok"


def test_rows_against_an_unconverged_fit_are_not_comparable_reason_first(
        policy: Policy) -> None:
    stuck = vet(fit("bambi", GOOD, diagnostics=replace(SAMPLED, r_hat_max=1.026,
                                                       ess_bulk_min=87.0)), policy.trust)
    assert stuck.status == "unconverged"
    rows = compare_pair(stuck, fit("lme4", GOOD), policy, kind_of)
    assert rows and all(r.verdict == "not_comparable" for r in rows)
    assert all(r.reason and r.reason.startswith("bambi did not converge (R-hat 1.026")
               for r in rows)
    assert all(r.unconverged == ("bambi",) for r in rows)
    assert misplaced_blame(rows, [stuck]) == []
    # Asked for, they are compared, marked, and still blame nothing but convergence.
    shown = compare_pair(stuck, fit("lme4", GOOD), policy, kind_of, compare_unconverged=True)
    assert {r.verdict for r in shown} <= {"agree", "disagree"}
    assert all(r.unconverged == ("bambi",) and "compared as asked" in (r.reason or "")
               for r in shown)
    assert misplaced_blame(shown, [stuck]) == []


def test_monte_carlo_error_widens_a_bayesian_tolerance(policy: Policy) -> None:
    ref = fit("lme4", GOOD)
    base = compare_pair(fit("bambi", {"(Intercept)": (10.0, 0.5), "x": (2.0, 0.2)},
                            diagnostics=SAMPLED), ref, policy, kind_of)
    tol = {r.term: r.tolerance for r in base if r.quantity == "estimate"}
    # A gap 0.06 beyond the 0.25-SD rule on x: within 3 MCSE of 0.03, not within 3 of 0.01.
    gap = 0.25 * 0.2 + 0.06
    noisy = fit("bambi", {"(Intercept)": (10.0, 0.5), "x": (2.0 + gap, 0.2)},
                diagnostics=SAMPLED, mcse=0.03)
    rows = {r.term: r for r in compare_pair(noisy, ref, policy, kind_of)
            if r.quantity == "estimate"}
    assert rows["x"].tolerance == pytest.approx(tol["x"] + 3 * 0.03)
    assert rows["x"].verdict == "agree"
    assert rows["x"].reason and rows["x"].reason.startswith("within Monte-Carlo error")
    precise = replace(noisy, fixed_effects=tuple(replace(f, mcse=0.01)
                                                 for f in noisy.fixed_effects))
    row = next(r for r in compare_pair(precise, ref, policy, kind_of) if r.term == "x"
               and r.quantity == "estimate")
    assert row.verdict == "disagree" and "beyond Monte-Carlo error" in (row.reason or "")


def test_two_posteriors_combine_both_monte_carlo_errors(policy: Policy) -> None:
    a = fit("bambi", GOOD, diagnostics=SAMPLED, mcse=0.03)
    b = fit("pymc", GOOD, diagnostics=SAMPLED, mcse=0.04)
    plain = compare_pair(replace(a, fixed_effects=tuple(replace(f, mcse=None, se_mcse=None)
                                                        for f in a.fixed_effects)),
                         replace(b, fixed_effects=tuple(replace(f, mcse=None, se_mcse=None)
                                                        for f in b.fixed_effects)),
                         policy, kind_of)
    rows = compare_pair(a, b, policy, kind_of)
    for r, p in zip(rows, plain, strict=True):
        if r.quantity == "estimate":
            assert r.tolerance == pytest.approx(p.tolerance + 3 * 0.05)


def test_headline_counts_engines_apart_from_an_engine_against_its_own_refit() -> None:
    def row(engine: str, ref: str, verdict: str, unconverged: tuple[str, ...] = ()
            ) -> Comparison:
        return Comparison("m", engine, ref, "estimate", "x", 1.0, 1.0, 0.1,
                          verdict, None if verdict == "agree" else "why",  # type: ignore[arg-type]
                          unconverged=unconverged)
    rows = ([row("statsmodels", "lme4", "agree")] * 3
            + [row("lme4", "lme4:independent", "disagree")] * 28
            + [row("bambi", "lme4", "not_comparable", ("bambi",))] * 2)
    text = headline(rows)
    assert text.startswith("5 comparison rows between engines over 1 model: 3 agree, "
                           "0 disagree, 0 not comparable; 2 against fits that did not "
                           "converge.")
    assert "28 rows compare an engine with its own refit" in text
    assert "lme4 vs lme4:independent: disagree" not in text
    assert verdict_line(rows).startswith("5 comparison rows between engines")
    header, body = summary_matrix(rows)
    cell = body[0][header.index("bambi vs lme4")]
    assert cell == "0/0 (+2 unconv.)"


def test_trust_thresholds_are_data(tmp_path: Path) -> None:
    mine = tmp_path / "t.toml"
    mine.write_text("[trust]\nr_hat_max = 1.05\n[monte-carlo]\nmcse_mult = 2\n")
    p = load_policy(mine, project=Path(os.devnull))
    assert p.trust.r_hat_max == 1.05 and p.mcse_mult == 2.0
    assert assess(fit("bambi", GOOD, diagnostics=replace(SAMPLED, r_hat_max=1.026)),
                  p.trust).state == "ok"
    mine.write_text("[trust]\nr_hat = 1.05\n")
    with pytest.raises(UsageError, match="unknown part 'r_hat' in \\[trust\\]"):
        load_policy(mine, project=Path(os.devnull))


def test_an_override_leaves_the_self_consistency_rule_alone(policy: Policy) -> None:
    loose = policy.with_override("estimate", 0.5, 1.0)
    assert loose.check("self-consistency", "estimate") == \
        policy.check("self-consistency", "estimate")
    assert loose.rule("frequentist", "frequentist", "estimate").rtol == 0.5
