"""Fitting many models with many engines, each engine in a worker process of its own.

Embedded R and JAX in one process are reported to fight over threads and signals
(rpy2 issues #585, #961), so no process ever holds both: each engine gets a spawned
worker that imports only its own library, starts it once (one embedded R per worker),
and fits every model asked of it. The workers run side by side, so lme4 and statsmodels
finish while Bambi samples. A worker that dies takes down only its own engine's fits,
which are recorded as failed; every other result is kept.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pandas as pd

from parity.data import PreparedData, prepare
from parity.engines import Engine, check_engine, load_engine
from parity.engines.base import status_fit
from parity.models import Model
from parity.schema import Fit
from parity.settings import Settings

_WORKER_ENGINES: dict[str, Engine] = {}

ProgressHook = Callable[[Fit], None]


def fit_one(engine_name: str, model: Model, data: PreparedData, settings: Settings) -> Fit:
    """Fit in this process, reusing the engine (and its embedded R) across calls."""
    engine = _WORKER_ENGINES.get(engine_name)
    if engine is None:
        engine = load_engine(engine_name)
        _WORKER_ENGINES[engine_name] = engine
    reason = engine.missing()
    if reason is not None:
        return status_fit(engine_name, model, data, "skipped", reason, settings)
    return engine.fit(model, data, settings)


def prepare_all(models: Sequence[Model], frame: pd.DataFrame) -> dict[str, PreparedData]:
    """Each model's complete rows; bad data is a usage error before anything is fitted."""
    return {m.name: prepare(frame, m.spec, m.categorical) for m in models}


def run_fits(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    on_fit: ProgressHook | None = None,
) -> list[Fit]:
    """Every (model, engine) fit, ordered by model then engine as asked."""
    for name in engines:
        check_engine(name)
    prepared = prepare_all(models, frame)
    ctx = multiprocessing.get_context("spawn")
    pools = {name: ProcessPoolExecutor(max_workers=1, mp_context=ctx) for name in engines}
    futures: dict[tuple[str, str], Future[Fit]] = {}
    try:
        for model in models:
            for name in engines:
                fut = pools[name].submit(fit_one, name, model, prepared[model.name], settings)
                futures[(model.name, name)] = fut
        results: dict[tuple[str, str], Fit] = {}
        for model in models:
            for name in engines:
                results[(model.name, name)] = _collect(
                    futures[(model.name, name)], name, model, prepared[model.name], settings
                )
                if on_fit is not None:
                    on_fit(results[(model.name, name)])
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[(m.name, e)] for m in models for e in engines]


def _collect(fut: Future[Fit], engine: str, model: Model, data: PreparedData,
             settings: Settings) -> Fit:
    try:
        return fut.result()
    except BrokenProcessPool:
        return status_fit(engine, model, data, "failed",
                          f"the {engine} worker process died (crash or out of memory)",
                          settings)
    except Exception as exc:  # an engine bug: keep the run, record the failure
        return status_fit(engine, model, data, "failed",
                          f"{engine}: {type(exc).__name__}: {exc}", settings)
