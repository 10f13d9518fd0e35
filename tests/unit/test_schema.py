"""results.json: the field names analysts rely on, the round trip, the atomic write."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from parity.schema import (
    SCHEMA_VERSION,
    Comparison,
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    RunResults,
    VarianceComponent,
    fit_from_dict,
    fit_to_dict,
    results_document,
    values,
    write_json_atomic,
)


def sample_fit() -> Fit:
    return Fit(
        model="m", formula="y ~ x", engine="lme4", status="ok", reason=None, n_obs=10,
        n_dropped=1,
        fixed_effects=(FixedEffect("(Intercept)", 1.0, 0.5, 0.0, 2.0),),
        variance_components=(VarianceComponent("g", "(Intercept)", None, "sd", 2.0),
                             VarianceComponent("Residual", None, None, "sd", float("nan"))),
        diagnostics=Diagnostics(converged=True, singular=False, warnings=("w",)),
        provenance=Provenance("1.1-31", "R 4.2.2", {"reml": True}, 0.1),
    )


def test_contract_fields() -> None:
    doc = results_document([sample_fit()])
    assert doc["schema_version"] == SCHEMA_VERSION == 4
    assert doc["comparisons"] == []
    fit = doc["fits"][0]
    for key in ("model", "formula", "engine", "status", "reason", "n_obs", "n_dropped",
                "fixed_effects", "variance_components", "diagnostics", "provenance",
                "criterion", "group_effects", "fixed_effects_cov", "fit_statistics"):
        assert key in fit
    assert set(fit["fixed_effects"][0]) >= {"term", "estimate", "std_error", "lower", "upper"}
    assert set(fit["variance_components"][0]) >= {"group", "term", "term2", "kind", "estimate"}
    assert set(fit["diagnostics"]) >= {"converged", "singular", "warnings", "r_hat_max",
                                       "ess_bulk_min", "divergences"}
    assert set(fit["provenance"]) >= {"engine_version", "r_version", "settings", "seconds"}
    assert fit["variance_components"][1]["estimate"] is None  # NaN is not JSON


def test_round_trip() -> None:
    fit = sample_fit()
    back = fit_from_dict(json.loads(json.dumps(fit_to_dict(fit))))
    assert back.fixed_effects == fit.fixed_effects
    assert back.diagnostics == fit.diagnostics
    assert back.component("g", "(Intercept)") == fit.variance_components[0]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def fit_with_version_2_fields() -> Fit:
    return replace(
        sample_fit(),
        fixed_effects=(FixedEffect("(Intercept)", 1.0, 0.5, 0.0, 2.0),
                       FixedEffect("x", 2.0, 0.25, 1.5, 2.5)),
        criterion="ML",
        fit_statistics={"loglik": -10.0, "aic": 28.0, "bic": 30.0, "deviance": 20.0},
        group_effects=(GroupEffect("g", "a", "(Intercept)", 0.5, 0.1),
                       GroupEffect("g", "b", "(Intercept)", -0.5, 0.1)),
        fixed_effects_cov=((0.25, -0.05), (-0.05, 0.0625)),
    )


def test_version_2_fields_round_trip() -> None:
    fit = fit_with_version_2_fields()
    row = Comparison("m", "statsmodels", "lme4", "group_effect", "ranef(g a: (Intercept))",
                     0.5, 0.5, 0.01, "agree", None, "g", "a")
    doc = json.loads(json.dumps(RunResults((fit,), (row,)).to_dict()))
    assert doc["fits"][0]["group_effects"][0] == {
        "group": "g", "level": "a", "term": "(Intercept)", "estimate": 0.5, "std_error": 0.1,
        "mcse": None}
    back = RunResults.from_dict(doc)
    for name in ("criterion", "fit_statistics", "group_effects", "fixed_effects_cov",
                 "fixed_effects"):
        assert getattr(back.fits[0], name) == getattr(fit, name)
    assert back.comparisons[0].level == "a"


def test_version_1_results_still_read() -> None:
    doc = results_document([sample_fit()])
    doc["schema_version"] = 1
    for key in ("criterion", "group_effects", "fixed_effects_cov"):
        del doc["fits"][0][key]
    back = RunResults.from_dict(doc).fits[0]
    assert back.group_effects == () and back.fixed_effects_cov == () and back.criterion is None


def test_contrast_uses_the_covariance() -> None:
    fit = fit_with_version_2_fields()
    est, se = fit.contrast({"(Intercept)": 1.0, "x": -1.0})
    assert est == pytest.approx(-1.0)
    assert se == pytest.approx((0.25 + 0.0625 + 2 * 0.05) ** 0.5)
    with pytest.raises(KeyError):
        fit.contrast({"z": 1.0})
    with pytest.raises(ValueError, match="no covariance"):
        sample_fit().contrast({"(Intercept)": 1.0})


def test_values_flatten_every_number_once() -> None:
    fit = fit_with_version_2_fields()
    got = list(values(fit))
    # per fixed effect: estimate, SE, the interval's two ends and the conclusion (no df:
    # these fixed effects have no t-test)
    assert len(got) == (5 * len(fit.fixed_effects) + len(fit.variance_components)
                        + len(fit.group_effects) + 1)
    assert len({v.key for v in got}) == len(got)
    by = {(v.quantity, v.term): v for v in got}
    est, se = by[("estimate", "x")], by[("std_error", "x")]
    assert (est.estimate, est.uncertainty, est.lower, est.upper) == (2.0, 0.25, 1.5, 2.5)
    assert (se.estimate, se.uncertainty) == (0.25, None)  # an SE has no SE of its own
    assert by[("sd", "sd(g: (Intercept))")].terms == ("(Intercept)",)
    assert by[("sd", "sd(Residual)")].terms == () and by[("sd", "sd(Residual)")].group == \
        "Residual"
    effect = by[("group_effect", "ranef(g a: (Intercept))")]
    assert (effect.group, effect.level, effect.terms) == ("g", "a", ("(Intercept)",))
    assert by[("loglik", "logLik (ML)")].estimate == -10.0
    assert (by[("lower", "x")].estimate, by[("upper", "x")].estimate) == (1.5, 2.5)
    assert by[("conclusion", "x")].estimate == 1.0  # [1.5, 2.5] excludes 0, above it
    assert by[("conclusion", "(Intercept)")].estimate == 0.5  # [0, 2] holds 0


def test_a_t_test_gives_its_df_and_the_fields_round_trip() -> None:
    fe = FixedEffect("x", -2.0, 0.5, -3.1, -0.9, statistic=-4.0, statistic_kind="t",
                     df=4.2, df_method="Satterthwaite", p_value=0.015,
                     interval_method="Wald-t")
    fit = replace(sample_fit(), fixed_effects=(fe,), interval=0.95)
    by = {v.quantity: v for v in values(fit)}
    assert by["df"].estimate == 4.2 and by["conclusion"].estimate == -1.0
    back = fit_from_dict(json.loads(json.dumps(fit_to_dict(fit))))
    assert back.fixed_effects == (fe,) and back.interval == 0.95


def test_values_key_ignores_the_criterion_in_the_loglik_label() -> None:
    ml = fit_with_version_2_fields()
    reml = replace(ml, criterion="REML")
    (a,), (b,) = ([v for v in values(f) if v.quantity == "loglik"] for f in (ml, reml))
    assert a.term != b.term and a.key == b.key


def test_values_follow_the_record_order() -> None:
    order = [v.quantity for v in values(fit_with_version_2_fields())]
    fixed = ["estimate", "std_error", "lower", "upper", "conclusion"]
    assert order == [*fixed, *fixed, "sd", "sd", "group_effect", "group_effect", "loglik"]
