"""The Markdown report: per model, each engine's estimates side by side.

Reads only result records (parity.schema), never an engine library.
"""

from __future__ import annotations

from collections.abc import Sequence

from parity.schema import Fit, VarianceComponent


def _num(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.{digits}f}"


def _component_label(v: VarianceComponent) -> str:
    if v.group == "Residual":
        return "Residual SD"
    if v.kind == "corr":
        return f"{v.group}: corr({v.term}, {v.term2})"
    return f"{v.group}: SD {v.term}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _fit_note(fit: Fit) -> str:
    d = fit.diagnostics
    if fit.status != "ok":
        return f"- **{fit.engine}**: {fit.status} — {fit.reason}"
    bits = [f"converged: {'yes' if d.converged else 'no'}",
            f"singular: {'yes' if d.singular else 'no'}"]
    if d.r_hat_max is not None:
        bits.append(f"R-hat max {d.r_hat_max:.3f}")
    if d.ess_bulk_min is not None:
        bits.append(f"ESS bulk min {d.ess_bulk_min:.0f}")
    if d.divergences is not None:
        bits.append(f"divergences {d.divergences}")
    if fit.structure:
        bits.append("random effects: " + ", ".join(f"{g} {s}" for g, s in fit.structure.items()))
    bits.append(f"{fit.provenance.seconds:.2f} s")
    line = f"- **{fit.engine}** ({fit.engine_formula}): " + "; ".join(bits)
    if d.warnings:
        line += "\n  - warnings: " + "; ".join(d.warnings)
    return line


def model_section(model: str, fits: Sequence[Fit]) -> list[str]:
    """One model's tables: fixed effects, then variance components, then diagnostics."""
    first = fits[0]
    ok = [f for f in fits if f.status == "ok"]
    lines = [f"## {model}", "", f"`{first.formula}` — {first.n_obs} rows used, "
             f"{first.n_dropped} dropped as incomplete", ""]
    if ok:
        terms = list(dict.fromkeys(fe.term for f in ok for fe in f.fixed_effects))
        rows = []
        for term in terms:
            row = [f"`{term}`"]
            for f in ok:
                fe = f.fixed(term)
                row.append("–" if fe is None else
                           f"{_num(fe.estimate)} ({_num(fe.std_error)}) "
                           f"[{_num(fe.lower)}, {_num(fe.upper)}]")
            rows.append(row)
        lines += ["Fixed effects: estimate (SE) [interval]; Bambi: posterior mean (SD) [ETI]", ""]
        lines += _table(["term"] + [f.engine for f in ok], rows) + [""]
        keys = list(dict.fromkeys((v.group, v.term, v.term2, v.kind)
                                  for f in ok for v in f.variance_components))
        rows = []
        for group, vterm, vterm2, kind in keys:
            row = [_component_label(VarianceComponent(group, vterm, vterm2, kind, 0.0))]
            for f in ok:
                v = f.component(group, vterm, vterm2)
                row.append("–" if v is None else _num(v.estimate, 3))
            rows.append(row)
        lines += ["Variance components (SD or correlation; – where the engine has none)", ""]
        lines += _table(["component"] + [f.engine for f in ok], rows) + [""]
    lines += [_fit_note(f) for f in fits] + [""]
    return lines


def render_markdown(fits: Sequence[Fit], title: str = "parity comparison") -> str:
    models = list(dict.fromkeys(f.model for f in fits))
    lines = [f"# {title}", ""]
    for model in models:
        lines += model_section(model, [f for f in fits if f.model == model])
    return "\n".join(lines)
