"""Verdict rules on hand-made results: the rule itself, boundaries, structure, missing terms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from parity.compare.rules import boundary, compare_all, compare_pair
from parity.compare.tolerances import Policy, load_policy
from parity.schema import (
    Comparison,
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    OptimumCheck,
    VarianceComponent,
)

KINDS = {"lme4": "frequentist", "statsmodels": "frequentist", "bambi": "bayesian"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(project=Path(tmp_path_factory.mktemp("p")) / "none.toml")


def make_fit(engine: str, fixed: dict[str, tuple[float, float]],
             components: list[tuple[str, str | None, str | None, str, float, float | None]],
             structure: dict[str, str] | None = None, singular: bool = False,
             model: str = "m", variant: str | None = None) -> Fit:
    return Fit(
        model=model, formula="y ~ x + (x | g)", engine=engine, status="ok", reason=None,
        n_obs=50, n_dropped=0,
        fixed_effects=tuple(FixedEffect(t, e, s, e - 2 * s, e + 2 * s)
                            for t, (e, s) in fixed.items()),
        variance_components=tuple(VarianceComponent(g, t, t2, k, e, sd)  # type: ignore[arg-type]
                                  for g, t, t2, k, e, sd in components),
        diagnostics=Diagnostics(converged=True, singular=singular),
        structure=structure or {}, n_groups={"g": 6} if structure else {}, variant=variant,
    )


def verdict_rule_holds(rows: list[Comparison]) -> None:
    for r in rows:
        if r.verdict == "not_comparable":
            assert r.reason
            continue
        assert r.value is not None and r.reference_value is not None
        assert r.tolerance is not None
        within = abs(r.value - r.reference_value) <= r.tolerance
        assert r.verdict == ("agree" if within else "disagree")
        if r.verdict != "agree":
            assert r.reason


def test_frequentist_pair_agrees_and_disagrees(policy: Policy) -> None:
    ref = make_fit("lme4", {"(Intercept)": (10.0, 1.0), "x": (2.0, 0.5)},
                   [("Residual", None, None, "sd", 3.0, None)])
    close = make_fit("statsmodels", {"(Intercept)": (10.00001, 1.0), "x": (2.1, 0.5)},
                     [("Residual", None, None, "sd", 3.0001, None)])
    rows = compare_pair(close, ref, policy, KINDS.__getitem__)
    verdict_rule_holds(rows)
    by = {(r.quantity, r.term): r for r in rows}
    assert by[("estimate", "(Intercept)")].verdict == "agree"
    assert by[("estimate", "x")].verdict == "disagree"
    assert "relative" in (by[("estimate", "x")].reason or "")
    assert by[("sd", "sd(Residual)")].verdict == "agree"
    # The tolerance is the absolute one that applied: rtol * |ref| + sd_mult * SE.
    rule = policy.rule("frequentist", "frequentist", "estimate")
    assert by[("estimate", "x")].tolerance == pytest.approx(rule.rtol * 2.0 + rule.sd_mult * 0.5)


def test_bayesian_estimate_tolerance_scales_with_posterior_sd(policy: Policy) -> None:
    ref = make_fit("lme4", {"x": (2.0, 0.5)}, [])
    near = make_fit("bambi", {"x": (2.2, 1.0)}, [])   # 0.2 posterior SD away
    far = make_fit("bambi", {"x": (2.6, 1.0)}, [])    # 0.6 posterior SD away
    (a, b) = (next(r for r in compare_pair(f, ref, policy, KINDS.__getitem__)
                   if r.quantity == "estimate") for f in (near, far))
    assert a.verdict == "agree"
    assert b.verdict == "disagree" and "0.60 posterior SD" in (b.reason or "")
    verdict_rule_holds([a, b])


def test_singular_reference_makes_components_not_comparable(policy: Policy) -> None:
    comps = [("g", "(Intercept)", None, "sd", 5.0, None), ("g", "x", None, "sd", 1.3, None),
             ("g", "(Intercept)", "x", "corr", 1.0, None),
             ("Residual", None, None, "sd", 3.0, None)]
    ref = make_fit("lme4", {"x": (2.0, 0.5)}, comps, {"g": "correlated"}, singular=True)
    other = make_fit("statsmodels", {"x": (2.0, 0.5)},
                     [(g, t, t2, k, e * 1.5, s) for g, t, t2, k, e, s in comps[:2]]
                     + [("g", "(Intercept)", "x", "corr", 0.7, None), comps[3]],
                     {"g": "correlated"})
    rows = compare_pair(other, ref, policy, KINDS.__getitem__)
    verdict_rule_holds(rows)
    for r in rows:
        if r.group == "g":
            assert r.verdict == "not_comparable"
            assert "lme4 fit is singular" in (r.reason or "")
            assert "corr((Intercept), x) = 1.000" in (r.reason or "")
    assert next(r for r in rows if r.term == "sd(Residual)").verdict == "agree"


def test_zero_sd_marks_only_its_own_component(policy: Policy) -> None:
    ref = make_fit("lme4", {}, [("g", "(Intercept)", None, "sd", 5.0, None),
                                ("g", "x", None, "sd", 0.0, None),
                                ("Residual", None, None, "sd", 3.0, None)],
                   {"g": "independent"}, singular=True)
    assert boundary(ref, "g", "x", None) == "x SD = 0"
    assert boundary(ref, "g", "(Intercept)", None) is None
    assert boundary(ref, "Residual", None, None) is None


def test_singular_without_visible_cause_marks_everything() -> None:
    ref = make_fit("lme4", {}, [("g", "(Intercept)", None, "sd", 5.0, None),
                                ("Residual", None, None, "sd", 3.0, None)],
                   {"g": "independent"}, singular=True)
    assert boundary(ref, "g", "(Intercept)", None) == "covariance matrix singular"


def test_structure_mismatch(policy: Policy) -> None:
    ref = make_fit("lme4", {"x": (2.0, 0.5)},
                   [("g", "(Intercept)", None, "sd", 5.0, None), ("g", "x", None, "sd", 2.0, None),
                    ("g", "(Intercept)", "x", "corr", 0.3, None),
                    ("Residual", None, None, "sd", 3.0, None)], {"g": "correlated"})
    bayes = make_fit("bambi", {"x": (2.0, 0.6)},
                     [("g", "(Intercept)", None, "sd", 5.5, 2.0), ("g", "x", None, "sd", 2.2, 1.0),
                      ("Residual", None, None, "sd", 3.1, 0.3)], {"g": "independent"})
    rows = compare_pair(bayes, ref, policy, KINDS.__getitem__)
    verdict_rule_holds(rows)
    corr = next(r for r in rows if r.quantity == "corr")
    assert corr.verdict == "not_comparable"
    assert corr.value is None and corr.reference_value == 0.3
    assert "bambi models no correlation" in (corr.reason or "")
    sds = [r for r in rows if r.quantity == "sd" and r.group == "g"]
    assert sds and all(r.verdict == "not_comparable" for r in sds)
    assert next(r for r in rows if r.term == "sd(Residual)").verdict == "agree"


def test_missing_term_is_not_comparable(policy: Policy) -> None:
    ref = make_fit("lme4", {"x": (2.0, 0.5), "z": (1.0, 0.1)}, [])
    fit = make_fit("statsmodels", {"x": (2.0, 0.5)}, [])
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__)
    z = [r for r in rows if r.term == "z"]
    assert len(z) == 1 and z[0].verdict == "not_comparable"
    assert "lme4's model only" in (z[0].reason or "")


def test_optimum_check_explains_a_frequentist_disagreement(policy: Policy) -> None:
    ref = make_fit("lme4", {"x": (2.0, 0.5)}, [], {"g": "correlated"})
    fit = make_fit("statsmodels", {"x": (2.3, 0.5)}, [], {"g": "correlated"})
    check = OptimumCheck("m", "statsmodels", "lme4", "lme4 REML log-likelihood", -393.426,
                         -393.360, -0.066, "lme4")
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__, [check])
    est = next(r for r in rows if r.quantity == "estimate")
    assert est.verdict == "disagree"
    assert "statsmodels stopped at a lower REML optimum" in (est.reason or "")
    assert "-393.426" in (est.reason or "") and "-393.360" in (est.reason or "")


def test_compare_all_pairs_and_matched_reference(policy: Policy) -> None:
    comps = [("g", "(Intercept)", None, "sd", 5.0, None), ("Residual", None, None, "sd", 3.0, None)]
    fits = [make_fit("lme4", {"x": (2.0, 0.5)}, comps, {"g": "correlated"}),
            make_fit("statsmodels", {"x": (2.0, 0.5)}, comps, {"g": "correlated"}),
            make_fit("bambi", {"x": (2.0, 0.5)}, [(*c[:5], 1.0) for c in comps],
                     {"g": "independent"})]
    variant = make_fit("lme4", {"x": (2.0, 0.5)}, comps, {"g": "independent"},
                       variant="independent")
    rows = compare_all(fits, [variant], policy, KINDS.__getitem__)
    pairs = {(r.engine, r.reference) for r in rows}
    assert pairs == {("statsmodels", "lme4"), ("bambi", "lme4"), ("bambi", "statsmodels"),
                     ("bambi", "lme4:independent")}
    verdict_rule_holds(rows)
    matched = [r for r in rows if r.reference == "lme4:independent" and r.quantity == "sd"]
    assert matched and all(r.verdict != "not_comparable" for r in matched)


def test_failed_fit_gives_no_rows(policy: Policy) -> None:
    ok = make_fit("lme4", {"x": (2.0, 0.5)}, [])
    failed = Fit(model="m", formula="y ~ x", engine="statsmodels", status="failed",
                 reason="boom", n_obs=0, n_dropped=0)
    assert compare_all([ok, failed], [], policy, KINDS.__getitem__) == []


def test_inconsistent_estimates_are_named_before_a_worse_optimum(policy: Policy) -> None:
    """Fixed effects that are not the GLS estimates at the engine's own components are a
    fitting or data-handling error; the optimum's value must not be blamed for them."""
    ref = make_fit("lme4", {"x": (2.0, 0.5)}, [], {"g": "correlated"})
    fit = make_fit("statsmodels", {"x": (2.3, 0.5)}, [], {"g": "correlated"})
    check = OptimumCheck("m", "statsmodels", "lme4", "lme4 REML log-likelihood", -393.426,
                         -393.360, -0.066, "lme4", {"x": 2.01})
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__, [check])
    est = next(r for r in rows if r.quantity == "estimate")
    assert est.verdict == "disagree"
    assert "inconsistent with its own variance components" in (est.reason or "")
    assert "lower REML optimum" not in (est.reason or "")
    # Consistent to within the self-consistency tolerance: the optimum explains it.
    consistent = replace(check, fixed_at_solution={"x": 2.3 + 1e-6})
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__, [consistent])
    est = next(r for r in rows if r.quantity == "estimate")
    assert "lower REML optimum" in (est.reason or "")


def with_effects(fit: Fit, effects: dict[str, tuple[float, float]],
                 loglik: float | None = None, criterion: str | None = "REML") -> Fit:
    """`fit` with group effects of factor g (level -> (estimate, SD)) and a loglik."""
    stats = {} if loglik is None else {"loglik": loglik}
    return replace(fit, criterion=criterion, fit_statistics=stats,
                   group_effects=tuple(GroupEffect("g", lv, "(Intercept)", e, s)
                                       for lv, (e, s) in effects.items()))


def test_group_effects_follow_the_verdict_rule(policy: Policy) -> None:
    sds = [("g", "(Intercept)", None, "sd", 2.0, None), ("Residual", None, None, "sd", 1.0, None)]
    lme4 = with_effects(make_fit("lme4", {"x": (1.0, 0.1)}, sds, {"g": "independent"}),
                        {"a": (1.0, 0.5), "b": (-1.0, 0.5)}, loglik=-100.0)
    sm = with_effects(make_fit("statsmodels", {"x": (1.0, 0.1)}, sds, {"g": "independent"}),
                      {"a": (1.0001, 0.5), "b": (-0.9, 0.5)}, loglik=-100.0004)
    rows = compare_pair(sm, lme4, policy, KINDS.__getitem__)
    verdict_rule_holds(rows)
    effects = {r.level: r for r in rows if r.quantity == "group_effect"}
    assert effects["a"].verdict == "agree" and effects["b"].verdict == "disagree"
    assert effects["a"].term == "ranef(g a: (Intercept))" and effects["a"].group == "g"
    rule = policy.rule("frequentist", "frequentist", "group_effect")
    assert effects["a"].tolerance == pytest.approx(rule.rtol * 1.0 + rule.sd_mult * 0.5)
    assert "conditional SD" in (effects["b"].reason or "")
    (loglik,) = [r for r in rows if r.quantity == "loglik"]
    assert loglik.verdict == "agree" and loglik.term == "logLik (REML)"


def test_group_effects_and_logliks_say_why_they_cannot_be_compared(policy: Policy) -> None:
    sds = [("g", "(Intercept)", None, "sd", 2.0, None), ("Residual", None, None, "sd", 1.0, None)]
    lme4 = with_effects(make_fit("lme4", {"x": (1.0, 0.1)}, sds, {"g": "correlated"}),
                        {"a": (1.0, 0.5)}, loglik=-100.0)
    bambi = with_effects(make_fit("bambi", {"x": (1.0, 0.1)}, sds, {"g": "independent"}),
                         {"a": (1.0, 0.5)}, criterion=None)
    ml = with_effects(make_fit("statsmodels", {"x": (1.0, 0.1)}, sds, {"g": "correlated"}),
                      {}, loglik=-99.0, criterion="ML")
    ml = replace(ml, diagnostics=replace(ml.diagnostics, warnings=(
        "no group effects: statsmodels cannot compute the conditional modes (singular)",)))
    bayes = compare_pair(bambi, lme4, policy, KINDS.__getitem__)
    (effect,) = [r for r in bayes if r.quantity == "group_effect"]
    assert effect.verdict == "not_comparable" and "covariance differs" in (effect.reason or "")
    (loglik,) = [r for r in bayes if r.quantity == "loglik"]
    assert loglik.verdict == "not_comparable" and "posterior" in (loglik.reason or "")
    freq = compare_pair(ml, lme4, policy, KINDS.__getitem__)
    (effect,) = [r for r in freq if r.quantity == "group_effect"]
    assert effect.verdict == "not_comparable"
    assert "cannot compute the conditional modes" in (effect.reason or "")
    (loglik,) = [r for r in freq if r.quantity == "loglik"]
    assert loglik.verdict == "not_comparable" and "different criteria" in (loglik.reason or "")


def test_group_effects_on_a_boundary_are_not_comparable(policy: Policy) -> None:
    sds = [("g", "(Intercept)", None, "sd", 1e-9, None), ("Residual", None, None, "sd", 1.0, None)]
    lme4 = with_effects(make_fit("lme4", {"x": (1.0, 0.1)}, sds, {"g": "independent"},
                                 singular=True), {"a": (0.0, 0.0)})
    bambi = with_effects(make_fit("bambi", {"x": (1.0, 0.1)},
                                  [("g", "(Intercept)", None, "sd", 0.5, 0.3),
                                   ("Residual", None, None, "sd", 1.0, 0.1)],
                                  {"g": "independent"}), {"a": (0.3, 0.4)}, criterion=None)
    (effect,) = [r for r in compare_pair(bambi, lme4, policy, KINDS.__getitem__)
                 if r.quantity == "group_effect"]
    assert effect.verdict == "not_comparable" and "boundary" in (effect.reason or "")


def test_two_solutions_judged_by_lme4_explain_each_other(policy: Policy) -> None:
    """statsmodels against glmmtmb: neither was judged against the other, but both by
    lme4's criterion, so the row names the worse optimum with both values."""
    kinds = {**KINDS, "glmmtmb": "frequentist"}
    sds = [("g", "(Intercept)", None, "sd", 2.0, None), ("Residual", None, None, "sd", 1.0, None)]
    sm = make_fit("statsmodels", {"x": (1.1, 0.1)}, sds, {"g": "correlated"})
    tmb = make_fit("glmmtmb", {"x": (1.0, 0.1)}, sds, {"g": "correlated"})
    checks = [OptimumCheck("m", "statsmodels", "lme4", "lme4 REML log-likelihood", -393.426,
                           -393.360, -0.066, "lme4"),
              OptimumCheck("m", "glmmtmb", "lme4", "lme4 REML log-likelihood", -393.372,
                           -393.360, -0.012, "lme4")]
    rows = compare_pair(sm, tmb, policy, kinds.__getitem__, checks)
    (est,) = [r for r in rows if r.quantity == "estimate"]
    assert est.verdict == "disagree"
    assert (est.reason or "").startswith("statsmodels stopped at a lower REML optimum")
    assert "-393.426 at statsmodels' solution, -393.372 at glmmtmb's" in (est.reason or "")
