"""assert_parity and the pytest plugin on real fits, as an analyst would use them."""

from __future__ import annotations

import importlib.metadata
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from conftest import need
from parity.errors import DataError, UsageError
from parity.inputs.seed import politeness, politeness_path
from parity.testing import (
    CALL_HOOKS,
    DEFAULT_QUANTITIES,
    ParityCall,
    ParityFitError,
    assert_parity,
    settings_from,
)

pytest_plugins = ["pytester"]

FORMULA = "frequency ~ gender + attitude + (1 | subject)"
CATEGORICAL = ["subject", "gender", "attitude"]


@pytest.fixture
def calls() -> Iterator[list[ParityCall]]:
    """What assert_parity reports to its hook (the pytest plugin's source)."""
    seen: list[ParityCall] = []
    CALL_HOOKS.append(seen.append)
    yield seen
    CALL_HOOKS.remove(seen.append)


def test_statsmodels_agrees_with_lme4(calls: list[ParityCall]) -> None:
    need("lme4")
    rows = assert_parity(FORMULA, politeness(), categorical=CATEGORICAL,
                         engines=("statsmodels",))
    assert rows
    assert {r.verdict for r in rows} == {"agree"}
    assert {(r.engine, r.reference) for r in rows} == {("statsmodels", "lme4")}
    terms = {r.term for r in rows}
    assert {"(Intercept)", "genderM", "attitudepol", "sd(Residual)"} <= terms
    # by default every quantity but the interval ends and df, which differ by method
    assert {r.quantity for r in rows} <= set(DEFAULT_QUANTITIES)
    assert "conclusion" in {r.quantity for r in rows}
    [call] = calls
    assert call.passed and call.agree == len(rows) and call.disagree == 0


def test_the_conclusions_alone(calls: list[ParityCall]) -> None:
    """`quantities="conclusion"`: the engines reach the same conclusions (statsmodels'
    z-tests and lme4's Satterthwaite t-tests); no other row is checked or returned."""
    need("lme4")
    rows = assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                         quantities="conclusion")
    assert [r.term for r in rows] == ["(Intercept)", "genderM", "attitudepol"]
    assert {(r.quantity, r.verdict) for r in rows} == {("conclusion", "agree")}
    assert all("same conclusion" in (r.reason or "") for r in rows)
    [call] = calls
    assert call.passed and call.agree == 3 and call.not_comparable == 0


def test_interval_ends_of_different_methods_are_not_comparable_not_failures() -> None:
    """statsmodels' Wald-z interval against lme4's Wald-t one: asked for, the interval's
    lower ends are rows that say why they are not compared, and the check passes."""
    need("lme4")
    rows = assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                         quantities=["lower"])
    assert [r.term for r in rows] == ["(Intercept)", "genderM", "attitudepol"]
    assert {(r.quantity, r.verdict) for r in rows} == {("lower", "not_comparable")}
    assert all("Wald-z" in (r.reason or "") and "Wald-t" in (r.reason or "") for r in rows)


def test_limited_quantities_check_only_their_rows() -> None:
    """A tolerance tightened on estimates fails no SE or SD check; asked for estimates,
    the failure still lists the failing rows."""
    need("lme4")
    rows = assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                         quantities=("std_error", "sd"), rtol=1e-12, atol=0)
    assert {r.quantity for r in rows} == {"std_error", "sd"}
    with pytest.raises(AssertionError) as info:
        assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                      quantities="estimate", rtol=1e-12, atol=0)
    message = str(info.value)
    assert "comparisons disagree" in message and "statsmodels vs lme4" in message
    listed = [ln for ln in message.splitlines() if " / " in ln and "model / term" not in ln]
    assert listed and all(" estimate " in ln for ln in listed)
    # statsmodels' z-tests have no df: asked for df alone, nothing is compared
    with pytest.raises(AssertionError, match="nothing was compared .* no rows of df of "
                                             "statsmodels against lme4"):
        assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                      quantities="df")


@pytest.mark.parametrize("quantities", ["se", ["estimate", "SE"], [3], []])
def test_an_unknown_quantity_is_a_usage_error_naming_the_known_ones(
        quantities: object, calls: list[ParityCall]) -> None:
    with pytest.raises(UsageError, match=r"^assert_parity\(\): .*quantit.*; known: "
                                         r"estimate, std_error, sd, corr, group_effect, "
                                         r"loglik, lower, upper, df, conclusion$"):
        assert_parity(FORMULA, politeness(), CATEGORICAL, engines="statsmodels",
                      quantities=quantities)  # type: ignore[arg-type]
    assert not calls  # refused before anything was fitted


def test_tight_tolerance_fails_with_a_readable_table(calls: list[ParityCall]) -> None:
    need("lme4")
    with pytest.raises(AssertionError) as info:
        assert_parity(FORMULA, politeness_path(),
                      categorical=CATEGORICAL, engines=("statsmodels",), rtol=1e-12, atol=0)
    message = str(info.value)
    assert "genderM" in message or "(Intercept)" in message
    assert "statsmodels vs lme4" in message
    header = next(ln for ln in message.splitlines() if ln.startswith("model / term"))
    for column in ("engines", "quantity", "value", "reference", "|difference|", "tolerance",
                   "reason"):
        assert column in header
    # only estimates were tightened: SEs and SDs still agree and are not listed
    assert "std_error" not in message
    [call] = calls
    assert not call.passed and call.disagree >= 1


@pytest.mark.r
def test_a_fit_that_did_not_run_is_a_failure_with_its_reason() -> None:
    need("R")
    # A constant response: lme4 fits, then cannot compute the fixed effects' covariance.
    # (Data too thin for the model, e.g. one row per group, is refused before any fit.)
    frame = politeness().dropna().reset_index(drop=True).assign(frequency=200.0)
    with pytest.raises(ParityFitError) as info:
        assert_parity("frequency ~ gender + (1 | subject)", frame,
                      categorical=["subject", "gender"], engines=("statsmodels",))
    assert "lme4: failed" in str(info.value)
    assert "not a positive definite matrix" in str(info.value)


def test_unknown_sampler_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="drawz"):
        settings_from({"drawz": 10})
    with pytest.raises(TypeError, match="drawz"):
        assert_parity(FORMULA, politeness(), engines=("statsmodels",), drawz=10)
    assert settings_from({"draws": 10, "seed": 1}).draws == 10


ANALYST_TESTS = '''
import pytest
from parity.inputs.seed import politeness

FORMULA = "frequency ~ gender + attitude + (1 | subject)"


@pytest.mark.parity(engines=("statsmodels",))
def test_politeness(parity_check):
    rows = parity_check(FORMULA, politeness(), ["subject", "gender", "attitude"])
    assert all(r.verdict == "agree" for r in rows)


def test_without_parity():
    assert True
'''


PLAIN_TESTS = '''
def test_plain():
    assert True
'''


def _plugin_args() -> list[str]:
    """`-p` unless the installed package registers the plugin itself (loading it under
    two names would be refused by pluggy)."""
    installed = any(ep.value.startswith("parity.pytest_plugin")
                    for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "parity.pytest_plugin"]


def test_plugin_fixture_and_summary(pytester: pytest.Pytester) -> None:
    need("lme4")
    pytester.makepyfile(test_analysis=textwrap.dedent(ANALYST_TESTS))
    result = pytester.runpytest_subprocess(*_plugin_args(), "--parity-reference", "lme4")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= parity =*",
                                 "test*formula*engines*agree*disagree*not comparable*result*",
                                 "test_analysis.py::test_politeness*frequency ~ gender*"
                                 "statsmodels vs lme4*PASS"])


def test_plugin_prints_nothing_without_calls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess(*_plugin_args(), "--parity-draws", "100",
                                           "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.parity(engines=*"])
    result = pytester.runpytest_subprocess(*_plugin_args(), "--parity-draws", "100")
    result.assert_outcomes(passed=1)
    assert not re.search(r"=+ parity =+", result.stdout.str())


@pytest.mark.bambi
def test_bambi_agrees_with_lme4_on_the_additive_model() -> None:
    need("lme4")
    need("bambi")
    # Enough draws for R-hat < 1.01 and 100 ESS per chain: an unconverged posterior is
    # no verdict (below).
    rows = assert_parity("frequency ~ gender + attitude", politeness(), engines=("bambi",),
                         categorical=["gender", "attitude"], draws=1000, tune=500, chains=2)
    assert rows and {r.engine for r in rows} == {"bambi"}


@pytest.mark.bambi
def test_an_unconverged_posterior_is_no_verdict() -> None:
    """Too few draws to converge: assert_parity fails naming R-hat or ESS, rather than
    passing or failing on the posterior's numbers."""
    need("lme4")
    need("bambi")
    with pytest.raises(ParityFitError, match="bambi: unconverged: bambi did not converge"):
        assert_parity("frequency ~ gender + attitude", politeness(), engines=("bambi",),
                      categorical=["gender", "attitude"], draws=40, tune=40, chains=2)


def test_a_missing_csv_is_parity_s_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        assert_parity(FORMULA, tmp_path / "missing.csv", engines=("statsmodels",))


def test_defaults_come_from_the_marker_then_the_options(pytester: pytest.Pytester) -> None:
    from parity.pytest_plugin import check_defaults

    config = pytester.parseconfig(*_plugin_args(), "--parity-engines", "statsmodels,bambi",
                                  "--parity-draws", "50", "--parity-chains", "2")
    assert check_defaults(config, None) == {
        "engines": ("statsmodels", "bambi"), "reference": "lme4", "draws": 50, "chains": 2}
    # what @pytest.mark.parity(engines="bambi", draws=10, seed=3) carries (the marker is
    # registered by the plugin, which this outer session may not have loaded)
    marker = cast(pytest.Mark, SimpleNamespace(args=(), kwargs={"engines": "bambi",
                                                                "draws": 10, "seed": 3}))
    assert check_defaults(config, marker) == {
        "engines": ("bambi",), "reference": "lme4", "draws": 10, "chains": 2, "seed": 3}


def test_every_sampler_option_of_parity_run_is_a_plugin_option(
        pytester: pytest.Pytester) -> None:
    from parity.pytest_plugin import check_defaults
    from parity.settings import OPTION_SETTINGS

    config = pytester.parseconfig(*_plugin_args(), "--parity-seed", "7",
                                  "--parity-target-accept", "0.9", "--parity-tune", "30",
                                  "--parity-interval", "0.9", "--parity-ddf",
                                  "kenward-roger", "--parity-profile")
    defaults = check_defaults(config, None)
    assert {k: defaults[k] for k in ("seed", "target_accept", "tune", "interval", "ddf",
                                     "profile")} == \
        {"seed": 7, "target_accept": 0.9, "tune": 30, "interval": 0.9,
         "ddf": "kenward-roger", "profile": True}
    assert set(OPTION_SETTINGS) == {"draws", "tune", "chains", "seed", "target_accept",
                                    "interval", "ddf", "profile"}


def test_nagq_is_a_setting_of_assert_parity_not_a_probability() -> None:
    """nagq=1 was refused by assert_parity as "must be above 0 and at most 0.999999"."""
    assert settings_from({"nagq": 1}).nagq == 1
    with pytest.raises(UsageError, match=r"^assert_parity\(\): nagq must be from 0 "):
        assert_parity(FORMULA, politeness(), CATEGORICAL, engines=("statsmodels",), nagq=26)


def test_engines_as_one_string_are_names_not_characters() -> None:
    """`engines="statsmodels"` was split into its characters ("unknown engine 's'")."""
    from parity.testing import engine_names

    assert engine_names("statsmodels") == ("statsmodels",)
    assert engine_names(" statsmodels, bambi ") == ("statsmodels", "bambi")
    for engines in ("nosuch", "statsmodels, nosuch"):
        with pytest.raises(UsageError, match="unknown engine 'nosuch'"):
            assert_parity(FORMULA, politeness(), engines=engines)
    with pytest.raises(UsageError, match=r"^assert_parity\(\): engines=' , ' names no engine"):
        assert_parity(FORMULA, politeness(), engines=" , ")


BAD_TOLERANCE_TESTS = '''
import math

import pytest
from parity.errors import UsageError
from parity.inputs.seed import politeness

FORMULA = "frequency ~ gender + attitude + (1 | subject)"
CATS = ["subject", "gender", "attitude"]


@pytest.mark.parametrize("kwargs", [{"rtol": math.nan}, {"atol": -1.0},
                                    {"rtol": math.inf}, {"atol": "0.1"}])
def test_bad_tolerance_in_the_call(parity_check, kwargs):
    key, value = next(iter(kwargs.items()))
    with pytest.raises(UsageError) as info:
        parity_check(FORMULA, politeness(), CATS, engines=("statsmodels",), **kwargs)
    assert str(info.value) == (f"parity_check(): {key} must be a finite number >= 0, "
                               f"not {value!r}")


@pytest.mark.parity(engines="statsmodels", atol=math.inf)
def test_bad_tolerance_in_the_marker(parity_check):
    with pytest.raises(UsageError, match=r"^parity_check\\(\\): atol must be a finite"):
        parity_check(FORMULA, politeness(), CATS)


@pytest.mark.parity(engines="statsmodels", nagq=26)
def test_bad_setting_in_the_marker(parity_check):
    with pytest.raises(UsageError, match=r"^parity_check\\(\\): nagq must be from 0"):
        parity_check(FORMULA, politeness(), CATS)
'''


def test_parity_check_refuses_bad_tolerances_before_fitting(pytester: pytest.Pytester) -> None:
    """rtol/atol that are NaN, negative, infinite or a string are one-line UsageErrors
    naming parity_check, as assert_parity's are; nothing is fitted."""
    pytester.makepyfile(test_tolerances=BAD_TOLERANCE_TESTS)
    result = pytester.runpytest_subprocess(*_plugin_args())
    result.assert_outcomes(passed=6)


QUANTITY_TESTS = '''
import pytest
from parity.errors import UsageError
from parity.inputs.seed import politeness

FORMULA = "frequency ~ gender + attitude + (1 | subject)"
CATS = ["subject", "gender", "attitude"]


@pytest.mark.parity(engines="statsmodels", quantities="conclusion")
def test_conclusions_from_the_marker(parity_check):
    rows = parity_check(FORMULA, politeness(), CATS)
    assert rows and {r.quantity for r in rows} == {"conclusion"}


@pytest.mark.parity(engines="statsmodels", quantities=["nosuch"])
def test_unknown_quantity_in_the_marker(parity_check):
    with pytest.raises(UsageError, match=r"^parity_check\\(\\): unknown quantity 'nosuch'"):
        parity_check(FORMULA, politeness(), CATS)


def test_unknown_quantity_in_the_call(parity_check):
    with pytest.raises(UsageError, match=r"known: estimate, std_error"):
        parity_check(FORMULA, politeness(), CATS, engines="statsmodels", quantities="SE")
'''


def test_parity_check_takes_quantities_from_the_marker_and_the_call(
        pytester: pytest.Pytester) -> None:
    need("lme4")
    pytester.makepyfile(test_quantities=QUANTITY_TESTS)
    result = pytester.runpytest_subprocess(*_plugin_args())
    result.assert_outcomes(passed=3)
