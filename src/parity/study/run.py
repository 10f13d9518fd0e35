"""A study from start to end: the truth, the designs, the replicates, the fits on Dask
(resuming finished batches), the verdicts, and what is written.

The scheduler is `dask.distributed`: a LocalCluster of worker processes (one per core,
or `workers`), or an existing cluster at `scheduler`, so that a study that outgrows one
machine runs on many unchanged. The client holds the data and writes every file; workers
only fit, so they need no access to the output directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from parity.compare.tolerances import Policy
from parity.errors import UsageError
from parity.registry import engine_with_role
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.assemble import assemble
from parity.study.checks import check_options
from parity.study.cluster import client_for
from parity.study.design import make_design
from parity.study.options import StudyOptions, StudyResult
from parity.study.plan import batch_size, plan
from parity.study.progress import StudyProgress
from parity.study.report import write_study
from parity.study.store import BatchStore, batch_key
from parity.study.tasks import Batch, fit_in_child, run_batch
from parity.study.truth import Truth, truth_from

__all__ = ["StudyOptions", "StudyResult", "run_study"]


def _truth(model: Model, original: Any, settings: Settings) -> tuple[Truth, Fit]:
    reference = engine_with_role("reference")
    assert reference is not None  # the registry names one (lme4)
    fit = fit_in_child(reference, model, [original], settings)[0]
    return truth_from(fit), fit


def timed_batch(batch: Batch, model: Model, design: Any, settings: Settings
                ) -> tuple[list[Fit], float]:
    """A batch's fits and the seconds it held its worker (what the Dask task ran)."""
    start = time.perf_counter()
    fits = run_batch(batch, model, design, settings)
    return fits, time.perf_counter() - start


def run_study(model: Model, frame: pd.DataFrame, options: StudyOptions, policy: Policy,
              on_stage: Callable[[str], None] | None = None) -> StudyResult:
    """Fit every replicate of every design with every engine; write the study."""
    check_options(options)
    if not model.gaussian:
        raise UsageError(f"a study simulates Gaussian models; {model.name!r} is "
                         f"{model.family}")
    if model.weights is not None or model.spec.offset:
        raise UsageError(f"a study simulates unweighted models without offsets; "
                         f"{model.name!r} has {'weights' if model.weights else 'an offset'}")
    say = on_stage or (lambda _: None)
    started = time.monotonic()
    settings = options.settings
    original = prepare(frame, model.spec, model.categorical, model.family, model.trials)
    designs = [make_design(model, original, g) for g in options.groups]
    say("fitting lme4 to the original data (the truth)")
    truth, truth_fit = _truth(model, original, settings)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    store = BatchStore(out)
    by_design = {d.groups: d for d in designs}
    fits: dict[tuple[int, int, str], Fit] = {}
    with client_for(options) as (client, scheduler):
        size = batch_size(options, max(1, int(scheduler.get("workers") or 1)))
        batches = plan(model, designs, truth, options, size)
        digests = {g: d.data.digest() for g, d in by_design.items()}
        keys = {b.name: batch_key(b, model, digests[b.groups], settings) for b in batches}
        pending: list[Batch] = []
        for b in batches:
            done = store.load(b, keys[b.name])
            if done is None or len(done) != len(b.replicates):
                pending.append(b)
                continue
            for r, f in zip(b.replicates, done, strict=True):
                fits[(b.groups, r, b.label)] = f
        # Fits per label: each engine, and the reference's matched refit (lme4:independent).
        total: dict[str, int] = {}
        for b in batches:
            total[b.label] = total.get(b.label, 0) + len(b.replicates)
        resumed: dict[str, int] = dict(total)
        for b in pending:
            resumed[b.label] -= len(b.replicates)
        progress = StudyProgress(total, resumed, options.quiet)
        from dask.distributed import as_completed

        futures = {client.submit(timed_batch, b, model, by_design[b.groups].data, settings,
                                 pure=False, key=f"parity-{b.name}-{keys[b.name][:12]}"): b
                   for b in pending}
        held: dict[str, float] = {}
        for future in as_completed(list(futures)):
            b = futures[future]
            seconds: float | None = None
            try:
                batch_fits, seconds = future.result()
            except Exception as exc:
                from parity.engines.base import status_fit

                why = f"{b.label}: the Dask task failed: {type(exc).__name__}: {exc}"
                batch_fits = [replace(status_fit(b.engine, model, by_design[b.groups].data,
                                                 "failed", why, settings), variant=b.variant)
                              for _ in b.replicates]
            else:
                store.save(b, keys[b.name], batch_fits)
                held[b.label] = held.get(b.label, 0.0) + seconds
            for r, f in zip(b.replicates, batch_fits, strict=True):
                fits[(b.groups, r, b.label)] = f
            progress.add(b.label, len(b.replicates), seconds)
        # Worker seconds each engine's batches held, beside its fits' own recorded
        # seconds (study.json's fits table): the difference is what a batch costs beyond
        # fitting (a child process and its R, lme4's profile intervals, transfers).
        scheduler["batch_seconds"] = {e: round(t, 3) for e, t in held.items()}
        scheduler["resumed_batches"] = len(batches) - len(pending)
        scheduler["fitted_batches"] = len(pending)
        scheduler["batch_size"] = size
    say("comparing")
    result = assemble(model, designs, truth, truth_fit, fits, options, policy, scheduler)
    result.document["seconds"] = round(time.monotonic() - started, 3)
    result.paths = write_study(out, result, options)
    return result


