"""Named models: a formula as typed, its parsed spec and its categorical columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parity.errors import UsageError
from parity.spec.columns import rename_advice
from parity.spec.family import GAUSSIAN, Family, check_family, family_of
from parity.spec.grammar import is_plain_name, parse_formula
from parity.spec.spec import ModelSpec


@dataclass(frozen=True)
class Model:
    """A named model: the formula as typed, its parsed spec, its categorical columns, its
    response family (parity.spec.family), for a binomial count its trials column, and
    the column of its prior weights (lme4's `weights`), if any.

    `family` is the family's name, as records and cache keys carry it; `fam` is the
    :class:`~parity.spec.family.Family` to ask (its link, whether it has a residual SD,
    what it needs of a response) instead of comparing names."""

    name: str
    formula: str
    spec: ModelSpec
    categorical: tuple[str, ...] = ()
    family: str = "gaussian"
    trials: str | None = None
    weights: str | None = None

    @property
    def fam(self) -> Family:
        return family_of(self.family)

    @property
    def gaussian(self) -> bool:
        return self.fam is GAUSSIAN


def make_model(name: str, formula: str, categorical: Iterable[str] = (),
               family: str = "gaussian", trials: str | None = None,
               weights: str | None = None) -> Model:
    """Parse once; every engine works from the resulting spec."""
    family, trials = check_family(family, trials)
    check_weights_name(weights)
    spec = parse_formula(formula)
    if trials is not None and trials == spec.response:
        raise UsageError(f"the trials column {trials!r} is the response itself")
    if weights is not None and weights == spec.response:
        raise UsageError(f"the weights column {weights!r} is the response itself")
    return Model(name, formula, spec, tuple(categorical), family, trials, weights)


def check_weights_name(weights: object) -> str | None:
    """A weights column is named as a formula names columns (R is handed the name), or
    a one-line UsageError."""
    if weights is None:
        return None
    if not isinstance(weights, str) or not weights:
        raise UsageError("weights must name a column")
    if not is_plain_name(weights):
        raise UsageError(f"the weights column {rename_advice([weights])}; column names "
                         "must be plain identifiers")
    return weights


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
