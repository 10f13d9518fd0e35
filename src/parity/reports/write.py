"""Write every report of a run: each format of the table (Markdown, self-contained HTML,
CSV) and the figures they show.

Reads only result records. A figure that cannot be drawn is noted in the reports and the
rest are still written; failed, skipped and unsupported fits appear as notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parity.reports.agreement import write_agreement
from parity.reports.blocks import Image
from parity.reports.caterpillar import write_caterpillars
from parity.reports.content import ReportData, report_blocks
from parity.reports.figure_cache import FigureCache
from parity.reports.figures import figure_names, write_figures
from parity.reports.files import FIGURES_DIR, STEM
from parity.reports.formats import FORMATS, Format, Report, write_formats
from parity.schema import RunResults


def _image(alt: str, path: Path, out: Path) -> Image:
    return Image(alt, path, path.relative_to(out).as_posix())


def report_data(out: Path, results: RunResults, title: str = "parity comparison",
                figure_cache: FigureCache | None = None) -> ReportData:
    """Draw the run's figures under `out`/figures (or copy them from `figure_cache`,
    where it holds the same figure of the same records) and gather what the report
    shows: the records, the figures by model, and why any figure is missing."""
    fits, reference_fits = results.fits, results.reference_fits
    comparisons = results.comparisons
    figures_dir = out / FIGURES_DIR
    figures_dir.mkdir(parents=True, exist_ok=True)
    drawn = write_figures(figures_dir, fits, reference_fits, figure_cache)
    images = {model: _image(f"{model}: estimates and intervals by engine", path, out)
              for model, path in drawn.paths.items()}
    models = list(dict.fromkeys([*(f.model for f in (*fits, *reference_fits)),
                                 *(c.model for c in comparisons)]))
    stems = figure_names(models)
    agreed = write_agreement(figures_dir, comparisons, models, stems, figure_cache)
    agreement = {model: _image(f"{model}: each comparison row in tolerances", path, out)
                 for model, path in agreed.by_model.items()}
    if agreed.overview is not None:
        agreement[""] = _image("every comparison row in tolerances from its reference",
                               agreed.overview, out)
    caterpillars = write_caterpillars(figures_dir, [*fits, *reference_fits], stems,
                                      figure_cache)
    group_figures = {
        model: [_image(f"{model}: group effects of {group} by engine", path, out)
                for group, path in by_group.items()]
        for model, by_group in caterpillars.paths.items()}
    return ReportData(fits=list(fits), reference_fits=list(reference_fits),
                      comparisons=list(comparisons),
                      optimum_checks=list(results.optimum_checks), title=title,
                      figures=images, figure_errors=drawn.errors, agreement=agreement,
                      group_figures=group_figures, group_figure_errors=caterpillars.errors,
                      parsed=_parsed(results))


def _parsed(results: RunResults) -> dict[str, str]:
    """Each model's formula as parity read it, from the run's description; a record
    read back from disk is checked, not trusted: anything but text is left out."""
    models = results.meta.get("models")
    if not isinstance(models, list):
        return {}
    return {m["model"]: m["engine_formula"] for m in models
            if isinstance(m, dict) and isinstance(m.get("model"), str)
            and isinstance(m.get("engine_formula"), str)}


def write_reports(out: Path, results: RunResults, *, title: str = "parity comparison",
                  formats: Sequence[Format] = FORMATS,
                  figure_cache: FigureCache | None = None) -> dict[str, Path]:
    """Write comparison.<suffix> for each format, figures/<model>.png, the agreement
    figures and the group-effect figures (figures/<model>.ranef.<factor>.png) under
    `out`; return the paths by format name, and `figures` → the folder."""
    out = Path(out)
    data = report_data(out, results, title, figure_cache)
    report = Report(tuple(report_blocks(data)), tuple(results.comparisons))
    return {**write_formats(out, STEM, report, formats), "figures": out / FIGURES_DIR}
