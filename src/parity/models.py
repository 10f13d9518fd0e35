"""The model registry: the six politeness seed models, and analysts' own formulas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parity.datasets import POLITENESS_CATEGORICAL
from parity.errors import UsageError
from parity.formula import parse_formula
from parity.spec import ModelSpec


@dataclass(frozen=True)
class Model:
    """A named model: the formula as typed, its parsed spec, its categorical columns."""

    name: str
    formula: str
    spec: ModelSpec
    categorical: tuple[str, ...] = ()


def make_model(name: str, formula: str, categorical: Iterable[str] = ()) -> Model:
    """Parse once; every engine works from the resulting spec."""
    return Model(name, formula, parse_formula(formula), tuple(categorical))


_SEED_FORMULAS: tuple[tuple[str, str], ...] = (
    ("additive", "frequency ~ gender + attitude"),
    ("no_intercept", "frequency ~ 0 + attitude + gender"),
    ("interaction", "frequency ~ gender * attitude"),
    ("subject_intercept", "frequency ~ gender + attitude + (1 | subject)"),
    ("subject_slope", "frequency ~ gender + attitude + (attitude | subject)"),
    ("crossed_slopes",
     "frequency ~ gender + attitude + (attitude | subject) + (attitude | scenario)"),
)


def seed_models() -> list[Model]:
    """The six politeness models of the reference case, in their canonical order."""
    return [make_model(n, f, POLITENESS_CATEGORICAL) for n, f in _SEED_FORMULAS]


def select(models: Sequence[Model], names: Iterable[str] | None) -> list[Model]:
    """The models named, in registry order; unknown names are a usage error."""
    if not names:
        return list(models)
    wanted = list(names)
    known = {m.name for m in models}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(
            f"unknown model(s) {', '.join(unknown)}; known: {', '.join(m.name for m in models)}"
        )
    return [m for m in models if m.name in wanted]
