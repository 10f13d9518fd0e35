"""The grammar, tested by generated input: nothing outside it is accepted, and every
formula inside it reaches the engines as the same model.

(a) Random text, biased towards formula-like strings and towards the characters an
    injection needs: either the parser refuses it, or an independent tokenizer finds
    only allowed tokens, and none of a quote, backtick, dot, call or number other than
    0/1 in it.
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need
from parity.engines.lme4 import r_script_path
from parity.errors import FormulaError
from parity.spec.grammar import parse_formula
from parity.spec.spec import ModelSpec

R_RESERVED = {"TRUE", "FALSE", "NULL", "NA", "NaN", "Inf", "if", "else", "repeat", "while",
              "function", "for", "next", "break", "in", "T", "F", "NA_integer_", "NA_real_",
              "NA_character_", "NA_complex_"}
RESERVED = R_RESERVED | set(keyword.kwlist) | set(keyword.softkwlist)
ALLOWED_OPS = {"~", "+", "-", "*", "/", ":", "(", ")", "|", "||"}
_TOKENS = re.compile(r"\|\||[~+\-*/:()|]|[A-Za-z][A-Za-z0-9_]*|[0-9]+|\S")

COLUMNS = ("a", "b", "c", "d")
GROUPS = ("g", "h")
FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def only_allowed_tokens(text: str) -> bool:
    """An independent check of what the grammar's tokens are."""
    for tok in _TOKENS.findall(text):
        if tok in ALLOWED_OPS or tok in ("0", "1"):
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
        return
    assert only_allowed_tokens(text), text
    assert not re.search(r"['\"`.]", text)
    assert not re.search(r"[A-Za-z0-9_)]\s*\(", text), "a call was accepted"
    assert all(n in ("0", "1") for n in re.findall(r"(?<![A-Za-z0-9_])[0-9]+", text))
    names = set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", text))
    assert set(spec.variables()) <= names


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
