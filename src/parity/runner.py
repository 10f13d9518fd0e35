"""Fitting many models with many engines, each engine in a worker process of its own.

Embedded R and JAX in one process are reported to fight over threads and signals
(rpy2 issues #585, #961), so no process ever holds both: each engine gets a spawned
worker that imports only its own library, starts it once (one embedded R per worker),
and fits every model asked of it. The workers run side by side, so lme4 and statsmodels
finish while Bambi samples. A worker that dies takes down only its own engine's fits,
which are recorded as failed; every other result is kept.

Beside the fits asked for, the lme4 worker refits models with independent random
coefficients where another engine fitted them that way (:mod:`parity.structure`), and
evaluates statsmodels' mixed-model solutions under lme4's REML criterion, so the
comparison can say which optimum is better.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from parity.compare import SAME_OPTIMUM
from parity.data import PreparedData, prepare
from parity.engines import Engine, check_engine, engine_kind, load_engine
from parity.engines.base import status_fit
from parity.models import Model
from parity.schema import Fit
from parity.settings import Settings
from parity.structure import Variant, independent_variant, read_back

_WORKER_ENGINES: dict[str, Engine] = {}

ProgressHook = Callable[[Fit], None]
OBJECTIVE = "lme4 REML log-likelihood"


@dataclass
class Outcome:
    """What a run produced: the fits asked for, matched-structure lme4 refits, and
    optimum checks (dicts, as written to results.json)."""

    fits: list[Fit]
    reference_fits: list[Fit] = field(default_factory=list)
    optimum_checks: list[dict[str, Any]] = field(default_factory=list)


def _engine(name: str) -> Engine:
    engine = _WORKER_ENGINES.get(name)
    if engine is None:
        engine = load_engine(name)
        _WORKER_ENGINES[name] = engine
    return engine


def fit_one(engine_name: str, model: Model, data: PreparedData, settings: Settings) -> Fit:
    """Fit in this process, reusing the engine (and its embedded R) across calls."""
    engine = _engine(engine_name)
    reason = engine.missing()
    if reason is None:
        return engine.fit(model, data, settings)
    recorded = engine.fallback(model, data, settings)
    if recorded is not None:
        return recorded
    hint = engine.fallback_hint()
    return status_fit(engine_name, model, data, "skipped",
                      f"{reason}; {hint}" if hint else reason, settings)


def reml_at(model: Model, data: PreparedData, solution: Fit) -> float:
    """lme4's REML criterion at `solution`'s variance components (in the lme4 worker)."""
    engine: Any = _engine("lme4")
    reason = engine.missing()
    if reason is not None:  # no live R: the check is left out, never faked
        raise RuntimeError(reason)
    return float(engine.reml_criterion_at(model, data, solution.variance_components))


def prepare_all(models: Sequence[Model], frame: pd.DataFrame) -> dict[str, PreparedData]:
    """Each model's complete rows; bad data is a usage error before anything is fitted."""
    return {m.name: prepare(frame, m.spec, m.categorical) for m in models}


def _collect(fut: Future[Fit], engine: str, model: Model, data: PreparedData,
             settings: Settings) -> Fit:
    try:
        fit = fut.result()
    except BrokenProcessPool:
        fit = status_fit(engine, model, data, "failed",
                         f"the {engine} worker process died (crash or out of memory)", settings)
    except Exception as exc:  # an engine bug: keep the run, record the failure
        fit = status_fit(engine, model, data, "failed",
                         f"{engine}: {type(exc).__name__}: {exc}", settings)
    groups = {g: int(data.frame[list(b.group)].drop_duplicates().shape[0])
              for b in model.spec.random for g in [b.group_label]}
    return replace(fit, n_groups=groups)


def run_models(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    on_fit: ProgressHook | None = None,
    matched_references: bool = True,
) -> Outcome:
    """Every (model, engine) fit, ordered by model then engine as asked, plus the
    matched-structure references and optimum checks that the comparison needs."""
    for name in engines:
        check_engine(name)
    prepared = prepare_all(models, frame)
    variants: dict[str, Variant] = {}
    if matched_references and "lme4" in engines:
        for m in models:
            v = independent_variant(m, prepared[m.name])
            if v is not None:
                variants[m.name] = v
    ctx = multiprocessing.get_context("spawn")
    pools = {name: ProcessPoolExecutor(max_workers=1, mp_context=ctx) for name in engines}
    try:
        futures = {(m.name, e): pools[e].submit(fit_one, e, m, prepared[m.name], settings)
                   for m in models for e in engines}
        variant_futures = {name: pools["lme4"].submit(fit_one, "lme4", v.model, v.data, settings)
                           for name, v in variants.items()}
        results: dict[tuple[str, str], Fit] = {}
        # Frequentist engines first: they finish in seconds, and the optimum checks
        # can then run while Bambi samples.
        order = sorted(engines, key=lambda e: engine_kind(e) != "frequentist")
        for e in order:
            for m in models:
                results[(m.name, e)] = _collect(futures[(m.name, e)], e, m,
                                                prepared[m.name], settings)
                if on_fit is not None:
                    on_fit(results[(m.name, e)])
        by_name = {m.name: m for m in models}
        reference_fits = [
            read_back(_collect(f, "lme4", variants[n].model, variants[n].data, settings),
                      variants[n], by_name[n])
            for n, f in variant_futures.items()
        ]
        checks = _optimum_checks(models, prepared, variants, results, reference_fits, pools)
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    fits = [results[(m.name, e)] for m in models for e in engines]
    return Outcome(fits, reference_fits, checks)


def _optimum_checks(models: Sequence[Model], prepared: dict[str, PreparedData],
                    variants: dict[str, Variant], results: dict[tuple[str, str], Fit],
                    reference_fits: list[Fit],
                    pools: dict[str, ProcessPoolExecutor]) -> list[dict[str, Any]]:
    """statsmodels' mixed-model solutions under lme4's REML criterion, against lme4's
    own optimum of the same structure."""
    if "lme4" not in pools or "statsmodels" not in pools:
        return []
    refs = {f.model: f for f in reference_fits}
    jobs = []
    for m in models:
        sm = results.get((m.name, "statsmodels"))
        if sm is None or sm.status != "ok" or not m.spec.is_mixed:
            continue
        lme4 = results[(m.name, "lme4")]
        if set(sm.structure.values()) == {"independent"} and m.name in variants:
            lme4, v = refs.get(m.name, lme4), variants[m.name]
            inverse = {canon: col for col, canon in v.terms.items()}
            solution = replace(sm, variance_components=tuple(
                replace(c, term=inverse.get(c.term, c.term) if c.term else c.term)
                for c in sm.variance_components))
            model, data = v.model, v.data
        elif sm.structure == lme4.structure:
            solution, model, data = sm, m, prepared[m.name]
        else:
            continue
        if lme4.status != "ok" or "reml_criterion" not in lme4.fit_statistics:
            continue
        jobs.append((m.name, lme4, pools["lme4"].submit(reml_at, model, data, solution)))
    checks = []
    for name, lme4, fut in jobs:
        try:
            crit = fut.result()
        except Exception:  # a check that cannot run leaves the comparison without it
            continue
        sm_ll, lme4_ll = -crit / 2.0, -lme4.fit_statistics["reml_criterion"] / 2.0
        checks.append({
            "model": name, "engine": "statsmodels", "reference": lme4.label,
            "objective": OBJECTIVE, "engine_value": sm_ll, "reference_value": lme4_ll,
            "difference": sm_ll - lme4_ll,
            "better": ("tie" if abs(sm_ll - lme4_ll) < SAME_OPTIMUM
                       else "statsmodels" if sm_ll > lme4_ll else lme4.label),
        })
    return checks


def fit_many(engine: str, jobs: Sequence[tuple[Model, PreparedData]],
             settings: Settings) -> list[Fit]:
    """Fits of one engine in one worker process, in order (used to record references)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        futures = [pool.submit(fit_one, engine, m, d, settings) for m, d in jobs]
        return [_collect(f, engine, m, d, settings)
                for f, (m, d) in zip(futures, jobs, strict=True)]


def run_fits(models: Sequence[Model], frame: pd.DataFrame, engines: Sequence[str],
             settings: Settings, on_fit: ProgressHook | None = None) -> list[Fit]:
    """Only the fits asked for (no matched references, no optimum checks)."""
    return run_models(models, frame, engines, settings, on_fit, matched_references=False).fits
