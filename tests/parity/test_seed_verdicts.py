"""Verdicts on the reference case: what the seed models must say, and why."""

from __future__ import annotations

import pytest

from conftest import SEED_NAMES, need
from parity.pipeline.workers import Outcome
from parity.schema import Comparison, Fit

SAME_MODEL = ["additive", "no_intercept", "interaction", "subject_intercept"]
SINGULAR = ["subject_slope", "crossed_slopes"]


def rows(comparisons: list[Comparison], **match: str) -> list[Comparison]:
    return [c for c in comparisons if all(getattr(c, k) == v for k, v in match.items())]


def test_every_row_obeys_the_verdict_rule(seed_comparisons: list[Comparison]) -> None:
    assert seed_comparisons
    for c in seed_comparisons:
        if c.verdict == "not_comparable":
            assert c.reason, c
            continue
        assert c.value is not None and c.reference_value is not None and c.tolerance is not None
        assert c.verdict == ("agree" if abs(c.value - c.reference_value) <= c.tolerance
                             else "disagree"), c
        if c.verdict == "disagree":
            assert c.reason, c


def _by_method(c: Comparison) -> bool:
    """An interval's end set apart because the two frequentist intervals are found by
    different methods (statsmodels' Wald-z, lme4's Wald-t on Satterthwaite df)."""
    return (c.quantity in ("lower", "upper") and c.verdict == "not_comparable"
            and "are different methods" in (c.reason or ""))


@pytest.mark.parametrize("name", SEED_NAMES)
def test_statsmodels_fixed_effect_tolerance_is_tight(
    name: str, seed_comparisons: list[Comparison]
) -> None:
    need("lme4")
    est = rows(seed_comparisons, model=name, engine="statsmodels", reference="lme4",
               quantity="estimate")
    assert est
    for c in est:
        if c.reference_value is not None and c.tolerance is not None:
            assert c.tolerance <= 1e-3 * abs(c.reference_value), c


@pytest.mark.parametrize("name", SAME_MODEL)
def test_statsmodels_and_lme4_agree_where_the_model_is_the_same(
    name: str, seed_comparisons: list[Comparison]
) -> None:
    need("lme4")
    pair = rows(seed_comparisons, model=name, engine="statsmodels", reference="lme4")
    assert {c.quantity for c in pair} >= {"estimate", "std_error", "sd", "conclusion"}
    bad = [c for c in pair if c.verdict != "agree" and not _by_method(c)]
    assert not bad, bad


@pytest.mark.bambi
@pytest.mark.parametrize("name", SEED_NAMES)
def test_pairs_have_fixed_and_variance_rows(name: str,
                                            seed_comparisons: list[Comparison]) -> None:
    need("lme4")
    need("bambi")
    for engine, reference in [("statsmodels", "lme4"), ("bambi", "lme4"),
                              ("bambi", "statsmodels")]:
        pair = rows(seed_comparisons, model=name, engine=engine, reference=reference)
        assert any(c.group is None for c in pair), (engine, reference)
        assert any(c.group is not None for c in pair), (engine, reference)


@pytest.mark.bambi
@pytest.mark.parametrize("name", SEED_NAMES)
def test_bambi_fixed_effects_agree_with_lme4(name: str, seed_fits: dict[tuple[str, str], Fit],
                                             seed_comparisons: list[Comparison]) -> None:
    """Where Bambi converged its posterior means agree with lme4; where it did not (a
    stack whose sampler diverges on the singular slope model), every row says so."""
    need("lme4")
    need("bambi")
    est = rows(seed_comparisons, model=name, engine="bambi", reference="lme4",
               quantity="estimate")
    fit = seed_fits[(name, "bambi")]
    assert est
    if fit.status == "ok":
        assert all(c.verdict == "agree" for c in est), est
    else:
        assert fit.status == "unconverged" and name in SINGULAR, fit.reason
        assert all(c.verdict == "not_comparable" and c.reason == fit.reason for c in est)


@pytest.mark.bambi
def test_bambi_converges_on_the_regular_seed_models(
        seed_fits: dict[tuple[str, str], Fit]) -> None:
    """At the seed's sampler settings every regular model's posterior passes the trust
    rule (R-hat, bulk and tail ESS, divergences), so its verdicts are verdicts."""
    need("bambi")
    stuck = {m: seed_fits[(m, "bambi")].reason for m in SAME_MODEL
             if seed_fits[(m, "bambi")].status != "ok"}
    assert not stuck


@pytest.mark.parametrize("name", SINGULAR)
def test_singular_fits_say_so(name: str, seed_comparisons: list[Comparison]) -> None:
    need("lme4")
    subject = rows(seed_comparisons, model=name, engine="statsmodels", group="subject")
    lme4_rows = [c for c in subject if c.reference == "lme4"]
    assert lme4_rows
    for c in lme4_rows:
        assert c.verdict == "not_comparable"
        if c.unconverged:  # statsmodels' optimiser may stop short here, by the machine's BLAS
            assert "did not converge" in (c.reason or "")
            continue
        assert "singular" in (c.reason or "") or "covariance differs" in (c.reason or "") \
            or "no correlation" in (c.reason or "")
    if all(c.unconverged for c in lme4_rows):
        return  # the singular optimum is named only beside a fit that reached one
    assert any("lme4" in (c.reason or "") and "singular" in (c.reason or "")
               for c in rows(seed_comparisons, model=name, group="subject"))


@pytest.mark.bambi
def test_bambi_has_no_correlation_parameter(seed_fits: dict[tuple[str, str], Fit],
                                            seed_comparisons: list[Comparison]) -> None:
    need("lme4")
    need("bambi")
    said = []
    for name in SINGULAR:
        corr = rows(seed_comparisons, model=name, engine="bambi", reference="lme4",
                    quantity="corr")
        assert corr and all(c.verdict == "not_comparable" for c in corr)
        if seed_fits[(name, "bambi")].status == "ok":
            said += [c for c in corr if "bambi models no correlation" in (c.reason or "")]
        else:  # an unconverged fit's rows say that, and nothing else
            assert all(c.reason == seed_fits[(name, "bambi")].reason for c in corr)
    assert said


@pytest.mark.r
def test_random_slope_optimum_difference_is_reported(seed_outcome: Outcome,
                                                     seed_comparisons: list[Comparison]) -> None:
    need("R")
    fit = next(f for f in seed_outcome.fits
               if (f.model, f.engine) == ("subject_slope", "statsmodels"))
    if fit.status == "unconverged":
        # On some machines statsmodels' optimiser stops short on this near-singular model
        # (|grad| about 1.2): then there is no optimum to judge, and no row a verdict.
        assert not [c for c in seed_outcome.optimum_checks if c.model == "subject_slope"]
        mine = rows(seed_comparisons, model="subject_slope", engine="statsmodels")
        assert mine and all(c.verdict == "not_comparable" and c.unconverged for c in mine)
        return
    (check,) = [c for c in seed_outcome.optimum_checks if c.model == "subject_slope"]
    assert check.better == "lme4"
    assert check.difference < -0.01  # statsmodels' optimum is lower by a visible margin
    disagree = rows(seed_comparisons, model="subject_slope", engine="statsmodels",
                    reference="lme4", quantity="estimate", verdict="disagree")
    assert disagree
    assert all(f"{check.engine_value:.3f}" in (c.reason or "") for c in disagree)


@pytest.mark.r
def test_random_intercept_optima_coincide(seed_outcome: Outcome) -> None:
    need("R")
    (check,) = [c for c in seed_outcome.optimum_checks if c.model == "subject_intercept"]
    assert abs(check.difference) < 1e-5


def test_matched_structure_references(seed_outcome: Outcome,
                                      seed_comparisons: list[Comparison]) -> None:
    need("lme4")
    refs = {f.model: f for f in seed_outcome.reference_fits}
    assert set(refs) == set(SINGULAR)
    for f in refs.values():
        assert f.status == "ok" and f.variant == "independent"
        assert set(f.structure.values()) == {"independent"}
        assert not any(v.kind == "corr" for v in f.variance_components)
        assert {v.term for v in f.variance_components if v.group == "subject"} == {
            "(Intercept)", "attitudepol"}
    matched = rows(seed_comparisons, model="crossed_slopes", engine="statsmodels",
                   reference="lme4:independent", quantity="estimate")
    assert matched and all(c.verdict == "agree" for c in matched)
