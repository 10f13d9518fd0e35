"""What a study writes: study.json, tolerances.calibrated.toml, study.md and study.html
with their figures (coverage and bias against the number of groups, per engine and
parameter; the Bayesian-minus-frequentist differences in posterior SDs, with the
tolerance marked)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.atomic import write_text_atomic
from parity.schema import write_json_atomic

if TYPE_CHECKING:
    from parity.study.run import StudyOptions, StudyResult

FIGURES = "figures"
STUDY_JSON = "study.json"
CALIBRATED = "tolerances.calibrated.toml"


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _parameters(summary: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((s["quantity"], s["term"]) for s in summary))


def _figures(out: Path, doc: dict[str, Any]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = doc["summary"]
    params = _parameters(summary)
    engines = doc["engines"]
    paths: dict[str, Path] = {}
    fig_dir = out / FIGURES
    fig_dir.mkdir(parents=True, exist_ok=True)
    level = doc["interval"]
    for what, ylabel in (("coverage", f"coverage of the {level:.0%} interval"),
                         ("bias", "bias (estimate − truth)")):
        cols = min(3, len(params))
        nrows = -(-len(params) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows),
                                 squeeze=False)
        designs = sorted({d["groups"] for d in doc["designs"]})
        # Engines that agree exactly (lme4 and statsmodels) would hide each other: each
        # engine keeps one colour and marker, and is drawn a little to the side.
        span = (designs[-1] - designs[0]) or 1.0
        for ax, (quantity, term) in zip(axes.ravel(), params, strict=False):
            for i, engine in enumerate(engines):
                pts = [(s["groups"], s[what]) for s in summary
                       if s["engine"] == engine and s["quantity"] == quantity
                       and s["term"] == term and s[what] is not None]
                if pts:
                    xs, ys = zip(*sorted(pts), strict=True)
                    dodge = (i - (len(engines) - 1) / 2) * 0.015 * span
                    ax.plot([x + dodge for x in xs], ys, marker="osD^v"[i % 5],
                            color=f"C{i}", label=engine)
            ax.set_xticks(designs)
            if what == "coverage":
                ax.axhline(level, color="grey", linestyle="--", linewidth=1)
                ax.set_ylim(-0.02, 1.02)
            else:
                ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
            ax.set_title(term, fontsize=9)
            ax.set_xlabel(f"groups of {doc['factor']}")
            ax.set_ylabel(ylabel, fontsize=8)
        for ax in axes.ravel()[len(params):]:
            ax.set_visible(False)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=f"C{i}", marker="osD^v"[i % 5], label=e)
                   for i, e in enumerate(engines)]
        fig.legend(handles=handles, loc="upper right", fontsize=8)
        fig.tight_layout()
        path = fig_dir / f"{what}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[what] = path
    diffs = [d for d in doc["differences"] if d["quantity"] in ("estimate", "sd")]
    bayes = [d for d in diffs if _posterior_pair(doc, d)]
    if bayes:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), squeeze=False)
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
        fig.tight_layout()
        path = fig_dir / "differences.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths["differences"] = path
    return paths


def _posterior_pair(doc: dict[str, Any], d: dict[str, Any]) -> bool:
    kinds = doc.get("kinds", {})
    return {kinds.get(d["engine"]), kinds.get(d["reference"])} == {"bayesian", "frequentist"}


def _tables(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the report's tables."""
    summary = doc["summary"]
    header = ["groups", "engine", "parameter", "truth", "bias", "RMSE", "coverage",
              "agree", "singular", "divergent", "n"]
    rows = [[str(s["groups"]), s["engine"], s["term"], _fmt(s["truth"], 4),
             _fmt(s["bias"]), _fmt(s["rmse"]), _fmt(s["coverage"], 2),
             _fmt(s["agree_rate"], 2), _fmt(s["singular_rate"], 2),
             _fmt(s["divergence_rate"], 2), str(s["n"])] for s in summary]
    fits = [[str(f["groups"]), f["engine"], str(f["ok"]), str(f["failed"]),
             _fmt(f["seconds_median"]), _fmt(f["seconds_max"]),
             "; ".join(f["reasons"]) or "—"] for f in doc["fits"]]
    cal = [[c["pair"], c["quantity"], _fmt(c["factor"]), _fmt(c["rtol"]), _fmt(c["atol"]),
            _fmt(c["sd_mult"]), str(c["n"])] for c in doc["calibrated"]]
    return [
        ("Per design, engine and parameter", header, rows),
        ("Fits", ["groups", "engine", "ok", "failed", "median s", "max s", "why failed"],
         fits),
        (f"Calibrated tolerances ({doc['calibrate_quantile']:.1%} of rows agree)",
         ["pair", "quantity", "factor", "rtol", "atol", "sd_mult", "rows"], cal),
    ]


_READING = (
    "Each replicate is drawn from lme4's fit of the original data (the truth below), on "
    "a design with the stated number of groups, and fitted by every engine. "
    "*bias* and *RMSE* are against the truth; *coverage* is the share of replicates whose "
    "{level:.0%} interval holds the truth (lme4's SD intervals are profile-likelihood "
    "intervals; — where the engine gives none, as statsmodels for an SD); *agree* is the "
    "share of rows whose verdict against "
    "{reference} is `agree` (a `not_comparable` row, as at a boundary, does not agree); "
    "*singular* and *divergent* are the shares of fits on the boundary and with divergent "
    "transitions. With few replicates every share is coarse: n says how many."
)


def _intro(doc: dict[str, Any]) -> list[str]:
    m, s = doc["model"], doc["settings"]
    sched = doc["scheduler"]
    truth = doc["truth"]
    return [
        f"Model `{m['name']}`: `{m['formula']}`.",
        f"Designs: {', '.join(str(d['groups']) for d in doc['designs'])} groups of "
        f"`{doc['factor']}`, {doc['replicates']} replicates each; engines "
        f"{', '.join(doc['engines'])} (reference {doc['reference']}).",
        f"Sampler: {s['draws']} draws, {s['tune']} tuning steps, {s['chains']} chains, "
        f"target_accept {s['target_accept']}. Priors: {doc['priors']}.",
        f"Truth ({truth['source']}{', singular' if truth['singular'] else ''}): "
        + ", ".join(f"{k} = {v:.4g}" for k, v in
                    {**truth['fixed_effects'], **truth['components']}.items()) + ".",
        f"Ran on: {sched['kind']} at {sched['address']} with {sched['workers']} workers; "
        f"{sched['fitted_batches']} batches fitted, {sched['resumed_batches']} resumed "
        f"from an earlier run; {doc['seconds']:.0f} s.",
    ]


def _markdown(doc: dict[str, Any], figures: dict[str, Path]) -> str:
    lines = ["# parity study", ""]
    lines += [f"- {x}" for x in _intro(doc)] + [""]
    lines += [_READING.format(level=doc["interval"], reference=doc["reference"]), ""]
    for name in ("coverage", "bias", "differences"):
        if name in figures:
            lines += [f"![{name}]({FIGURES}/{figures[name].name})", ""]
    for title, header, rows in _tables(doc):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def _html(doc: dict[str, Any], figures: dict[str, Path]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>parity study</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}img{max-width:100%}</style></head><body>",
             "<h1>parity study</h1><ul>"]
    parts += [f"<li>{e(x)}</li>" for x in _intro(doc)]
    reading = _READING.format(level=doc["interval"], reference=doc["reference"])
    parts.append(f"</ul><p>{e(reading)}</p>")
    for name in ("coverage", "bias", "differences"):
        if name in figures:
            parts.append(f"<img src='{FIGURES}/{e(figures[name].name)}' alt='{name}'>")
    for title, header, rows in _tables(doc):
        parts.append(f"<h2>{e(title)}</h2><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_study(out: Path, result: StudyResult, options: StudyOptions) -> dict[str, Path]:
    from parity.engines import engine_kind

    doc = result.document
    doc["kinds"] = {e: engine_kind(e) for e in doc["engines"]}
    paths = {"json": write_document(out, doc)}
    paths["calibrated"] = out / CALIBRATED
    write_text_atomic(paths["calibrated"], doc["calibrated_toml"])
    figures = _figures(out, doc)
    paths["markdown"] = out / "study.md"
    write_text_atomic(paths["markdown"], _markdown(doc, figures))
    paths["html"] = out / "study.html"
    write_text_atomic(paths["html"], _html(doc, figures))
    paths.update({f"figure {k}": v for k, v in figures.items()})
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
