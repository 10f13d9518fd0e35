"""A formula grammar of parity's own, so that no formula an analyst types is ever evaluated.

R's `model.frame()` evaluates any call inside a formula and Python formula libraries
evaluate Python expressions; a formula shared in a colleague's file must not run code on
either side. This module accepts only:

    formula := NAME '~' sum
    sum     := ['-'] nest (('+' | '-') nest)*
    nest    := inter (('*' | '/') inter)*
    inter   := atom (':' atom)*
    atom    := NAME | '0' | '1' | '(' sum ')' | '(' sum ('|' | '||') group ')'
    group   := NAME ((':' | '/') NAME)*

with NAME a plain identifier (letters, digits, underscore; starting with a letter) that
is not a reserved word of R or Python. Bar blocks may appear only as top-level terms of
the right-hand side. The result is a :class:`~parity.spec.spec.ModelSpec`; every engine's
formula text is rendered from it, never copied from the input.
"""

from __future__ import annotations

import itertools
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

from parity.errors import FormulaError
from parity.spec.spec import ModelSpec, RandomTerm, Term

_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "TRUE", "FALSE", "NULL", "NA", "NaN", "Inf", "if", "else", "repeat", "while",
    "function", "for", "next", "break", "in", "NA_integer_", "NA_real_",
    "NA_character_", "NA_complex_", "T", "F",
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\s*(?:(\|\|)|([~+\-*/:()|])|([A-Za-z][A-Za-z0-9_]*)|([0-9]+))")


@dataclass(frozen=True)
class _Tok:
    kind: str  # "op", "name", "num", "end"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FormulaError(
                f"character {text[pos]!r} at position {pos + 1} is not allowed in a formula "
                "(only column names, 0, 1, ~ + - * / : ( ) | || are)"
            )
        start = m.start(m.lastindex or 0)
        if m.group(1) or m.group(2):
            toks.append(_Tok("op", m.group(1) or m.group(2), start))
        elif m.group(3):
            name = m.group(3)
            if name in _RESERVED:
                raise FormulaError(
                    f"{name!r} at position {start + 1} is a reserved word, not a column name"
                )
            toks.append(_Tok("name", name, start))
        else:
            num = m.group(4)
            if num not in ("0", "1"):
                raise FormulaError(
                    f"number {num!r} at position {start + 1} is not allowed (only 0 and 1)"
                )
            toks.append(_Tok("num", num, start))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


# An expanded right-hand side: ordered terms (each a tuple of variables; () is the
# intercept), whether the intercept was removed, and the bar blocks found at top level.
@dataclass
class _Terms:
    terms: list[tuple[str, ...]]
    intercept: bool | None = None  # None: not said
    blocks: list[RandomTerm] | None = None


# Limits that keep parsing about linear in the formula's length: `x0*x1*…*x15` (66
# characters) expands to 65,535 terms, and 300 nested parentheses would exhaust Python's
# recursion. Both are refused with the limit named, long before either could hurt.
MAX_TERMS = 256
MAX_DEPTH = 32
MAX_LENGTH = 5000


def _too_many(count: int) -> FormulaError:
    return FormulaError(f"the formula expands to more than {MAX_TERMS} terms "
                        f"(limit {MAX_TERMS}; {count} or more here); write the interactions "
                        "you mean instead of a product of many columns")


def _unique(terms: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Terms in order, each set of variables once; past MAX_TERMS the expansion stops at
    once, so a product of many columns costs no more than its first MAX_TERMS terms."""
    out: list[tuple[str, ...]] = []
    keys: set[frozenset[str]] = set()
    for t in terms:
        key = frozenset(t)
        if key not in keys:
            out.append(t)
            keys.add(key)
            if len(out) > MAX_TERMS:
                raise _too_many(len(out))
    return out


def _add(a: list[tuple[str, ...]], b: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return _unique(itertools.chain(a, b))


def _interact(a: list[tuple[str, ...]], b: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return _unique(x + tuple(v for v in y if v not in x) for x in a for y in b)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def fail(self, what: str) -> FormulaError:
        t = self.tok
        found = "end of formula" if t.kind == "end" else repr(t.text)
        return FormulaError(f"{what}, found {found} at position {t.pos + 1}")

    def eat(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.eat(text):
            raise self.fail(f"expected {text!r}")

    def formula(self) -> tuple[str, _Terms]:
        if self.tok.kind != "name":
            raise self.fail("a formula starts with the response column")
        response = self.tok.text
        self.i += 1
        self.expect("~")
        rhs = self.sum(top=True)
        if self.tok.kind != "end":
            raise self.fail("unexpected text after the formula")
        return response, rhs

    def sum(self, top: bool) -> _Terms:
        result = _Terms(terms=[], blocks=[] if top else None)
        sign = "-" if self.eat("-") else "+"
        while True:
            part = self.nest(top)
            if sign == "+":
                result.terms = _add(result.terms, [t for t in part.terms if t])
                if part.intercept is not None:
                    result.intercept = part.intercept
                if part.blocks:
                    if result.blocks is None:
                        raise self.fail("a ( … | group) block must be a top-level term")
                    result.blocks.extend(part.blocks)
            else:
                if part.blocks:
                    raise self.fail("a ( … | group) block cannot be subtracted")
                if part.intercept is True:
                    result.intercept = False
                elif part.intercept is False:
                    raise self.fail("'- 0' is not supported; write '+ 1'")
                removed = {frozenset(t) for t in part.terms if t}
                result.terms = [t for t in result.terms if frozenset(t) not in removed]
            if self.eat("+"):
                sign = "+"
            elif self.eat("-"):
                sign = "-"
            else:
                return result

    def nest(self, top: bool) -> _Terms:
        left = self.inter(top)
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok.text
            self.i += 1
            right = self.inter(top)
            for side in (left, right):
                if side.blocks or side.intercept is not None:
                    raise self.fail(f"'{op}' applies to columns, not to 0, 1 or bar blocks")
            if op == "*":
                both = _add(left.terms, right.terms)
                left = _Terms(_add(both, _interact(left.terms, right.terms)))
            else:
                allvars: tuple[str, ...] = ()
                for t in left.terms:
                    allvars += tuple(v for v in t if v not in allvars)
                left = _Terms(_add(left.terms, _interact([allvars], right.terms)))
        return left

    def inter(self, top: bool) -> _Terms:
        left = self.atom(top)
        while self.eat(":"):
            right = self.atom(top)
            for side in (left, right):
                if side.blocks or side.intercept is not None:
                    raise self.fail("':' applies to columns, not to 0, 1 or bar blocks")
            left = _Terms(_interact(left.terms, right.terms))
        return left

    def atom(self, top: bool) -> _Terms:
        tok = self.tok
        if tok.kind == "name":
            self.i += 1
            return _Terms([(tok.text,)])
        if tok.kind == "num":
            self.i += 1
            return _Terms([], intercept=(tok.text == "1"))
        if self.eat("("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"parentheses nest deeper than {MAX_DEPTH} levels (the limit)")
            inner = self.sum(top=False)
            self.depth -= 1
            if self.tok.kind == "op" and self.tok.text in ("|", "||"):
                correlated = self.tok.text == "|"
                self.i += 1
                groups = self.group()
                self.expect(")")
                intercept = True if inner.intercept is None else inner.intercept
                terms = tuple(Term(t) for t in inner.terms if t)
                if not intercept and not terms:
                    raise self.fail("a ( … | group) block needs at least one term")
                blocks = [RandomTerm(g, intercept, terms, correlated) for g in groups]
                return _Terms([], blocks=blocks)
            self.expect(")")
            return inner
        raise self.fail("expected a column name, 0, 1 or '('")

    def group(self) -> list[tuple[str, ...]]:
        """`a/b` nests: (…|a) + (…|a:b), as in lme4."""
        if self.tok.kind != "name":
            raise self.fail("expected a grouping column after '|'")
        chain = [self.tok.text]
        self.i += 1
        nested = False
        while self.tok.kind == "op" and self.tok.text in (":", "/"):
            nested = nested or self.tok.text == "/"
            self.i += 1
            if self.tok.kind != "name":
                raise self.fail("expected a grouping column")
            chain.append(self.tok.text)
            self.i += 1
        if nested:
            return [tuple(chain[: k + 1]) for k in range(len(chain))]
        return [tuple(chain)]


def is_plain_name(name: object) -> bool:
    """Whether `name` can be written in a formula as it is: a plain identifier that is
    not a reserved word of R or Python (the rule every column a model uses must meet)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and name not in _RESERVED


def _canonical(terms: list[tuple[str, ...]]) -> tuple[Term, ...]:
    """Terms as R orders them (by degree, then as written), the variables inside each
    by their first appearance when the terms are written in that order.

    That is the order R reads back from the rendered text (`spec.lme4_formula()`), so
    lme4's column names for the formula it is given are the spec's names, and rendering
    then re-parsing gives the same spec. (R run on the analyst's own text names `b:a`
    in `y ~ b:a + a + b` after the written order; parity's text for lme4 is
    `y ~ 1 + a + b + a:b`, the same model, and every engine names it `a:b`.)
    """
    ordered = sorted(enumerate(t for t in terms if t), key=lambda p: (len(p[1]), p[0]))
    order: dict[str, int] = {}
    out: list[Term] = []
    for _, t in ordered:
        for v in t:
            order.setdefault(v, len(order))
        out.append(Term(tuple(sorted(t, key=order.__getitem__))))
    return tuple(out)


def parse_formula(text: str) -> ModelSpec:
    """Parse `text` under parity's grammar into a model spec, or raise FormulaError.

    Terms and the variables inside them are put in one canonical order (see
    :func:`_canonical`) from which every engine's names follow.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; the limit is "
                           f"{MAX_LENGTH}")
    response, rhs = _Parser(text).formula()
    fixed = _canonical(rhs.terms)
    random = tuple(
        RandomTerm(tuple(b.group), b.intercept,
                   _canonical([t.variables for t in b.terms]), b.correlated)
        for b in rhs.blocks or []
    )
    spec = ModelSpec(
        response=response,
        intercept=True if rhs.intercept is None else rhs.intercept,
        fixed=fixed,
        random=random,
    )
    used = {v for t in spec.fixed for v in t.variables}
    for block in spec.random:
        used.update(block.group)
        used.update(v for t in block.terms for v in t.variables)
    if response in used:
        raise FormulaError(f"the response {response!r} also appears on the right-hand side")
    if not spec.intercept and not spec.fixed:
        raise FormulaError("the model has no fixed terms and no intercept (statsmodels "
                           "cannot fit a model without fixed effects; write '1 +')")
    return spec
