"""Input a model cannot use is refused before any engine runs, with the numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parity.engines.limits import check_expressible
from parity.errors import DataError, UsageError
from parity.inputs.seed import seed_models
from parity.rows.identifiable import aliased_columns
from parity.rows.prepare import level_order, prepare
from parity.spec.columns import column_hint, suggest_name, unusable_columns
from parity.spec.grammar import parse_formula
from parity.spec.models import make_model


def frame(n_groups: int = 6, per_group: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = n_groups * per_group
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "f": np.tile(["p", "q", "r"], n // 3 + 1)[:n],
        "g": np.repeat([f"s{i}" for i in range(n_groups)], per_group),
    })


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("Reaction.Time", "Reaction_Time"), ("my col", "my_col"), ("2nd", "x2nd"),
     ("TRUE", "TRUE_"), ("größe", "gr_e"), ("", "column"), ("_x", "x")],
)
def test_suggested_names_are_identifiers(name: str, suggestion: str) -> None:
    assert suggest_name(name) == suggestion


def test_hint_names_the_column_the_formula_meant() -> None:
    columns = ["Reaction.Time", "Days", "Unnamed: 0"]
    assert unusable_columns(columns) == ["Reaction.Time", "Unnamed: 0"]
    hint = column_hint("Reaction.Time ~ Days", columns)
    assert hint is not None and "'Reaction.Time' (rename it, e.g. to 'Reaction_Time')" in hint
    assert column_hint("Days ~ 1", columns) is None


def test_missing_column_error_lists_unusable_names() -> None:
    df = frame().rename(columns={"x": "x value"})
    with pytest.raises(DataError, match="'x value' \\(rename it, e.g. to 'x_value'\\)"):
        prepare(df, parse_formula("y ~ x"))


@pytest.mark.parametrize(
    ("formula", "rows", "message"),
    [
        ("y ~ x + f", frame().head(4), "4 complete rows for 4 fixed-effect columns"),
        ("y ~ x + (1 | g)", frame(n_groups=6, per_group=1), "6 levels for 6 complete rows"),
        ("y ~ x + (x | g)", frame(n_groups=6, per_group=2),
         "12 random effects \\(6 levels x 2 columns\\) for 12"),
        ("y ~ x + (1 | g)", frame().assign(g="s0"), "only one level"),
        ("y ~ f:x + x", frame().assign(x=1.0), "x are combinations"),
        ("y ~ f:g", frame(), "combinations of the columns before them"),
    ],
)
def test_too_few_rows_or_groups(formula: str, rows: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        prepare(rows, parse_formula(formula))


def test_enough_rows_pass() -> None:
    data = prepare(frame(), parse_formula("y ~ x + f + (x | g)"))
    assert data.n_obs == 30


def test_aliased_columns_are_found_in_order() -> None:
    x = np.arange(6.0)
    m = np.column_stack([np.ones(6), x, 2 * x + 1, np.zeros(6), x ** 2])
    assert aliased_columns(m, ("a", "b", "c", "d", "e")) == ["c", "d"]


def test_r_factor_level_order_is_kept() -> None:
    values = pd.Series(pd.Categorical(["lo", "hi", "mid", "hi"],
                                      categories=["lo", "mid", "hi", "unused"]))
    assert level_order(values) == ("lo", "mid", "hi")
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       "c": pd.Categorical(["b", "a", "b", "a", "b", "a"],
                                           categories=["b", "a"])})
    prepared = prepare(df, parse_formula("y ~ c"))
    assert prepared.levels["c"] == ("b", "a")
    assert list(prepared.frame["c"].cat.categories) == ["b", "a"]


def test_non_numeric_response_says_what_it_holds() -> None:
    df = frame().assign(y=["a"] * 30)
    with pytest.raises(DataError, match="'y' is not numeric \\(holds 'a'\\)"):
        prepare(df, parse_formula("y ~ x"))


@pytest.mark.parametrize("column", ["sigma", "Intercept", "mu", "chain", "draw"])
def test_bambi_names_are_refused_only_for_bambi(column: str) -> None:
    model = make_model("m", f"y ~ x + {column}")
    check_expressible([model], ["lme4", "statsmodels"])
    with pytest.raises(UsageError, match=f"Bambi cannot fit a column named '{column}'"):
        check_expressible([model], ["lme4", "bambi"])


def test_seed_models_are_expressible() -> None:
    check_expressible(seed_models(), ["lme4", "statsmodels", "bambi"])


def test_infinite_values_are_refused() -> None:
    df = frame()
    df.loc[3, "x"] = float("inf")
    with pytest.raises(DataError, match="'x' has 1 infinite value"):
        prepare(df, parse_formula("y ~ x"))
