"""The agreement figure: how far apart the engines are, relative to the tolerance.

Every comparison row is one point on a common axis, `(value - reference_value) /
tolerance`, so the band [-1, 1] is "agree" whatever the quantity's scale: three engines'
estimates of 256 Hz that plot on top of each other on the raw scale show here how many
tolerances apart they are. Colour gives the verdict, the marker the quantity; rows that
are not comparable have no such distance and are drawn apart, in a strip of their own.
Points beyond the axis limit are drawn at the edge as arrow heads.

A line with more than SHOWN_LEVELS group effects (a factor of thousands of levels) would
be thousands of marks on top of each other, the outliers lost among them: its group
effects are drawn as their distribution instead (a box from the 25% to the 75% quantile
with the median, whiskers to 5% and 95%), with a mark for each of the TAIL rows farthest
beyond either whisker, where a disagreement would show.

One overview for the run (one line per model and engine pair), and one panel per model
(one line per row). matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from parity.compare.quantities import QUANTITY_SPECS
from parity.reports.caterpillar import SHOWN_LEVELS
from parity.reports.figure_cache import FigureCache, comparisons_material
from parity.reports.figures import save_png
from parity.reports.summary import pair_label, row_name
from parity.schema import Comparison

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

LIMIT = 5.0  # tolerances: points beyond are drawn at the edge
NC_X = LIMIT + 1.5  # where not-comparable rows sit
VERDICT_COLOURS = {"agree": "#2ca02c", "disagree": "#d62728", "not_comparable": "#7f7f7f"}
# Each quantity's marker, as the quantity table gives it (a quantity without one is drawn
# as a dot and left out of the legend).
QUANTITY_MARKERS = {q: s.marker for q, s in QUANTITY_SPECS.items() if s.marker is not None}
OVERVIEW = "agreement"
# The quantiles a distribution of rows is told by: min, 5%, 25%, median, 75%, 95%, max.
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
TAIL = 10  # rows marked beyond each whisker of a distribution
SPREAD_FACE = "#d9d9d9"
SPREAD_EDGE = "#444444"


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


def quantiles(distances: Sequence[float]) -> list[float]:
    """The distances at QUANTILES (numpy's linear interpolation), [] for none. Between
    two infinite distances (a tolerance of 0) the interpolation has no value, and the
    nearest distance stands for it."""
    if not distances:
        return []
    d = np.asarray(distances, dtype=float)
    at = np.asarray(QUANTILES)
    with np.errstate(invalid="ignore"):
        q = np.quantile(d, at)
    lost = np.isnan(q)
    if lost.any():
        q[lost] = np.quantile(d, at[lost], method="nearest")
    return [float(x) for x in q]


@dataclass(frozen=True)
class Spread:
    """A line's group effects told by their distribution: the QUANTILES of their
    distances, the TAIL rows farthest beyond 5% and beyond 95%, and how many rows have no
    distance (not comparable)."""

    rows: int
    quantiles: tuple[float, ...]
    tails: tuple[Comparison, ...]
    apart: int


def split_line(rows: Sequence[Comparison]) -> tuple[list[Comparison], Spread | None]:
    """The rows of a line drawn one mark each, and its group effects as a Spread where
    they are more than SHOWN_LEVELS (else None, and every row is a mark)."""
    effects = [c for c in rows if c.quantity == "group_effect"]
    if len(effects) <= SHOWN_LEVELS:
        return list(rows), None
    marks = [c for c in rows if c.quantity != "group_effect"]
    scored = [(c, d) for c in effects if (d := distance(c)) is not None]
    q = quantiles([d for _, d in scored])
    tails: list[Comparison] = []
    if q:
        low = [cd for cd in scored if cd[1] < q[1]]
        high = [cd for cd in scored if cd[1] > q[5]]
        tails = [c for c, _ in (*heapq.nsmallest(TAIL, low, key=lambda cd: cd[1]),
                                *heapq.nlargest(TAIL, high, key=lambda cd: cd[1]))]
    return marks, Spread(len(effects), tuple(q), tuple(tails), len(effects) - len(scored))


def _clip(d: float) -> float:
    return min(max(d, -LIMIT), LIMIT)


def _draw_spread(ax: Axes, y: float, spread: Spread) -> None:
    """The box (25–75%, median), the whiskers (5–95%), the tails' marks, and one n/c mark
    with the count of rows without a distance."""
    from matplotlib.patches import Rectangle

    if spread.quantiles:
        _, q05, q25, q50, q75, q95, _ = (_clip(x) for x in spread.quantiles)
        ax.plot([q05, q25], [y, y], color=SPREAD_EDGE, lw=1.0, zorder=2)
        ax.plot([q75, q95], [y, y], color=SPREAD_EDGE, lw=1.0, zorder=2)
        ax.plot([q05, q05], [y - 0.15, y + 0.15], color=SPREAD_EDGE, lw=1.0, zorder=2)
        ax.plot([q95, q95], [y - 0.15, y + 0.15], color=SPREAD_EDGE, lw=1.0, zorder=2)
        ax.add_patch(Rectangle((q25, y - 0.25), q75 - q25, 0.5, facecolor=SPREAD_FACE,
                               edgecolor=SPREAD_EDGE, lw=1.0, zorder=2))
        ax.plot([q50, q50], [y - 0.25, y + 0.25], color=SPREAD_EDGE, lw=1.8, zorder=2)
    for c in spread.tails:
        x, marker = _x(c)
        ax.scatter([x], [y], marker=marker, s=26, color=VERDICT_COLOURS[c.verdict],
                   alpha=0.8, linewidths=1.2, zorder=3)
    if spread.apart:
        ax.scatter([NC_X], [y], marker="x", s=26, color=VERDICT_COLOURS["not_comparable"],
                   alpha=0.8, linewidths=1.2, zorder=3)
        ax.annotate(f"{spread.apart}", (NC_X, y), xytext=(5, 3), textcoords="offset points",
                    fontsize=6, color="#444444")


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
    """One horizontal line per (label, rows), top to bottom: a mark per row, or for a
    line's many group effects their distribution (:func:`split_line`)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    drawn = [split_line(rows) for _, rows in lines]
    handles: list[Artist] = [
        Line2D([], [], ls="", marker="o", color=col, label=v.replace("_", " "))
        for v, col in VERDICT_COLOURS.items()]
    handles += [Line2D([], [], ls="", marker=m, color="#444444", label=q.replace("_", " "))
                for q, m in QUANTITY_MARKERS.items()]
    if any(spread is not None for _, spread in drawn):
        handles += [
            Patch(facecolor=SPREAD_FACE, edgecolor=SPREAD_EDGE,
                  label=f"over {SHOWN_LEVELS} group effects: 25–75%, median"),
            Line2D([], [], color=SPREAD_EDGE, lw=1.0, marker="|", markersize=6,
                   label=f"5–95%, and the {TAIL} farthest beyond")]
    legend = 0.1 + 0.15 * math.ceil(len(handles) / 4)  # inches under the axes
    height = 1.35 + legend + 0.28 * max(1, len(lines))
    fig = Figure(figsize=(8.5, height))
    ax = fig.add_subplot(1, 1, 1)
    ax.axvspan(-1, 1, color="#2ca02c", alpha=0.12, lw=0)
    ax.axvline(0, color="#555555", lw=0.6)
    ax.axvline(LIMIT + 0.75, color="#bbbbbb", lw=0.6, ls=":")
    labels = []
    for y, ((label, _), (marks, spread)) in enumerate(zip(lines, drawn, strict=True)):
        for c in marks:
            x, marker = _x(c)
            ax.scatter([x], [y], marker=marker, s=26, color=VERDICT_COLOURS[c.verdict],
                       alpha=0.8, linewidths=1.2, zorder=3)
        if spread is not None:
            _draw_spread(ax, y, spread)
        labels.append(label if spread is None else f"{label} ({spread.rows} group effects)")
    ax.set_yticks(range(len(lines)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(lines) - 0.5, -0.5)
    ax.set_xlim(-LIMIT - 0.5, NC_X + 0.7)
    ticks = [-LIMIT, -2, -1, 0, 1, 2, LIMIT]
    ax.set_xticks([*ticks, NC_X])
    ax.set_xticklabels([f"≤{-LIMIT:g}", "-2", "-1", "0", "1", "2", f"≥{LIMIT:g}", "n/c"],
                       fontsize=8)
    ax.set_xlabel("(value − reference) / tolerance   (shaded: agree)", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", color="#eeeeee", lw=0.5)
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0.0, legend / height, 1.0, 1.0))
    return save_png(fig, path)


def overview_lines(comparisons: Sequence[Comparison],
                   models: Sequence[str]) -> list[tuple[str, list[Comparison]]]:
    """One line per model and engine pair, in model order."""
    by_model: dict[str, dict[str, list[Comparison]]] = {m: {} for m in models}
    for c in comparisons:
        by_model.setdefault(c.model, {}).setdefault(pair_label(c), []).append(c)
    return [(f"{model}: {pair}", rows) for model, pairs in by_model.items()
            for pair, rows in pairs.items()]


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
    by_model: dict[str, list[Comparison]] = {}
    for c in comparisons:
        by_model.setdefault(c.model, []).append(c)
    for model, mine in by_model.items():
        try:
            result.by_model[model] = cache.drawn(
                directory / f"{stems.get(model, 'model')}.{OVERVIEW}.png",
                f"agreement:model:{model}", partial(comparisons_material, mine),
                partial(draw_agreement, lines=model_lines(mine),
                        title=f"{model}: each row in tolerances from its reference"))
        except Exception as exc:
            result.errors[model] = f"{type(exc).__name__}: {exc}"
    return result
