"""A formula grammar of parity's own, so that no formula an analyst types is ever evaluated.

R's `model.frame()` evaluates any call inside a formula and Python formula libraries
evaluate Python expressions; a formula shared in a colleague's file must not run code on
either side. This module accepts only:

    formula := (NAME | call) '~' sum
    sum     := ['-'] nest (('+' | '-') nest)*
    nest    := inter (('*' | '/') inter)*
    inter   := atom (':' atom)*
    atom    := NAME | call | '0' | '1' | '(' sum ')' | '(' sum ('|' | '||') group ')'
    group   := NAME ((':' | '/') NAME)*
    call    := FN '(' expr (',' expr)* ')'
    expr    := R's arithmetic (+ - * / ^, unary -, parentheses) over NAME, NUMBER, call
    offset  := 'offset' '(' expr ')'   (a top-level term of the right-hand side only)

with FN one of :data:`parity.spec.transforms.ALLOWED` (`poly(x, k)` takes a whole k; a
call inside `I(...)` is refused; calls nest at most MAX_NESTING deep). A call is a
derived column: it enters the spec under a safe alias, and parity computes its values
(:mod:`parity.rows.derived`). An offset's expression is one too, and the spec keeps its
alias as an offset (R's meaning: added to the linear predictor, with no coefficient);
as R does, several offsets add up. Inside an interaction, a block, parentheses or
another call an offset has no meaning R gives it alone, so it is refused there.

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
from parity.spec.transforms import (
    ALLOWED,
    MAX_NESTING,
    OFFSET,
    Derived,
    Expr,
    allowed_text,
)

_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "TRUE", "FALSE", "NULL", "NA", "NaN", "Inf", "if", "else", "repeat", "while",
    "function", "for", "next", "break", "in", "NA_integer_", "NA_real_",
    "NA_character_", "NA_complex_", "T", "F",
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\s*(?:(\|\|)|([~+\-*/:()|^,])|([A-Za-z][A-Za-z0-9_]*)"
                    r"|([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+))")


@dataclass(frozen=True)
class _Tok:
    kind: str  # "op", "name", "num", "end"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    """Tokens up to the first character the grammar has no use for, which becomes a
    `bad` token: the parser meets it in order, so `system("x")` is refused for the
    function it calls, the first thing wrong with it."""
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            toks.append(_Tok("bad", text[pos], pos))
            break
        start = m.start(m.lastindex or 0)
        if m.group(1) or m.group(2):
            toks.append(_Tok("op", m.group(1) or m.group(2), start))
        elif m.group(3):
            toks.append(_Tok("name", m.group(3), start))
        else:
            toks.append(_Tok("num", m.group(4), start))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


def _bad_character(tok: _Tok) -> FormulaError:
    return FormulaError(
        f"character {tok.text!r} at position {tok.pos + 1} is not allowed in a formula "
        "(only column names, numbers, the functions "
        f"{allowed_text()}, and ~ + - * / ^ : , ( ) | || are)")


# An expanded right-hand side: ordered terms (each a tuple of variables; () is the
# intercept), whether the intercept was removed, and the bar blocks found at top level.
@dataclass
class _Terms:
    terms: list[tuple[str, ...]]
    intercept: bool | None = None  # None: not said
    blocks: list[RandomTerm] | None = None
    offsets: list[str] | None = None  # aliases of `offset(...)` terms


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
        self.derived: dict[str, Derived] = {}

    @property
    def tok(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind == "bad":
            raise _bad_character(tok)
        return tok

    def name(self) -> str:
        """The current token as a column name (a reserved word is refused)."""
        tok = self.tok
        if tok.text in _RESERVED:
            raise FormulaError(
                f"{tok.text!r} at position {tok.pos + 1} is a reserved word, not a column name")
        self.i += 1
        return tok.text

    def is_call(self) -> bool:
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        return (self.tok.kind == "name" and nxt is not None and nxt.kind == "op"
                and nxt.text == "(")

    def variables_of(self, expr: Expr) -> list[str]:
        """The aliases of the columns `expr` makes: one, or k for `poly(x, k)`."""
        if expr.kind == "col":
            return [expr.text]
        parts: list[int | None] = [None]
        if expr.text == "poly":
            parts = list(range(1, int(expr.args[1].text) + 1))
        out = []
        for part in parts:
            name = expr.label + ("" if part is None else str(part))
            if name not in self.derived:
                alias = f"parity_dv{len(self.derived) + 1}_"
                self.derived[name] = Derived(alias, name, expr, part)
            out.append(self.derived[name].alias)
        return out

    # Expressions inside a call: R's arithmetic, `^` binding tighter than a sign.
    def expr(self, in_i: bool, depth: int) -> Expr:
        left = self.product(in_i, depth)
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            left = Expr("op", op, (left, self.product(in_i, depth)))
        return left

    def product(self, in_i: bool, depth: int) -> Expr:
        left = self.signed(in_i, depth)
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok.text
            self.i += 1
            left = Expr("op", op, (left, self.signed(in_i, depth)))
        return left

    def signed(self, in_i: bool, depth: int) -> Expr:
        if self.eat("-"):
            return Expr("neg", "", (self.signed(in_i, depth),))
        base = self.primary(in_i, depth)
        if self.eat("^"):
            return Expr("op", "^", (base, self.signed(in_i, depth)))
        return base

    def primary(self, in_i: bool, depth: int) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            value = float(tok.text)
            text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
            return Expr("num", text)
        if self.is_call():
            if in_i:
                raise FormulaError(
                    f"I(...) may hold only columns, numbers and + - * / ^; it holds a call "
                    f"to {tok.text!r} at position {tok.pos + 1}")
            return self.call(depth + 1)
        if tok.kind == "name":
            return Expr("col", self.name())
        if self.eat("("):
            self.nesting(depth + 1)
            inner = self.expr(in_i, depth + 1)
            self.expect(")")
            return Expr("paren", "", (inner,))
        raise self.fail("expected a column, a number or '(' inside a function call")

    def nesting(self, depth: int) -> None:
        if depth > MAX_NESTING:
            raise self.fail(f"transforms nest deeper than {MAX_NESTING} levels (the limit)")

    def call(self, depth: int) -> Expr:
        """`f(...)` for an allowed `f`; the current token is its name."""
        tok = self.tok
        fn = tok.text
        if fn == OFFSET:
            raise FormulaError(f"offset() at position {tok.pos + 1} must be a term of the "
                               "right-hand side of its own, not inside a call or the response")
        if fn not in ALLOWED:
            raise FormulaError(f"function {fn!r} at position {tok.pos + 1} is not allowed "
                               f"in a formula; the allowed ones are {allowed_text()}")
        self.nesting(depth)
        if fn == "poly" and depth > 1:
            raise FormulaError(f"poly() at position {tok.pos + 1} makes several columns, "
                               "so it must be a term of its own, not inside another call")
        self.i += 1
        self.expect("(")
        args = [self.expr(fn == "I", depth)]
        while self.eat(","):
            args.append(self.expr(fn == "I", depth))
        self.expect(")")
        want = 2 if fn == "poly" else 1
        if len(args) != want:
            raise FormulaError(f"{fn}() at position {tok.pos + 1} takes {want} "
                               f"argument{'s' if want > 1 else ''}, not {len(args)}")
        if fn == "poly":
            k = args[1]
            if k.kind != "num" or not k.text.isdigit() or int(k.text) < 1:
                raise FormulaError(f"poly() at position {tok.pos + 1} needs a whole "
                                   "degree of at least 1 as its second argument")
        return Expr("call", fn, tuple(args))

    def offset(self) -> str:
        """`offset(expr)`, the current token its name: the alias of the column parity
        computes from `expr` (one alias for one expression, however often written)."""
        tok = self.tok
        self.i += 1
        self.expect("(")
        if self.tok.kind == "op" and self.tok.text == ")":
            raise FormulaError(f"offset() at position {tok.pos + 1} is empty; it takes a "
                               "column or a transform of one")
        expr = self.expr(False, 1)
        if self.tok.kind == "op" and self.tok.text == ",":
            raise FormulaError(f"offset() at position {tok.pos + 1} takes 1 argument")
        self.expect(")")
        if not expr.columns():
            raise FormulaError(f"offset() at position {tok.pos + 1} reads no column; an "
                               "offset is a column or a transform of one")
        name = f"{OFFSET}({expr.label})"
        if name not in self.derived:
            alias = f"parity_dv{len(self.derived) + 1}_"
            self.derived[name] = Derived(alias, name, expr)
        return self.derived[name].alias

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
        if self.is_call():
            target = self.call(1)
            if target.text == "poly":
                raise FormulaError("poly() makes several columns; it cannot be the response")
            response = self.variables_of(target)[0]
        else:
            response = self.name()
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
            if part.offsets and not top:
                raise FormulaError("offset() must be a top-level term, not inside "
                                   "parentheses or a ( … | group) block")
            if part.offsets and sign == "-":
                raise FormulaError("an offset cannot be subtracted")
            if sign == "+":
                result.offsets = [*(result.offsets or []),
                                  *(a for a in part.offsets or [] if a not in (result.offsets
                                                                            or []))]
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
                if side.offsets:
                    raise FormulaError(f"'{op}' applies to columns, not to offset()")
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
                if side.offsets:
                    raise FormulaError("':' applies to columns, not to offset()")
                if side.blocks or side.intercept is not None:
                    raise self.fail("':' applies to columns, not to 0, 1 or bar blocks")
            left = _Terms(_interact(left.terms, right.terms))
        return left

    def atom(self, top: bool) -> _Terms:
        tok = self.tok
        if self.is_call() and tok.text == OFFSET:
            return _Terms([], offsets=[self.offset()])
        if self.is_call():
            return _Terms([(v,) for v in self.variables_of(self.call(1))])
        if tok.kind == "name":
            return _Terms([(self.name(),)])
        if tok.kind == "num":
            if tok.text not in ("0", "1"):
                raise FormulaError(f"number {tok.text!r} at position {tok.pos + 1} is not "
                                   "allowed here (only 0 and 1, or numbers inside a function)")
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
        if self.tok.kind != "name" or self.is_call():
            raise self.fail("expected a grouping column after '|'")
        chain = [self.name()]
        nested = False
        while self.tok.kind == "op" and self.tok.text in (":", "/"):
            nested = nested or self.tok.text == "/"
            self.i += 1
            if self.tok.kind != "name" or self.is_call():
                raise self.fail("expected a grouping column")
            chain.append(self.name())
        if nested:
            return [tuple(chain[: k + 1]) for k in range(len(chain))]
        return [tuple(chain)]


def is_plain_name(name: object) -> bool:
    """Whether `name` can be written in a formula as it is: a plain identifier that is
    not a reserved word of R or Python (the rule every column a model uses must meet)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and name not in _RESERVED


def _canonical(terms: list[tuple[str, ...]],
               kin: dict[str, str] | None = None) -> tuple[Term, ...]:
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
    family = kin or {}  # the columns of one poly() share a place in this order

    def place(v: str) -> str:
        return family.get(v, v)

    for _, t in ordered:
        for v in t:
            order.setdefault(place(v), len(order))
        out.append(Term(tuple(sorted(t, key=lambda v: order[place(v)]))))
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
    parser = _Parser(text)
    response, rhs = parser.formula()
    kin = {d.alias: d.expr.label for d in parser.derived.values()}
    fixed = _canonical(rhs.terms, kin)
    random = tuple(
        RandomTerm(tuple(b.group), b.intercept,
                   _canonical([t.variables for t in b.terms], kin), b.correlated)
        for b in rhs.blocks or []
    )
    spec = ModelSpec(
        response=response,
        intercept=True if rhs.intercept is None else rhs.intercept,
        fixed=fixed,
        random=random,
        derived=tuple(parser.derived.values()),
        offset=tuple(rhs.offsets or ()),
    )
    used = {v for t in spec.fixed for v in t.variables}
    for block in spec.random:
        used.update(block.group)
        used.update(v for t in block.terms for v in t.variables)
    if response in used:
        raise FormulaError(f"the response {response!r} also appears on the right-hand side")
    by_alias = {d.alias: d for d in spec.derived}
    read = set(by_alias[response].expr.columns() if response in by_alias else (response,))
    for alias in spec.offset:
        if read & set(by_alias[alias].expr.columns()):
            raise FormulaError(f"{by_alias[alias].name} reads the response "
                               f"{', '.join(sorted(read))}; an offset must not")
    if not spec.intercept and not spec.fixed:
        raise FormulaError("the model has no fixed terms and no intercept (statsmodels "
                           "cannot fit a model without fixed effects; write '1 +')")
    return spec
