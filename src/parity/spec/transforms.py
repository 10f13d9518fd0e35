"""Transforms an analyst may write in a formula, as data that parity evaluates itself.

A call such as `log(Reaction)` or `I(Days^2)` is parsed into an :class:`Expr` tree and
never handed to R or to Python's `eval`: only the functions in :data:`ALLOWED` exist,
`I(...)` holds only `+ - * / ^`, columns and numbers, and the tree's text (`label`) is
the one R's `deparse()` gives, so every engine's names are lme4's.
"""

from __future__ import annotations

from dataclasses import dataclass

# One-argument functions, plus `scale(x)` and `poly(x, k)`; `I(...)` is arithmetic.
UNARY = ("log", "log2", "log10", "log1p", "exp", "sqrt", "abs")
ALLOWED = (*UNARY, "scale", "poly", "I")
# `offset(expr)`: a term of its own, an expression of the above added to the linear
# predictor with coefficient 1; it is no transform, so it may not appear inside one.
OFFSET = "offset"
MAX_NESTING = 10


@dataclass(frozen=True)
class Expr:
    """A node: `col` (text: a column), `num` (text: a number as written), `call`
    (text: the function; args), `op` (text: + - * / ^; args: both sides), `neg`
    (args: one) or `paren` (args: one)."""

    kind: str
    text: str = ""
    args: tuple[Expr, ...] = ()

    @property
    def label(self) -> str:
        """The text R's `deparse()` gives: spaces around `+ - *`, none around `/ ^`."""
        if self.kind in ("col", "num"):
            return self.text
        if self.kind == "call":
            return f"{self.text}({', '.join(a.label for a in self.args)})"
        if self.kind == "neg":
            return f"-{self.args[0].label}"
        if self.kind == "paren":
            return f"({self.args[0].label})"
        left, right = self.args
        if self.text in ("/", "^"):
            return f"{left.label}{self.text}{right.label}"
        return f"{left.label} {self.text} {right.label}"

    def columns(self) -> tuple[str, ...]:
        """The data columns this expression reads, in order of first appearance."""
        if self.kind == "col":
            return (self.text,)
        seen: dict[str, None] = {}
        for a in self.args:
            for c in a.columns():
                seen.setdefault(c, None)
        return tuple(seen)


@dataclass(frozen=True)
class Derived:
    """A column parity computes: its safe `alias` (what engines are given, a plain
    identifier), its `name` under lme4 (`log(Reaction)`, `poly(Days, 2)1`), and the
    expression; `part` is the column (1-based) of a `poly` basis, else None."""

    alias: str
    name: str
    expr: Expr
    part: int | None = None


def allowed_text() -> str:
    """The allowed functions, for error messages."""
    return ", ".join((*ALLOWED, OFFSET))
