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
    assert config.families == {"herd": ("binomial", "n")}
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
