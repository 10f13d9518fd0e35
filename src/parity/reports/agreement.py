"""The agreement figure: how far apart the engines are, relative to the tolerance.

Every comparison row is one point on a common axis, `(value - reference_value) /
tolerance`, so the band [-1, 1] is "agree" whatever the quantity's scale: three engines'
estimates of 256 Hz that plot on top of each other on the raw scale show here how many
tolerances apart they are. Colour gives the verdict, the marker the quantity; rows that
are not comparable have no such distance and are drawn apart, in a strip of their own.
Points beyond the axis limit are drawn at the edge as arrow heads.

One overview for the run (one line per model and engine pair), and one panel per model
(one line per row). matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from parity.compare.quantities import QUANTITY_SPECS
from parity.reports.figure_cache import FigureCache, comparisons_material
from parity.reports.figures import save_png
from parity.reports.summary import pair_label, row_name
from parity.schema import Comparison

LIMIT = 5.0  # tolerances: points beyond are drawn at the edge
NC_X = LIMIT + 1.5  # where not-comparable rows sit
VERDICT_COLOURS = {"agree": "#2ca02c", "disagree": "#d62728", "not_comparable": "#7f7f7f"}
# Each quantity's marker, as the quantity table gives it (a quantity without one is drawn
# as a dot and left out of the legend).
QUANTITY_MARKERS = {q: s.marker for q, s in QUANTITY_SPECS.items() if s.marker is not None}
OVERVIEW = "agreement"


@dataclass
class AgreementResult:
    """The overview and per-model figures written, and why any was not."""

    overview: Path | None = None
    by_model: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def distance(c: Comparison) -> float | None:
    """(value - reference) / tolerance, or None for a row without one."""
    if c.verdict == "not_comparable" or c.value is None or c.reference_value is None \
            or c.tolerance is None:
        return None
    if c.tolerance <= 0:
        return 0.0 if c.value == c.reference_value else math.copysign(math.inf,
                                                                     c.value - c.reference_value)
    return (c.value - c.reference_value) / c.tolerance


def _x(c: Comparison) -> tuple[float, str]:
    """Where a row is drawn, and its marker (an arrow head when clipped)."""
    d = distance(c)
    if d is None:
        return NC_X, "x"
    if d > LIMIT:
        return LIMIT, ">"
    if d < -LIMIT:
        return -LIMIT, "<"
    return d, QUANTITY_MARKERS.get(c.quantity, "o")


def draw_agreement(path: Path, lines: Sequence[tuple[str, Sequence[Comparison]]],
                   title: str) -> Path:
    """One horizontal line per (label, rows), top to bottom."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    height = 1.9 + 0.28 * max(1, len(lines))
    fig = Figure(figsize=(8.5, height))
    ax = fig.add_subplot(1, 1, 1)
    ax.axvspan(-1, 1, color="#2ca02c", alpha=0.12, lw=0)
    ax.axvline(0, color="#555555", lw=0.6)
    ax.axvline(LIMIT + 0.75, color="#bbbbbb", lw=0.6, ls=":")
    for y, (_, rows) in enumerate(lines):
        for c in rows:
            x, marker = _x(c)
            ax.scatter([x], [y], marker=marker, s=26, color=VERDICT_COLOURS[c.verdict],
                       alpha=0.8, linewidths=1.2, zorder=3)
    ax.set_yticks(range(len(lines)))
    ax.set_yticklabels([label for label, _ in lines], fontsize=8)
    ax.set_ylim(len(lines) - 0.5, -0.5)
    ax.set_xlim(-LIMIT - 0.5, NC_X + 0.7)
    ticks = [-LIMIT, -2, -1, 0, 1, 2, LIMIT]
    ax.set_xticks([*ticks, NC_X])
    ax.set_xticklabels([f"≤{-LIMIT:g}", "-2", "-1", "0", "1", "2", f"≥{LIMIT:g}", "n/c"],
                       fontsize=8)
    ax.set_xlabel("(value − reference) / tolerance   (shaded: agree)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", color="#eeeeee", lw=0.5)
    handles = [Line2D([], [], ls="", marker="o", color=col, label=v.replace("_", " "))
               for v, col in VERDICT_COLOURS.items()]
    handles += [Line2D([], [], ls="", marker=m, color="#444444", label=q.replace("_", " "))
                for q, m in QUANTITY_MARKERS.items()]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0.0, 0.55 / height, 1.0, 1.0))
    return save_png(fig, path)


def overview_lines(comparisons: Sequence[Comparison],
                   models: Sequence[str]) -> list[tuple[str, list[Comparison]]]:
    """One line per model and engine pair, in model order."""
    order = list(dict.fromkeys([*models, *(c.model for c in comparisons)]))
    out = []
    for model in order:
        pairs = list(dict.fromkeys(pair_label(c) for c in comparisons if c.model == model))
        for pair in pairs:
            rows = [c for c in comparisons if c.model == model and pair_label(c) == pair]
            out.append((f"{model}: {pair}", rows))
    return out


def model_lines(comparisons: Sequence[Comparison]) -> list[tuple[str, list[Comparison]]]:
    """One line per comparison row, grouped by engine pair, then quantity; a factor's
    group effects share one line per pair, so that hundreds of levels stay one line."""
    rank = {q: i for i, q in enumerate(QUANTITY_MARKERS)}
    rows = sorted(comparisons, key=lambda c: (pair_label(c), rank.get(c.quantity, 9)))
    lines: dict[str, list[Comparison]] = {}
    for c in rows:
        name = (f"group effects of {c.group}" if c.quantity == "group_effect"
                else row_name(c))
        lines.setdefault(f"{pair_label(c)}: {name}", []).append(c)
    return list(lines.items())


def write_agreement(directory: Path, comparisons: Sequence[Comparison],
                    models: Sequence[str], stems: dict[str, str],
                    cache: FigureCache | None = None) -> AgreementResult:
    """figures/agreement.png and figures/<model>.agreement.png (from `cache` where it
    holds one drawn from the same rows); a figure that fails is recorded, not raised."""
    result = AgreementResult()
    if not comparisons:
        return result
    cache = cache or FigureCache()
    try:
        result.overview = cache.drawn(
            directory / f"{OVERVIEW}.png", f"agreement:{','.join(models)}",
            partial(comparisons_material, comparisons),
            partial(draw_agreement, lines=overview_lines(comparisons, models),
                    title="Every comparison row, in tolerances from its reference"))
    except Exception as exc:  # the report goes on without this figure
        result.errors[OVERVIEW] = f"{type(exc).__name__}: {exc}"
    for model in dict.fromkeys(c.model for c in comparisons):
        mine = [c for c in comparisons if c.model == model]
        try:
            result.by_model[model] = cache.drawn(
                directory / f"{stems.get(model, 'model')}.{OVERVIEW}.png",
                f"agreement:model:{model}", partial(comparisons_material, mine),
                partial(draw_agreement, lines=model_lines(mine),
                        title=f"{model}: each row in tolerances from its reference"))
        except Exception as exc:
            result.errors[model] = f"{type(exc).__name__}: {exc}"
    return result
