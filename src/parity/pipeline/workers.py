"""Fitting many models with many engines in worker processes, reusing cached fits.

Embedded R and JAX in one process are reported to fight over threads and signals
(rpy2 issues #585, #961), so no process ever holds both: each process group of the
registry ("r", "python", "jax") gets spawned workers that import only its own libraries
and start them once (one embedded R per worker), fitting every model asked of them. The
R and Python engines finish in seconds, one worker each; the slow samplers, which
dominate the run time, get up to `jobs` workers, whose chains sample on every core.
Fits found in the cache (:mod:`parity.pipeline.cache`) are not sent to any worker, and a
pool is started only for an engine with something left to fit, so a warm rerun starts no
R and no JAX. A worker that dies takes down only the fits it held, recorded as failed.

Beside the fits asked for, the engine with the registry's role "refitter" (lme4) refits
models with independent random coefficients where another engine fitted them that way
(:mod:`parity.pipeline.matched`), and the one with the role "judge" (lme4) evaluates the
other frequentist engines' mixed-model solutions under its criterion (REML, ML or
Laplace), so the comparison can say which optimum is better, or that an engine's
estimates contradict its own variance components.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from parity.compare.rules import SAME_OPTIMUM
from parity.engines import (
    Engine,
    check_engine,
    engine_info,
    engine_kind,
    engine_with_role,
    load_engine,
)
from parity.engines.base import status_fit
from parity.engines.budget import Budget, cost_refusal, machine_budget
from parity.pipeline.cache import FitCache, key_material
from parity.pipeline.matched import Variant, independent_variant, read_back
from parity.pipeline.naming import written_names
from parity.pipeline.vetting import vet_fit
from parity.processes import block_interrupts, quiet_spawn
from parity.rows.dims import DesignDims, design_dims
from parity.rows.prepare import PreparedData, prepare
from parity.schema import Fit, OptimumCheck, parse_criterion
from parity.settings import Settings
from parity.spec.models import Model

_WORKER_ENGINES: dict[str, Engine] = {}
# Set in worker processes, which leave Ctrl-C to the parent.
_IN_WORKER = False

ProgressHook = Callable[[Fit], None]
# model, engine label, found in the cache, and a way to ask whether it is running yet
StartHook = Callable[[str, str, bool, Callable[[], bool] | None], None]


def objective(criterion: str) -> str:
    """How an optimum check names lme4's objective under `criterion` (REML or ML)."""
    return f"lme4 {criterion} log-likelihood"


@dataclass
class Outcome:
    """What a run produced: the fits asked for, matched-structure lme4 refits, and
    optimum checks."""

    fits: list[Fit]
    reference_fits: list[Fit] = field(default_factory=list)
    optimum_checks: list[OptimumCheck] = field(default_factory=list)


def init_worker(jax_cache: str | None, devices: int) -> None:
    """Runs first in every worker, before JAX is imported, since JAX reads these then.

    `devices` host devices let numpyro run the chains in parallel (`chain_method=
    "parallel"`, PyMC's default) inside one process: every core samples, with one JAX
    runtime's memory. With the single default CPU device the chains run one after another.
    """
    # Ctrl-C goes to the whole process group: the parent stops the workers, which
    # would otherwise print tracebacks from wherever they were (rpy2, llvmlite).
    global _IN_WORKER
    _IN_WORKER = True
    block_interrupts()
    _die_with_parent()
    if jax_cache:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", jax_cache)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    # PyMC's JAX module sets 100 host devices when it is imported; a flag after its own
    # (no trailing space, so its pattern leaves it alone) decides, 1 included.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}"


def _die_with_parent(poll_seconds: float = 1.0) -> None:
    """A worker must not outlive the run: after SIGKILL of the main process a Bambi
    worker (about 1 GB) would otherwise live on. A daemon thread watches the parent's
    pid and ends the worker once it changes (the worker was re-parented). This works
    on every POSIX system and, unlike PR_SET_PDEATHSIG, does not fire when the thread
    that happened to start the worker ends."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parity-parent-watch", daemon=True).start()


def worker_engine(name: str) -> Engine:
    """The engine called `name` in this process, constructed once and reused (its
    embedded R, its compiled samplers)."""
    engine = _WORKER_ENGINES.get(name)
    if engine is None:
        engine = load_engine(name)
        _WORKER_ENGINES[name] = engine
    return engine


# The name the test-suite's worker pools and older callers use.
_init_worker = init_worker


def _missing(engine: Engine) -> str | None:
    """The engine's `missing()`, which may load its library. Importing rpy2 installs
    Python's default SIGINT handler again, so a worker that embeds R would take Ctrl-C
    as a KeyboardInterrupt (even inside rpy2's exit handler, printing a traceback); a
    worker goes on ignoring it, as the parent stops the run."""
    reason = engine.missing()
    if _IN_WORKER and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return reason


def fit_one(engine_name: str, model: Model, data: PreparedData, settings: Settings) -> Fit:
    """Fit in this process, reusing the engine (and its embedded R) across calls."""
    engine = worker_engine(engine_name)
    refusal = engine.refuses(model, settings)
    if refusal is not None:
        return status_fit(engine_name, model, data, "unsupported", refusal.reason, settings)
    reason = _missing(engine)
    if reason is None:
        return written_names(vet_fit(engine.fit(model, data, settings), model, data),
                             model.spec)
    recorded = engine.fallback(model, data, settings)
    if recorded is not None:
        return recorded
    hint = engine.fallback_hint()
    return status_fit(engine_name, model, data, "skipped",
                      f"{reason}; {hint}" if hint else reason, settings)


def evaluate_at(judge: str, model: Model, data: PreparedData, solution: Fit,
                reml: bool = True) -> dict[str, Any]:
    """The judge's criterion (lme4's REML, or ML deviance), and the fixed effects it
    profiles out, at `solution`'s variance components (in the judge's worker)."""
    engine: Any = worker_engine(judge)
    reason = _missing(engine)
    if reason is not None:  # no live R: the check is left out, never faked
        raise RuntimeError(reason)
    out: dict[str, Any] = engine.evaluate_at(
        model, data, solution.variance_components, reml=reml,
        fixed={f.term: f.estimate for f in solution.fixed_effects})
    return out


def prepare_all(models: Sequence[Model], frame: pd.DataFrame) -> dict[str, PreparedData]:
    """Each model's complete rows; bad data is a usage error before anything is fitted."""
    return {m.name: prepare(frame, m.spec, m.categorical, m.family, m.trials, m.weights)
            for m in models}


def with_response_coding(fit: Fit, model: Model, data: PreparedData) -> Fit:
    """`fit`, its settings saying which level of a two-level factor response counts as
    success (`response`: column, failure, success), where the response was one: the
    numbers are on that coding, and a reader of the results should not have to guess."""
    if data.response_levels is None:
        return fit
    failure, success = data.response_levels
    coding = {"column": model.spec.response, "failure": failure, "success": success}
    prov = fit.provenance
    return replace(fit, provenance=replace(prov, settings={**prov.settings, "response": coding}))


def _n_groups(model: Model, data: PreparedData) -> dict[str, int]:
    return {b.group_label: int(data.frame[list(b.group)].drop_duplicates().shape[0])
            for b in model.spec.random}


def _result(fut: Future[Fit], engine: str, model: Model, data: PreparedData,
            settings: Settings) -> Fit:
    try:
        return fut.result()
    except BrokenProcessPool:
        return status_fit(engine, model, data, "failed",
                          f"the {engine} worker process died (crash or out of memory)", settings)
    except Exception as exc:  # an engine bug: keep the run, record the failure
        return status_fit(engine, model, data, "failed",
                          f"{engine}: {type(exc).__name__}: {exc}", settings)


@dataclass
class _Job:
    model: Model  # as the engine fits it (a variant's refit model for matched references)
    data: PreparedData
    engine: str
    variant: Variant | None = None
    material: dict[str, Any] | None = None
    fit: Fit | None = None
    cached: bool = False  # the fit came from the cache (not from a refusal up front)


class _Pools:
    """Worker pools, started only when an engine has something to fit."""

    def __init__(self, jobs: int, jax_cache: Path | None, devices: int) -> None:
        self.jobs = max(1, jobs)
        self.jax_cache = str(jax_cache) if jax_cache else None
        self.devices = devices
        self.pools: dict[str, ProcessPoolExecutor] = {}

    def get(self, engine: str, pending: int = 1) -> ProcessPoolExecutor:
        """The pool of `engine`'s process group (the registry's `process`): one worker
        for the R engines, one for the plain Python ones; a slow engine's group gets up
        to `jobs` workers."""
        info = engine_info(engine)
        name = info.process
        if name not in self.pools:
            workers = min(self.jobs, pending) if info.slow else 1
            self.pools[name] = ProcessPoolExecutor(
                max_workers=max(1, workers), mp_context=quiet_spawn(),
                initializer=init_worker, initargs=(self.jax_cache, self.devices))
        return self.pools[name]

    def kill(self) -> None:
        """Stop every worker now (Ctrl-C, SIGTERM): their fits are not waited for."""
        for pool in self.pools.values():
            for proc in list(getattr(pool, "_processes", {}).values()):
                if proc.is_alive():
                    proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        self.pools.clear()

    def shutdown(self, keep: set[str] | None = None) -> None:
        """End every pool, or every pool whose process group is not in `keep` (its
        queued fits would be cancelled)."""
        for name in [n for n in self.pools if keep is None or n not in keep]:
            pool = self.pools.pop(name, None)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def default_jobs() -> int:
    """Bambi worker processes: one, whose chains run in parallel on every core. More
    workers fit several models at once, at one JAX runtime's memory each."""
    return 1


def run_models(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    on_fit: ProgressHook | None = None,
    matched_references: bool = True,
    cache: FitCache | None = None,
    jobs: int | None = None,
    on_start: StartHook | None = None,
    parallel_chains: bool = True,
    prepared: dict[str, PreparedData] | None = None,
    budget: Budget | None = None,
) -> Outcome:
    """Every (model, engine) fit, ordered by model then engine as asked, plus the
    matched-structure references and optimum checks that the comparison needs.

    `on_start` hears of each fit as it is queued (or found in the cache), `on_fit` as it
    ends, in the order fits finish. `jobs` Bambi workers fit models side by side;
    `parallel_chains` runs each model's chains side by side (same draws either way).
    A fit over `budget` (by default this machine's) is refused up front."""
    for name in engines:
        check_engine(name)
    cache = cache or FitCache(enabled=False)
    prepared = prepared if prepared is not None else prepare_all(models, frame)
    main, refits = _plan(models, engines, prepared, matched_references)
    every = main + list(refits.values())
    _from_cache(every, cache, settings)
    _refused(every, settings, budget)
    pools = _Pools(jobs or default_jobs(), cache.jax_dir() if cache.enabled else None,
                   settings.chains if parallel_chains else 1)
    try:
        futures = _submit([j for j in every if j.fit is None], pools, settings)
        if on_start is not None:
            _announce(main, futures, on_start)
        for job in every:
            if job.fit is not None:
                _finish(job, prepared, cache, on_fit, fresh=False)
        # The frequentist fits and checks first; their worker then ends, so its memory
        # is given back before Bambi's grows.
        frequentist = {f: j for f, j in futures.items() if not engine_info(j.engine).slow}
        for fut in as_completed(frequentist):
            job = futures[fut]
            job.fit = _result(fut, job.engine, job.model, job.data, settings)
            _finish(job, prepared, cache, on_fit, fresh=True)
        by_name = {m.name: m for m in models}
        for name, job in refits.items():
            assert job.fit is not None and job.variant is not None
            job.fit = read_back(job.fit, job.variant, by_name[name])
        results = {(j.model.name, j.engine): j.fit for j in main if j.fit is not None}
        checks = _optimum_checks(models, prepared, refits, results, pools, cache, settings)
        # The fast groups' work is done: their workers (an embedded R) end, so their
        # memory is given back before the samplers' grows. A group with slow work left
        # keeps its workers.
        pools.shutdown(keep={engine_info(j.engine).process
                             for f, j in futures.items() if f not in frequentist})
        for fut in as_completed([f for f in futures if f not in frequentist]):
            job = futures[fut]
            job.fit = _result(fut, job.engine, job.model, job.data, settings)
            _finish(job, prepared, cache, on_fit, fresh=True)
        results = {(j.model.name, j.engine): j.fit for j in main if j.fit is not None}
    except BaseException:  # Ctrl-C, SIGTERM, an error: no worker outlives the run
        pools.kill()
        raise
    finally:
        pools.shutdown()
    return Outcome([results[(m.name, e)] for m in models for e in engines],
                   [j.fit for j in refits.values() if j.fit is not None], checks)


def _plan(models: Sequence[Model], engines: Sequence[str], prepared: dict[str, PreparedData],
          matched_references: bool) -> tuple[list[_Job], dict[str, _Job]]:
    """The fits asked for, model by model, and the refitter's (lme4's) matched-structure
    refits."""
    main = [_Job(m, prepared[m.name], e) for m in models for e in engines]
    refits: dict[str, _Job] = {}
    refitter = engine_with_role("refitter", engines)
    if matched_references and refitter is not None:
        for m in models:
            v = independent_variant(m, prepared[m.name])
            if v is not None:
                refits[m.name] = _Job(v.model, v.data, refitter, v)
    return main, refits


def _refused(jobs: Sequence[_Job], settings: Settings, budget: Budget | None = None) -> None:
    """Each fit its engine refuses (`Engine.refuses`: a family, a structure, weights or
    an offset it does not fit) is `unsupported` with the reason, decided here: no worker
    starts, no library loads, for a fit that would not run. The worker asks again.

    So is each fit whose estimated memory (`Engine.cost`, from the design's dimensions)
    or time is over `budget` (by default: what this machine gives one fit,
    `parity.engines.budget`), with the estimate as the reason; that is decided here
    only, once for the run."""
    budget = budget if budget is not None else machine_budget()
    dims: dict[tuple[int, str], DesignDims] = {}
    for job in jobs:
        if job.fit is None:
            engine = load_engine(job.engine)
            refusal = engine.refuses(job.model, settings)
            if refusal is None:
                key = (id(job.data), job.model.name)
                if key not in dims:
                    dims[key] = design_dims(job.model, job.data)
                refusal = cost_refusal(engine, job.model, dims[key], settings, budget)
            if refusal is not None:
                job.fit = status_fit(job.engine, job.model, job.data, "unsupported",
                                     refusal.reason, settings)


def _from_cache(jobs: Sequence[_Job], cache: FitCache, settings: Settings) -> None:
    """Fill each job the cache holds a fit for. The key leaves out what does not change
    the numbers (the model's name, the formula as typed, the rows dropped before the
    model's rows were kept), so the stored fit gets this run's."""
    if not cache.enabled:
        return
    for job in jobs:
        job.material = key_material(job.engine, job.model, job.data, settings)
        if settings.save_draws and engine_info(job.engine).draws:
            continue  # the draws are asked for: sample (the fit is still stored)
        cached = cache.get(job.material)
        job.fit = None if cached is None else replace(
            cached, model=job.model.name, formula=job.model.formula,
            n_dropped=job.data.n_dropped)
        job.cached = cached is not None


def _submit(pending: Sequence[_Job], pools: _Pools,
            settings: Settings) -> dict[Future[Fit], _Job]:
    """Slow engines (Bambi) first, largest models first: they take longest, so they
    start while the others finish, and several workers end at about the same time."""
    futures: dict[Future[Fit], _Job] = {}
    for job in sorted(pending, key=lambda j: (not engine_info(j.engine).slow,
                                              -_size(j.model))):
        count = sum(1 for j in pending if j.engine == job.engine)
        pool = pools.get(job.engine, count)
        futures[pool.submit(fit_one, job.engine, job.model, job.data, settings)] = job
    return futures


def _announce(main: Sequence[_Job], futures: dict[Future[Fit], _Job],
              on_start: StartHook) -> None:
    """Tell the progress display of every fit: cached, or queued (and how to ask
    whether it is running yet); a fit refused up front is neither, and ends at once."""
    future_of = {id(j): f for f, j in futures.items()}
    for job in main:
        fut = future_of.get(id(job))
        on_start(job.model.name, job.engine, job.cached,
                 fut.running if fut is not None else None)


def _size(model: Model) -> int:
    """A rough cost of sampling a model: its terms, random ones counted twice."""
    spec = model.spec
    return len(spec.fixed) + sum(2 * (len(b.terms) + b.intercept) for b in spec.random)


def _finish(job: _Job, prepared: dict[str, PreparedData], cache: FitCache,
            on_fit: ProgressHook | None, fresh: bool) -> None:
    assert job.fit is not None
    if fresh:
        cache.put(job.material, job.fit)
    job.fit = with_response_coding(replace(job.fit, n_groups=_n_groups(job.model, job.data)),
                                   job.model, job.data)
    if on_fit is not None and job.variant is None:
        on_fit(job.fit)


def _check_target(m: Model, fit: Fit, lme4: Fit, refit: _Job | None, data: PreparedData
                  ) -> tuple[Fit, Fit, Model, PreparedData] | None:
    """The lme4 fit of the structure `fit` has, and `fit`'s solution under that fit's
    names (an independent engine is judged against the matched-structure refit), or None
    when lme4 fitted no such structure."""
    if set(fit.structure.values()) == {"independent"} and refit is not None:
        assert refit.fit is not None and refit.variant is not None
        v = refit.variant
        inverse = {canon: col for col, canon in v.terms.items()}
        solution = replace(fit, variance_components=tuple(
            replace(c, term=inverse.get(c.term, c.term) if c.term else c.term)
            for c in fit.variance_components))
        return refit.fit, solution, v.model, v.data
    if fit.structure == lme4.structure:
        return lme4, fit, m, data
    return None


def _optimum_checks(models: Sequence[Model], prepared: dict[str, PreparedData],
                    refits: dict[str, _Job], results: dict[tuple[str, str], Fit],
                    pools: _Pools, cache: FitCache, settings: Settings) -> list[OptimumCheck]:
    """Every other frequentist engine's mixed-model solution under lme4's criterion (the
    REML criterion, or the ML deviance of an ML fit),
    against lme4's own optimum of the same structure; with the fixed effects lme4
    profiles out at that solution's variance components (`fixed_at_solution`), so the
    comparison can tell a worse optimum from estimates that contradict each other."""
    jobs: list[tuple[str, str, Fit, dict[str, Any] | None,
                     Future[dict[str, Any]] | dict[str, Any]]] = []
    judge = engine_with_role("judge", [e for _, e in results])
    spec_of = {m.name: m.spec for m in models}
    for m in models:
        lme4_fit = results.get((m.name, judge)) if judge else None
        for (name, engine), fit in results.items():
            if name != m.name or engine == judge or (fit.kind or engine_kind(engine)) \
                    != "frequentist":
                continue
            if lme4_fit is None or fit.status != "ok" or not m.spec.is_mixed:
                continue
            target = _check_target(m, fit, lme4_fit, refits.get(m.name), prepared[m.name])
            if target is None:
                continue
            lme4, solution, model, data = target
            if lme4.status != "ok" or _criterion_value(lme4) is None \
                    or solution.criterion not in (None, lme4.criterion):
                continue
            parsed = parse_criterion(lme4.criterion)
            reml = parsed is not None and parsed.reml
            assert judge is not None
            material = (key_material(judge, model, data, replace(settings, reml=reml))
                        if cache.enabled else None)
            if material is not None:
                material = {**material, "check": "evaluate_at",
                            "solution": [asdict(c) for c in solution.variance_components],
                            "fixed": [asdict(f) for f in solution.fixed_effects]}
                value = cache.get_value(material)
                if value is not None:
                    jobs.append((m.name, engine, lme4, None, value))
                    continue
            jobs.append((m.name, engine, lme4, material,
                         pools.get(judge).submit(evaluate_at, judge, model, data, solution,
                                                 reml)))
    checks = []
    for name, engine, lme4, material, fut in jobs:
        try:
            value = fut if isinstance(fut, dict) else fut.result()
        except Exception:  # a check that cannot run leaves the comparison without it
            continue
        if material is not None and not isinstance(fut, dict):
            cache.put_value(material, value)
        crit, own = float(value["criterion"]), _criterion_value(lme4)
        assert own is not None and lme4.criterion is not None
        sm_ll, lme4_ll = -crit / 2.0, -own / 2.0
        checks.append(OptimumCheck(
            model=name, engine=engine, reference=lme4.label,
            objective=objective(lme4.criterion), criterion=lme4.criterion,
            engine_value=sm_ll, reference_value=lme4_ll, difference=sm_ll - lme4_ll,
            better=("tie" if abs(sm_ll - lme4_ll) < SAME_OPTIMUM
                    else engine if sm_ll > lme4_ll else lme4.label),
            fixed_at_solution={spec_of[name].rename(str(k)): float(v)
                               for k, v in value.get("fixed", {}).items()},
        ))
    return checks


def _criterion_value(lme4: Fit) -> float | None:
    """-2 log-likelihood of lme4's own fit under the criterion it fitted, or None where
    the fit does not say which (a reference recorded before fits named it)."""
    stats, parsed = lme4.fit_statistics, parse_criterion(lme4.criterion)
    if parsed is None:
        return None
    if parsed.kind == "REML":
        return stats.get("reml_criterion", stats.get("deviance"))
    # lme4's deviance function evaluates the Laplace approximation, not AGQ(n): a fit
    # by adaptive quadrature has no value there to judge another solution against. An
    # nAGQ=0 fit's deviance is that Laplace approximation, but at fixed effects that
    # do not maximise it: it is no optimum either, so it judges nothing.
    if parsed.kind in ("ML", "Laplace"):
        return stats.get("deviance")
    return None


def fit_many(engine: str, jobs: Sequence[tuple[Model, PreparedData]],
             settings: Settings) -> list[Fit]:
    """Fits of one engine in one worker process, in order (used to record references)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=quiet_spawn()) as pool:
        futures = [pool.submit(fit_one, engine, m, d, settings) for m, d in jobs]
        return [_result(f, engine, m, d, settings)
                for f, (m, d) in zip(futures, jobs, strict=True)]


def run_fits(models: Sequence[Model], frame: pd.DataFrame, engines: Sequence[str],
             settings: Settings, on_fit: ProgressHook | None = None) -> list[Fit]:
    """Only the fits asked for (no matched references, no optimum checks)."""
    return run_models(models, frame, engines, settings, on_fit, matched_references=False).fits
