"""What an engine is: a library that turns a model spec and prepared rows into a Fit.

Engine modules are the only place an engine library is imported (ArviZ's converters are
the model: one module per library, one schema out).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Literal

from parity.schema import Diagnostics, Fit, Provenance
from parity.spec.family import LINKS

if TYPE_CHECKING:  # the registry imports this module; it must stay light
    from parity.rows.prepare import PreparedData
    from parity.settings import Settings
    from parity.spec.models import Model

# "approximate": an approximate Bayesian fit (variational Bayes, or Laplace at the
# posterior mode), neither a maximised likelihood nor a sampled posterior.
EngineKind = Literal["frequentist", "bayesian", "approximate"]


class Engine(ABC):
    """One library. Instances live in a worker process and may keep state (an embedded
    R, compiled samplers) across fits."""

    name: str
    kind: EngineKind
    # How closely a frequentist engine reproduces its own regular fits when the same data
    # is presented differently (rows permuted, levels relabelled): relative, on every
    # estimate. The invariance suite holds each engine to it, and to 1e-9 on the value
    # of its optimum. Bayesian engines are held to Monte-Carlo error instead.
    invariance_rtol: float = 1e-6

    @abstractmethod
    def missing(self) -> str | None:
        """Why this engine cannot run here (a missing library, no R), or None."""

    @abstractmethod
    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        """Fit `model` on `data`; failures inside the library become status `failed`."""

    def unsupported(self, model: Model) -> str | None:
        """Why this engine cannot express `model` (a family, a structure), or None; the
        fit is then `unsupported` with that reason, and the other engines still run."""
        return None

    def fallback(self, model: Model, data: PreparedData, settings: Settings) -> Fit | None:
        """A result to use when the library is missing (a recorded reference), or None."""
        return None

    def fallback_hint(self) -> str:
        """What to do when the library is missing and no fallback matches."""
        return ""


def status_fit(
    engine: str,
    model: Model,
    data: PreparedData | None,
    status: Literal["failed", "skipped", "unsupported"],
    reason: str,
    settings: Settings | None = None,
    seconds: float = 0.0,
) -> Fit:
    """A Fit that carries no numbers, only why."""
    return Fit(
        model=model.name,
        formula=model.formula,
        engine=engine,
        status=status,
        reason=reason,
        n_obs=data.n_obs if data is not None else 0,
        n_dropped=data.n_dropped if data is not None else 0,
        diagnostics=Diagnostics(converged=False, singular=False),
        provenance=Provenance("", None, settings.as_dict() if settings else {}, seconds),
        family=model.family,
        link=LINKS.get(model.family, "identity"),
    )
