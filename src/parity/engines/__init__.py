"""The engine registry: the one place that names every engine.

Engine modules import heavy libraries (rpy2, JAX, PyMC), so they are loaded only when a
run asks for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from parity.engines.base import Engine, EngineKind
from parity.errors import UsageError

_REGISTRY: dict[str, tuple[str, EngineKind]] = {
    "lme4": ("parity.engines.lme4:Lme4Engine", "frequentist"),
    "statsmodels": ("parity.engines.statsmodels:StatsmodelsEngine", "frequentist"),
    "bambi": ("parity.engines.bambi:BambiEngine", "bayesian"),
}

ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def engine_kind(name: str) -> EngineKind:
    """Frequentist or Bayesian, without importing the engine's library."""
    return _REGISTRY[check_engine(name)][1]


def check_engine(name: str) -> str:
    if name not in _REGISTRY:
        raise UsageError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return name


def check_engines(names: Sequence[str]) -> tuple[str, ...]:
    """Every name known, none twice (`lme4,lme4` would compare lme4 with itself)."""
    for name in names:
        check_engine(name)
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise UsageError(f"engine(s) {', '.join(repeated)} named more than once")
    return tuple(names)


def load_engine(name: str) -> Engine:
    """Import and construct the engine called `name`."""
    module_name, _, cls_name = _REGISTRY[check_engine(name)][0].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    engine: Engine = cls()
    return engine


__all__ = ["ENGINE_NAMES", "Engine", "EngineKind", "check_engine", "check_engines",
           "engine_kind", "load_engine"]
