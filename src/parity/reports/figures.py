"""One PNG per model: each engine's estimates and intervals side by side, and how far
each engine's fixed effects are from the reference engine's, in its standard errors.

matplotlib is imported inside the functions, so importing the reports costs nothing where
no figure is drawn. Figures are drawn on matplotlib's Agg canvas through the object API
(no pyplot), so no global backend is switched and no figure is left open.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from parity.reports.figure_cache import FigureCache, fits_material
from parity.schema import Fit

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

# One colour and marker per engine, by its place in the registry (a matched-structure
# refit gets the next one after the registered engines); no table of engine names here.
PALETTE = [("#1f77b4", "o"), ("#ff7f0e", "s"), ("#2ca02c", "D"), ("#d62728", "v"),
           ("#8c564b", "P"), ("#e377c2", "X"), ("#7f7f7f", "*"), ("#9467bd", "^")]

# (point, lower, upper) for one row of a panel, or None where the fit has no such row.
Getter = Callable[[Fit, tuple[str, str | None, str | None]], tuple[float, float, float] | None]


@dataclass
class FigureResult:
    """Figures written, by model, and why the others were not."""

    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def figure_names(models: Sequence[str]) -> dict[str, str]:
    """A safe, distinct file stem per model (model names are user data)."""
    names: dict[str, str] = {}
    taken: set[str] = {"agreement"}  # the run's agreement figure
    for model in models:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", model).strip("_") or "model"
        candidate, n = stem, 2
        while candidate.lower() in taken:
            candidate, n = f"{stem}_{n}", n + 1
        taken.add(candidate.lower())
        names[model] = candidate
    return names


def engine_style(label: str, i: int) -> tuple[str, str]:
    """An engine's colour and marker, the same in every figure of a run and a study;
    `i` places an engine the registry does not know."""
    from parity.engines import ENGINE_NAMES

    engine, _, variant = label.partition(":")
    slot = ENGINE_NAMES.index(engine) if engine in ENGINE_NAMES else len(ENGINE_NAMES) + i
    if variant:
        slot = len(PALETTE) - 1 - ENGINE_NAMES.index(engine) if engine in ENGINE_NAMES else slot
    return PALETTE[slot % len(PALETTE)]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _fixed(fit: Fit, key: tuple[str, str | None, str | None]) -> tuple[float, float, float] | None:
    fe = fit.fixed(key[0])
    return None if fe is None else (fe.estimate, fe.lower, fe.upper)


def _component(fit: Fit,
               key: tuple[str, str | None, str | None]) -> tuple[float, float, float] | None:
    v = fit.component(*key)
    if v is None:
        return None
    lo = v.lower if v.lower is not None else math.nan
    hi = v.upper if v.upper is not None else math.nan
    return (v.estimate, lo, hi)


def _reference(fits: Sequence[Fit]) -> Fit | None:
    """The fit the deviation panel measures from: the first frequentist engine of the
    registry that fitted the model as asked (lme4 where it ran)."""
    from parity.engines import ENGINE_NAMES, engine_kind

    for name in ENGINE_NAMES:
        if engine_kind(name) != "frequentist":
            continue
        for f in fits:
            if f.label == name and f.fixed_effects:
                return f
    return None


def _deviation(ref: Fit) -> Getter:
    """Each engine's estimate and interval as (x - reference estimate) / reference SE."""
    def get(fit: Fit, key: tuple[str, str | None, str | None]
            ) -> tuple[float, float, float] | None:
        fe, base = fit.fixed(key[0]), ref.fixed(key[0])
        if fe is None or base is None or not base.std_error > 0:
            return None
        se = base.std_error
        return ((fe.estimate - base.estimate) / se, (fe.lower - base.estimate) / se,
                (fe.upper - base.estimate) / se)

    return get


def _vc_label(group: str, term: str | None, term2: str | None) -> str:
    if group == "Residual":
        return "Residual"
    return f"{group}: {term}" if term2 is None else f"{group}:\n{term}, {term2}"


def panel(ax: Axes, title: str, keys: Sequence[tuple[str, str | None, str | None]],
           labels: Sequence[str], fits: Sequence[Fit], get: Getter) -> None:
    """Rows top to bottom, engines dodged vertically within a row, intervals as lines."""
    n, k = len(keys), len(fits)
    step = 0.7 / max(k, 1)
    for i, fit in enumerate(fits):
        colour, marker = engine_style(fit.label, i)
        xs, ys, seg_y, seg_lo, seg_hi = [], [], [], [], []
        for j, key in enumerate(keys):
            got = get(fit, key)
            if got is None or not _finite(got[0]):
                continue
            y = (n - 1 - j) + (k - 1) / 2 * step - i * step
            xs.append(got[0])
            ys.append(y)
            if _finite(got[1]) and _finite(got[2]):
                seg_y.append(y)
                seg_lo.append(got[1])
                seg_hi.append(got[2])
        if seg_y:
            ax.hlines(seg_y, seg_lo, seg_hi, colors=colour, linewidth=1.6)
        ax.plot(xs, ys, linestyle="none", marker=marker, color=colour, markersize=5,
                label=fit.label)
    ax.set_yticks(range(n), list(reversed(labels)))
    ax.set_ylim(-0.6, n - 0.4)
    ax.axvline(0.0, color="#888888", linewidth=0.8, linestyle=":")
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)


def draw_model_figure(path: Path, model: str, fits: Sequence[Fit]) -> Path:
    """Draw one model's figure (fixed effects, SDs, correlations) to `path` as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [f for f in fits if f.has_numbers]
    terms = list(dict.fromkeys(fe.term for f in ok for fe in f.fixed_effects))
    vcs = list(dict.fromkeys((v.group, v.term, v.term2, v.kind)
                             for f in ok for v in f.variance_components))
    panels: list[tuple[str, list[tuple[str, str | None, str | None]], list[str], Getter]] = []
    if terms:
        panels.append(("Fixed effects: estimate and interval", [(t, None, None) for t in terms],
                       terms, _fixed))
        ref = _reference(ok)
        if ref is not None and len(ok) > 1:
            # On the raw scale three engines' dots can sit on top of each other; here
            # their distance is in the reference's standard errors.
            panels.append((f"Difference from {ref.label}, in {ref.label} SEs",
                           [(t, None, None) for t in terms], terms, _deviation(ref)))
    for kind, title in (("sd", "Standard deviations"), ("corr", "Correlations")):
        keys = [(g, t, t2) for g, t, t2, kd in vcs if kd == kind]
        if keys:
            panels.append((title, keys, [_vc_label(*key) for key in keys], _component))
    rows = max((len(p[1]) for p in panels), default=1)
    height = 1.6 + max(rows, 1) * (0.35 + 0.12 * len(ok))
    widths = [1.5 if p[0].startswith(("Fixed", "Difference")) else 1.0
              for p in panels] or [1.0]
    fig = Figure(figsize=(3.6 * sum(widths) + 1.2, height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(model, fontsize=11)
    if not panels:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no engine produced estimates for this model",
                ha="center", va="center")
    else:
        axes = fig.subplots(1, len(panels), squeeze=False, width_ratios=widths)[0]
        for ax, (title, keys, labels, get) in zip(axes, panels, strict=True):
            panel(ax, title, keys, labels, ok, get)
            if title == "Correlations":
                ax.set_xlim(-1.05, 1.05)
        add_legend(fig, axes[0])
    return save_png(fig, path)


def add_legend(fig: Figure, ax: Axes) -> None:
    """One legend for the figure, of the engines drawn in `ax`, below the panels."""
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=max(len(names), 1),
               fontsize=8, frameon=False)


DPI = 110


def save_png(fig: Figure, path: Path) -> Path:
    """Every parity figure is written the same way: PNG at 110 dpi, folders made, as an
    indexed-colour PNG.

    The figures are flat colours on white, so 256 colours (without dithering) draw them
    alike to the eye, at a quarter to an eighth of the bytes of matplotlib's RGBA file.
    That matters because the HTML report embeds every figure: a figure with a line per
    comparison row is most of the page's weight."""
    from PIL import Image as Picture

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    buffer.seek(0)
    with Picture.open(buffer) as drawn:
        indexed = drawn.convert("RGB").quantize(colors=256, dither=Picture.Dither.NONE)
    indexed.save(path, format="PNG", optimize=True)
    return path


def write_figures(directory: Path, fits: Sequence[Fit],
                  reference_fits: Sequence[Fit] = (),
                  cache: FigureCache | None = None) -> FigureResult:
    """One PNG per model under `directory` (from `cache` where it holds one drawn from
    the same fits); a figure that fails is recorded, not raised, so one bad model never
    costs the rest of the report."""
    result = FigureResult()
    cache = cache or FigureCache()
    everything = [*fits, *reference_fits]
    models = list(dict.fromkeys(f.model for f in everything))
    for model, stem in figure_names(models).items():
        try:
            path = directory / f"{stem}.png"
            mine = [f for f in everything if f.model == model]
            result.paths[model] = cache.drawn(
                path, f"model:{model}", partial(fits_material, mine),
                partial(draw_model_figure, model=model, fits=mine))
        except Exception as exc:  # any drawing failure is reported for its model alone
            log.warning("figure for %s not drawn: %s", model, exc)
            result.errors[model] = f"{type(exc).__name__}: {exc}"
    return result
