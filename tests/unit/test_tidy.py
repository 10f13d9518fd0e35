"""`Run.tidy()` and `Run.comparisons` on hand-made fits: broom.mixed's `tidy()` layout,
row for row, and the comparison table's columns."""

from __future__ import annotations

import math

import pandas as pd

from parity.api import TIDY_COLUMNS, Run
from parity.schema import (
    Comparison,
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    RunResults,
    Status,
    VarianceComponent,
)

FORMULA = "frequency ~ attitude + (attitude | subject)"


def make_fit(engine: str = "lme4", status: Status = "ok", variant: str | None = None) -> Fit:
    numbers = status in ("ok", "unconverged")
    return Fit(
        model="slope", formula=FORMULA, engine=engine, status=status,
        reason=None if status == "ok" else "it did not", n_obs=84, n_dropped=0,
        fixed_effects=(
            FixedEffect("(Intercept)", 202.6, 24.5, 151.0, 254.1, statistic=8.27,
                        statistic_kind="t", df=5.0, df_method="Satterthwaite",
                        p_value=4.2e-4, interval_method="Wald-t"),
            FixedEffect("attitudepol", -19.7, 5.6, -30.6, -8.8, statistic=-3.5,
                        statistic_kind="t", df=5.1, df_method="Satterthwaite",
                        p_value=0.017, interval_method="Wald-t"),
        ) if numbers else (),
        variance_components=(
            VarianceComponent("subject", "(Intercept)", None, "sd", 60.1, None, 30.0, 110.0,
                              interval_method="profile"),
            VarianceComponent("subject", "attitudepol", None, "sd", 4.2),
            VarianceComponent("subject", "(Intercept)", "attitudepol", "corr", -0.3),
            VarianceComponent("Residual", None, None, "sd", 35.2, None, 30.0, 41.0,
                              interval_method="profile"),
        ) if numbers else (),
        diagnostics=Diagnostics(converged=status == "ok", singular=False),
        structure={"subject": "correlated"}, variant=variant,
        group_effects=(GroupEffect("subject", "F1", "(Intercept)", -12.5, 7.1),
                       GroupEffect("subject", "F1", "attitudepol", 1.5, 2.0))
        if numbers else (),
    )


def test_tidy_has_broom_mixed_columns_and_rows() -> None:
    table = Run(RunResults((make_fit(),))).tidy()
    assert list(table.columns) == TIDY_COLUMNS == [
        "engine", "model", "effect", "group", "level", "term", "estimate", "std.error",
        "statistic", "df", "p.value", "conf.low", "conf.high"]
    assert list(table["effect"]) == ["fixed"] * 2 + ["ran_pars"] * 4 + ["ran_vals"] * 2
    assert list(table["term"]) == [
        "(Intercept)", "attitudepol", "sd__(Intercept)", "sd__attitudepol",
        "cor__(Intercept).attitudepol", "sd__Observation", "(Intercept)", "attitudepol"]
    assert list(table["group"][2:]) == ["subject"] * 3 + ["Residual"] + ["subject"] * 2
    assert table["group"][:2].isna().all() and table["level"][:6].isna().all()
    assert list(table["level"][6:]) == ["F1", "F1"]
    fixed = table.iloc[1]
    assert (fixed["estimate"], fixed["std.error"], fixed["statistic"], fixed["df"],
            fixed["p.value"], fixed["conf.low"], fixed["conf.high"]) == (
        -19.7, 5.6, -3.5, 5.1, 0.017, -30.6, -8.8)
    sd = table.iloc[2]  # the component's own interval (here lme4's profile)
    assert (sd["estimate"], sd["conf.low"], sd["conf.high"]) == (60.1, 30.0, 110.0)
    assert math.isnan(sd["statistic"]) and math.isnan(sd["p.value"])
    assert table.iloc[3][["conf.low", "conf.high"]].isna().all()  # no interval: NaN
    ranef = table.iloc[6]
    assert (ranef["estimate"], ranef["std.error"]) == (-12.5, 7.1)
    assert ranef[["statistic", "df", "p.value", "conf.low", "conf.high"]].isna().all()
    numbers = ["estimate", "std.error", "statistic", "df", "p.value", "conf.low",
               "conf.high"]
    assert all(pd.api.types.is_float_dtype(table[c]) for c in numbers)


def test_tidy_keeps_fits_with_numbers_then_the_reference_refits() -> None:
    results = RunResults(
        (make_fit("lme4"), make_fit("statsmodels", status="unconverged"),
         make_fit("bambi", status="failed")),
        reference_fits=(make_fit("lme4", variant="independent"),))
    table = Run(results).tidy()
    assert list(dict.fromkeys(table["engine"])) == ["lme4", "statsmodels", "lme4:independent"]
    assert set(table["model"]) == {"slope"}
    assert len(table) == 3 * 8


def test_an_empty_run_tidies_to_the_columns_alone() -> None:
    table = Run(RunResults(())).tidy()
    assert table.empty and list(table.columns) == TIDY_COLUMNS


def test_comparisons_carry_terms_and_the_readers_label() -> None:
    row = Comparison("slope", "statsmodels", "lme4", "std_error", "attitudepol", 5.6, 5.6,
                     0.01, "agree", None, terms=("attitudepol",))
    table = Run(RunResults((), (row,))).comparisons
    assert list(table.columns)[:12] == [
        "model", "engine", "reference", "quantity", "term", "value", "reference_value",
        "tolerance", "verdict", "reason", "group", "level"]
    assert list(table.columns)[12:] == ["unconverged", "terms", "label"]
    assert table.iloc[0]["terms"] == ("attitudepol",)
    assert table.iloc[0]["label"] == "SE(attitudepol)"
    empty = Run(RunResults(())).comparisons
    assert empty.empty and "label" in empty.columns
