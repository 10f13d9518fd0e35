"""Caterpillar figures: each engine's group effects (lme4's `ranef()`, conditional modes
with their conditional SDs; posterior means and SDs) for one grouping factor, engines side
by side, one panel per term, levels ordered by the reference engine's estimate.

A factor with hundreds of levels would make a figure hundreds of inches tall, unreadable
and heavy in the HTML report; beyond SHOWN_LEVELS, the levels at both ends of the
reference's order are drawn (where engines part most often, and the shrinkage shows)
and a row says how many lie between.

Drawn like the estimate figures (matplotlib's object API on an Agg canvas); a figure that
fails is recorded for its model and factor, never raised.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from parity.reports.figure_cache import FigureCache, fits_material
from parity.reports.figures import add_legend, panel, save_png
from parity.schema import Fit

log = logging.getLogger(__name__)

SHOWN_LEVELS = 40  # per term: the lowest and highest half of these when there are more
_GAP = "\0gap"  # the key of the row that stands for the levels not drawn


@dataclass
class CaterpillarResult:
    """Figures written, by model then grouping factor, and why the others were not."""

    paths: dict[str, dict[str, Path]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _order(fits: Sequence[Fit], group: str, term: str) -> list[str]:
    """Levels by the first fit's estimate (the reference's, where it has them)."""
    levels = list(dict.fromkeys(g.level for f in fits for g in f.group_effects
                                if g.group == group and g.term == term))
    first = fits[0]

    def key(level: str) -> float:
        g = first.group_effect(group, level, term)
        return g.estimate if g is not None else float("inf")

    return sorted(levels, key=key)


def shown_levels(levels: Sequence[str]) -> tuple[list[str], list[str]]:
    """The rows to draw (keys, labels): every level, or the SHOWN_LEVELS at the two ends
    with one gap row between them that names how many are left out."""
    if len(levels) <= SHOWN_LEVELS:
        return list(levels), list(levels)
    half = SHOWN_LEVELS // 2
    left_out = len(levels) - 2 * half
    keys = [*levels[:half], _GAP, *levels[-half:]]
    labels = [*levels[:half], f"… {left_out} levels between …", *levels[-half:]]
    return keys, labels


def draw_caterpillar(path: Path, model: str, group: str, fits: Sequence[Fit]) -> Path:
    """One PNG: a panel per term of `group`, each level's estimate ± 1 SE (or posterior
    SD) for every fit that has group effects (the two ends of the order where there are
    more than SHOWN_LEVELS levels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    terms = list(dict.fromkeys(g.term for f in fits for g in f.group_effects
                               if g.group == group))
    rows = max((len(shown_levels(_order(fits, group, t))[0]) for t in terms), default=1)
    fig = Figure(figsize=(3.4 * max(len(terms), 1) + 1.2, 1.6 + rows * (0.22 + 0.08 * len(fits))),
                 layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{model}: group effects of {group} (estimate ± 1 SE / posterior SD)",
                 fontsize=10)
    axes = fig.subplots(1, max(len(terms), 1), squeeze=False)[0]
    for ax, term in zip(axes, terms, strict=False):
        keys, labels = shown_levels(_order(fits, group, term))

        def get(fit: Fit, key: tuple[str, str | None, str | None],
                term: str = term) -> tuple[float, float, float] | None:
            g = None if key[0] == _GAP else fit.group_effect(group, key[0], term)
            if g is None:
                return None
            sd = g.std_error if g.std_error is not None else float("nan")
            return g.estimate, g.estimate - sd, g.estimate + sd

        panel(ax, term, [(k, None, None) for k in keys], labels, fits, get)
    add_legend(fig, axes[0])
    return save_png(fig, path)


def write_caterpillars(directory: Path, fits: Sequence[Fit], stems: dict[str, str],
                       cache: FigureCache | None = None) -> CaterpillarResult:
    """`<model stem>.ranef.<factor>.png` for each model and grouping factor that some fit
    has group effects for (reference fits included; from `cache` where it holds one
    drawn from the same fits)."""
    result = CaterpillarResult()
    cache = cache or FigureCache()
    for model, stem in stems.items():
        having = [f for f in fits if f.model == model and f.has_numbers and f.group_effects]
        groups = list(dict.fromkeys(g.group for f in having for g in f.group_effects))
        taken: set[str] = set()
        for group in groups:
            base = re.sub(r"[^A-Za-z0-9_-]+", "_", group).strip("_") or "group"
            safe, n = base, 2
            while safe.lower() in taken:  # `a:b` and `a_b` get files of their own
                safe, n = f"{base}_{n}", n + 1
            taken.add(safe.lower())
            try:
                drawn = [f for f in having if any(g.group == group for g in f.group_effects)]
                path = cache.drawn(
                    directory / f"{stem}.ranef.{safe}.png", f"ranef:{model}:{group}",
                    partial(fits_material, drawn),
                    partial(draw_caterpillar, model=model, group=group, fits=drawn))
                result.paths.setdefault(model, {})[group] = path
            except Exception as exc:  # one figure's failure costs that figure only
                log.warning("group-effect figure for %s / %s not drawn: %s", model, group, exc)
                result.errors[f"{model} / {group}"] = f"{type(exc).__name__}: {exc}"
    return result
