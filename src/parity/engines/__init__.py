"""The engine registry: the one place that names every engine.

Engine modules import heavy libraries (rpy2, JAX, PyMC), so they are loaded only when a
run asks for them.
"""

from __future__ import annotations

import importlib

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


def load_engine(name: str) -> Engine:
    """Import and construct the engine called `name`."""
    module_name, _, cls_name = _REGISTRY[check_engine(name)][0].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    engine: Engine = cls()
    return engine


__all__ = ["ENGINE_NAMES", "Engine", "EngineKind", "check_engine", "engine_kind", "load_engine"]
