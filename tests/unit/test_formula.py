"""The grammar: what it accepts, what it refuses, and the spec it builds."""

from __future__ import annotations

import pytest

from parity.errors import FormulaError
from parity.inputs.seed import seed_models
from parity.spec.grammar import parse_formula
from parity.spec.spec import Term


def labels(formula: str) -> list[str]:
    return [t.label for t in parse_formula(formula).fixed]


@pytest.mark.parametrize(
    ("formula", "intercept", "terms"),
    [
        ("y ~ a + b", True, ["a", "b"]),
        ("y ~ 0 + a + b", False, ["a", "b"]),
        ("y ~ -1 + a", False, ["a"]),
        ("y ~ a - 1", False, ["a"]),
        ("y ~ a * b", True, ["a", "b", "a:b"]),
        ("y ~ a:b + a", True, ["a", "a:b"]),
        ("y ~ a * b - a:b", True, ["a", "b"]),
        ("y ~ a / b", True, ["a", "a:b"]),
        # Variables inside a term follow their first appearance in the text lme4 is
        # given (terms by degree), so R names the columns as parity does.
        ("y ~ (a + b):c", True, ["a:c", "c:b"]),
        ("y ~ a*b*c", True, ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]),
        ("y ~ b:a + a + b", True, ["a", "b", "a:b"]),
        ("y ~ b:a", True, ["b:a"]),
    ],
)
def test_fixed_terms_expand_like_r(formula: str, intercept: bool, terms: list[str]) -> None:
    spec = parse_formula(formula)
    assert spec.intercept is intercept
    assert [t.label for t in spec.fixed] == terms


def test_random_blocks() -> None:
    spec = parse_formula("y ~ x + (x | g) + (0 + x || h) + (1 | a/b)")
    blocks = [(b.group_label, b.intercept, [t.label for t in b.terms], b.correlated)
              for b in spec.random]
    assert blocks == [
        ("g", True, ["x"], True),
        ("h", False, ["x"], False),
        ("a", True, [], True),
        ("a:b", True, [], True),
    ]
    assert spec.grouping_factors == ("g", "h", "a", "b")
    assert spec.variables() == ("y", "x", "g", "h", "a", "b")


@pytest.mark.parametrize("model", seed_models(), ids=lambda m: m.name)
def test_seed_models_render_lme4_text(model) -> None:  # type: ignore[no-untyped-def]
    rendered = model.spec.lme4_formula()
    assert parse_formula(rendered) == model.spec


@pytest.mark.parametrize(
    ("formula", "fragment"),
    [
        ("frequency ~ gender + system('touch /tmp/x')", "function 'system'"),
        ("frequency ~ gender + `system('x')`", "character '`'"),
        ("frequency ~ gender + __import__('os').system('x')", "character '_'"),
        ("frequency ~ gender + 2", "number '2'"),
        ("frequency ~ gender + a.b", "character '.'"),
        ("frequency ~ gender + TRUE", "reserved word"),
        ("frequency ~ gender +", "expected a column name"),
        ("frequency gender", "expected '~'"),
        ("frequency ~ (1 | subject) * gender", "applies to columns"),
        ("frequency ~ gender + (gender + (1 | s) | subject)", "top-level"),
        ("", "empty"),
        ("frequency ~ frequency + gender", "response"),
        ("frequency ~ 0", "no fixed terms"),
    ],
)
def test_refuses_what_is_not_in_the_grammar(formula: str, fragment: str) -> None:
    with pytest.raises(FormulaError) as err:
        parse_formula(formula)
    assert fragment in str(err.value)
    assert str(err.value).startswith("formula:")


def test_error_names_position() -> None:
    with pytest.raises(FormulaError, match="position 22"):
        parse_formula("frequency ~ gender + $x")


def test_term_label() -> None:
    assert Term(()).label == "1"
    assert Term(("a", "b")).label == "a:b"


# --- Reliability: parsing stays about linear in the input, with stated limits ----------

def test_a_product_of_many_columns_is_refused_quickly_with_the_limit() -> None:
    import time

    from parity.spec.grammar import MAX_TERMS

    text = "y ~ " + "*".join(f"x{i}" for i in range(16)) + " + (1|g1)"
    start = time.perf_counter()
    with pytest.raises(FormulaError, match=f"more than {MAX_TERMS} terms") as info:
        parse_formula(text)
    assert time.perf_counter() - start < 5.0
    assert len(str(info.value)) < 300  # one short line, not the expansion


def test_deep_parentheses_are_refused_with_the_limit() -> None:
    from parity.spec.grammar import MAX_DEPTH

    text = "y ~ " + "(" * 300 + "x" + ")" * 300
    with pytest.raises(FormulaError, match=f"deeper than {MAX_DEPTH}"):
        parse_formula(text)
    ok = "y ~ " + "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert parse_formula(ok).fixed[0].variables == ("x",)


def test_a_formula_past_the_length_limit_is_refused() -> None:
    from parity.spec.grammar import MAX_LENGTH

    with pytest.raises(FormulaError, match=f"limit is {MAX_LENGTH}"):
        parse_formula("y ~ " + " + ".join(f"x{i}" for i in range(2000)))


def test_a_product_under_the_limit_still_expands() -> None:
    spec = parse_formula("y ~ " + "*".join(f"x{i}" for i in range(7)))
    assert len(spec.fixed) == 2 ** 7 - 1
