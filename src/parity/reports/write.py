"""Write every report of a run: Markdown, self-contained HTML, CSV and one figure per model.

Reads only result records. A figure that cannot be drawn is noted in the reports and the
rest are still written; failed, skipped and unsupported fits appear as notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parity.atomic import write_text_atomic
from parity.reports.agreement import write_agreement
from parity.reports.blocks import (
    Image,
)
from parity.reports.caterpillar import write_caterpillars
from parity.reports.csv_ import render_csv
from parity.reports.figures import figure_names, write_figures
from parity.reports.files import CSV, FIGURES_DIR, HTML, MARKDOWN
from parity.reports.html import render_html
from parity.reports.markdown import ReportData, render_report_markdown
from parity.schema import Comparison, Fit, OptimumCheck


def write_reports(out: Path, fits: Sequence[Fit], reference_fits: Sequence[Fit],
                  comparisons: Sequence[Comparison],
                  optimum_checks: Sequence[OptimumCheck],
                  title: str = "parity comparison") -> dict[str, Path]:
    """Write comparison.md, comparison.html, comparison.csv, figures/<model>.png and the
    group-effect figures (figures/<model>.ranef.<factor>.png) under `out`; return the
    paths by kind (`markdown`, `html`, `csv`, `figures` → the folder)."""
    out = Path(out)
    figures_dir = out / FIGURES_DIR
    figures_dir.mkdir(parents=True, exist_ok=True)
    drawn = write_figures(figures_dir, fits, reference_fits)
    images = {model: Image(f"{model}: estimates and intervals by engine", path,
                           path.relative_to(out).as_posix())
              for model, path in drawn.paths.items()}
    models = list(dict.fromkeys([*(f.model for f in (*fits, *reference_fits)),
                                 *(c.model for c in comparisons)]))
    agreed = write_agreement(figures_dir, comparisons, models, figure_names(models))
    agreement = {model: Image(f"{model}: each comparison row in tolerances", path,
                              path.relative_to(out).as_posix())
                 for model, path in agreed.by_model.items()}
    if agreed.overview is not None:
        agreement[""] = Image("every comparison row in tolerances from its reference",
                              agreed.overview, agreed.overview.relative_to(out).as_posix())
    caterpillars = write_caterpillars(figures_dir, [*fits, *reference_fits],
                                      figure_names(models))
    group_figures = {
        model: [Image(f"{model}: group effects of {group} by engine", path,
                      path.relative_to(out).as_posix()) for group, path in by_group.items()]
        for model, by_group in caterpillars.paths.items()}
    data = ReportData(fits=list(fits), reference_fits=list(reference_fits),
                      comparisons=list(comparisons), optimum_checks=list(optimum_checks),
                      title=title, figures=images, figure_errors=drawn.errors,
                      agreement=agreement, group_figures=group_figures,
                      group_figure_errors=caterpillars.errors)
    return {
        "markdown": write_text_atomic(out / MARKDOWN, render_report_markdown(data)),
        "html": write_text_atomic(out / HTML, render_html(data)),
        "csv": write_text_atomic(out / CSV, render_csv(comparisons)),
        "figures": figures_dir,
    }
