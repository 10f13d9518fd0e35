"""One run: check, fit, compare (:func:`execute`, in memory), then write results.json and
the reports (:func:`run_job`). The CLI, `assert_parity` and the Python API all go through
:func:`execute`, so there is one pipeline."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from parity import __version__
from parity.compare.rules import compare_all
from parity.compare.tolerances import Policy, load_policy
from parity.engines import all_packages, check_engines, engine_info, engine_kind
from parity.engines.budget import machine_budget
from parity.engines.limits import check_expressible, check_memory
from parity.engines.recorded import (
    check_overwrite,
    make_record,
    not_live,
    recordable,
    write_manifest,
    write_record,
)
from parity.environment import environment
from parity.errors import FitError, UsageError
from parity.pipeline.cache import FitCache
from parity.pipeline.matched import independent_variant
from parity.pipeline.outdir import check_writable, claimed, refuse_a_file
from parity.pipeline.partial import RESULTS_NAME, PartialResults
from parity.pipeline.vetting import vet_all
from parity.pipeline.workers import (
    Outcome,
    ProgressHook,
    StartHook,
    fit_many,
    prepare_all,
    run_models,
)
from parity.rows.prepare import PreparedData
from parity.schema import Comparison, Fit, RunResults
from parity.settings import Settings
from parity.spec.models import Model


@dataclass(frozen=True)
class JobResult:
    """A run written to disk: its record, and where its files are."""

    results: RunResults
    results_path: Path
    reports: dict[str, Path]

    @property
    def fits(self) -> tuple[Fit, ...]:
        return self.results.fits

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        return self.results.comparisons


def compare_outcome(outcome: Outcome, policy: Policy,
                    compare_unconverged: bool = False) -> list[Comparison]:
    return compare_all(outcome.fits, outcome.reference_fits, policy, engine_kind,
                       outcome.optimum_checks, compare_unconverged)


def vet_outcome(outcome: Outcome, models: Sequence[Model],
                prepared: dict[str, PreparedData], policy: Policy) -> Outcome:
    """The outcome's fits under the run's trust thresholds (parity.pipeline.vetting)."""
    return Outcome(vet_all(outcome.fits, models, prepared, policy),
                   vet_all(outcome.reference_fits, models, prepared, policy),
                   outcome.optimum_checks)


def execute(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    policy: Policy | None = None,
    cache: FitCache | None = None,
    jobs: int | None = None,
    on_fit: ProgressHook | None = None,
    on_start: StartHook | None = None,
    before_fitting: Callable[[dict[str, Any]], None] | None = None,
    compare_unconverged: bool = False,
    max_minutes: float | None = None,
) -> RunResults:
    """The one pipeline, in memory: every up-front check, the fits, the comparison.

    The CLI (through :func:`run_job`), `assert_parity` and the Python API all run this,
    so each gets the same checks: engines an analyst's model cannot be fitted with, the
    memory the draws need, and the data, all before anything is fitted.
    `before_fitting` hears the run's description once the checks have passed. Every
    fit is vetted (parity.compare.trust) before it is compared; the rows of an
    unconverged fit are compared only with `compare_unconverged`. A fit whose engine
    estimates it needs more memory than this machine gives one, or (given
    `max_minutes`) longer, is refused with its estimate (parity.engines.budget)."""
    policy = policy or load_policy()
    check_engines(engines)
    check_expressible(models, engines, settings)  # each engine's refusals, up front
    check_memory(models, frame, engines, settings, jobs or 1)
    budget = machine_budget(max_minutes)
    prepared = prepare_all(models, frame)
    meta: dict[str, Any] = dict(
        parity_version=__version__,
        python_version=platform.python_version(),
        settings=settings.as_dict(),
        tolerance_sources=list(policy.sources),
        compare_unconverged=compare_unconverged,
        models=[{"model": m.name, "formula": m.formula,
                 "engine_formula": m.spec.written_formula(),
                 "categorical": list(m.categorical)} for m in models],
    )
    if before_fitting is not None:
        before_fitting(meta)
    outcome = run_models(models, frame, engines, settings, on_fit=on_fit, cache=cache,
                         jobs=jobs, on_start=on_start, prepared=prepared, budget=budget)
    outcome = vet_outcome(outcome, models, prepared, policy)
    comparisons = compare_outcome(outcome, policy, compare_unconverged)
    env = environment([*outcome.fits, *outcome.reference_fits], all_packages())
    return RunResults(tuple(outcome.fits), tuple(comparisons),
                      tuple(outcome.reference_fits), tuple(outcome.optimum_checks),
                      {"environment": env, **meta})


def run_job(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    out: Path,
    on_fit: ProgressHook | None = None,
    policy: Policy | None = None,
    cache: FitCache | None = None,
    jobs: int | None = None,
    on_start: StartHook | None = None,
    compare_unconverged: bool = False,
    max_minutes: float | None = None,
) -> JobResult:
    """:func:`execute`, writing the results and reports under `out`.

    Bad input is refused before `out` is touched. The fits so far are kept in
    results.partial.json while the run goes on (:mod:`parity.pipeline.partial`); results.json
    is written atomically when every fit is in, and before the reports, so a report that
    fails loses nothing."""
    out = Path(out)
    with ExitStack() as stack:
        partial: list[PartialResults] = []

        def claim(meta: dict[str, Any]) -> None:
            stack.enter_context(claimed(out))
            partial.append(PartialResults(out, meta, then=on_fit))

        def on_partial(fit: Fit) -> None:
            partial[0](fit)

        results = execute(models, frame, engines, settings, policy, cache, jobs,
                          on_fit=on_partial, on_start=on_start, before_fitting=claim,
                          compare_unconverged=compare_unconverged,
                          max_minutes=max_minutes)
        results_path = results.write(out / RESULTS_NAME)
        partial[0].finish()
        reports = write_run_reports(out, results, cache)
    return JobResult(results, results_path, reports)


def record_job(models: Sequence[Model], frame: pd.DataFrame, settings: Settings,
               out: Path, engines: Sequence[str] = ("lme4",)) -> list[Path]:
    """Fit every model with each live R engine in `engines` (lme4 also the
    matched-structure refit) and store each result as a recorded reference under `out`.

    An engine that cannot fit live here is refused before anything is fitted, naming
    what it lacks (R itself, or only the R package glmmTMB): a record of a fallback
    would only copy a record."""
    for engine in check_engines(engines):
        if not recordable(engine):
            raise UsageError(f"only R engines can be recorded, not {engine!r}")
    prepared = prepare_all(models, frame)
    jobs: list[tuple[str, Model, PreparedData, str | None]] = []
    for engine in engines:
        for m in models:
            jobs.append((engine, m, prepared[m.name], None))
            refit = (independent_variant(m, prepared[m.name])
                     if "refitter" in engine_info(engine).roles else None)
            if refit is not None:
                jobs.append((engine, refit.model, refit.data, refit.name))
    refuse_a_file(out)
    missing = not_live(engines)
    if missing:
        raise UsageError("; ".join(f"cannot record {engine}: {why}"
                                   for engine, why in missing.items()))
    check_writable(out)
    for engine, model, data, variant in jobs:
        check_overwrite(out, model, data, settings, variant, engine)
    fits: list[Fit] = []
    for engine in engines:
        fits += fit_many(engine, [(m, d) for e, m, d, _ in jobs if e == engine], settings)
    paths = []
    for (engine, model, data, variant), fit in zip(jobs, fits, strict=True):
        if not fit.has_numbers or fit.is_recorded:
            why = ("no live fit: a recorded reference came back in its place"
                   if fit.is_recorded else f"the fit is {fit.status}: {fit.reason}")
            raise FitError(f"cannot record {engine} for {model.name}: {why}")
        paths.append(write_record(out, make_record(model, data, settings, fit, variant)))
    write_manifest(out)
    return paths


def write_run_reports(out: Path, results: RunResults,
                      cache: FitCache | None = None) -> dict[str, Path]:
    """The reports of a run record under `out` (Markdown, HTML, CSV, figures); with
    `cache` enabled, a figure drawn before from the same records is copied from it."""
    from parity.reports import write_reports

    return write_reports(out, results,
                         figure_cache=cache.figures() if cache is not None else None)
