"""A study from start to end: the truth, the designs, the replicates, the fits on Dask
(resuming finished batches), the verdicts, and what is written.

The scheduler is `dask.distributed`: a LocalCluster of worker processes (one per core,
or `workers`), or an existing cluster at `scheduler`, so that a study that outgrows one
machine runs on many unchanged. The client holds the data and writes every file; workers
only fit, so they need no access to the output directory.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from parity import __version__
from parity.compare.rules import compare_all, fit_kind
from parity.compare.tolerances import Policy
from parity.errors import UsageError
from parity.registry import engine_info, engine_kind, engine_with_role, rows
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.calibrate import Scaled, calibrate, calibrated_toml, scaled
from parity.study.design import Design, make_design
from parity.study.report import write_study
from parity.study.simulate import replicate_rng, replicate_seed, simulate
from parity.study.store import BatchStore, batch_key
from parity.study.tables import (
    REFERENCE,
    StudyRow,
    fit_rows,
    row_dicts,
    summarize,
    verdicts_against,
)
from parity.study.tasks import Batch, fit_in_child, run_batch
from parity.study.truth import Truth, truth_from


@dataclass(frozen=True)
class StudyOptions:
    groups: tuple[int, ...]
    replicates: int
    engines: tuple[str, ...]
    settings: Settings
    out: Path
    reference: str = "lme4"
    workers: int | None = None
    scheduler: str | None = None
    batch_size: int | None = None
    quantile: float = 0.99
    quiet: bool = False


@dataclass
class StudyResult:
    document: dict[str, Any]
    rows: list[StudyRow]
    scaled: list[Scaled] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)


def check_options(options: StudyOptions) -> None:
    if not options.groups:
        raise UsageError("--groups names no design")
    if options.replicates < 1:
        raise UsageError("--replicates must be at least 1")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if options.batch_size is not None and options.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not 0 < options.quantile <= 1:
        raise UsageError("--calibrate-quantile must be in (0, 1]")
    if options.reference not in options.engines:
        raise UsageError(f"the reference engine {options.reference!r} is not among "
                         f"--engines ({', '.join(options.engines)})")
    if engine_kind(options.reference) != "frequentist":
        frequentist = ", ".join(r.name for r in rows() if r.kind == "frequentist")
        raise UsageError(f"the reference engine must be frequentist ({frequentist}), not "
                         f"{options.reference!r}: verdicts are against a "
                         "maximum-likelihood fit")
    if options.workers is not None and options.scheduler is not None:
        raise UsageError("--workers sizes a local cluster; an existing cluster "
                         "(--scheduler) has its own workers")


def _batch_size(options: StudyOptions, workers: int) -> int:
    """Replicates per task of an engine fitted in the worker: enough tasks to keep every
    worker busy (about two each), at most 25 per task."""
    if options.batch_size is not None:
        return options.batch_size
    return max(1, min(25, -(-options.replicates // max(1, 2 * workers))))


def _r_batch_size(options: StudyOptions, size: int) -> int:
    """Replicates per task of an R engine: its fits take milliseconds and each task
    starts one R, so a design's replicates go in as few tasks as the study's own batches
    allow (a multiple of `size`, at most 100 replicates)."""
    if options.batch_size is not None:
        return options.batch_size
    return size * max(1, min(options.replicates, 100) // size)


@contextmanager
def _client(options: StudyOptions) -> Iterator[tuple[Any, dict[str, Any]]]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise UsageError(f"parity study needs dask.distributed ({exc}); install it with "
                         "pip install 'parity[study]'") from None
    import logging

    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"no Dask scheduler at {options.scheduler!r} "
                             f"({type(exc).__name__}: {exc})") from None
        try:
            info = client.scheduler_info()
            workers = len(info.get("workers", {}))
            yield client, {"kind": "existing cluster", "address": options.scheduler,
                           "workers": workers}
        finally:
            client.close()
        return
    n = options.workers or os.cpu_count() or 1
    # Each worker's chains run side by side on as many XLA host devices (PyMC's JAX
    # sampler otherwise asks for 100), as `parity run` runs them.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        flags = f"{flags} --xla_force_host_platform_device_count={options.settings.chains}"
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR,
                           env={"XLA_FLAGS": flags.strip()})
    client = Client(cluster)
    try:
        yield client, {"kind": "LocalCluster", "address": cluster.scheduler_address,
                       "workers": n, "threads_per_worker": 1}
    finally:
        client.close()
        cluster.close()


class _Progress:
    """Replicates done / total with an ETA, on one terminal line (a line per tenth when
    the output is not a terminal)."""

    def __init__(self, total: int, done: int, quiet: bool) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self._last_tenth = -1
        self.show()

    def add(self, n: int) -> None:
        self.done += n
        self.show()

    def show(self) -> None:
        if self.quiet:
            return
        new = self.done - self.start_done
        elapsed = time.monotonic() - self.start
        eta = ""
        if new and self.done < self.total:
            eta = f", ETA {_duration(elapsed / new * (self.total - self.done))}"
        text = (f"study: {self.done}/{self.total} replicates "
                f"({self.done / max(1, self.total):.0%}){eta}")
        if self.tty:
            print(f"\r{text}\033[K", end="" if self.done < self.total else "\n",
                  file=sys.stderr, flush=True)
            return
        tenth = int(10 * self.done / max(1, self.total))
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            print(text, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


def _truth(model: Model, original: Any, settings: Settings) -> tuple[Truth, Fit]:
    reference = engine_with_role("reference")
    assert reference is not None  # the registry names one (lme4)
    fit = fit_in_child(reference, model, [original], settings)[0]
    return truth_from(fit), fit


def _plan(model: Model, designs: Sequence[Design], truth: Truth, options: StudyOptions,
          size: int) -> list[Batch]:
    settings = options.settings
    r_size = _r_batch_size(options, size)
    batches: list[Batch] = []
    for d in designs:
        ys = [simulate(model, d.data, truth, replicate_rng(settings.seed, d.groups, r))
              for r in range(options.replicates)]
        seeds = [replicate_seed(settings.seed, d.groups, r) for r in range(options.replicates)]
        for engine in options.engines:
            n = r_size if engine_info(engine).embeds_r else size
            for index, start in enumerate(range(0, options.replicates, n)):
                reps = tuple(range(start, min(start + n, options.replicates)))
                batches.append(Batch(d.groups, index, engine, reps,
                                     tuple(ys[r] for r in reps),
                                     tuple(seeds[r] for r in reps)))
    return batches


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
    with _client(options) as (client, scheduler):
        size = _batch_size(options, max(1, int(scheduler.get("workers") or 1)))
        batches = _plan(model, designs, truth, options, size)
        digests = {g: d.data.digest() for g, d in by_design.items()}
        keys = {b.name: batch_key(b, model, digests[b.groups], settings) for b in batches}
        pending: list[Batch] = []
        for b in batches:
            done = store.load(b, keys[b.name])
            if done is None or len(done) != len(b.replicates):
                pending.append(b)
                continue
            for r, f in zip(b.replicates, done, strict=True):
                fits[(b.groups, r, b.engine)] = f
        # A replicate is done when every engine has fitted it.
        left: dict[tuple[int, int], int] = {}
        for b in pending:
            for r in b.replicates:
                left[(b.groups, r)] = left.get((b.groups, r), 0) + 1
        total = len(designs) * options.replicates
        progress = _Progress(total, total - len(left), options.quiet)
        from dask.distributed import as_completed

        futures = {client.submit(run_batch, b, model, by_design[b.groups].data, settings,
                                 pure=False, key=f"parity-{b.name}-{keys[b.name][:12]}"): b
                   for b in pending}
        for future in as_completed(list(futures)):
            b = futures[future]
            try:
                batch_fits: list[Fit] = future.result()
            except Exception as exc:
                from parity.engines.base import status_fit

                why = f"{b.engine}: the Dask task failed: {type(exc).__name__}: {exc}"
                batch_fits = [status_fit(b.engine, model, by_design[b.groups].data,
                                         "failed", why, settings) for _ in b.replicates]
            else:
                store.save(b, keys[b.name], batch_fits)
            for r, f in zip(b.replicates, batch_fits, strict=True):
                fits[(b.groups, r, b.engine)] = f
            for r in b.replicates:
                left[(b.groups, r)] -= 1
            progress.add(sum(1 for r in b.replicates if left[(b.groups, r)] == 0))
        scheduler["resumed_batches"] = len(batches) - len(pending)
        scheduler["fitted_batches"] = len(pending)
        scheduler["batch_size"] = size
    say("comparing")
    result = _assemble(model, designs, truth, truth_fit, fits, options, policy, scheduler)
    result.document["seconds"] = round(time.monotonic() - started, 3)
    result.paths = write_study(out, result, options)
    return result


def _assemble(model: Model, designs: Sequence[Design], truth: Truth, truth_fit: Fit,
              fits: dict[tuple[int, int, str], Fit], options: StudyOptions, policy: Policy,
              scheduler: dict[str, Any]) -> StudyResult:
    order = [options.reference] + [e for e in options.engines if e != options.reference]
    rows: list[StudyRow] = []
    needs: list[Scaled] = []
    pairs: list[dict[str, Any]] = []
    for d in designs:
        for r in range(options.replicates):
            replicate = [fits[(d.groups, r, e)] for e in order if (d.groups, r, e) in fits]
            comparisons = compare_all(replicate, [], policy, engine_kind)
            kinds = {f.engine: fit_kind(f, engine_kind) for f in replicate}
            for c in comparisons:
                if c.level is not None or c.quantity in ("group_effect", "loglik"):
                    continue
                s = scaled(c, kinds[c.engine], kinds[c.reference])
                if s is not None:
                    needs.append(s)
                    pairs.append({"groups": d.groups, "replicate": r, "engine": c.engine,
                                  "reference": c.reference, "quantity": c.quantity,
                                  "term": c.term, "difference": c.value - c.reference_value
                                  if c.value is not None and c.reference_value is not None
                                  else None, "tolerance": c.tolerance,
                                  "verdict": c.verdict})
            for f in replicate:
                verdicts = ({} if f.engine == options.reference else
                            verdicts_against(comparisons, f.engine, options.reference))
                frows = fit_rows(f, d.groups, r, truth, verdicts)
                if f.engine == options.reference:
                    frows = [_as_reference(x) for x in frows]
                rows += frows
    all_fits = [(g, f) for (g, _, _), f in fits.items()]
    calibrated = calibrate(needs, policy, options.quantile)
    design_text = (f"{model.name} ({model.formula}), groups of "
                   f"{designs[0].factor}: {', '.join(str(d.groups) for d in designs)}, "
                   f"{options.replicates} replicates each, engines {', '.join(order)}")
    document: dict[str, Any] = {
        "parity_version": __version__,
        "model": {"name": model.name, "formula": model.formula, "family": model.family},
        "factor": designs[0].factor,
        "designs": [{"groups": d.groups, "n_obs": d.n_obs} for d in designs],
        "replicates": options.replicates,
        "engines": order,
        "reference": options.reference,
        "settings": options.settings.as_dict(),
        "interval": options.settings.interval,
        "calibrate_quantile": options.quantile,
        "truth": {**truth.to_dict(), "singular": bool(truth_fit.diagnostics.singular)},
        "priors": "Bambi's default priors for the original data, for every replicate "
                  "(each design's model is built once, on its rows with the original "
                  "responses)",
        "scheduler": scheduler,
        "fits": _fit_table(fits),
        "rows": row_dicts(rows),
        "summary": summarize(rows, all_fits),
        "calibrated": [{"pair": c.pair, "quantity": c.quantity, "factor": c.factor,
                        "rtol": c.rule.rtol, "atol": c.rule.atol, "sd_mult": c.rule.sd_mult,
                        "n": c.n, "engines": list(c.engines)} for c in calibrated],
        "differences": pairs,
    }
    result = StudyResult(document, rows, needs)
    result.document["calibrated_toml"] = calibrated_toml(calibrated, options.quantile,
                                                         design_text)
    return result


def _as_reference(row: StudyRow) -> StudyRow:
    from dataclasses import replace

    return replace(row, verdict=REFERENCE)


def _fit_table(fits: dict[tuple[int, int, str], Fit]) -> list[dict[str, Any]]:
    """Per design and engine: fits that ran, failed, and their seconds; for an engine
    compiled once, how many fits compiled (one per worker that got the design) and an
    estimate of what compiling cost."""
    table: dict[tuple[int, str], dict[str, Any]] = {}
    for (g, _, e), f in sorted(fits.items()):
        t = table.setdefault((g, e), {"groups": g, "engine": e, "ok": 0, "failed": 0,
                                      "seconds": [], "reasons": [], "compiling": []})
        t["ok" if f.status == "ok" else "failed"] += 1
        ran = f.provenance.settings.get("ran") or {}
        if ran.get("sampler_run") == 1:  # this fit compiled the model on its worker
            t["compiling"].append(f.provenance.seconds)
        else:
            t["seconds"].append(f.provenance.seconds)
        if f.status != "ok" and len(t["reasons"]) < 3:
            t["reasons"].append(" ".join(str(f.reason).split()))
    out = []
    for t in table.values():
        compiling = t.pop("compiling")
        secs = t.pop("seconds")
        t["compiled"] = len(compiling)
        t["seconds_compiling_runs"] = round(float(np.sum(compiling)), 3)
        # What compiling cost: the compiling runs beyond a typical run's sampling time.
        t["seconds_compile_estimate"] = (round(float(np.mean(compiling) - np.median(secs)), 3)
                                         if compiling and secs else None)
        secs = secs + compiling
        t["seconds_total"] = round(float(np.sum(secs)), 3)
        t["seconds_median"] = round(float(np.median(secs)), 3) if secs else None
        t["seconds_max"] = round(float(np.max(secs)), 3) if secs else None
        out.append(t)
    return out
