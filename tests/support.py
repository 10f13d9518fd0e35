"""Engine workers shared by the engine test modules: one spawned process per engine for a
whole module, so that embedded R and JAX never share a process (as in a run)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

from parity.engines.invariance import Case
from parity.pipeline.workers import _init_worker, fit_one
from parity.rows.prepare import prepare
from parity.schema import Comparison, Fit
from parity.settings import Settings
from parity.spec.models import make_model

# Small sampler settings: the engine tests are about engines, not about the sampler.
SAMPLER = Settings(draws=300, tune=300, chains=2, seed=11)


class Workers:
    """One spawned worker per engine for the whole module (R and JAX never share one)."""

    def __init__(self) -> None:
        self.pools: dict[str, ProcessPoolExecutor] = {}
        self.base: dict[tuple[str, str], Fit] = {}

    def fit(self, engine: str, case: Case, settings: Settings = SAMPLER) -> Fit:
        if engine not in self.pools:
            self.pools[engine] = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(None, SAMPLER.chains))
        model = make_model(case.name, case.formula, case.categorical, case.family, case.trials)
        data = prepare(case.frame, model.spec, case.categorical, model.family, model.trials)
        return self.pools[engine].submit(fit_one, engine, model, data, settings).result()

    def baseline(self, engine: str, case: Case) -> Fit:
        key = (engine, case.name)
        if key not in self.base:
            self.base[key] = self.fit(engine, case)
            # Invariance is about the numbers; whether they converged is the trust
            # rule's, and a transformed fit is held to the same status as its baseline.
            assert self.base[key].has_numbers, self.base[key].reason
        return self.base[key]


def worker_pool() -> Iterator[Workers]:
    """For a module-scoped `workers` fixture: `yield from worker_pool()`."""
    w = Workers()
    yield w
    for pool in w.pools.values():
        pool.shutdown(cancel_futures=True)


# Words by which a row's reason explains a gap by a method: a prior, a boundary, an
# approximation, an optimum or Monte-Carlo error. None of them may explain a row of a fit
# that did not converge; its reason is the failure to converge.
BLAME_WORDS = ("prior", "boundary", "singular", "approximation", "mean-field", "optimum",
               "integrates over", "shrink", "monte-carlo error", "variational")


def misplaced_blame(rows: Sequence[Comparison], fits: Sequence[Fit]) -> list[str]:
    """The rows that blame a method for a gap where one of their fits did not
    converge, or that compare such a fit without saying so, each as a line."""
    stuck = {(f.model, f.label): f for f in fits if f.status == "unconverged"}
    bad: list[str] = []
    for r in rows:
        mine = [stuck[k] for k in ((r.model, r.engine), (r.model, r.reference)) if k in stuck]
        if not mine:
            continue
        reason = (r.reason or "").lower()
        said = reason.split("; compared as asked", 1)[0]
        if not r.unconverged or not all(f"{f.label} did not converge" in said for f in mine):
            bad.append(f"{r.model} {r.engine} vs {r.reference} {r.term}: {r.verdict} "
                       f"without naming the unconverged fit: {r.reason}")
            continue
        for f in mine:  # the fit's own words (nlminb's "singular convergence") are its own
            reason = reason.replace((f.reason or "").lower(), "")
        if any(w in reason for w in BLAME_WORDS):
            bad.append(f"{r.model} {r.engine} vs {r.reference} {r.term}: blames a method "
                       f"on an unconverged fit: {r.reason}")
    return bad


def by_design(quantity: str, verdict: str, reason: str | None) -> bool:
    """A row set apart because two frequentist engines find an interval, or a t-test's
    df, by different methods (statsmodels' or glmmTMB's Wald-z against lme4's Wald-t on
    Satterthwaite df, nlme's containment df): not comparable by design, with both
    methods named. Tests that hold two engines to agree on every row leave these out."""
    why = reason or ""
    return (quantity in ("lower", "upper", "df") and verdict == "not_comparable"
            and ("different methods" in why or "different rules" in why))
