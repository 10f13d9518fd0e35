"""One run: fit, then write results.json and the tables. The CLI and the Python API
(parity.testing) both go through here."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from parity import __version__
from parity.models import Model
from parity.report_markdown import render_markdown
from parity.runner import ProgressHook, run_fits
from parity.schema import Fit, results_document, write_json_atomic
from parity.settings import Settings


@dataclass(frozen=True)
class JobResult:
    fits: list[Fit]
    results_path: Path
    markdown_path: Path


def run_job(
    models: Sequence[Model],
    frame: pd.DataFrame,
    engines: Sequence[str],
    settings: Settings,
    out: Path,
    on_fit: ProgressHook | None = None,
) -> JobResult:
    """Fit every model with every engine and write the results under `out`."""
    out = Path(out)
    fits = run_fits(models, frame, engines, settings, on_fit=on_fit)
    doc = results_document(
        fits,
        parity_version=__version__,
        python_version=platform.python_version(),
        settings=settings.as_dict(),
        models=[{"model": m.name, "formula": m.formula,
                 "engine_formula": m.spec.lme4_formula(),
                 "categorical": list(m.categorical)} for m in models],
    )
    results_path = out / "results.json"
    write_json_atomic(results_path, doc)
    markdown_path = out / "comparison.md"
    markdown_path.write_text(render_markdown(fits), encoding="utf-8")
    return JobResult(fits=fits, results_path=results_path, markdown_path=markdown_path)
