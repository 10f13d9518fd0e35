"""Binomial and Poisson models: what parity refuses before any fit, and how a family is
named (CLI, models.toml, the Python API)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from parity.errors import DataError, UsageError
from parity.inputs.config import load_config
from parity.rows.prepare import prepare
from parity.schema import CRITERIA, criterion_of, parse_criterion
from parity.spec.family import FAMILIES, LINKS, family_of
from parity.spec.models import make_model


def frame(y: list[float], n: list[float] | None = None) -> pd.DataFrame:
    k = len(y)
    out = pd.DataFrame({"y": y, "x": [float(i % 3) for i in range(k)],
                        "g": [f"g{i % 2}" for i in range(k)]})
    if n is not None:
        out["n"] = n
    return out


@pytest.mark.parametrize(
    ("family", "trials", "y", "n", "message"),
    [
        ("binomial", None, [0, 1, 2, 1, 0, 1], None, "must be 0 or 1"),
        ("binomial", "n", [0, 1, 2.5, 1, 0, 1], [3] * 6, "whole number from 0 to its trials"),
        ("binomial", "n", [0, 1, 4, 1, 0, 1], [3] * 6, "whole number from 0 to its trials"),
        ("binomial", "n", [0, 1, 2, 1, 0, 1], [3, 3, 0, 3, 3, 3], "at least 1"),
        ("binomial", "n", [0, 1, 2, 1, 0, 1], [3, 3, 2.5, 3, 3, 3], "at least 1"),
        ("poisson", None, [0, 1, -2, 1, 0, 1], None, "at least 0"),
        ("poisson", None, [0, 1, 2.5, 1, 0, 1], None, "whole number"),
    ],
)
def test_a_response_its_family_cannot_model_is_refused(family: str, trials: str | None,
                                                        y: list[float], n: list[float] | None,
                                                        message: str) -> None:
    model = make_model("m", "y ~ x", family=family, trials=trials)
    with pytest.raises(DataError) as err:
        prepare(frame(y, n), model.spec, (), model.family, model.trials)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_valid_counts_are_kept_with_their_trials() -> None:
    model = make_model("m", "y ~ x", family="binomial", trials="n")
    data = prepare(frame([0, 1, 2, 3, 0, 1], [3] * 6), model.spec, (), "binomial", "n")
    assert list(data.frame["n"]) == [3.0] * 6
    assert data.n_obs == 6


def test_family_and_trials_are_checked_as_a_model_is_made() -> None:
    with pytest.raises(UsageError, match="unknown family 'gamma'"):
        make_model("m", "y ~ x", family="gamma")
    with pytest.raises(UsageError, match="belongs to the binomial family"):
        make_model("m", "y ~ x", family="poisson", trials="n")
    with pytest.raises(UsageError, match="is the response itself"):
        make_model("m", "y ~ x", family="binomial", trials="y")


def test_models_toml_tables_name_a_family(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('data = "d.csv"\n[models]\nplain = "y ~ x"\n'
                    '[models.herd]\nformula = "y ~ x + (1 | g)"\nfamily = "binomial"\n'
                    'trials = "n"\n')
    config = load_config(path)
    assert config.models == {"plain": "y ~ x", "herd": "y ~ x + (1 | g)"}
    assert config.families == {"herd": ("binomial", "n", None)}  # family, trials, weights
    path.write_text('data = "d.csv"\n[models.m]\nformula = "y ~ x"\nfamily = "poisson"\n'
                    'trials = "n"\n')
    with pytest.raises(UsageError, match="belongs to the binomial family"):
        load_config(path)
    path.write_text('data = "d.csv"\n[models.m]\nformula = "y ~ x"\nlink = "probit"\n')
    with pytest.raises(UsageError, match="unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "binomial", "--formula", "y ~ x"], "must be 0 or 1"),
        (["--family", "gaussian", "--trials", "n", "--formula", "y ~ x"],
         "belongs to the binomial family"),
        (["--family", "binomial", "--trials", "n", "--nagq", "5",
          "--formula", "y ~ x + (x | g)"], "nAGQ > 1 only"),
        (["--family", "binomial", "--trials", "n", "--nagq", "0",
          "--formula", "y ~ x"], "model m1 has no grouping term; lme4 takes nAGQ = 0 only"),
        (["--family", "binomial"], "apply to --formula models"),
    ],
)
def test_cli_refuses_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "d.csv"
    frame([0, 1, 2, 1, 0, 1, 2, 0], [3] * 8).to_csv(data, index=False)
    extra = ["--data", str(data)] if "--formula" in args else []
    proc = subprocess.run([sys.executable, "-m", "parity.cli", "run", "--out",
                           str(tmp_path / "o"), "--engines", "statsmodels", *extra, *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "o" / "results.json").exists()


# --- A family is asked, not compared as text -------------------------------------------

@pytest.mark.parametrize(("name", "link", "residual_sd", "trials"), [
    ("gaussian", "identity", True, False),
    ("binomial", "logit", False, True),
    ("poisson", "log", False, False),
])
def test_each_family_says_its_link_scale_and_trials(name: str, link: str, residual_sd: bool,
                                                    trials: bool) -> None:
    family = FAMILIES[name]
    assert (family.name, family.link, family.residual_sd, family.trials) == \
        (name, link, residual_sd, trials)
    assert family_of(name) is family and LINKS[name] == link
    model = make_model("m", "y ~ x + (1 | g)", family=name)
    assert model.fam is family and model.family == name
    assert model.gaussian is (name == "gaussian")


def test_an_unknown_family_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UsageError) as err:
        family_of("gamma")
    assert str(err.value) == "unknown family 'gamma'; known: gaussian, binomial, poisson"


def test_the_cli_offers_the_families_of_the_table() -> None:
    from parity.cli import build_parser

    parser = build_parser()
    for command in ("run", "record", "study"):
        sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        [option] = [a for a in sub._actions if a.dest == "family"]
        assert tuple(option.choices) == tuple(FAMILIES), command


def test_prepare_takes_a_family_or_its_name() -> None:
    model = make_model("m", "y ~ x", family="poisson")
    counts = frame([0, 1, 2, 3, 0, 1])
    by_name = prepare(counts, model.spec, (), "poisson")
    by_family = prepare(counts, model.spec, (), model.fam)
    assert by_name.frame.equals(by_family.frame)
    with pytest.raises(DataError, match="at least 0"):
        FAMILIES["poisson"].check_response(frame([0, -1, 2, 3, 0, 1]), "y")
    FAMILIES["gaussian"].check_response(frame([-0.5, 1e9, 2, 3, 0, 1]), "y")


# --- The criterion a frequentist fit records --------------------------------------------

@pytest.mark.parametrize(("family", "reml", "nagq", "mixed", "text"), [
    ("gaussian", True, 1, True, "REML"),
    ("gaussian", False, 1, True, "ML"),
    ("gaussian", True, 1, False, "OLS"),
    ("gaussian", False, 1, False, "OLS"),
    ("binomial", True, 1, True, "Laplace"),
    ("poisson", False, 1, True, "Laplace"),
    ("binomial", True, 7, True, "AGQ(7)"),
    ("binomial", True, 0, True, "nAGQ=0"),
    ("poisson", False, 0, False, "ML"),
    ("poisson", True, 1, False, "ML"),
    ("binomial", False, 5, False, "ML"),
])
def test_the_criterion_follows_lme4s_rule_and_reads_back(family: str, reml: bool, nagq: int,
                                                         mixed: bool, text: str) -> None:
    assert criterion_of(FAMILIES[family], reml, nagq, mixed) == text
    parsed = parse_criterion(text)
    assert parsed is not None and parsed.kind in CRITERIA
    assert parsed.reml is (text == "REML")
    assert parsed.nagq == (nagq if "AGQ" in text else 1)


@pytest.mark.parametrize("text", ["reml", "AGQ(1)", "AGQ()", "AGQ(x)", "Laplace ", "AGQ(0)",
                                  "nAGQ=1"])
def test_text_that_is_no_criterion_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a criterion"):
        parse_criterion(text)


def test_a_fit_without_a_criterion_reads_back_as_none() -> None:
    assert parse_criterion(None) is None
