"""models.toml: what it may say, and that every mistake in it is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.compare.tolerances import load_policy
from parity.errors import UsageError
from parity.inputs.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sleepstudy.toml"
NO_PROJECT = Path("/nonexistent/pyproject.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_shipped_example_parses() -> None:
    config = load_config(EXAMPLE)
    assert config.r_dataset == "lme4::sleepstudy"
    assert config.data is None
    assert config.categorical == ("Subject",)
    assert list(config.models) == ["intercept", "slope"]
    assert config.engines == ("lme4", "statsmodels", "bambi")
    assert config.sampler["draws"] == 1000
    assert isinstance(config.sampler["target_accept"], float)


def test_data_path_is_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'data = "sub/d.csv"\n[models]\nm = "y ~ x"\n'))
    assert config.data == tmp_path / "sub" / "d.csv"


def test_tolerances_merge_over_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'data = "d.csv"\n[models]\nm = "y ~ x"\n'
                                         "[tolerances.frequentist-frequentist.estimate]\n"
                                         "rtol = 0.5\n"))
    policy = load_policy(project=NO_PROJECT, overrides=config.tolerances,
                         overrides_source="models.toml")
    rule = policy.rule("frequentist", "frequentist", "estimate")
    assert rule.rtol == 0.5
    default = load_policy(project=NO_PROJECT).rule("frequentist", "frequentist", "estimate")
    assert rule.atol == default.atol
    assert policy.sources == ("parity defaults", "models.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('data = "d.csv"\nmodles = {}\n[models]\nm = "y ~ x"\n', "unknown key(s) 'modles'"),
        ('[models]\nm = "y ~ x"\n', "exactly one of"),
        ('data = "d.csv"\nr_dataset = "lme4::cbpp"\n[models]\nm = "y ~ x"\n', "exactly one"),
        ('data = "d.csv"\n', "[models]"),
        ('data = "d.csv"\n[models]\n', "[models]"),
        ('data = "d.csv"\n[models]\n"my model" = "y ~ x"\n', "not an identifier"),
        ('data = "d.csv"\n[models]\nm = 3\n', "formula string"),
        ('data = "d.csv"\n[models]\nm = "y ~ x + system(\'ls\')"\n', "model 'm': formula:"),
        ('data = "d.csv"\n[models]\nm = "y ~ `x`"\n', "character '`'"),
        ('r_dataset = "lme4::sleep;study"\n[models]\nm = "y ~ x"\n', "PKG::NAME"),
        ('data = "d.csv"\nengines = ["spss"]\n[models]\nm = "y ~ x"\n', "unknown engine"),
        ('data = "d.csv"\nengines = "lme4"\n[models]\nm = "y ~ x"\n', "list of strings"),
        ('data = "d.csv"\ncategorical = "g"\n[models]\nm = "y ~ x"\n', "list of strings"),
        ('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\ndraw = 5\n', "unknown key(s) 'draw'"),
        ('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\ndraws = 0\n', "at least 1"),
        ('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\ndraws = 1.5\n', "whole number"),
        ('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\ntarget_accept = 1\n',
         "above 0 and at most 0.999999"),
        ('data = "d.csv"\n[models]\nm = "y ~ x"\n[sampler]\nseed = true\n', "whole number"),
        ("data = \n", "not valid TOML"),
        ('data = "d.csv"\nreml = "no"\n[models]\nm = "y ~ x"\n', "reml must be true or false"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value).strip() or "TOML" in str(err.value)


def test_unknown_tolerance_keys_are_named_when_the_policy_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'data = "d.csv"\n[models]\nm = "y ~ x"\n'
                                         "[tolerances.frequentist-frequentist.estimat]\n"
                                         "rtol = 0.5\n"))
    with pytest.raises(UsageError, match="unknown quantity 'estimat'"):
        load_policy(project=NO_PROJECT, overrides=config.tolerances, overrides_source="m")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_reml_false_asks_for_ml_and_the_default_is_unset(tmp_path: Path) -> None:
    ml = load_config(write(tmp_path, 'data = "d.csv"\nreml = false\n[models]\nm = "y ~ x"\n'))
    assert ml.reml is False
    assert load_config(write(tmp_path, 'data = "d.csv"\n[models]\nm = "y ~ x"\n')).reml is None
