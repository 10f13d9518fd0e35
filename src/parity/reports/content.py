"""What a run's report says, as blocks: the generated summary, then per model each
engine's estimates side by side with a verdict mark against its reference, and the rows
that do not agree.

Reads only result records (parity.schema), never an engine library. Every format
(parity.reports.formats) renders these same blocks, so the Markdown and the HTML report
cannot say different things.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from parity.compare.quantities import loglik_scale
from parity.reports.agreement import QUANTILES, TAIL, distance, quantiles
from parity.reports.blocks import (
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Inline,
    Mark,
    Para,
    Strong,
    Table,
)
from parity.reports.caterpillar import SHOWN_LEVELS
from parity.reports.summary import (
    headline,
    matrix_blocks,
    pair_label,
    summary_blocks,
)
from parity.reports.text import num, sig
from parity.schema import (
    SENSITIVITY_THRESHOLD,
    Comparison,
    Fit,
    OptimumCheck,
    Value,
    sensitivity_diagnosis,
    values,
)
from parity.spec.family import family_of

PREFERRED_REFERENCE = "lme4"


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows; figures by model, and why a model has none."""

    fits: Sequence[Fit]
    reference_fits: Sequence[Fit] = ()
    comparisons: Sequence[Comparison] = ()
    optimum_checks: Sequence[OptimumCheck] = ()
    title: str = "parity comparison"
    figures: Mapping[str, Image] = field(default_factory=dict)
    figure_errors: Mapping[str, str] = field(default_factory=dict)
    # The agreement figure of the run ("" key) and of each model.
    agreement: Mapping[str, Image] = field(default_factory=dict)
    # Each model's caterpillar figures (one per grouping factor), and failures by
    # "model / factor".
    group_figures: Mapping[str, Sequence[Image]] = field(default_factory=dict)
    group_figure_errors: Mapping[str, str] = field(default_factory=dict)
    # Each model's formula as parity parsed it (results.json's models[].engine_formula),
    # shown beside the analyst's own text where the two read differently.
    parsed: Mapping[str, str] = field(default_factory=dict)


# Group-effect rows listed under a model's "Group effects" heading, worst first.
WORST_GROUP_EFFECTS = 8
# Levels named per engine pair and factor, those farthest from the reference.
FARTHEST_LEVELS = 3


class _Verdicts:
    """Comparison rows of one model, looked up by (engine, reference, quantity, term)."""

    def __init__(self, rows: Sequence[Comparison]) -> None:
        self.rows = list(rows)
        self.index: dict[tuple[str, str, str, str], Comparison] = {
            (c.engine, c.reference, c.quantity, c.term): c for c in rows}

    def reference(self, label: str) -> str | None:
        """lme4 where `label` was compared with it, else the first reference it met."""
        refs = list(dict.fromkeys(c.reference for c in self.rows if c.engine == label))
        return PREFERRED_REFERENCE if PREFERRED_REFERENCE in refs else (refs[0] if refs else None)

    def marks(self, label: str, quantity: str, term: str) -> Inline:
        ref = self.reference(label)
        main = self.index.get((label, ref, quantity, term)) if ref else None
        if main is None:
            return ()
        spans: Inline = (" ", Mark(main.verdict))
        if main.verdict == "not_comparable":
            for c in self.rows:
                if (c.engine, c.quantity, c.term) == (label, quantity, term) \
                        and c.reference != ref and c.verdict != "not_comparable":
                    spans += (" (", Mark(c.verdict), f" vs {c.reference})")
        return spans


def _by_term(cols: Sequence[Fit], quantities: tuple[str, ...]
             ) -> tuple[list[str], list[dict[str, Value]]]:
    """The rows of a table (each value's label, in record order across the fits) and
    each fit's values by label, read through the one flattening of a fit."""
    per_fit = [{v.term: v for v in values(f) if v.quantity in quantities} for f in cols]
    return list(dict.fromkeys(t for mine in per_fit for t in mine)), per_fit


def _fixed_table(cols: Sequence[Fit], verdicts: _Verdicts) -> list[Block]:
    terms, per_fit = _by_term(cols, ("estimate",))
    rows = []
    for term in terms:
        row: list[Inline] = [(Code(term),)]
        for f, mine in zip(cols, per_fit, strict=True):
            v = mine.get(term)
            row.append(("–",) if v is None else (
                f"{num(v.estimate)} ({num(v.uncertainty)}) "
                f"[{num(v.lower)}, {num(v.upper)}]",
                *verdicts.marks(f.label, "estimate", term)))
        rows.append(tuple(row))
    return [Heading(3, "Fixed effects"),
            Para(("Estimate (SE) [interval]; a posterior: its mean (SD) [equal-tailed]. ",
                  Mark("agree"), " agrees, ", Mark("disagree"), " disagrees, ",
                  Mark("not_comparable"), " not comparable with the reference in the "
                  "column header.")),
            Table(("term", *(_header(f, verdicts) for f in cols)), tuple(rows))]


def _components_table(cols: Sequence[Fit], verdicts: _Verdicts) -> list[Block]:
    labels, per_fit = _by_term(cols, ("sd", "corr"))
    if not labels:
        return []
    rows = []
    for label in labels:
        row: list[Inline] = [(label,)]
        for f, mine in zip(cols, per_fit, strict=True):
            v = mine.get(label)
            if v is None:
                row.append(("–",))
                continue
            interval = (f" [{num(v.lower, 3)}, {num(v.upper, 3)}]"
                        if v.lower is not None or v.upper is not None else "")
            row.append((num(v.estimate, 3) + interval,
                        *verdicts.marks(f.label, v.quantity, label)))
        rows.append(tuple(row))
    return [Heading(3, "Variance components"),
            Para(("SD or correlation [interval where the engine gives one]; "
                  "– where the engine has none.",)),
            Table(("component", *(_header(f, verdicts) for f in cols)), tuple(rows))]


def _header(fit: Fit, verdicts: _Verdicts) -> str:
    ref = verdicts.reference(fit.label)
    label = f"{fit.label} (recorded)" if fit.is_recorded else fit.label
    return label if ref is None else f"{label} (vs {ref})"


def _recorded_note(fits: Sequence[Fit]) -> list[Block]:
    """Recorded numbers are said once on top, as well as beside every table: each
    recorded engine under its own package and version (glmmTMB's version is not
    lme4's), and "R was not used" only where no R engine ran live."""
    rec = [f for f in fits if f.is_recorded]
    if not rec:
        return []
    packages = list(dict.fromkeys(_package(f) for f in rec))
    parts = [_recorded_part(p, [f for f in rec if _package(f) == p]) for p in packages]
    in_r = [f for f in fits if not f.is_recorded and f.status == "ok" and f.provenance.r_version]
    live = list(dict.fromkeys(_package(f) for f in in_r if f.provenance.source == "fit"))
    cached = [p for p in dict.fromkeys(_package(f) for f in in_r if f.from_cache)
              if p not in live]
    lead = f" {_and(live)} ran in R in this run;" if live else " R was not used in this run;"
    if cached:
        lead += f" the {_and(cached)} results come from the fit cache (R, an earlier run);"
    return [Para((Strong(f"Recorded {_and(packages)} numbers:"),
                  f"{lead} {_and(parts)} are recorded references matched by data hash, "
                  "formula and settings.",))]


def _recorded_part(package: str, fits: Sequence[Fit]) -> str:
    """`the glmmTMB results for a, b (R version 4.2.2, glmmTMB 1.1.5)`."""
    versions = sorted({f"{f.provenance.r_version or 'R ?'}, {package} "
                       f"{f.provenance.engine_version or '?'}" for f in fits})
    models = ", ".join(dict.fromkeys(f.model for f in fits))
    return f"the {package} results for {models} ({'; '.join(versions)})"


def _package(fit: Fit) -> str:
    """The R package whose numbers a fit of an R engine holds, as its record names it
    (`glmmTMB` for engine glmmtmb); results written before records named it are read
    from the versions the fit recorded, whose key spells the package."""
    recorded = fit.provenance.settings.get("recorded")
    if isinstance(recorded, dict) and recorded.get("package"):
        return str(recorded["package"])
    return next((k for k in fit.provenance.versions if k.lower() == fit.engine.lower()),
                fit.engine)


def _and(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _disagreements(rows: Sequence[Comparison]) -> list[Block]:
    head: list[Block] = [Heading(3, "Rows that do not agree")]
    if not rows:
        return head + [Para(("No comparisons for this model.",))]
    effects = sum(1 for c in rows if c.quantity == "group_effect")
    rows = [c for c in rows if c.quantity != "group_effect"]
    if effects:
        head.append(Para((f"Group-effect rows ({effects}) are under Group effects below.",)))
    bad = [c for c in rows if c.verdict != "agree"]
    if not bad:
        return head + [Para((f"All {len(rows)} comparison rows agree.",))]
    body = tuple(((pair_label(c),), (c.quantity,), (Code(c.term),), (sig(c.value),),
                  (sig(c.reference_value),), (sig(c.tolerance, 3),),
                  (Mark(c.verdict), " " + c.verdict), (c.reason or "",)) for c in bad)
    return head + [
        Para((f"{len(bad)} of {len(rows)} comparison rows.",)),
        Table(("engine vs reference", "quantity", "term", "value", "reference", "tolerance",
               "verdict", "reason"), body)]


def _criterion_blocks(fits: Sequence[Fit]) -> list[Block]:
    """Which likelihood the frequentist fits maximised, and that a posterior has none."""
    ok = [f for f in fits if f.has_numbers]
    crit = {f.label: f.criterion for f in ok}
    likelihood = [c for c in crit.values() if c is not None and c != "OLS"]
    mixed = list(dict.fromkeys(likelihood))
    if not mixed:
        return []
    by = ", ".join(f"{label} {c}" for label, c in crit.items()
                   if c is not None and c != "OLS")
    posterior = list(dict.fromkeys(f.label for f in ok if f.criterion is None
                                   and f.kind != "approximate"))
    named = [{"Laplace": "the Laplace approximation to ML",
              "nAGQ=0": "nAGQ=0 (fixed effects from PIRLS, Laplace for the variances)"}
             .get(c, c) for c in mixed]
    text = f"the frequentist mixed models are fitted by {' and '.join(named)} ({by})."
    if posterior:
        one = len(posterior) == 1
        text += (f" {', '.join(posterior)} sample{'s' if one else ''} a posterior: REML or "
                 f"ML does not apply to {'it' if one else 'them'}, and "
                 f"{'its' if one else 'their'} numbers are the same under either.")
    return [Para((Strong("Criterion:"), " " + text))]


def _sensitivity_table(fits: Sequence[Fit]) -> list[Block]:
    """Each Bayesian fit's power-scaling sensitivity per parameter: how far its
    posterior moves when its prior, or its likelihood, is raised to a power near 1, and
    priorsense's diagnosis; or why it was not computed."""
    posterior = [f for f in fits if f.has_numbers and "sensitivity" in f.provenance.settings]
    if not posterior:
        return []
    body: list[tuple[Inline, ...]] = []
    states: list[tuple[str, ...]] = []
    apart: list[str] = []
    for f in posterior:
        rows = [(x.term, x.prior_sensitivity, x.likelihood_sensitivity)
                for x in f.fixed_effects] + [
                (v.label, v.prior_sensitivity, v.likelihood_sensitivity)
                for v in f.variance_components]
        measured = [r for r in rows if r[1] is not None]
        if not measured:
            apart.append(f"{f.label}: {f.provenance.settings['sensitivity']}")
        for name, ps, ls in measured:
            said = sensitivity_diagnosis(ps, ls) or "-"
            body.append(((f.label,), (Code(name),), (sig(ps, 2),), (sig(ls, 2),),
                         (said if said != "none" else "-",)))
            states.append(("",) * 4 + ("not_comparable" if said not in ("none", "-") else "",))
    blocks: list[Block] = [Heading(3, "Prior sensitivity")]
    if body:
        blocks += [Para((f"Power-scaling sensitivity (Kallioinen et al. 2024): how far each "
                         f"posterior moves when the prior, or the likelihood, is raised to a "
                         f"power near 1. Above {SENSITIVITY_THRESHOLD:g} the prior shapes "
                         "that parameter: a gap to a frequentist estimate is then the "
                         "prior's.",)),
                   Table(("engine", "parameter", "prior", "likelihood", "diagnosis"),
                         tuple(body), tuple(states))]
    blocks += [Para((f"Sensitivity {a}.",)) for a in apart]
    return blocks


def _likelihood_table(fits: Sequence[Fit]) -> list[Block]:
    """logLik, AIC, BIC, deviance of each fit that reports them, with their criterion."""
    have = [f for f in fits if f.has_numbers and "loglik" in f.fit_statistics]
    if not have:
        return []
    body = tuple(((f.label,), (f.criterion or "-",),
                  *((sig(f.fit_statistics.get(k), 10),) for k in ("loglik", "aic", "bic",
                                                                 "deviance")),
                  (sig(f.fit_statistics.get("df"), 3),)) for f in have)
    # A criterion whose log-likelihood is on a scale of its own says so beside the others.
    scales = ([n for f in have if (n := loglik_scale(f))]
              if len({f.criterion for f in have}) > 1 else [])
    return [Heading(3, "Likelihood"),
            Table(("engine", "criterion", "logLik", "AIC", "BIC", "deviance (−2 logLik)",
                   "df"), body),
            *(Para((Strong("Note:"), f" {n}.")) for n in scales)]


def _group_effect_blocks(rows: Sequence[Comparison], figures: Sequence[Image],
                         errors: Sequence[str]) -> list[Block]:
    """The caterpillar figures, per engine pair and factor the verdicts and how far apart
    the levels are, and the worst rows."""
    rows = [c for c in rows if c.quantity == "group_effect"]
    if not rows and not figures and not errors:
        return []
    blocks: list[Block] = [Heading(3, "Group effects")]
    blocks += list(figures)
    blocks += [Para((f"Figure not drawn: {e}",)) for e in errors]
    if not rows:
        return blocks
    blocks += _factor_table(rows)

    def badness(c: Comparison) -> float:
        d = distance(c)
        return -1.0 if d is None else abs(d)

    worst = heapq.nlargest(WORST_GROUP_EFFECTS, (c for c in rows if c.verdict != "not_comparable"),
                           key=badness)
    if worst:
        body = tuple(((pair_label(c),), (Code(c.term),), (sig(c.value),),
                      (sig(c.reference_value),), (sig(c.tolerance, 3),),
                      (sig(distance(c), 3),),
                      (Mark(c.verdict), " " + c.verdict), (c.reason or "",)) for c in worst)
        blocks += [Para((f"The {len(worst)} rows farthest from their reference:",)),
                   Table(("engine vs reference", "group effect", "value", "reference",
                          "tolerance", "in tolerances", "verdict", "reason"), body)]
    apart = list(dict.fromkeys(c.reason or "" for c in rows if c.verdict == "not_comparable"))
    if apart:
        blocks.append(Para(("Not comparable: " + "; ".join(apart[:3])
                            + (" …" if len(apart) > 3 else ""),)))
    return blocks


def _factor_table(rows: Sequence[Comparison]) -> list[Block]:
    """One line per engine pair and grouping factor: its verdicts, the quantiles of its
    rows' differences in tolerances, and the levels farthest apart."""
    by: dict[tuple[str, str], list[Comparison]] = {}
    for c in rows:
        by.setdefault((pair_label(c), c.group or "–"), []).append(c)
    body: list[tuple[Inline, ...]] = []
    states: list[tuple[str, ...]] = []
    for (pair, group), mine in by.items():
        n = Counter(c.verdict for c in mine)
        scored = [(c, d) for c in mine if (d := distance(c)) is not None]
        q = quantiles([d for _, d in scored])
        far = heapq.nlargest(FARTHEST_LEVELS, scored, key=lambda cd: abs(cd[1]))
        body.append(((pair,), (group,), (str(len({c.level for c in mine})),),
                     (str(len(mine)),), (str(n["agree"]),), (str(n["disagree"]),),
                     (str(n["not_comparable"]),),
                     *(((sig(x, 3),) for x in q) if q else [("-",)] * len(QUANTILES)),
                     ("; ".join(f"{_level_name(c)}: {sig(d, 3)}" for c, d in far) or "-",)))
        states.append(("",) * 5 + ("disagree" if n["disagree"] else "",)
                      + ("",) * (len(QUANTILES) + 2))
    return [Para(("Per engine pair and grouping factor: how many levels agree, and how far "
                  "apart they are in tolerances, (value − reference) / tolerance, where "
                  "within ±1 agrees. The quantiles show whether a pair is off everywhere "
                  "or at a few levels; those farthest apart are named.",)),
            Table(("engine vs reference", "factor", "levels", "rows", "agree", "disagree",
                   "not comparable", "min", "5%", "25%", "median", "75%", "95%", "max",
                   "farthest apart"), tuple(body), tuple(states))]


def _level_name(c: Comparison) -> str:
    """A group effect's level and its term: `F1 (Days)`, `F1 (Intercept)`."""
    if c.level is None:
        return c.term
    term = c.terms[0] if c.terms else c.term
    return f"{c.level} {term}" if term.startswith("(") and term.endswith(")") \
        else f"{c.level} ({term})"


def _fit_note(fit: Fit) -> Inline:
    d = fit.diagnostics
    if not fit.has_numbers:
        return (Strong(fit.label), f": {fit.status} — {fit.reason or 'no reason given'}")
    bits = [f"converged: {'yes' if d.converged else 'no'}",
            f"singular: {'yes' if d.singular else 'no'}"]
    if fit.from_cache:
        bits.insert(0, "from the fit cache (fitted in an earlier run with the same data, "
                       "model, settings and versions)")
    if fit.is_recorded:
        when = fit.provenance.settings.get("recorded", {}).get("recorded_at", "?")
        bits.insert(0, f"recorded reference (recorded {when}), not fitted in this run")
    if d.r_hat_max is not None:
        bits.append(f"R-hat max {d.r_hat_max:.3f}")
    if d.ess_bulk_min is not None:
        bits.append(f"ESS bulk min {d.ess_bulk_min:.0f}")
    if d.ess_tail_min is not None:
        bits.append(f"ESS tail min {d.ess_tail_min:.0f}")
    if fit.status == "unconverged":
        bits.insert(0, f"UNCONVERGED, its rows counted apart: {fit.reason}")
    if d.divergences is not None:
        bits.append(f"divergences {d.divergences}")
    if fit.structure:
        bits.append("random effects: " + ", ".join(f"{g} {s}" for g, s in fit.structure.items()))
    bits.append(f"{fit.provenance.seconds:.2f} s")
    if d.warnings:
        bits.append("warnings: " + "; ".join(d.warnings))
    formula: Inline = (" (", Code(fit.engine_formula), ")") if fit.engine_formula else ()
    return (Strong(fit.label), *formula, ": " + "; ".join(bits))


def _model_verdict(comparisons: Sequence[Comparison]) -> str:
    """The one line a model's section opens with."""
    n = {v: sum(1 for c in comparisons if c.verdict == v)
         for v in ("agree", "disagree", "not_comparable")}
    if not comparisons:
        return "Nothing compared for this model."
    head = ("Every comparable row agrees" if not n["disagree"]
            else f"{n['disagree']} of {n['agree'] + n['disagree']} comparable rows disagree")
    tail = f"; {n['not_comparable']} not comparable" if n["not_comparable"] else ""
    return f"{head} ({n['agree']} agree{tail})."


def model_blocks(model: str, fits: Sequence[Fit], reference_fits: Sequence[Fit] = (),
                 comparisons: Sequence[Comparison] = (), figure: Image | None = None,
                 figure_error: str | None = None,
                 agreement: Image | None = None,
                 group_figures: Sequence[Image] = (),
                 group_figure_errors: Sequence[str] = (),
                 parsed: str | None = None) -> list[Block]:
    """One model: its verdict in a line, formula and rows, the agreement panel and the
    estimates figure, tables with marks, disagreements, diagnostics.

    The formula is the analyst's text, as written; where parity's reading of it is
    spelled otherwise (`poly(Days,2)` written out, an implicit intercept made explicit)
    that reading follows, so the terms in the tables can be traced to what was typed."""
    blocks: list[Block] = [Heading(2, model), Para((Strong(_model_verdict(comparisons)),))]
    first = fits[0] if fits else (reference_fits[0] if reference_fits else None)
    if first is not None:
        read_as: Inline = (("; read as ", Code(parsed))
                           if parsed and _spaced(parsed) != _spaced(first.formula) else ())
        blocks.append(Para((Code(first.formula), *read_as,
                            f" — {first.n_obs} rows used, "
                            f"{first.n_dropped} dropped as incomplete")))
        if not family_of(first.family).residual_sd:
            blocks.append(Para((Strong(f"Family {first.family}, link scale: {first.link}."),
                                f" Coefficients, their SEs and the group SDs are compared on "
                                f"the {first.link} scale. There is no residual SD: a "
                                f"{first.family} model's variance follows from its mean, and "
                                "overdispersion is not a parameter of it, so nothing is "
                                "compared for either.")))
        coding = first.provenance.settings.get("response")
        if isinstance(coding, dict):
            blocks.append(Para((f"The response {coding['column']} is a two-level factor, read "
                                f"as R reads it: {coding['success']!r} is success (1), "
                                f"{coding['failure']!r} failure (0).",)))
        approx = [f.label for f in fits if f.kind == "approximate"]
        if approx:
            blocks.append(Para((f"{', '.join(approx)}: an approximate Bayesian fit "
                                "(variational Bayes), compared under the ",
                                Code("approximate"), " rules of the tolerance policy.")))
    if agreement is not None:
        blocks.append(agreement)
    if figure is not None:
        blocks.append(figure)
    elif figure_error:
        blocks.append(Para((f"Figure not drawn: {figure_error}",)))
    cols = [f for f in (*fits, *reference_fits) if f.has_numbers]
    verdicts = _Verdicts(comparisons)
    if cols:
        blocks += _fixed_table(cols, verdicts) + _components_table(cols, verdicts)
    else:
        blocks.append(Para(("No engine produced a fit for this model.",)))
    blocks += _likelihood_table([*fits, *reference_fits])
    blocks += _sensitivity_table(fits)
    blocks += _disagreements(comparisons)
    blocks += _group_effect_blocks(comparisons, group_figures, group_figure_errors)
    notes = [_fit_note(f) for f in (*fits, *reference_fits)]
    if notes:
        blocks += [Heading(3, "Diagnostics"), Bullets(tuple(notes))]
    return blocks


def _optimum_blocks(checks: Sequence[OptimumCheck]) -> list[Block]:
    if not checks:
        return []
    rows = tuple(((c.model,), (f"{c.engine} vs {c.reference}",), (c.objective,),
                  (sig(c.engine_value, 10),), (sig(c.reference_value, 10),),
                  (sig(c.difference, 3),), (c.better,)) for c in checks)
    return [Heading(2, "Optimum checks"),
            Para(("Each objective evaluated at both engines' solutions; ", Code("better"),
                  " is the engine whose solution the objective prefers (",
                  Code("tie"), " when they differ by less than 0.001).")),
            Table(("model", "engine vs reference", "objective", "engine value",
                   "reference value", "difference", "better"), rows)]


def report_blocks(data: ReportData) -> list[Block]:
    """The whole report: a headline from the verdicts, the summary matrix, the agreement
    figure, the reasons, the optimum checks, then each model."""
    models = list(dict.fromkeys([*(f.model for f in data.fits),
                                 *(f.model for f in data.reference_fits),
                                 *(c.model for c in data.comparisons)]))
    blocks: list[Block] = [Heading(1, data.title),
                           Para((headline(data.comparisons, models),))]
    blocks += _recorded_note([*data.fits, *data.reference_fits])
    blocks += _criterion_blocks(data.fits)
    blocks += matrix_blocks(data.comparisons, models)
    if "" in data.agreement:
        effects = Counter((c.model, pair_label(c)) for c in data.comparisons
                          if c.quantity == "group_effect")
        many = (f" A line with more than {SHOWN_LEVELS} group effects shows them as a "
                "distribution: a box from 25% to 75% with the median, whiskers to 5% and "
                f"95%, and the {TAIL} farthest beyond each whisker as marks."
                if any(n > SHOWN_LEVELS for n in effects.values()) else "")
        blocks += [Heading(2, "How far apart, in tolerances"), Para((
            "Every comparison row at (value − reference) / tolerance: inside the shaded "
            "band [−1, 1] it agrees. Colour is the verdict, the marker the quantity; rows "
            "that are not comparable stand apart under n/c." + many,)), data.agreement[""]]
    blocks += summary_blocks(data.comparisons,
                             {(f.model, f.label): f.kind for f in data.fits if f.kind})
    blocks += _optimum_blocks(data.optimum_checks)
    for model in models:
        blocks += model_blocks(
            model, [f for f in data.fits if f.model == model],
            [f for f in data.reference_fits if f.model == model],
            [c for c in data.comparisons if c.model == model],
            data.figures.get(model), data.figure_errors.get(model),
            data.agreement.get(model), data.group_figures.get(model, ()),
            [e for k, e in data.group_figure_errors.items() if k.startswith(f"{model} / ")],
            data.parsed.get(model))
    return blocks


def _spaced(formula: str) -> str:
    """A formula without its spacing: `y~x` and `y ~ x` read the same."""
    return "".join(formula.split())
