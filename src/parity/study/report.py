"""What a study writes: study.json, tolerances.calibrated.toml, study.md and study.html
with their figures (coverage and bias against the number of groups, per engine and
parameter; the Bayesian-minus-frequentist differences in posterior SDs, with the
tolerance marked).

The report is built from the run report's blocks and written through the same table of
formats (parity.reports.formats), so study.html is self-contained like comparison.html
(figures embedded) and user text is escaped the same way in both. Figures are drawn on
matplotlib's Agg canvas with the run report's helpers: no pyplot, no global backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.atomic import write_text_atomic
from parity.reports.blocks import Block, Bullets, Code, Heading, Image, Inline, Para, Strong, Table
from parity.reports.figures import engine_style, save_png
from parity.reports.formats import BLOCK_FORMATS, Report, write_formats
from parity.reports.text import sig
from parity.schema import write_json_atomic
from parity.study.tables import MC_LEVEL, MIN_REPLICATES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from parity.study.options import StudyOptions, StudyResult

FIGURES = "figures"
STUDY_JSON = "study.json"
CALIBRATED = "tolerances.calibrated.toml"
STEM = "study"
MISSING = "—"
IMPRECISE = "†"  # a number with fewer than MIN_REPLICATES replicates behind it
Z = NormalDist().inv_cdf(0.5 + MC_LEVEL / 2)  # ±Z MCSEs: a bias's band


def _fmt(x: Any, digits: int = 3) -> str:
    """A number to `digits` significant digits, "—" where there is none; counts and
    names as they are."""
    if x is None or isinstance(x, float):
        return sig(x, digits, MISSING)
    return str(x)


def _count(s: dict[str, Any], what: str) -> int:
    """How many replicates a summary number rests on: intervals for coverage, verdicts
    for agree_rate, fits with a divergence count for divergence_rate, rows otherwise."""
    key = {"coverage": "n_intervals", "agree_rate": "n_verdicts",
           "divergence_rate": "n_divergence"}.get(what, "n")
    return int(s.get(key, s["n"]))


def _imprecise(s: dict[str, Any], what: str) -> bool:
    return s.get(what) is not None and _count(s, what) < MIN_REPLICATES


def _with_error(s: dict[str, Any], what: str, digits: int) -> str:
    """A summary number with its Monte-Carlo SE, "0.94 ± 0.02". A share of 0 or 1, whose
    binomial SE is 0 and says nothing, shows the far end of its Wilson interval instead:
    "1 (≥0.83)". A number on fewer than MIN_REPLICATES replicates is marked †."""
    value, mcse = s.get(what), s.get(f"{what}_mcse")
    if value is None:
        return MISSING
    text = _fmt(value, digits)
    lower, upper = s.get(f"{what}_lower"), s.get(f"{what}_upper")
    if mcse == 0 and value == 1 and lower is not None:
        text += f" (≥{math.floor(lower * 100) / 100:.2f})"
    elif mcse == 0 and value == 0 and upper is not None:
        text += f" (≤{math.ceil(upper * 100) / 100:.2f})"
    elif mcse is not None:
        text += f" ± {sig(mcse, digits - 1)}"
    return f"{text} {IMPRECISE}" if _imprecise(s, what) else text


def _parameters(summary: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((s["quantity"], s["term"]) for s in summary))


def _canvas(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _trend_figure(path: Path, doc: dict[str, Any], what: str, ylabel: str) -> Path:
    """One panel per parameter: `what` (coverage or bias) against the number of groups,
    a line per engine."""
    from matplotlib.lines import Line2D

    summary, engines = doc["summary"], doc["engines"]
    params = _parameters(summary)
    cols = max(min(3, len(params)), 1)
    nrows = max(-(-len(params) // cols), 1)
    fig = _canvas(4.2 * cols, 3.2 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, squeeze=False)
    designs = sorted({d["groups"] for d in doc["designs"]})
    # Engines that agree exactly (lme4 and statsmodels) would hide each other: each
    # engine keeps its colour and marker of the run report, and is drawn a little aside.
    span = (designs[-1] - designs[0]) or 1.0
    hollow = False
    for ax, (quantity, term) in zip(axes.ravel(), params, strict=False):
        for i, engine in enumerate(engines):
            pts = sorted(((s["groups"], s) for s in summary
                          if s["engine"] == engine and s["quantity"] == quantity
                          and s["term"] == term and s.get(what) is not None),
                         key=lambda gs: gs[0])
            if pts:
                colour, marker = engine_style(engine, i)
                dodge = (i - (len(engines) - 1) / 2) * 0.015 * span
                xs = [g + dodge for g, _ in pts]
                ax.plot(xs, [s[what] for _, s in pts], color=colour, label=engine)
                for x, (_, s) in zip(xs, pts, strict=True):
                    lo, hi = _band(s, what)
                    if lo is not None and hi is not None:
                        ax.errorbar([x], [s[what]], yerr=[[s[what] - lo], [hi - s[what]]],
                                    fmt="none", ecolor=colour, elinewidth=1, capsize=2)
                    # A hollow marker: too few replicates to read the point as a finding.
                    hollow |= _imprecise(s, what)
                    ax.plot([x], [s[what]], marker=marker, color=colour, linestyle="none",
                            markerfacecolor="white" if _imprecise(s, what) else colour)
        ax.set_xticks(designs)
        ax.set_xlim(designs[0] - 0.1 * span, designs[-1] + 0.1 * span)
        if what == "coverage":
            ax.axhline(doc["interval"], color="grey", linestyle="--", linewidth=1)
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel(f"groups of {doc['factor']}")
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes.ravel()[len(params):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=engine_style(e, i)[0], marker=engine_style(e, i)[1],
                      label=e) for i, e in enumerate(engines)]
    if hollow:
        handles.append(Line2D([], [], color="grey", marker="o", markerfacecolor="white",
                              linestyle="none",
                              label=f"fewer than {MIN_REPLICATES} replicates"))
    fig.legend(handles=handles, loc="outside lower center", ncols=max(len(handles), 1),
               fontsize=8, frameon=False)
    return save_png(fig, path)


def _band(s: dict[str, Any], what: str) -> tuple[float | None, float | None]:
    """A figure's bar: a share's Wilson interval (informative at 0 and 1), otherwise
    ±Z (1.96) Monte-Carlo SEs."""
    if s.get(f"{what}_lower") is not None and s.get(f"{what}_upper") is not None:
        return max(min(s[f"{what}_lower"], s[what]), 0.0), max(s[f"{what}_upper"], s[what])
    mcse = s.get(f"{what}_mcse")
    if mcse is None:
        return None, None
    return s[what] - Z * mcse, s[what] + Z * mcse


def _differences_figure(path: Path, doc: dict[str, Any],
                        bayes: Sequence[dict[str, Any]]) -> Path:
    """Histograms of Bayesian-minus-frequentist differences in tolerances, the tolerance
    and the calibrated one marked."""
    fig = _canvas(9, 3.4)
    axes = fig.subplots(1, 2, squeeze=False)
    for ax, quantity in zip(axes.ravel(), ("estimate", "sd"), strict=True):
        ds = [d for d in bayes if d["quantity"] == quantity and d["tolerance"]]
        ratios = [d["difference"] / d["tolerance"] for d in ds]
        if ratios:
            ax.hist(ratios, bins=30, color="#4c72b0")
        ax.axvline(-1, color="black", linestyle="--", linewidth=1)
        ax.axvline(1, color="black", linestyle="--", linewidth=1, label="tolerance")
        cal = next((c for c in doc["calibrated"] if c["quantity"] == quantity
                    and c["pair"] == "bayesian-frequentist"), None)
        if cal:
            for sign in (-1, 1):
                ax.axvline(sign * cal["factor"], color="#c44e52", linewidth=1,
                           label="calibrated" if sign > 0 else None)
        ax.set_title(f"{quantity}: Bayesian − frequentist", fontsize=9)
        ax.set_xlabel("difference / tolerance (the tolerance scales with the "
                      "posterior SD)", fontsize=8)
        ax.legend(fontsize=8)
    return save_png(fig, path)


def _figures(out: Path, doc: dict[str, Any]) -> dict[str, Image]:
    """The study's figures under out/figures, by name, as report images."""
    fig_dir = out / FIGURES
    level = doc["interval"]
    paths = {"coverage": _trend_figure(fig_dir / "coverage.png", doc, "coverage",
                                       f"coverage of the {level:.0%} interval"),
             "bias": _trend_figure(fig_dir / "bias.png", doc, "bias",
                                   "bias (estimate − truth)")}
    diffs = [d for d in doc["differences"] if d["quantity"] in ("estimate", "sd")]
    bayes = [d for d in diffs if _posterior_pair(doc, d)]
    if bayes:
        paths["differences"] = _differences_figure(fig_dir / "differences.png", doc, bayes)
    alts = {"coverage": "coverage of each engine's interval against the number of groups "
                        f"(bars: {MC_LEVEL:.0%} Wilson intervals)",
            "bias": "bias of each engine against the number of groups "
                    f"(bars: ±{Z:.2f} Monte-Carlo SEs)",
            "differences": "Bayesian − frequentist differences, in tolerances"}
    return {name: Image(alts[name], path, f"{FIGURES}/{path.name}")
            for name, path in paths.items()}


def _posterior_pair(doc: dict[str, Any], d: dict[str, Any]) -> bool:
    kinds = doc.get("kinds", {})
    # A matched-structure refit (`lme4:independent`) is of its engine's kind.
    return {kinds.get(d["engine"]), kinds.get(d["reference"].split(":", 1)[0])} == \
        {"bayesian", "frequentist"}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    return Table(tuple(header), tuple(tuple((c,) for c in r) for r in rows))


def _tables(doc: dict[str, Any]) -> list[Block]:
    """The report's tables, each under its heading."""
    summary = doc["summary"]
    header = ["groups", "engine", "parameter", "truth", "bias", "RMSE", "coverage",
              "agree", "singular", "divergent", "n"]
    rows = [[str(s["groups"]), s["engine"], s["term"], _fmt(s["truth"], 4),
             _with_error(s, "bias", 3), _with_error(s, "rmse", 3),
             *(_with_error(s, what, 2) for what in
               ("coverage", "agree_rate", "singular_rate", "divergence_rate")),
             str(s["n"])] for s in summary]
    marked = any(IMPRECISE in cell for row in rows for cell in row)
    fits = [[str(f["groups"]), f["engine"], str(f["ok"]), str(f.get("unconverged", 0)),
             str(f["failed"]),
             _fmt(f["seconds_median"]), _fmt(f["seconds_max"]),
             "; ".join(f["reasons"]) or MISSING] for f in doc["fits"]]
    cal = [[c["pair"], c["quantity"], _fmt(c["factor"]), _fmt(c["rtol"]), _fmt(c["atol"]),
            _fmt(c["sd_mult"]), str(c["n"])] for c in doc["calibrated"]]
    return [
        Heading(2, "Per design, engine and parameter"), _table(header, rows),
        *([Para((f"{IMPRECISE} fewer than {MIN_REPLICATES} replicates: Monte-Carlo error "
                 "too large to read as a finding.",))] if marked else []),
        Heading(2, "Fits"),
        _table(["groups", "engine", "ok", "unconverged", "failed", "median s", "max s",
                "why not ok"], fits),
        Heading(2, f"Calibrated tolerances ({doc['calibrate_quantile']:.1%} of rows agree)"),
        _table(["pair", "quantity", "factor", "rtol", "atol", "sd_mult", "rows"], cal),
    ]


def _reading(level: float, reference: str, sd_intervals: str = "profile") -> Inline:
    sd_note = ("lme4's SD intervals are profile-likelihood intervals"
               if sd_intervals == "profile" else
               "lme4's SDs have no intervals here: the study ran with --sd-intervals none")
    return (
        "Each replicate is drawn from lme4's fit of the original data (the truth above), "
        "on a design with the stated number of groups, and fitted by every engine. ",
        Strong("bias"), " and ", Strong("RMSE"), " are against the truth; ",
        Strong("coverage"), f" is the share of replicates whose {level:.0%} interval holds "
        "the truth (", sd_note, "; — where the engine gives none, as statsmodels for "
        "an SD); ", Strong("agree"),
        f" is the share of rows whose verdict against {reference} is ", Code("agree"),
        " (against its matched-structure refit, ", Code(f"{reference}:independent"),
        ", for an engine fitting independent random coefficients, as a row's ",
        Code("judged_against"), " says; a ", Code("not_comparable"),
        " row, as at a boundary, does not agree); ",
        Strong("singular"), " and ", Strong("divergent"), " are the shares of fits on the "
        "boundary and with divergent transitions. Each is a Monte-Carlo estimate from the "
        "replicates and carries ± its Monte-Carlo SE (Morris, White and Crowther 2019); a "
        "share of 0 or 1, whose binomial SE is 0, carries instead the far end of its "
        f"{MC_LEVEL:.0%} Wilson interval, as 1 (≥0.83). {IMPRECISE} marks a number on "
        f"fewer than {MIN_REPLICATES} replicates, and a hollow point in a figure: read it "
        f"as a rough indication, not a finding. The figures' bars are {MC_LEVEL:.0%} "
        f"Wilson intervals for coverage and ±{Z:.2f} Monte-Carlo SEs for bias.")


def _intro(doc: dict[str, Any]) -> tuple[Inline, ...]:
    m, s = doc["model"], doc["settings"]
    sched = doc["scheduler"]
    truth = doc["truth"]
    return (
        ("Model ", Code(m["name"]), ": ", Code(m["formula"]), "."),
        (f"Designs: {', '.join(str(d['groups']) for d in doc['designs'])} groups of ",
         Code(doc["factor"]), f", {doc['replicates']} replicates each; engines "
         f"{', '.join(doc['engines'])} (reference {doc['reference']})."),
        (f"Sampler: {s['draws']} draws, {s['tune']} tuning steps, {s['chains']} chains, "
         f"target_accept {s['target_accept']}. Priors: {doc['priors']}.",),
        (f"Truth ({truth['source']}{', singular' if truth['singular'] else ''}): "
         + ", ".join(f"{k} = {v:.4g}" for k, v in
                     {**truth['fixed_effects'], **truth['components']}.items()) + ".",),
        (f"Ran on: {sched['kind']} at {sched['address']} with {sched['workers']} workers; "
         f"{sched['fitted_batches']} batches fitted, {sched['resumed_batches']} resumed "
         f"from an earlier run; {doc['seconds']:.0f} s.",),
    )


def study_blocks(doc: dict[str, Any], figures: dict[str, Image]) -> list[Block]:
    """The study report: what was run, how to read it, the figures, then the tables."""
    blocks: list[Block] = [Heading(1, "parity study"), Bullets(_intro(doc)),
                           Para(_reading(doc["interval"], doc["reference"],
                                    doc.get("sd_intervals", "profile")))]
    blocks += [figures[name] for name in ("coverage", "bias", "differences")
               if name in figures]
    return blocks + _tables(doc)


def write_study(out: Path, result: StudyResult, options: StudyOptions) -> dict[str, Path]:
    """Every file of a study under `out`; the paths by kind (`json`, `calibrated`,
    `markdown`, `html`, and `figure <name>`)."""
    from parity.engines import engine_kind

    doc = result.document
    doc["kinds"] = {e: engine_kind(e) for e in doc["engines"]}
    paths = {"json": write_document(out, doc)}
    paths["calibrated"] = out / CALIBRATED
    write_text_atomic(paths["calibrated"], doc["calibrated_toml"])
    figures = _figures(out, doc)
    report = Report(tuple(study_blocks(doc, figures)))
    paths.update(write_formats(out, STEM, report, BLOCK_FORMATS))
    paths.update({f"figure {k}": v.path for k, v in figures.items()})
    return paths


def write_document(out: Path, document: dict[str, Any]) -> Path:
    path = Path(out) / STUDY_JSON
    doc = {k: v for k, v in document.items() if k != "calibrated_toml"}
    write_json_atomic(path, _jsonable(doc))
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
