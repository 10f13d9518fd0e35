"""One set of rows and one level order for every engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parity.errors import DataError
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness
from parity.rows.prepare import level_order, prepare
from parity.spec.grammar import parse_formula


def test_shipped_politeness_has_its_na() -> None:
    df = politeness()
    assert df.shape == (84, 5)
    assert list(df.columns) == ["subject", "gender", "scenario", "attitude", "frequency"]
    assert df["frequency"].isna().sum() == 1


def test_listwise_deletion_is_counted() -> None:
    spec = parse_formula("frequency ~ gender + attitude + (1 | subject)")
    prepared = prepare(politeness(), spec, POLITENESS_CATEGORICAL)
    assert prepared.n_obs == 83
    assert prepared.n_dropped == 1
    assert list(prepared.frame.columns) == ["frequency", "gender", "attitude", "subject"]
    assert not prepared.frame.isna().any().any()


def test_levels_first_is_reference_as_in_r() -> None:
    spec = parse_formula("frequency ~ gender + attitude + (1 | scenario)")
    prepared = prepare(politeness(), spec, POLITENESS_CATEGORICAL)
    assert prepared.levels["gender"] == ("F", "M")
    assert prepared.levels["attitude"] == ("inf", "pol")
    assert prepared.levels["scenario"] == tuple(str(i) for i in range(1, 8))
    assert list(prepared.frame["gender"].cat.categories) == ["F", "M"]


def test_numeric_levels_sort_numerically() -> None:
    assert level_order(pd.Series([10, 2, 1, 2])) == ("1", "2", "10")
    assert level_order(pd.Series([1.0, 3.0])) == ("1", "3")
    assert level_order(pd.Series(["b", "B", "a"])) == ("B", "a", "b")


def test_levels_come_from_complete_rows() -> None:
    df = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0], "g": ["a", "b", "c", "a"]})
    prepared = prepare(df, parse_formula("y ~ g"), ["g"])
    assert prepared.levels["g"] == ("a", "b")
    assert prepared.n_dropped == 1


@pytest.mark.parametrize(
    ("frame", "formula", "message"),
    [
        (pd.DataFrame({"y": [1.0, 2.0], "x": ["a", "b"]}), "y ~ z", "'z' not in the data"),
        (pd.DataFrame({"y": ["a", "b"], "x": [1.0, 2.0]}), "y ~ x", "not numeric"),
        (pd.DataFrame({"y": [1.0, 2.0], "x": ["a", "a"]}), "y ~ x", "only one level"),
        (pd.DataFrame({"y": [np.nan, np.nan], "x": [1.0, 2.0]}), "y ~ x", "no complete rows"),
    ],
)
def test_bad_data_is_a_clear_error(frame: pd.DataFrame, formula: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        prepare(frame, parse_formula(formula), ["x"] if frame["x"].dtype == object else [])
