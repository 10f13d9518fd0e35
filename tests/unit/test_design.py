"""R's model.matrix coding and column names, which are parity's canonical names."""

from __future__ import annotations

import numpy as np
import pytest

from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness
from parity.rows.design import build_design
from parity.rows.prepare import prepare
from parity.spec.grammar import parse_formula


def design(formula: str):  # type: ignore[no-untyped-def]
    spec = parse_formula(formula)
    # Rows and levels from a model over the same columns: prepare() itself refuses
    # rank-deficient designs such as `gender:attitude` beside an intercept.
    every = parse_formula("frequency ~ gender + attitude + scenario")
    data = prepare(politeness(), every, POLITENESS_CATEGORICAL)
    return build_design(data.frame, spec.fixed, spec.intercept, data.levels), data


@pytest.mark.parametrize(
    ("formula", "names"),
    [
        ("frequency ~ gender + attitude", ["(Intercept)", "genderM", "attitudepol"]),
        ("frequency ~ 0 + attitude + gender", ["attitudeinf", "attitudepol", "genderM"]),
        ("frequency ~ gender * attitude",
         ["(Intercept)", "genderM", "attitudepol", "genderM:attitudepol"]),
        ("frequency ~ gender:attitude",
         ["(Intercept)", "genderF:attitudeinf", "genderM:attitudeinf",
          "genderF:attitudepol", "genderM:attitudepol"]),
        ("frequency ~ 0 + scenario", [f"scenario{i}" for i in range(1, 8)]),
    ],
)
def test_names_match_r(formula: str, names: list[str]) -> None:
    d, _ = design(formula)
    assert list(d.names) == names
    assert d.matrix.shape[1] == len(names)


def test_coding_values() -> None:
    d, data = design("frequency ~ gender * attitude")
    frame = data.frame
    male = (frame["gender"] == "M").to_numpy()
    pol = (frame["attitude"] == "pol").to_numpy()
    np.testing.assert_array_equal(d.matrix[:, 0], 1.0)
    np.testing.assert_array_equal(d.matrix[:, 1], male.astype(float))
    np.testing.assert_array_equal(d.matrix[:, 3], (male & pol).astype(float))
    assert np.linalg.matrix_rank(d.matrix) == d.matrix.shape[1]
