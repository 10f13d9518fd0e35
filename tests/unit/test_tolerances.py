"""The tolerance policy: shipped defaults, overrides from pyproject and a file, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.compare.tolerances import PAIRS, QUANTITIES, Rule, load_policy, pair_key
from parity.errors import UsageError


def test_defaults_cover_every_pair_and_quantity(tmp_path: Path) -> None:
    policy = load_policy(project=tmp_path / "none.toml")
    for pair in PAIRS:
        for quantity in QUANTITIES:
            assert (pair, quantity) in policy.rules


def test_frequentist_fixed_effects_are_held_tight(tmp_path: Path) -> None:
    rule = load_policy(project=tmp_path / "none.toml").rule("frequentist", "frequentist",
                                                            "estimate")
    assert rule.rtol <= 1e-3
    assert rule.tolerance(100.0, 10.0) <= 1e-3 * 100.0


def test_rule_formula() -> None:
    assert Rule(rtol=0.1, atol=1.0, sd_mult=0.5).tolerance(-20.0, 4.0) == pytest.approx(5.0)
    assert Rule(rtol=0.1, atol=1.0, sd_mult=0.5).tolerance(-20.0, None) == pytest.approx(3.0)


def test_pair_key_is_symmetric() -> None:
    assert pair_key("frequentist", "bayesian") == pair_key("bayesian", "frequentist")


def test_pyproject_then_file_override(tmp_path: Path) -> None:
    project = tmp_path / "pyproject.toml"
    project.write_text("[tool.parity.tolerances.bayesian-frequentist.estimate]\nsd_mult = 0.5\n")
    extra = tmp_path / "tol.toml"
    extra.write_text("[bayesian-frequentist.estimate]\natol = 2.0\n")
    policy = load_policy(extra, project=project)
    rule = policy.rule("bayesian", "frequentist", "estimate")
    assert (rule.sd_mult, rule.atol) == (0.5, 2.0)
    assert len(policy.sources) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nonsense.estimate]\nrtol = 1\n", "unknown tolerance pair"),
        ("[bayesian-frequentist.slope]\nrtol = 1\n", "unknown quantity"),
        ("[bayesian-frequentist.estimate]\nrel = 1\n", "unknown part"),
        ("[bayesian-frequentist.estimate]\nrtol = -1\n", "must be a finite number"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_override_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tol.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_policy(path, project=tmp_path / "none.toml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_policy(tmp_path / "nope.toml", project=tmp_path / "none.toml")


def test_override_helper(tmp_path: Path) -> None:
    policy = load_policy(project=tmp_path / "none.toml").with_override("estimate", 1e-12, 0.0)
    for pair in PAIRS:
        rule = policy.rules[(pair, "estimate")]
        assert (rule.rtol, rule.atol, rule.sd_mult) == (1e-12, 0.0, 0.0)


def test_self_consistency_rule_is_data(tmp_path: Path) -> None:
    policy = load_policy(project=tmp_path / "none.toml")
    rule = policy.check("self-consistency", "estimate")
    assert rule.sd_mult > 0 and rule.tolerance(10.0, 1.0) < 0.01
    bad = tmp_path / "t.toml"
    bad.write_text("[self-consistency.sd]\nrtol = 1.0\n")
    with pytest.raises(UsageError, match="unknown quantity 'sd'"):
        load_policy(bad, project=tmp_path / "none.toml")
