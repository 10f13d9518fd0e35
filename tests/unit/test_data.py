"""One set of rows and one level order for every engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from parity.errors import DataError, UsageError
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


def _objects(values: Sequence[object]) -> pd.Series:
    return pd.Series(np.array(values, dtype=object))


@pytest.mark.parametrize(
    ("formula", "categorical"),
    [("y ~ x + (1 | g)", []), ("y ~ g + x", ["g"]), ("y ~ g + x", [])],
)
def test_a_number_and_its_text_in_one_column_are_refused(formula: str,
                                                         categorical: list[str]) -> None:
    """1 (int) and "1" (str) both read as level "1": refused, not merged into one group,
    whether the column is a grouping factor, declared categorical, or neither."""
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                          "x": [0.5, 1.0, 1.5, 2.0, 3.0, 2.5, 4.0, 3.5],
                          "g": _objects([1, "1", 2, "2", 3, 3, 4, 4])})
    with pytest.raises(UsageError) as info:
        prepare(frame, parse_formula(formula), categorical)
    message = str(info.value)
    assert "\n" not in message
    assert "'g'" in message and "1 (number)" in message and "'1' (text)" in message


def test_distinct_mixed_values_and_equal_numbers_are_not_a_clash() -> None:
    """Mixed types that read as different levels stay levels; 2 and 2.0 are one number."""
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                          "g": _objects([1, "a", 2, 2.0, "a", 1])})
    prepared = prepare(frame, parse_formula("y ~ g"), ["g"])
    assert prepared.levels["g"] == ("1", "2", "a")


def test_an_object_column_of_numbers_is_numeric() -> None:
    """Floats (and ints) held in an object column are the numbers they are: the response
    is accepted and a covariate stays a covariate, exactly as from a float column."""
    floats = pd.DataFrame({"y": [1.5, 2.0, 3.25, 4.0, 5.5, 6.0],
                           "x": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]})
    objects = pd.DataFrame({"y": _objects([1.5, 2, 3.25, np.float64(4.0), 5.5, 6.0]),
                            "x": _objects([0.5, 1.0, 2, 3.0, np.int64(4), 5.0])})
    spec = parse_formula("y ~ x")
    mine, theirs = prepare(objects, spec), prepare(floats, spec)
    assert mine.levels == {} and mine.frame["x"].dtype == float
    assert mine.digest() == theirs.digest()


def test_an_object_column_of_bools_is_not_numeric() -> None:
    frame = pd.DataFrame({"y": _objects([True, False, True, False]),
                          "x": [0.5, 1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="not numeric"):
        prepare(frame, parse_formula("y ~ x"))


def test_declared_integer_ids_in_an_object_column_keep_every_digit() -> None:
    """Only undeclared columns become floats: ids would merge as floats."""
    ids = [12345678901234567, 12345678901234568]
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "g": _objects(ids * 2)})
    prepared = prepare(frame, parse_formula("y ~ g"), ["g"])
    assert prepared.levels["g"] == tuple(map(str, ids))
