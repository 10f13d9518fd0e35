"""One run: fit, compare, then write results.json and the reports. The CLI and the
Python API (parity.testing) both go through here."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from parity import __version__
from parity.compare.rules import compare_all
from parity.compare.tolerances import Policy, load_policy
from parity.engines import all_packages, engine_kind
from parity.engines.limits import check_expressible, check_memory
from parity.engines.recorded import check_overwrite, make_record, write_manifest, write_record
from parity.environment import environment
from parity.errors import FitError
from parity.rows.prepare import PreparedData
from parity.run.cache import FitCache
from parity.run.matched import independent_variant
from parity.run.outdir import check_writable, claimed
from parity.run.partial import RESULTS_NAME, PartialResults
from parity.run.workers import (
    Outcome,
    ProgressHook,
    StartHook,
    fit_many,
    prepare_all,
    run_models,
)
from parity.schema import Comparison, Fit, fit_to_dict, results_document, write_json_atomic
from parity.settings import Settings
from parity.spec.models import Model


@dataclass(frozen=True)
class JobResult:
    outcome: Outcome
    comparisons: list[Comparison]
    results_path: Path
    reports: dict[str, Path]

    @property
    def fits(self) -> list[Fit]:
        return self.outcome.fits


def compare_outcome(outcome: Outcome, policy: Policy) -> list[Comparison]:
    return compare_all(outcome.fits, outcome.reference_fits, policy, engine_kind,
                       outcome.optimum_checks)


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
) -> JobResult:
    """Fit every model with every engine, compare, and write the results under `out`.

    The fits so far are kept in results.partial.json while the run goes on
    (:mod:`parity.run.partial`); results.json is written atomically when every fit is in,
    and before the reports, so a report that fails loses nothing."""
    out = Path(out)
    policy = policy or load_policy()
    check_expressible(models, engines)
    check_memory(models, frame, engines, settings, jobs or 1)
    prepared = prepare_all(models, frame)  # bad data is refused before --out is touched
    meta: dict[str, Any] = dict(
        parity_version=__version__,
        python_version=platform.python_version(),
        settings=settings.as_dict(),
        tolerance_sources=list(policy.sources),
        models=[{"model": m.name, "formula": m.formula,
                 "engine_formula": m.spec.lme4_formula(),
                 "categorical": list(m.categorical)} for m in models],
    )
    with claimed(out):
        partial = PartialResults(out, meta, then=on_fit)
        outcome = run_models(models, frame, engines, settings, on_fit=partial, cache=cache,
                             jobs=jobs, on_start=on_start, prepared=prepared)
        comparisons = compare_outcome(outcome, policy)
        doc = results_document(
            outcome.fits,
            comparisons,
            complete=True,
            environment=environment([*outcome.fits, *outcome.reference_fits], all_packages()),
            **meta,
        )
        doc["reference_fits"] = [fit_to_dict(f) for f in outcome.reference_fits]
        doc["optimum_checks"] = outcome.optimum_checks
        results_path = out / RESULTS_NAME
        write_json_atomic(results_path, doc)
        partial.finish()
        reports = _write_reports(out, outcome, comparisons)
    return JobResult(outcome, comparisons, results_path, reports)


def record_job(models: Sequence[Model], frame: pd.DataFrame, settings: Settings,
               out: Path) -> list[Path]:
    """Fit every model (and its matched-structure refit) with live lme4 and store each
    result as a recorded reference under `out`."""
    prepared = prepare_all(models, frame)
    jobs: list[tuple[Model, PreparedData, str | None]] = []
    for m in models:
        jobs.append((m, prepared[m.name], None))
        refit = independent_variant(m, prepared[m.name])
        if refit is not None:
            jobs.append((refit.model, refit.data, refit.name))
    check_writable(out)
    for model, data, variant in jobs:
        check_overwrite(out, model, data, settings, variant)
    fits = fit_many("lme4", [(m, d) for m, d, _ in jobs], settings)
    paths = []
    for (model, data, variant), fit in zip(jobs, fits, strict=True):
        if fit.status != "ok" or fit.is_recorded:
            why = "it is itself a recorded reference" if fit.is_recorded else fit.reason
            raise FitError(f"cannot record lme4 for {model.name}: {why} (recording needs R)")
        paths.append(write_record(out, make_record(model, data, settings, fit, variant)))
    write_manifest(out)
    return paths


def _write_reports(out: Path, outcome: Outcome, comparisons: list[Comparison]) -> dict[str, Path]:
    from parity.reports.write import write_reports

    return write_reports(out, outcome.fits, outcome.reference_fits, comparisons,
                         outcome.optimum_checks)
