"""Transforms in formulas: parsed into parity's own tree, computed by parity, hostile
text refused in one line."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from parity.errors import DataError, FormulaError, ParityError
from parity.rows.derived import orthogonal_poly
from parity.rows.prepare import prepare
from parity.spec.grammar import parse_formula


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "y": rng.uniform(1.0, 5.0, n), "x": np.arange(n) % 10 * 1.0,
        "g": [f"s{i % 5}" for i in range(n)],
    })


@pytest.mark.parametrize(("formula", "written"), [
    ("log(y) ~ poly(x, 2) + (1 | g)",
     "log(y) ~ 1 + poly(x, 2) + (1 | g)"),
    ("y ~ scale(x) + I(x^2) + (x | g)", "y ~ 1 + scale(x) + I(x^2) + (1 + x | g)"),
    ("sqrt(y) ~ exp(x/10) + (1 | g)", "sqrt(y) ~ 1 + exp(x/10) + (1 | g)"),
    ("y ~ I(-x^2 + (x*y2)/3.50) + log1p(abs(x)):g",
     "y ~ 1 + I(-x^2 + (x * y2)/3.5) + log1p(abs(x)):g"),
])
def test_transforms_keep_lme4_names_and_give_engines_plain_ones(
        formula: str, written: str) -> None:
    spec = parse_formula(formula)
    assert spec.written_formula() == written
    engine_text = spec.lme4_formula()
    assert "(" not in engine_text.split("~")[0]
    assert all(d.alias in engine_text for d in spec.derived)
    assert parse_formula(engine_text) == spec.__class__(
        spec.response, spec.intercept, spec.fixed, spec.random)
    assert parse_formula(written) == spec


def test_one_expression_used_twice_is_one_column() -> None:
    spec = parse_formula("y ~ log(x) + (log(x) | g)")
    assert [d.name for d in spec.derived] == ["log(x)"]
    assert spec.source_columns() == ("y", "x", "g")


def test_derived_columns_are_computed_as_r_computes_them() -> None:
    frame = _frame()
    spec = parse_formula("log(y) ~ scale(x) + I(x^2) + exp(x/10) + (1 | g)")
    data = prepare(frame, spec)
    by_name = {d.name: d.alias for d in spec.derived}
    out = data.frame
    np.testing.assert_allclose(out[by_name["log(y)"]], np.log(frame["y"]))
    x = frame["x"].to_numpy()
    np.testing.assert_allclose(out[by_name["scale(x)"]], (x - x.mean()) / x.std(ddof=1))
    np.testing.assert_allclose(out[by_name["I(x^2)"]], x ** 2)
    np.testing.assert_allclose(out[by_name["exp(x/10)"]], np.exp(x / 10))
    assert "x" not in out.columns


def test_poly_is_r_orthogonal_basis() -> None:
    # R: poly(0:9, 2), to 7 digits.
    basis = orthogonal_poly(np.arange(10.0), 2, "poly(x, 2)")
    np.testing.assert_allclose(basis[:3, 0], [-0.49543369, -0.38533732, -0.27524094],
                               rtol=1e-7)
    np.testing.assert_allclose(basis[:3, 1], [0.52223297, 0.17407766, -0.08703883],
                               rtol=1e-7)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)


@pytest.mark.parametrize(("formula", "fragment"), [
    ('y ~ system("x")', "function 'system' at position 5 is not allowed"),
    ("y ~ x + eval(x)", "the allowed ones are log, log2, log10, log1p, exp, sqrt, abs, "
                        "scale, poly, I"),
    ("y ~ I(log(x))", "I(...) may hold only columns, numbers and + - * / ^"),
    ("y ~ I(y; q())", "character ';'"),
    ("y ~ `x`", "character '`'"),
    ("y ~ I(x) + I(`q()`)", "character '`'"),
    ("y ~ log(" * 1 + "log(" * 39 + "x" + ")" * 40 + " + g", "nest deeper than 10"),
    ("y ~ poly(x, 2.5)", "whole degree"),
    ("y ~ poly(x)", "takes 2 arguments"),
    ("y ~ log(x, 2)", "takes 1 argument"),
    ("poly(y, 2) ~ x", "cannot be the response"),
    ("y ~ log(poly(x, 2))", "must be a term of its own"),
    ("y ~ x + (1 | log(g))", "grouping column"),
    ("y ~ log(TRUE)", "reserved word"),
])
def test_hostile_formulas_are_refused_in_one_line(formula: str, fragment: str) -> None:
    start = time.perf_counter()
    with pytest.raises(FormulaError) as err:
        parse_formula(formula)
    # A bound against a hang or runaway backtracking, not a speed target: it holds with
    # the machine's other core busy (make test runs two environments side by side).
    assert time.perf_counter() - start < 0.5
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("formula", "change", "fragment"), [
    ("y ~ poly(x, 50) + (1 | g)", None,
     "poly(x, 50): the degree (50) must be below the number of distinct values of its "
     "argument (10)"),
    ("log(y) ~ x + (1 | g)", ("y", 6, 0.0), "log(y) is not a finite number at row 7 (y = 0.0)"),
    ("y ~ sqrt(x) + (1 | g)", ("x", 2, -1.0), "sqrt(x) is not a finite number at row 3"),
    ("y ~ exp(x*1000) + (1 | g)", None, "exp(x * 1000) is not a finite number at row"),
    ("y ~ log(g) + (1 | g)", None, "column 'g' is not numeric"),
])
def test_hostile_data_is_refused_naming_the_row(
        formula: str, change: tuple[str, int, float] | None, fragment: str) -> None:
    frame = _frame()
    if change is not None:
        frame.loc[change[1], change[0]] = change[2]
    with pytest.raises(DataError) as err:
        prepare(frame, parse_formula(formula))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_an_alias_named_column_is_refused() -> None:
    frame = _frame().assign(parity_dv1_=1.0)
    with pytest.raises(ParityError, match="keeps for computed columns"):
        prepare(frame, parse_formula("y ~ log(x + 1) + (1 | g)"))


def test_aliases_are_renamed_in_every_name_a_fit_carries() -> None:
    spec = parse_formula("log(y) ~ poly(x, 2):g + (scale(x) | g)")
    names = {d.alias: d.name for d in spec.derived}
    alias = {v: k for k, v in names.items()}
    assert spec.rename(f"{alias['poly(x, 2)2']}:gs1") == "poly(x, 2)2:gs1"
    assert spec.rename(f"corr(g: (Intercept), {alias['scale(x)']})") == \
        "corr(g: (Intercept), scale(x))"
    assert spec.rename("parity_dv99_") == "parity_dv99_"


def test_a_fit_is_renamed_terms_formula_and_priors() -> None:
    from parity.pipeline.naming import written_names
    from parity.schema import Fit, FixedEffect, Provenance, VarianceComponent

    spec = parse_formula("sqrt(y) ~ exp(x/10) + (exp(x/10) | g)")
    alias = {d.name: d.alias for d in spec.derived}["exp(x/10)"]
    fit = Fit(model="m", formula="f", engine="bambi", status="ok", reason=None, n_obs=1,
              n_dropped=0,
              fixed_effects=(FixedEffect(alias, 1.0, 0.1, 0.8, 1.2),),
              variance_components=(VarianceComponent("g", "(Intercept)", alias, "corr", 0.1),),
              provenance=Provenance("1", None, {"priors": {alias: "Normal()"}}, 0.0),
              engine_formula=spec.lme4_formula())
    named = written_names(fit, spec)
    assert named.fixed_effects[0].term == "exp(x/10)"
    assert named.variance_components[0].term2 == "exp(x/10)"
    assert named.provenance.settings["priors"] == {"exp(x/10)": "Normal()"}
    assert named.engine_formula == "sqrt(y) ~ 1 + exp(x/10) + (1 + exp(x/10) | g)"
