"""The quantity table: one entry per quantity the schema names, complete, and read by the
comparison, the tolerance policy, `parity diff`, the reports and the API alike."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest

from parity.api import Run
from parity.compare.diff import _values
from parity.compare.quantities import (
    PAIR_CLASSES,
    PARAMETERS,
    QUANTITY_SPECS,
    row_name,
    spec_of,
)
from parity.compare.rules import compare_pair
from parity.compare.tolerances import (
    EXACT,
    PAIR_QUANTITIES,
    PAIRS,
    QUANTITIES,
    Policy,
    load_policy,
)
from parity.reports.agreement import QUANTITY_MARKERS
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Quantity,
    RunResults,
    VarianceComponent,
    values,
)

KINDS = {"lme4": "frequentist", "statsmodels": "frequentist", "bambi": "bayesian",
         "pymc": "bayesian"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(project=Path(tmp_path_factory.mktemp("p")) / "none.toml")


def full_fit(engine: str = "lme4", shift: float = 0.0, **changes: object) -> Fit:
    """A fit with a value of every quantity (a posterior's SDs where `engine` samples)."""
    sd = 0.2 if KINDS[engine] == "bayesian" else None
    fit = Fit(
        model="m", formula="y ~ x + (x | g)", engine=engine, status="ok", reason=None,
        n_obs=40, n_dropped=0,
        fixed_effects=(FixedEffect("(Intercept)", 10.0 + shift, 1.0, 8.0, 12.0),
                       FixedEffect("x", 2.0 + shift, 0.5, 1.0, 3.0)),
        variance_components=(VarianceComponent("g", "(Intercept)", None, "sd", 3.0, sd),
                             VarianceComponent("g", "x", None, "sd", 1.0, sd),
                             VarianceComponent("g", "(Intercept)", "x", "corr", 0.3, sd),
                             VarianceComponent("Residual", None, None, "sd", 2.0, sd)),
        diagnostics=Diagnostics(converged=True, singular=False),
        structure={"g": "correlated"}, n_groups={"g": 8}, criterion="REML",
        fit_statistics={} if KINDS[engine] == "bayesian" else {"loglik": -100.0},
        group_effects=(GroupEffect("g", "a", "(Intercept)", 0.5, 0.3),
                       GroupEffect("g", "b", "(Intercept)", -0.5, 0.3)),
    )
    return replace(fit, **changes)  # type: ignore[arg-type]


def test_the_table_has_an_entry_for_every_quantity_of_the_schema() -> None:
    assert set(QUANTITY_SPECS) == set(get_args(Quantity))
    assert all(name == spec.name for name, spec in QUANTITY_SPECS.items())


@pytest.mark.parametrize("quantity", list(QUANTITY_SPECS))
def test_each_entry_is_complete(quantity: str, policy: Policy) -> None:
    spec = spec_of(quantity)
    assert "missing" in spec.guards  # the loop compares two values only past this check
    assert set(spec.why) == set(PAIR_CLASSES)
    if {"structure", "boundary"} & set(spec.guards):
        assert spec.structure is not None and spec.boundary is not None
    for pair in spec.pairs or PAIRS:
        assert pair in PAIRS
        if spec.exact or spec.rule_of is not None:
            # an interval's ends follow the estimate's rule, a conclusion is exact
            assert quantity not in PAIR_QUANTITIES.get(pair, QUANTITIES)
            kinds = pair.split("-")
            rule = policy.rule(kinds[0], kinds[1], quantity)
            assert rule == (EXACT if spec.exact else policy.rules[(pair, spec.rule_of)])
            continue
        assert quantity in PAIR_QUANTITIES.get(pair, QUANTITIES)
        assert (pair, quantity) in policy.rules


@pytest.mark.parametrize("quantity", list(QUANTITY_SPECS))
def test_the_tolerance_quantities_come_from_the_table(quantity: str) -> None:
    spec = spec_of(quantity)
    pairs = spec.pairs
    ruled = spec.rule_of is None and not spec.exact
    assert (quantity in QUANTITIES) == (pairs is None and ruled)
    for pair in PAIRS:
        assert (quantity in PAIR_QUANTITIES.get(pair, QUANTITIES)) == (
            ruled and (pairs is None or pair in pairs))


def test_loglik_and_df_are_rules_of_frequentist_pairs_only() -> None:
    assert "loglik" not in QUANTITIES and "df" not in QUANTITIES
    assert PAIR_QUANTITIES["frequentist-frequentist"][-2:] == ("loglik", "df")


def test_unknown_quantity_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: estimate, std_error"):
        spec_of("bayes_factor")
    assert row_name("bayes_factor", "x") == "x"  # a newer file's quantity keeps its term


def test_row_names_and_markers() -> None:
    assert row_name("std_error", "x") == "SE(x)"
    assert row_name("sd", "sd(Residual)") == "sd(Residual)"
    markers = [s.marker for s in QUANTITY_SPECS.values() if s.marker is not None]
    assert list(QUANTITY_MARKERS.values()) == markers and len(set(markers)) == len(markers)
    assert {"estimate", "sd", "corr"} <= set(PARAMETERS)
    assert not {"std_error", "group_effect", "loglik"} & set(PARAMETERS)


@pytest.mark.parametrize("engine,reference", [("statsmodels", "lme4"), ("bambi", "lme4"),
                                              ("pymc", "bambi")])
def test_every_value_of_two_fits_gets_one_row(engine: str, reference: str,
                                              policy: Policy) -> None:
    fit, ref = full_fit(engine, shift=1e-9), full_fit(reference)
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__)
    both = {(v.quantity, v.term) for v in values(fit)} & {(v.quantity, v.term)
                                                          for v in values(ref)}
    named = [(r.quantity, r.term) for r in rows]
    assert len(named) == len(set(named))
    assert both <= set(named)
    for r in rows:
        assert r.verdict in ("agree", "not_comparable") and (r.verdict == "agree" or r.reason)
    # Rows come out part by part: fixed effects, components, group effects, loglik.
    parts = [spec_of(r.quantity).part for r in rows]
    assert parts == sorted(parts, key=["fixed", "component", "group_effect", "fit"].index)


@pytest.mark.parametrize("engine,reference,wording", [
    ("statsmodels", "lme4", "SEs differ by a factor 3.0000"),
    ("bambi", "lme4", "posterior SD is 3.00x lme4's SE"),
    ("pymc", "bambi", "posterior SDs differ by a factor 3.00"),
])
def test_each_pair_class_words_its_own_reason(engine: str, reference: str, wording: str,
                                              policy: Policy) -> None:
    wide = tuple(replace(fe, std_error=3 * fe.std_error) for fe in full_fit().fixed_effects)
    fit, ref = full_fit(engine, fixed_effects=wide), full_fit(reference)
    row = next(r for r in compare_pair(fit, ref, policy, KINDS.__getitem__)
               if (r.quantity, r.term) == ("std_error", "x"))
    assert row.verdict == "disagree"
    assert (row.reason or "").startswith(wording)


def test_a_missing_group_effect_is_said_before_a_differing_structure(policy: Policy) -> None:
    ref = full_fit("lme4", group_effects=())
    fit = full_fit("statsmodels", structure={"g": "independent"})
    rows = compare_pair(fit, ref, policy, KINDS.__getitem__)
    effect = next(r for r in rows if r.quantity == "group_effect")
    assert effect.reason == "lme4 reports no group effects"
    corr = next(r for r in rows if r.quantity == "corr")  # a component: structure first
    assert "covariance" not in (corr.reason or "") and "models no correlation" in (
        corr.reason or "")


def test_an_se_the_reference_lacks_has_no_row_of_its_own(policy: Policy) -> None:
    ref = full_fit("lme4", fixed_effects=full_fit().fixed_effects[:1])
    rows = compare_pair(full_fit("statsmodels"), ref, policy, KINDS.__getitem__)
    assert [r.quantity for r in rows if r.term == "x"] == ["estimate"]
    assert next(r for r in rows if r.term == "x").reason == \
        "x is a coefficient of statsmodels' model only"


def test_the_loglik_row_is_named_by_the_reference_criterion(policy: Policy) -> None:
    rows = compare_pair(full_fit("statsmodels", criterion="ML"), full_fit("lme4"), policy,
                        KINDS.__getitem__)
    (loglik,) = [r for r in rows if r.quantity == "loglik"]
    assert loglik.term == "logLik (REML)" and loglik.verdict == "not_comparable"
    assert "likelihoods of different criteria" in (loglik.reason or "")


def test_every_consumer_reads_the_same_values() -> None:
    fit = full_fit("bambi")
    flat = list(values(fit))
    assert [(k[2], k[3]) for k in _values(fit)] == [(v.quantity, v.term) for v in flat]
    table = Run(RunResults((fit,))).estimates
    assert list(zip(table["quantity"], table["term"], strict=True)) == [
        (v.quantity, v.term) for v in flat if v.quantity in PARAMETERS]


@pytest.mark.parametrize("prior,said", [
    (0.3, "bambi's x is prior-sensitive (0.3 > 0.05; prior-data conflict): the gap to "
          "lme4's comes from the prior"),
    (0.01, "bambi's x is not prior-sensitive (0.01 ≤ 0.05; likelihood sensitivity 0.2), "
           "so the gap to lme4's is not the prior's"),
])
def test_a_measured_sensitivity_is_the_reason_of_a_bayesian_frequentist_row(
        prior: float, said: str, policy: Policy) -> None:
    """The posterior side's measured sensitivity names the cause; two posteriors share
    their priors, so a row between them never blames the prior."""
    moved = tuple(replace(fe, estimate=fe.estimate + 5, prior_sensitivity=prior,
                          likelihood_sensitivity=0.2) for fe in full_fit().fixed_effects)
    bambi = full_fit("bambi", fixed_effects=moved)
    row = next(r for r in compare_pair(bambi, full_fit("lme4"), policy, KINDS.__getitem__)
               if (r.quantity, r.term) == ("estimate", "x"))
    assert row.verdict == "disagree" and said in (row.reason or "")
    both = next(r for r in compare_pair(bambi, full_fit("pymc"), policy, KINDS.__getitem__)
                if (r.quantity, r.term) == ("estimate", "x"))
    assert both.verdict == "disagree" and "prior-sensitive" not in (both.reason or "")
