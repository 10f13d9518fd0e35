"""Settings and tolerances are checked alike whichever way they come in (the CLI, a
models.toml, `parity.run`, `assert_parity`), each by its own type and range, and a
refusal names the way it came in. Every check here runs before anything is fitted."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

import parity
from parity.cli import main
from parity.errors import UsageError
from parity.inputs.config import load_config
from parity.inputs.seed import politeness
from parity.settings import (
    OPTION_SETTINGS,
    SAMPLER_KEYS,
    SETTING_CHECKS,
    Settings,
    as_option,
    in_call,
    setting_problem,
    tolerance_problem,
)
from parity.testing import assert_parity, settings_from

FORMULA = "frequency ~ gender"
CATS = ["gender"]


def test_every_settings_field_has_its_own_check() -> None:
    assert set(SETTING_CHECKS) == {f.name for f in dataclasses.fields(Settings)}
    with pytest.raises(KeyError, match="drawz"):
        setting_problem("drawz", 1)


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("nagq", [0, 1, 5, 25], [-1, 26, 2.5, True, "5"]),
    ("interval", [0.5, 0.94, 0.999999], [0, 1, 5, -0.1, math.nan, math.inf, "0.9"]),
    ("target_accept", [0.8, 0.95], [0, 1, math.nan, None]),
    ("draws", [1, 20], [0, -5, 1.5, True, "20"]),
    ("tune", [1, 20], [0, 2.0]),
    ("chains", [1, 4], [0, -1]),
    ("seed", [0, 42], [-1, 1.5, False]),
    ("reml", [True, False], [1, "no", None]),
    ("save_draws", [None, "out/draws"], [3, Path("out")]),
])
def test_each_setting_is_checked_by_its_own_type_and_range(name: str, good: list[Any],
                                                           bad: list[Any]) -> None:
    for value in good:
        assert setting_problem(name, value) is None, (name, value)
    for value in bad:
        assert setting_problem(name, value), (name, value)


def test_nagq_is_a_number_of_points_not_a_probability() -> None:
    """nagq=5 was refused as "must be above 0 and at most 0.999999"."""
    assert settings_from({"nagq": 5}, caller="parity.run").nagq == 5
    assert setting_problem("nagq", 26) == "must be from 0 (nAGQ = 0) to 25"
    assert setting_problem("interval", 5) == "must be above 0 and at most 0.999999"


def test_parity_run_accepts_nagq_and_names_itself() -> None:
    # nagq=5 passes the settings check; lme4's own limit then refuses a Gaussian model
    with pytest.raises(UsageError, match="is Gaussian"):
        parity.run(FORMULA, politeness(), CATS, engines=["statsmodels"], nagq=5)
    # nagq=0 (glmer's nAGQ = 0) too, and is refused for a Gaussian model alike
    with pytest.raises(UsageError, match="--nagq 0: .* is Gaussian"):
        parity.run(FORMULA, politeness(), CATS, engines=["statsmodels"], nagq=0)
    with pytest.raises(UsageError) as info:
        parity.run(FORMULA, politeness(), CATS, engines=["statsmodels"], nagq=-1)
    assert str(info.value) == "parity.run(): nagq must be from 0 (nAGQ = 0) to 25, not -1"
    with pytest.raises(UsageError, match=r"^parity\.run\(\): interval must be above 0"):
        parity.run(FORMULA, politeness(), CATS, engines=["statsmodels"], interval=1.5)
    with pytest.raises(TypeError, match=r"^parity\.run\(\) got unknown sampler setting"):
        parity.run(FORMULA, politeness(), CATS, engines=["statsmodels"], drawz=5)


def test_assert_parity_names_itself() -> None:
    with pytest.raises(UsageError) as info:
        assert_parity(FORMULA, politeness(), CATS, engines=("statsmodels",), draws=0)
    assert str(info.value) == "assert_parity(): draws must be at least 1, not 0"
    with pytest.raises(UsageError, match=r"^assert_parity\(\): nagq must be a whole number"):
        assert_parity(FORMULA, politeness(), CATS, engines=("statsmodels",), nagq=1.5)


@pytest.mark.parametrize("value", [math.nan, -0.1, math.inf, -math.inf, "0.1", True])
@pytest.mark.parametrize("key", ["rtol", "atol"])
def test_assert_parity_refuses_a_tolerance_the_policy_would_refuse(key: str,
                                                                   value: Any) -> None:
    """NaN or a negative tolerance fails every row; an infinite one passes every row; a
    string was a raw TypeError from deep inside the comparison."""
    assert tolerance_problem(value) == "must be a finite number >= 0"
    with pytest.raises(UsageError) as info:
        assert_parity(FORMULA, politeness(), CATS, engines=("statsmodels",),
                      **{key: value})
    assert str(info.value) == f"assert_parity(): {key} must be a finite number >= 0, " \
                              f"not {value!r}"


def test_zero_and_whole_tolerances_are_accepted() -> None:
    assert tolerance_problem(0) is None and tolerance_problem(1) is None
    assert tolerance_problem(1e-6) is None


def test_the_cli_options_use_the_same_checks(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--models", "additive", "--engines", "statsmodels",
            "--out", str(tmp_path / "o")]
    assert main([*base, "--nagq", "26"]) == 2
    assert capsys.readouterr().err.strip() == \
        "parity: error: --nagq must be from 0 (nAGQ = 0) to 25"
    assert main([*base, "--target-accept", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == \
        "parity: error: --target-accept must be above 0 and at most 0.999999"
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_models_toml_uses_the_same_checks(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\ninterval = 1.5\n')
    with pytest.raises(UsageError, match=r"\[sampler\] interval must be above 0 and at most"):
        load_config(path)


# --- One check, on the Settings themselves ----------------------------------------------

def test_settings_check_is_the_one_range_check() -> None:
    assert Settings().check() == Settings()
    assert Settings(nagq=5).check().nagq == 5
    bad = Settings(draws=0, nagq=-1, interval=2.0)
    assert [name for name, _, _ in bad.problems()] == ["draws", "interval", "nagq"]
    with pytest.raises(UsageError) as info:
        bad.check()
    assert str(info.value) == "draws must be at least 1"
    with pytest.raises(UsageError) as info:
        Settings(nagq=26).check(as_option)
    assert str(info.value) == "--nagq must be from 0 (nAGQ = 0) to 25"
    with pytest.raises(UsageError) as info:
        Settings(target_accept=1.0).check(in_call("parity.run"))
    assert str(info.value) == \
        "parity.run(): target_accept must be above 0 and at most 0.999999, not 1.0"


def test_each_field_carries_its_range_and_group() -> None:
    for f in dataclasses.fields(Settings):
        assert callable(f.metadata["check"]), f.name
        assert f.metadata["group"] in ("sampler", "fit", "output", "prior"), f.name
        assert SETTING_CHECKS[f.name] is f.metadata["check"]
    assert SAMPLER_KEYS == ("draws", "tune", "chains", "target_accept", "seed", "interval")
    assert set(OPTION_SETTINGS) == {"draws", "tune", "chains", "target_accept", "seed",
                                    "interval", "ddf", "profile"}


@pytest.mark.parametrize("command", ["run", "study"])
def test_every_option_setting_is_an_option_of_run_and_study(command: str) -> None:
    from parity.cli import build_parser

    parser = build_parser()
    unset = parser.parse_args([command, "--out", "o"])
    assert {name: getattr(unset, name) for name in OPTION_SETTINGS} == \
        dict.fromkeys(OPTION_SETTINGS)
    args = parser.parse_args([command, "--out", "o", "--draws", "7", "--target-accept", "0.9"])
    assert (args.draws, args.target_accept) == (7, 0.9)


def test_nagq_reaches_the_settings_from_every_way_in(tmp_path: Path) -> None:
    """nagq above 1 was refused through the Python API as a probability."""
    from parity.cli import build_parser
    from parity.inputs.request import merged_settings, option_settings
    from parity.inputs.resolve import Inputs

    for caller in ("parity.run", "assert_parity", "parity_check"):
        assert settings_from({"nagq": 1}, caller=caller).nagq == 1
        assert settings_from({"nagq": 25}, caller=caller).nagq == 25
    args = build_parser().parse_args(["run", "--out", str(tmp_path), "--nagq", "5"])
    inputs = Inputs(frame=None, models=[], source="")  # type: ignore[arg-type]
    assert merged_settings(inputs, option_settings(args)).nagq == 5


def test_options_win_over_the_models_toml_which_wins_over_the_defaults(tmp_path: Path) -> None:
    from parity.cli import build_parser
    from parity.inputs.request import merged_settings, option_settings
    from parity.inputs.resolve import Inputs

    inputs = Inputs(frame=None, models=[], source="",  # type: ignore[arg-type]
                    sampler={"draws": 300, "interval": 0.9}, reml=False)

    def settings(*argv: str) -> Settings:
        args = build_parser().parse_args(["run", "--out", str(tmp_path), *argv])
        return merged_settings(inputs, option_settings(args), save_draws="d")

    plain = settings()
    assert (plain.draws, plain.interval, plain.reml, plain.tune) == (300, 0.9, False, 2000)
    assert plain.save_draws == "d"
    given = settings("--draws", "50", "--reml", "--nagq", "3")
    assert (given.draws, given.interval, given.reml, given.nagq) == (50, 0.9, True, 3)


def test_an_option_out_of_range_is_refused_before_the_data_is_read(tmp_path: Path) -> None:
    from parity.cli import build_parser
    from parity.inputs.request import resolve_request

    args = build_parser().parse_args(["run", "--out", str(tmp_path), "--data",
                                      str(tmp_path / "missing.csv"), "--formula", "y ~ x",
                                      "--chains", "0"])
    with pytest.raises(UsageError) as info:
        resolve_request(args)
    assert str(info.value) == "--chains must be at least 1"
