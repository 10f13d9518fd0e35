"""The engines: one module per library, each turning a model and prepared rows into the
one result record (`parity.schema.Fit`).

What every engine is and can do is said once, in its row of the registry
(:mod:`parity.registry`, re-exported here); this face adds the loaders that import an
engine's module, which only the processes that fit need. Engine modules import heavy
libraries (rpy2, JAX, PyMC) lazily, so loading a class to ask it something is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parity.engines.base import Engine
from parity.registry import (
    DEFAULT_ENGINES,
    ENGINE_NAMES,
    EngineInfo,
    EngineKind,
    all_packages,
    all_r_packages,
    check_engine,
    check_engines,
    engine_info,
    engine_kind,
    engine_with_role,
)

if TYPE_CHECKING:
    from parity.engines.compiled_fits import CompiledFit
    from parity.rows.prepare import PreparedData
    from parity.settings import Settings
    from parity.spec.models import Model


def _load(target: str) -> Any:
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


def load_engine(name: str) -> Engine:
    """Import and construct the engine called `name`."""
    engine: Engine = _load(engine_info(name).target)()
    return engine


def compile_fit(engine: str, model: Model, data: PreparedData,
                settings: Settings) -> CompiledFit:
    """The engine's fit of `model` compiled once, to be refitted per response (`parity
    study`), as its registry row names it (`compiled`)."""
    target = engine_info(engine).compiled
    if target is None:
        raise ValueError(f"engine {engine!r} is not compiled once")
    built: CompiledFit = _load(target)(model, data, settings)
    return built


__all__ = ["DEFAULT_ENGINES", "ENGINE_NAMES", "Engine", "EngineInfo", "EngineKind",
           "all_packages", "all_r_packages", "check_engine", "check_engines", "compile_fit",
           "engine_info", "engine_kind", "engine_with_role", "load_engine"]
