"""A study from start to end: the truth, the designs, the replicates, the fits on Dask
(resuming finished batches), the verdicts, and what is written.

The scheduler is `dask.distributed`: a LocalCluster of worker processes (one per core,
or `workers`), or an existing cluster at `scheduler`, so that a study that outgrows one
machine runs on many unchanged. The client holds the data and writes every file; workers
only fit, so they need no access to the output directory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from parity.compare.tolerances import Policy
from parity.pipeline.outdir import claimed, clear_study, refuse_a_file
from parity.registry import engine_with_role
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.assemble import assemble
from parity.study.checks import check_draws, check_model, check_options, check_size
from parity.study.cluster import SchedulerLost, client_for, probe_scheduler
from parity.study.design import Design, make_design
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
    """Fit every replicate of every design with every engine; write the study.

    Every option is checked before the truth is fitted, as `parity run` checks them, and
    the output directory is claimed (checked, locked, cleared of an older study's files
    but for the batches a rerun resumes from) for the whole study."""
    check_options(options)
    check_model(model, options)
    out = Path(options.out)
    refuse_a_file(out)
    store = BatchStore(out)
    store.refuse_a_file()
    say = on_stage or (lambda _: None)
    started = time.monotonic()
    settings = options.settings
    original = prepare(frame, model.spec, model.categorical, model.family, model.trials)
    check_size(model, original, options)
    designs = [make_design(model, original, g) for g in options.groups]
    check_draws(model, designs, options)
    if options.scheduler is not None:
        probe_scheduler(options.scheduler)
    with claimed(out, clear=clear_study):
        store.make()
        say("fitting lme4 to the original data (the truth)")
        truth, truth_fit = _truth(model, original, settings)
        return _fit_and_write(model, designs, truth, truth_fit, options, policy, store,
                              say, started)


def _warn(text: str) -> None:
    """A warning the study goes on after, shown even with --quiet: it says that
    something on disk was not as written, or could not be written."""
    print(f"study: warning: {text}", file=sys.stderr, flush=True)


def _fit_and_write(model: Model, designs: list[Design], truth: Truth, truth_fit: Fit,
                   options: StudyOptions, policy: Policy, store: BatchStore,
                   say: Callable[[str], None], started: float) -> StudyResult:
    out, settings = Path(options.out), options.settings
    by_design = {d.groups: d for d in designs}
    fits: dict[tuple[int, int, str], Fit] = {}
    with client_for(options) as (client, scheduler):
        size = batch_size(options, max(1, int(scheduler.get("workers") or 1)))
        batches = plan(model, designs, truth, options, size)
        digests = {g: d.data.digest() for g, d in by_design.items()}
        keys = {b.name: batch_key(b, model, digests[b.groups], settings) for b in batches}
        pending: list[Batch] = []
        unsaved: list[str] = []
        for b in batches:
            loaded = store.load(b, keys[b.name])
            if loaded.problem is not None:
                _warn(f"{store.path(b)} {loaded.problem}; it is refitted")
            if loaded.fits is None:
                pending.append(b)
                continue
            for r, f in zip(b.replicates, loaded.fits, strict=True):
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
        from distributed.client import FutureCancelledError

        futures = {client.submit(timed_batch, b, model, by_design[b.groups].data, settings,
                                 pure=False, key=f"parity-{b.name}-{keys[b.name][:12]}"): b
                   for b in pending}
        held: dict[str, float] = {}
        for future in as_completed(list(futures)):
            b = futures[future]
            seconds: float | None = None
            try:
                batch_fits, seconds = future.result()
            except FutureCancelledError as exc:
                # The scheduler was lost (or the batch cancelled on the cluster): what
                # finished is on disk, and a rerun resumes from it.
                kept = sum(1 for p in store.dir.glob("*.json") if p.is_file())
                raise SchedulerLost(
                    f"the Dask cluster at {scheduler.get('address')} stopped the study "
                    f"({getattr(exc, 'reason', 'cancelled')}); the finished batches "
                    f"({kept} files) are kept in {store.dir} and a rerun resumes from "
                    "them") from None
            except Exception as exc:
                from parity.engines.base import status_fit

                why = f"{b.label}: the Dask task failed: {type(exc).__name__}: {exc}"
                batch_fits = [replace(status_fit(b.engine, model, by_design[b.groups].data,
                                                 "failed", why, settings), variant=b.variant)
                              for _ in b.replicates]
            else:
                why_not = store.save(b, keys[b.name], batch_fits)
                if why_not is not None:
                    unsaved.append(b.name)
                    _warn(f"{store.path(b)} could not be saved ({why_not}); its fits "
                          "are kept for this study, and a rerun refits them")
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
        scheduler["unsaved_batches"] = len(unsaved)
    say("comparing")
    result = assemble(model, designs, truth, truth_fit, fits, options, policy, scheduler)
    result.document["seconds"] = round(time.monotonic() - started, 3)
    result.paths = write_study(out, result, options)
    return result


