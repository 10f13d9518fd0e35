"""The grammar, tested by generated input: nothing outside it is accepted, and every
formula inside it reaches the engines as the same model.

(a) Random text, biased towards formula-like strings and towards the characters an
    injection needs: either the parser refuses it in one line, or an independent
    tokenizer finds only allowed tokens, no quote or backtick, no call but to the
    allowed transforms, and no number but 0/1 outside a call.
(b) Random formula trees: the fixed terms the parser finds equal an independent
    expansion of R's formula algebra, and rendering the spec for lme4 then parsing it
    again gives the same spec.
(c) The lme4 text of generated specs, read by R itself (parity's R-side checker, then
    R's `terms()`), has the terms, order and names parity's spec has.
"""

from __future__ import annotations

import json
import keyword
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import need
from parity.engines.lme4 import r_script_path
from parity.errors import FormulaError
from parity.spec.grammar import parse_formula
from parity.spec.spec import ModelSpec, RandomTerm, Term

R_RESERVED = {"TRUE", "FALSE", "NULL", "NA", "NaN", "Inf", "if", "else", "repeat", "while",
              "function", "for", "next", "break", "in", "T", "F", "NA_integer_", "NA_real_",
              "NA_character_", "NA_complex_"}
RESERVED = R_RESERVED | set(keyword.kwlist) | set(keyword.softkwlist)
ALLOWED_OPS = {"~", "+", "-", "*", "/", ":", "(", ")", "|", "||", "^", ","}
ALLOWED_CALLS = {"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "scale", "poly", "I"}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+")
_TOKENS = re.compile(r"\|\||[~+\-*/:()|^,]|[A-Za-z][A-Za-z0-9_]*|" + _NUMBER.pattern + r"|\S")

COLUMNS = ("a", "b", "c", "d")
GROUPS = ("g", "h")
FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def only_allowed_tokens(text: str) -> bool:
    """An independent check of what the grammar's tokens are."""
    for tok in _TOKENS.findall(text):
        if tok in ALLOWED_OPS or _NUMBER.fullmatch(tok):
            continue
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", tok) and tok not in RESERVED:
            continue
        return False
    return True


# --- (a) text ------------------------------------------------------------------------

HOSTILE = "'\"`.$@[]{};,=!&^%#<>?\\_"
ALPHABET = "abgyxXT01239 ~+-*/:()|" + HOSTILE
PIECES = ["y", "a", "b", "g", "x1", "0", "1", "2", "10", "~", "+", "-", "*", "/", ":", "(",
          ")", "|", "||", " ", "'", '"', "`", ".", "$", "@", "[", "]", ";", ",", "=", "!",
          "system", "__import__", "os", "TRUE", "if", "lambda", "I", "log", "%in%", "^",
          "\\", "\n", "{", "}", "#", "::"]

random_texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=40),
    st.lists(st.sampled_from(PIECES), max_size=20).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=16).map(lambda p: "y ~ " + " ".join(p)),
)


def _insert(text: str, at: int, piece: str) -> str:
    at %= len(text) + 1
    return text[:at] + piece + text[at:]


@FAST
@given(random_texts)
def test_nothing_outside_the_grammar_is_accepted(text: str) -> None:
    _check_text(text)


def _check_text(text: str) -> None:
    try:
        spec = parse_formula(text)
    except FormulaError as exc:
        assert str(exc).startswith("formula: ")
        assert "\n" not in str(exc)
        return
    assert only_allowed_tokens(text), text
    assert not re.search(r"['\"`$@\[\]{};=!&%#<>?\\]", text)
    for callee in re.findall(r"([A-Za-z0-9_.)]*)\s*\(", text):
        assert callee == "" or callee in ALLOWED_CALLS, f"a call to {callee!r} was accepted"
    assert "." not in _NUMBER.sub("", text)
    assert _numbers_outside_calls(text) <= {"0", "1"}
    names = set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", text))
    assert set(spec.source_columns()) <= names


def _numbers_outside_calls(text: str) -> set[str]:
    """Numbers written outside every call's parentheses (only 0 and 1 may be)."""
    out: set[str] = set()
    stack: list[bool] = []
    for m in _TOKENS.finditer(text):
        tok = m.group(0)
        if tok == "(":
            callee = re.search(r"([A-Za-z][A-Za-z0-9_]*)\s*$", text[:m.start()])
            stack.append(callee is not None)
        elif tok == ")" and stack:
            stack.pop()
        elif _NUMBER.fullmatch(tok) and not any(stack):
            out.add(tok)
    return out


@pytest.mark.parametrize(
    "text",
    [
        "frequency ~ gender + system('touch /tmp/x')",
        "frequency ~ gender + `system('touch /tmp/x')`",
        "frequency ~ gender + __import__('os').system('touch /tmp/x')",
        "frequency ~ gender + eval(parse(text = 'x'))",
        "frequency ~ gender + a$b",
        "frequency ~ gender + a@b",
        "frequency ~ gender + x[1]",
        "frequency ~ gender; system('x')",
        "frequency ~ gender\nsystem('x')",
        "frequency ~ gender + {x}",
        "frequency ~ gender + lambda",
        "frequency ~ gender + (1 | subject)(x)",
    ],
)
def test_known_injections_are_refused(text: str) -> None:
    with pytest.raises(FormulaError):
        parse_formula(text)


# --- (b) trees -----------------------------------------------------------------------

Expansion = frozenset[frozenset[str]]


@dataclass(frozen=True)
class Node:
    """A formula tree: text as written, and R's expansion computed independently."""

    text: str
    terms: Expansion


def _variables(e: Expansion) -> frozenset[str]:
    return frozenset().union(*e) if e else frozenset()


def _binary(op: str, left: Node, right: Node) -> Node:
    a, b = left.terms, right.terms
    inter = frozenset(x | y for x in a for y in b)
    terms = {
        "+": a | b,
        "-": a - b,
        ":": inter,
        "*": a | b | inter,
        "/": a | frozenset(_variables(a) | y for y in b) if a else b,
    }[op]
    return Node(f"({left.text} {op} {right.text})", terms)


names = st.sampled_from(COLUMNS).map(lambda c: Node(c, frozenset({frozenset({c})})))
trees = st.recursive(
    names,
    lambda inner: st.tuples(st.sampled_from(["+", "-", ":", "*", "/"]), inner, inner)
    .map(lambda t: _binary(*t)),
    max_leaves=6,
)


@dataclass(frozen=True)
class Block:
    text: str
    group: str
    correlated: bool
    intercept: bool
    terms: Expansion


blocks = st.builds(
    lambda lhs, icpt, group, bar: Block(
        f"({icpt}{lhs.text} {bar} {group})", group, bar == "|",
        icpt != "0 + ", lhs.terms),
    st.one_of(trees.filter(lambda t: len(t.terms) <= 3)),
    st.sampled_from(["", "1 + ", "0 + "]),
    st.sampled_from(["g", "h", "g:h"]),
    st.sampled_from(["|", "||"]),
).filter(lambda b: b.intercept or b.terms)


@dataclass(frozen=True)
class Formula:
    text: str
    intercept: bool
    fixed: Expansion
    blocks: tuple[Block, ...]


formulas = st.builds(
    lambda fixed, icpt, bl: Formula(
        "y ~ " + " + ".join([p for p in (icpt.strip(" +"), fixed.text) if p]
                            + [b.text for b in bl]),
        icpt != "0 + ", fixed.terms, tuple(bl)),
    trees,
    st.sampled_from(["", "1 + ", "0 + "]),
    st.lists(blocks, max_size=3),
).filter(lambda f: f.intercept or f.fixed)


def _expected_blocks(f: Formula) -> list[tuple[str, bool, bool, Expansion]]:
    return [(b.group, b.correlated, b.intercept, b.terms) for b in f.blocks]


def _blocks_of(spec: ModelSpec) -> list[tuple[str, bool, bool, Expansion]]:
    return [(b.group_label, b.correlated, b.intercept,
             frozenset(frozenset(t.variables) for t in b.terms)) for b in spec.random]


@FAST
@given(formulas)
def test_trees_expand_as_r_does_and_round_trip(f: Formula) -> None:
    spec = parse_formula(f.text)
    assert spec.intercept is f.intercept
    assert frozenset(frozenset(t.variables) for t in spec.fixed) == f.fixed
    assert _blocks_of(spec) == _expected_blocks(f)
    rendered = spec.lme4_formula()
    assert parse_formula(rendered) == spec
    # Terms by degree, as R orders them.
    degrees = [len(t.variables) for t in spec.fixed]
    assert degrees == sorted(degrees)


@FAST
@given(formulas, st.lists(st.tuples(st.integers(0, 300), st.sampled_from(PIECES)),
                          min_size=1, max_size=3))
def test_valid_formulas_with_pieces_inserted(f: Formula,
                                             edits: list[tuple[int, str]]) -> None:
    """Near misses: a formula inside the grammar with text slipped in, the way an
    injection would be (about half of them are still formulas)."""
    text = f.text
    for at, piece in edits:
        text = _insert(text, at, piece)
    _check_text(text)


# --- (c) R reads the rendered text as the same model -----------------------------------

R_READER = r"""
source(commandArgs(trailingOnly = TRUE)[[1]])
columns <- c("y", "a", "b", "c", "d", "g", "h")
labels_of <- function(rhs) {
  tt <- stats::terms(stats::as.formula(call("~", rhs)))
  list(terms = as.list(attr(tt, "term.labels")), intercept = attr(tt, "intercept") == 1)
}
top_terms <- function(e) {
  if (is.call(e) && identical(e[[1]], as.symbol("+")) && length(e) == 3) {
    return(c(top_terms(e[[2]]), list(e[[3]])))
  }
  list(e)
}
for (line in readLines(commandArgs(trailingOnly = TRUE)[[2]])) {
  expr <- str2lang(line)
  parity_check_formula(expr, columns)
  f <- stats::formula(expr)
  fixed <- labels_of(lme4::nobars(f)[[3]])
  blocks <- list()
  for (t in top_terms(f[[3]])) {
    if (is.call(t) && identical(t[[1]], as.symbol("("))) {
      bar <- t[[2]]
      lhs <- labels_of(bar[[2]])
      blocks[[length(blocks) + 1]] <- list(
        group = paste(deparse(bar[[3]]), collapse = ""), bar = as.character(bar[[1]]),
        terms = lhs$terms, intercept = lhs$intercept)
    }
  }
  cat(jsonlite::toJSON(list(fixed = fixed$terms, intercept = fixed$intercept,
                            blocks = blocks), auto_unbox = TRUE), "\n", sep = "")
}
"""


@pytest.mark.r
@settings(max_examples=3, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(formulas, min_size=40, max_size=40))
def test_r_reads_the_rendered_formula_as_the_same_model(batch: list[Formula]) -> None:
    need("R")
    specs = [parse_formula(f.text) for f in batch]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "formulas.txt"
        lines.write_text("\n".join(s.lme4_formula() for s in specs) + "\n")
        reader = Path(tmp) / "reader.R"
        reader.write_text(R_READER)
        proc = subprocess.run(["Rscript", str(reader), str(r_script_path()), str(lines)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert len(rows) == len(specs)
    for spec, row in zip(specs, rows, strict=True):
        assert row["fixed"] == [t.label for t in spec.fixed], spec.lme4_formula()
        assert row["intercept"] is spec.intercept
        got = [(b["group"], b["bar"] == "|", b["intercept"], b["terms"]) for b in row["blocks"]]
        want = [(b.group_label, b.correlated, b.intercept, [t.label for t in b.terms])
                for b in spec.random]
        assert got == want, spec.lme4_formula()


# --- (d) transforms: parity's labels are R's, and survive a round trip -------------------

numbers = st.sampled_from(["2", "10", "0.5", "3.50", "1e3"])
arithmetic = st.recursive(
    st.one_of(st.sampled_from(COLUMNS), numbers),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^"]), inner)
        .map(lambda t: f"{t[0]}{t[1]}{t[2]}" if t[1] in "/^" else f"{t[0]} {t[1]} {t[2]}"),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"-{e}"),
    ),
    max_leaves=4,
).filter(lambda e: any(c in e for c in COLUMNS))
calls = st.recursive(
    st.one_of(st.sampled_from(COLUMNS), arithmetic.map(lambda e: f"I({e})")),
    lambda inner: st.tuples(
        st.sampled_from(["log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "scale"]),
        inner).map(lambda t: f"{t[0]}({t[1]})"),
    max_leaves=3,
).filter(lambda e: "(" in e)
polys = st.tuples(st.sampled_from(COLUMNS), st.integers(1, 3)).map(
    lambda t: f"poly({t[0]}, {t[1]})")
# An exposure offset (none, a column, or a transform of one), where R keeps it: among the
# fixed terms, outside interactions and bars.
offsets = st.one_of(st.just(""), st.sampled_from(COLUMNS).map(lambda c: f" + offset({c})"),
                    calls.filter(lambda e: not e.startswith("I(")).map(
                        lambda e: f" + offset({e})"))
transformed = st.builds(
    lambda lhs, first, second, offset, group:
        f"{lhs} ~ {first} + a{offset} + {second}:b + (1 | {group})",
    st.sampled_from(["y", "log(y)", "sqrt(y)"]), st.one_of(calls, polys),
    st.one_of(calls, polys), offsets, st.sampled_from(GROUPS))


def _offsets(spec: ModelSpec) -> list[str]:
    """The model's offsets as written (`offset(log(n))`), in order."""
    names = {d.alias: d.name for d in spec.derived}
    return [names[a] for a in spec.offset]


def _without_aliases(spec: ModelSpec) -> ModelSpec:
    """The spec with each alias replaced by its lme4 name (aliases follow the order
    the text names them in, so two texts of one model can number them differently)."""
    def terms(ts: tuple[Term, ...]) -> tuple[Term, ...]:
        return tuple(Term(tuple(map(spec.rename, t.variables))) for t in ts)
    return ModelSpec(spec.rename(spec.response), spec.intercept, terms(spec.fixed),
                     tuple(RandomTerm(b.group, b.intercept, terms(b.terms), b.correlated)
                           for b in spec.random))


@FAST
@given(transformed)
def test_transformed_formulas_round_trip(text: str) -> None:
    spec = parse_formula(text)
    # The engines' text holds no call but `offset(alias)`, the one R's formula check lets
    # through (on a column parity computed).
    engines_text = re.sub(r"offset\(parity_dv[0-9]+_\)", "", spec.lme4_formula())
    assert engines_text.count("(") == 1, "a call reached the engines' text"
    again = parse_formula(spec.written_formula())
    assert _without_aliases(again) == _without_aliases(spec)
    assert _offsets(again) == _offsets(spec)
    assert set(spec.source_columns()) <= {"y", *COLUMNS, *GROUPS}


TERMS_READER = r"""
for (line in readLines(commandArgs(trailingOnly = TRUE)[[1]])) {
  tt <- stats::terms(stats::as.formula(line))
  vars <- attr(tt, "variables")
  offs <- vapply(attr(tt, "offset"), function(i) deparse(vars[[i + 1]]), "")
  cat(jsonlite::toJSON(list(response = deparse(stats::as.formula(line)[[2]]),
                            terms = attr(tt, "term.labels"), offsets = offs)),
      "\n", sep = "")
}
"""


@pytest.mark.r
@settings(max_examples=2, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(st.lists(transformed, min_size=40, max_size=40))
def test_r_reads_the_transforms_as_parity_names_them(batch: list[str]) -> None:
    """R's `terms()` on the analyst's text names every transformed term as parity does
    (a `poly` term once, where parity has one name per column)."""
    need("R")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "formulas.txt"
        lines.write_text("\n".join(batch) + "\n")
        reader = Path(tmp) / "reader.R"
        reader.write_text(TERMS_READER)
        proc = subprocess.run(["Rscript", str(reader), str(lines)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    for text, row in zip(batch, rows, strict=True):
        spec = _without_aliases(parse_formula(text))
        assert row["response"] == [spec.response], text
        fixed = list(dict.fromkeys(re.sub(r"(poly\([^()]*\))[0-9]+", r"\1", t.label)
                                   for t in spec.fixed))
        assert [t for t in row["terms"] if "|" not in t] == fixed, text
        assert row["offsets"] == _offsets(parse_formula(text)), text
