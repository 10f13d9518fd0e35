"""What an engine is: a library that turns a model spec and prepared rows into a Fit.

Engine modules are the only place an engine library is imported (ArviZ's converters are
the model: one module per library, one schema out).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from parity.engines.cost import NO_ESTIMATE, Cost
from parity.registry import EngineInfo, EngineKind, engine_info
from parity.schema import Diagnostics, Fit, Provenance

if TYPE_CHECKING:  # the registry imports this module; it must stay light
    from parity.rows.dims import DesignDims
    from parity.rows.prepare import PreparedData
    from parity.settings import Settings
    from parity.spec.models import Model

__all__ = ["Cost", "Engine", "EngineKind", "Refusal", "crossed", "status_fit"]


@dataclass(frozen=True)
class Refusal:
    """Why an engine does not fit a model. By default the fit is `unsupported` with the
    reason and the other engines still run (a family or a structure the engine does not
    fit). `stops_run`: the run as asked is refused before anything is fitted, since the
    analyst can fix it (rename a column, change a setting) and should."""

    reason: str
    stops_run: bool = False


class Engine(ABC):
    """One library. Instances live in a worker process and may keep state (an embedded
    R, compiled samplers) across fits. What it is and can do is its registry row
    (:attr:`info`); `name` picks the row, and `kind` is the row's."""

    name: str
    # How closely a frequentist engine reproduces its own regular fits when the same data
    # is presented differently (rows permuted, levels relabelled): relative, on every
    # estimate. The invariance suite holds each engine to it, and to 1e-9 on the value
    # of its optimum. Bayesian engines are held to Monte-Carlo error instead.
    invariance_rtol: float = 1e-6

    @property
    def info(self) -> EngineInfo:
        return engine_info(self.name)

    @property
    def kind(self) -> EngineKind:
        return self.info.kind

    def missing(self) -> str | None:
        """Why this engine cannot run here (a missing library, no R), or None: by
        default, the first module of the row's `requires` that does not import."""
        for module in self.info.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # missing, or broken (an ABI mismatch)
                return (f"{module} is needed for the {self.name} engine "
                        f"({type(exc).__name__}: {exc})")
        return None

    @abstractmethod
    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        """Fit `model` on `data`; failures inside the library become status `failed`."""

    def refuses(self, model: Model, settings: Settings) -> Refusal | None:
        """The one refusal: why this engine does not fit `model` with `settings`, or
        None. The base class reads the registry row (the families it fits, and crossed
        grouping factors, offsets and weights where the row says it `cannot` fit them); an
        engine
        with rules of its own (Bambi's reserved names, lme4's nAGQ) adds them in an
        override. The run asks it up front (`parity.pipeline.job.execute`), and the
        worker again before each fit, so no path fits what the engine refuses."""
        why = self.info.family_problem(model.family)
        if why is None and crossed(model):
            why = self.info.cannot_do("crossed")
        if why is None and model.spec.offset:
            why = _named(self.name, "an offset", self.info.cannot_do("offset"))
        if why is None and model.weights is not None:
            why = _named(self.name, "weights", self.info.cannot_do("weights")
                         or (self.info.cannot_do("gaussian_weights") if model.gaussian
                             else None))
        return Refusal(why) if why else None

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """What fitting `model` on a design of `dims` will take (memory, time), estimated
        before anything is fitted, so that a fit this machine cannot finish is refused
        in a moment rather than failing after minutes (`parity.engines.budget`). By
        default no estimate: the engine is never refused for its cost. An engine whose
        memory grows with the data overrides it with its formula (`parity.engines.cost`)."""
        return NO_ESTIMATE

    def fallback(self, model: Model, data: PreparedData, settings: Settings) -> Fit | None:
        """A result to use when the library is missing (a recorded reference), or None."""
        return None

    def fallback_hint(self) -> str:
        """What to do when the library is missing and no fallback matches."""
        return ""


def _named(engine: str, what: str, reason: str | None) -> str | None:
    """A refusal of `what` that names the engine and says why."""
    return None if reason is None else f"{engine} does not fit a model with {what}: {reason}"


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
        link=model.fam.link,
    )


def crossed(model: Model) -> bool:
    """Whether `model`'s grouping factors are crossed: not one factor, nor a chain of
    factors each nested in the one before (`(1 | a/b)`, which parity writes as
    `(1 | a) + (1 | a:b)`)."""
    groups = sorted({block.group for block in model.spec.random}, key=len)
    return any(inner[:len(outer)] != outer or len(inner) != len(outer) + 1
               for outer, inner in zip(groups, groups[1:], strict=False))
