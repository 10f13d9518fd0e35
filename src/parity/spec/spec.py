"""The parsed model: one structure from which every engine's formula text is generated.

Engines never see the text an analyst typed. They see a :class:`ModelSpec`, and each
engine renders its own notation from it, so a formula means the same thing to lme4,
statsmodels and Bambi, and nothing the grammar did not accept can reach an engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parity.spec.transforms import Derived

_ALIAS = re.compile(r"parity_dv[0-9]+_")


@dataclass(frozen=True)
class Term:
    """A product of columns (`a`, `a:b`); the empty product is the intercept."""

    variables: tuple[str, ...]

    @property
    def label(self) -> str:
        """The term as R writes it (`gender:attitude`)."""
        return ":".join(self.variables) if self.variables else "1"


@dataclass(frozen=True)
class RandomTerm:
    """One `( … | group)` block: its terms vary by the levels of `group`.

    `correlated` is False for `||`, where lme4 estimates no correlations among the
    block's coefficients.
    """

    group: tuple[str, ...]
    intercept: bool
    terms: tuple[Term, ...]
    correlated: bool = True

    @property
    def group_label(self) -> str:
        """The grouping factor as lme4 names it (`subject`, `a:b`)."""
        return ":".join(self.group)

    def rhs(self) -> str:
        """The left side of the bar, with the intercept spelled out."""
        parts = ["1" if self.intercept else "0"] + [t.label for t in self.terms]
        return " + ".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """Response, fixed terms and random blocks of one model.

    A transformed column (`log(Reaction)`, `poly(Days, 2)1`) appears in the terms under
    its safe alias, a plain identifier, and `derived` says how parity computes it: every
    engine is handed the same numbers and a formula over plain names, and `rename` gives
    the results lme4's names back.

    `offset` holds the aliases of the model's `offset(...)` terms: columns parity
    computes like any transform (`offset(log(size))` is one), added to the linear
    predictor with a fixed coefficient of 1. They have no coefficient, so no name of a
    fit refers to them; R sums several, as it does in its own formulas.
    """

    response: str
    intercept: bool
    fixed: tuple[Term, ...]
    random: tuple[RandomTerm, ...] = ()
    derived: tuple[Derived, ...] = ()
    offset: tuple[str, ...] = ()

    def source_columns(self) -> tuple[str, ...]:
        """The data columns the model reads (a transform's inputs in place of its
        alias), response first; these define complete rows."""
        by_alias = {d.alias: d for d in self.derived}
        seen: dict[str, None] = {}
        for v in self.variables():
            for c in (by_alias[v].expr.columns() if v in by_alias else (v,)):
                seen.setdefault(c, None)
        return tuple(seen)

    def rename(self, text: str) -> str:
        """`text` (a coefficient's or a formula's) with each alias as lme4 names it (an
        offset's alias by its expression, which the engines' text wraps in `offset()`)."""
        if not self.derived:
            return text
        names = {d.alias: d.expr.label if d.alias in self.offset else d.name
                 for d in self.derived}
        return _ALIAS.sub(lambda m: names.get(m.group(0), m.group(0)), text)

    def written_formula(self) -> str:
        """The formula in lme4's notation with the transforms as written (a `poly`
        term once, not once per column): text parity and R both parse as this model."""
        calls = {d.alias: d.expr.label for d in self.derived}

        def rhs(intercept: bool, terms: tuple[Term, ...]) -> str:
            labels = [":".join(calls.get(v, v) for v in t.variables) for t in terms]
            return " + ".join(["1" if intercept else "0", *dict.fromkeys(labels)])

        names = {d.alias: d.name for d in self.derived}
        parts = [rhs(self.intercept, self.fixed), *(names[a] for a in self.offset)]
        for block in self.random:
            bar = "|" if block.correlated else "||"
            parts.append(f"({rhs(block.intercept, block.terms)} {bar} {block.group_label})")
        return f"{calls.get(self.response, self.response)} ~ " + " + ".join(parts)

    @property
    def is_mixed(self) -> bool:
        return bool(self.random)

    @property
    def grouping_factors(self) -> tuple[str, ...]:
        """Every column used to group, in order of first appearance."""
        seen: dict[str, None] = {}
        for block in self.random:
            for g in block.group:
                seen.setdefault(g, None)
        return tuple(seen)

    def grouping_labels(self) -> tuple[str, ...]:
        """Each block's grouping label (`subject`, `a:b`), once, in order."""
        return tuple(dict.fromkeys(b.group_label for b in self.random))

    def variables(self) -> tuple[str, ...]:
        """All columns the model reads, response first; these define complete rows."""
        seen: dict[str, None] = {self.response: None}
        for term in self.fixed:
            for v in term.variables:
                seen.setdefault(v, None)
        for block in self.random:
            for term in block.terms:
                for v in term.variables:
                    seen.setdefault(v, None)
            for g in block.group:
                seen.setdefault(g, None)
        for v in self.offset:
            seen.setdefault(v, None)
        return tuple(seen)

    def fixed_rhs(self) -> str:
        parts = ["1" if self.intercept else "0"] + [t.label for t in self.fixed]
        return " + ".join(parts)

    def offset_terms(self) -> list[str]:
        """`offset(alias)` for each offset: a call on one column, the only call R's
        side of parity accepts in a formula."""
        return [f"offset({a})" for a in self.offset]

    def lme4_formula(self) -> str:
        """lme4 / R notation (offsets as `offset(alias)`), the text the R engines fit."""
        parts = [self.fixed_rhs(), *self.offset_terms()]
        for block in self.random:
            bar = "|" if block.correlated else "||"
            parts.append(f"({block.rhs()} {bar} {block.group_label})")
        return f"{self.response} ~ " + " + ".join(parts)

    def fixed_only_formula(self) -> str:
        return f"{self.response} ~ {self.fixed_rhs()}"
