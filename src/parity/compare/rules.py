"""The comparison rules: one verdict per (model, engine, reference, quantity, term).

The verdict follows from the row's own numbers (`agree` exactly when
|value - reference_value| <= tolerance), except where the two fits do not estimate the
same quantity: a correlation one engine does not model, an SD of a differently
structured covariance, a component sitting on the boundary of a singular fit. Those are
`not_comparable`, never a silent agree or disagree, and every row that is not `agree`
says why in words a reader can act on. Two frequentist fits of different criteria
(Laplace against AGQ(n) or nAGQ=0) estimate different things too, but close ones: their
rows agree within the tolerance and are `not_comparable` beyond it, naming both criteria
either way.

The rows come from one loop over the values of two fits (:func:`parity.schema.values`).
Each quantity's entry in :mod:`parity.compare.quantities` names its not-comparable
checks in order and words their reasons and a gap's; the checks themselves are here and
shared: a covariance structure that differs, a value one fit lacks, a component on the
boundary. A fit that did not converge is said before any of them (:func:`compare_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from parity.boundary import near_zero_sds, unit_corrs
from parity.compare.matched import prior_difference, same_model
from parity.compare.quantities import (
    PARTS,
    POSTERIOR_KINDS,
    Guard,
    Pair,
    QuantitySpec,
    criteria_note,
    poss,
    spec_of,
)
from parity.compare.tolerances import Policy
from parity.schema import (
    Comparison,
    Fit,
    OptimumCheck,
    Quantity,
    Value,
    VarianceComponent,
    values,
)

# Two (RE)ML log-likelihoods closer than this are one optimum for practical purposes.
SAME_OPTIMUM = 1e-3

KindOf = Callable[[str], str]


def _near_zero_sds(fit: Fit, group: str) -> dict[str, float]:
    return near_zero_sds(fit.variance_components, group)


def _unit_corrs(fit: Fit, group: str) -> list[VarianceComponent]:
    return unit_corrs(fit.variance_components, group)


def boundary(fit: Fit, group: str, term: str | None, term2: str | None) -> str | None:
    """Why this component sits on the boundary of a singular fit, or None.

    An SD near zero affects itself and its correlations; a correlation of ±1 affects
    itself and the SDs of both its terms. A singular fit whose numbers point at no
    component in particular marks every component of every group."""
    if not fit.diagnostics.singular or group == "Residual":
        return None
    terms = {t for t in (term, term2) if t is not None}
    zero = _near_zero_sds(fit, group)
    parts = [f"{t} SD = {zero[t]:.3g}" for t in sorted(terms & set(zero))]
    parts += [f"corr({v.term}, {v.term2}) = {v.estimate:.3f}" for v in _unit_corrs(fit, group)
              if terms & {v.term, v.term2}]
    if parts:
        return "; ".join(parts)
    groups = list(fit.structure) or [group]
    if not any(_near_zero_sds(fit, g) or _unit_corrs(fit, g) for g in groups):
        return "covariance matrix singular"
    return None


def _row(fit: Fit, ref: Fit, quantity: Quantity, term: str, group: str | None,
         value: float | None, ref_value: float | None, tolerance: float | None,
         reason: str | None, comparable: bool = True,
         mc: tuple[float, float] | None = None, level: str | None = None,
         terms: tuple[str, ...] = ()) -> Comparison:
    """One row. `mc` is (k, MCSE of the gap) where a side has draws: the tolerance
    widens by k × MCSE, and the reason says where Monte-Carlo error decides the row.
    `terms` are the coefficient names the row is of."""
    if not comparable or value is None or ref_value is None or tolerance is None \
            or not (math.isfinite(value) and math.isfinite(ref_value)):
        return Comparison(fit.model, fit.label, ref.label, quantity, term,
                          value, ref_value, tolerance, "not_comparable",
                          reason or "a value is missing or not finite", group, level,
                          terms=terms)
    gap = abs(value - ref_value)
    k, mcse = mc if mc is not None else (0.0, 0.0)
    width = k * mcse
    agree = gap <= tolerance + width
    if agree:
        why = None
        if gap > tolerance:
            why = (f"within Monte-Carlo error: the gap {gap:.3g} is beyond the tolerance "
                   f"{tolerance:.3g} by less than {k:g} MCSE ({width:.3g})")
    else:
        why = reason or "outside the tolerance"
        if mcse > 0:
            why += f"; beyond Monte-Carlo error (the gap is {gap / mcse:.1f} MCSE)"
    return Comparison(fit.model, fit.label, ref.label, quantity, term,
                      value, ref_value, tolerance + width,
                      "agree" if agree else "disagree", why, group, level, terms=terms)


def _mc(p: Pair, a: float | None, b: float | None) -> tuple[float, float] | None:
    """(k, the MCSE of a gap) from each side's MCSE (None: no draws), in quadrature."""
    parts = [x for x in (a, b) if x is not None and math.isfinite(x)]
    if not parts:
        return None
    return p.policy.mcse_mult, math.sqrt(sum(x * x for x in parts))


def _structure_note(fit: Fit, ref: Fit) -> str | None:
    diff = [g for g in ref.structure if fit.structure.get(g) != ref.structure.get(g)]
    if not diff:
        return None
    indep = fit if any(fit.structure.get(g) == "independent" for g in diff) else ref
    return (f"{indep.label} fits {', '.join(diff)} terms as independent, with no correlations; "
            f"{(ref if indep is fit else fit).label} estimates them")


def _optimum_note(checks: Sequence[OptimumCheck], fit: Fit, ref: Fit) -> str | None:
    """What the optimum checks say about two frequentist fits of one model: directly,
    when one fit's solution was judged against the other's optimum; or through lme4,
    when both solutions were judged by the same lme4 objective (glmmtmb against
    statsmodels)."""
    for c in checks:
        if c.model != fit.model or {c.engine, c.reference} != {fit.label, ref.label}:
            continue
        values = (f"{c.objective} {c.engine_value:.3f} at {poss(c.engine)} solution, "
                  f"{c.reference_value:.3f} at {poss(c.reference)}")
        if c.better == "tie":
            return (f"both reach the same {c.criterion} optimum ({values}; difference "
                    f"{abs(c.difference):.1g}): the likelihood is flat here, and "
                    f"{poss(c.engine)} SEs come from the Hessian of the full likelihood, "
                    f"{poss(c.reference)} are conditional on the variance estimates")
        worse = c.reference if c.better == c.engine else c.engine
        return (f"{worse} stopped at a lower {c.criterion} optimum ({values}; difference "
                f"{abs(c.difference):.3g})")
    mine = {c.engine: c for c in checks if c.model == fit.model
            and c.engine in (fit.label, ref.label)}
    if len(mine) == 2:
        a, b = mine[fit.label], mine[ref.label]
        if a.reference == b.reference and a.objective == b.objective:
            values = (f"{a.objective} {a.engine_value:.3f} at {poss(fit.label)} solution, "
                      f"{b.engine_value:.3f} at {poss(ref.label)}")
            gap = a.engine_value - b.engine_value
            if abs(gap) < SAME_OPTIMUM:
                return (f"both reach the same {a.criterion} optimum ({values}): the "
                        "likelihood is flat here")
            worse = ref.label if gap > 0 else fit.label
            return (f"{worse} stopped at a lower {a.criterion} optimum ({values}; "
                    f"difference {abs(gap):.3g})")
    return None


def inconsistency(checks: Sequence[OptimumCheck], fit: Fit, policy: Policy) -> str | None:
    """Why `fit`'s fixed effects contradict its own variance components, or None.

    Given variance components, REML's fixed effects are the GLS estimates; the optimum
    check has lme4 profile them out at `fit`'s components. A gap beyond the
    self-consistency tolerance means the engine fitted its fixed effects and its
    components to different models or rows, so no comparison of optima may blame its
    optimiser."""
    rule = policy.check("self-consistency", "estimate")
    for c in checks:
        if c.model != fit.model or c.engine != fit.label:
            continue
        worst: tuple[float, str, float, float] | None = None
        for term, gls in c.fixed_at_solution.items():
            fe = fit.fixed(term)
            if fe is None:
                continue
            gap = abs(fe.estimate - gls)
            if gap > rule.tolerance(gls, fe.std_error):
                z = gap / fe.std_error if fe.std_error > 0 else math.inf
                if worst is None or z > worst[0]:
                    worst = (z, term, gls, fe.estimate)
        if worst is not None:
            z, term, gls, est = worst
            return (f"{poss(fit.label)} estimates are inconsistent with its own variance "
                    f"components: at them, the GLS (lme4-profiled) {term} is {gls:.6g}, "
                    f"{fit.label} reports {est:.6g} ({z:.3g} SE apart); a fitting or "
                    "data-handling error, not a worse optimum")
    return None


def fit_kind(fit: Fit, kind_of: KindOf) -> str:
    """The fit's own kind where it has one, else its engine's."""
    return fit.kind or kind_of(fit.engine)


def compare_pair(fit: Fit, ref: Fit, policy: Policy, kind_of: KindOf,
                 checks: Sequence[OptimumCheck] = (),
                 compare_unconverged: bool = False) -> list[Comparison]:
    """Every value of `fit` against `ref`'s: fixed effects, variance components, group
    effects and the log-likelihood, a row each.

    Where either fit did not converge, its rows say so first and nothing else: no
    prior, boundary, approximation or optimum explains the numbers of a fit that never
    settled. They are `not_comparable`, or compared but marked when
    `compare_unconverged`."""
    rows = _pair_rows(fit, ref, policy, kind_of, checks)
    stuck = [f for f in (ref, fit) if f.status == "unconverged"]
    if not stuck:
        return rows
    return [_unconverged_row(r, stuck, compare_unconverged) for r in rows]


def _unconverged_row(row: Comparison, stuck: Sequence[Fit], compare: bool) -> Comparison:
    """A row with an unconverged side: the convergence failure is its reason."""
    why = "; ".join(f.reason or f"{f.label} did not converge" for f in stuck)
    labels = tuple(f.label for f in stuck)
    if not compare or row.verdict == "not_comparable":
        return replace(row, verdict="not_comparable", reason=why, unconverged=labels)
    gap = abs((row.value or 0.0) - (row.reference_value or 0.0))
    return replace(row, unconverged=labels,
                   reason=f"{why}; compared as asked: gap {gap:.3g}, tolerance "
                          f"{row.tolerance:.3g}")


def _pair_rows(fit: Fit, ref: Fit, policy: Policy, kind_of: KindOf,
               checks: Sequence[OptimumCheck]) -> list[Comparison]:
    """The rows of two fits that both carry numbers: one per value either fit has, part
    by part (fixed effects, components, group effects, the log-likelihood)."""
    kf, kr = fit_kind(fit, kind_of), fit_kind(ref, kind_of)
    bayes = kf in POSTERIOR_KINDS or kr in POSTERIOR_KINDS
    both = kf in POSTERIOR_KINDS and kr in POSTERIOR_KINDS
    matched = both and same_model(fit, ref)
    pair = Pair(fit, ref, policy, kf, kr, _structure_note(fit, ref),
                None if bayes else _optimum_note(checks, fit, ref),
                [f.label for f in (ref, fit) if f.diagnostics.singular],
                None if bayes else criteria_note(fit, ref), matched=matched,
                priors=prior_difference(fit, ref) if both and not matched else None)
    mine, theirs = _by_key(fit), _by_key(ref)
    rank = {part: i for i, part in enumerate(PARTS)}
    keys = sorted(dict.fromkeys([*theirs, *mine]),
                  key=lambda k: rank[spec_of(k[0]).part])
    rows = [row for k in keys
            if (row := _compare(pair, spec_of(k[0]), mine.get(k), theirs.get(k))) is not None]
    broken = "; ".join(n for f in (fit, ref) if (n := inconsistency(checks, f, policy)))
    if broken:
        # Numbers that contradict themselves explain a gap before any method does.
        rows = [replace(r, reason=broken if r.quantity != "conclusion" else r.reason)
                if r.verdict == "disagree" else r for r in rows]
    return _conclusions_shown(rows)


def _conclusions_shown(rows: list[Comparison]) -> list[Comparison]:
    """An estimate that agrees within its tolerance while the two engines reach different
    conclusions about it says so: a conclusion that differs is never hidden behind an
    `agree` on the estimate."""
    differ = {(r.model, r.term) for r in rows
              if r.quantity == "conclusion" and r.verdict == "disagree"}
    if not differ:
        return rows
    return [replace(r, reason=(f"{r.reason}; " if r.reason else "")
                    + "the estimates agree, but the conclusions differ (see its "
                    "conclusion row)")
            if r.quantity == "estimate" and r.verdict == "agree"
            and (r.model, r.term) in differ else r for r in rows]


def _by_key(fit: Fit) -> dict[tuple[str, str | None, str | None, tuple[str, ...]], Value]:
    """A fit's values by what makes them the same number in another fit (the first of
    any repeated one)."""
    out: dict[tuple[str, str | None, str | None, tuple[str, ...]], Value] = {}
    for v in values(fit):
        out.setdefault(v.key, v)
    return out


def _guard(p: Pair, spec: QuantitySpec, guard: Guard, a: Value | None,
           b: Value | None) -> str | None:
    """Why the two values are not comparable by this check, or None. (The `missing`
    check, which may also drop the row, is :func:`_compare`'s.)"""
    proto = a or b
    assert proto is not None
    if callable(guard):
        return guard(p, a, b)
    group = proto.group
    if guard == "missing" or group is None or group == "Residual":
        return None
    if guard == "structure":
        same = p.fit.structure.get(group) == p.ref.structure.get(group)
        return None if same or spec.structure is None else spec.structure(p, proto)
    if p.matched:
        # Two posteriors of one model under one prior: a boundary explains nothing
        # between them; one near it and the other not is what the check is for.
        return None
    t1, t2 = (*proto.terms, None, None)[:2]
    edge = [(f.label, d) for f in (p.ref, p.fit) if (d := boundary(f, group, t1, t2))]
    return spec.boundary(p, a, b, edge) if edge and spec.boundary is not None else None


def _compare(p: Pair, spec: QuantitySpec, a: Value | None, b: Value | None
             ) -> Comparison | None:
    """One value of the fit against the reference's: the quantity's not-comparable
    checks in its order, then the tolerance and its reason. None where one fit lacks
    the value and the quantity gives no row for that (an SE, whose coefficient's row
    says it)."""
    proto = a or b
    assert proto is not None
    term = spec.term(p, proto) if spec.term is not None else proto.term
    for guard in spec.guards:
        if guard == "missing" and (a is None or b is None):
            why = spec.missing(p, a, b)
            if why is None:
                return None
        else:
            why = _guard(p, spec, guard, a, b)
        if why is not None:
            return _row(p.fit, p.ref, spec.name, term, proto.group,
                        a.estimate if a else None, b.estimate if b else None, None, why,
                        comparable=False, level=proto.level, terms=proto.terms)
    assert a is not None and b is not None, f"{spec.name} has no missing-value check"
    if p.matched and spec.name in MATCHED_QUANTITIES and _finite(a.mcse) and _finite(b.mcse):
        return _matched_row(p, spec, term, a, b)
    unc = spec.uncertainty(p, a, b)
    tol = spec.tolerance(p, a, b, unc) if spec.tolerance is not None else \
        p.policy.rule(p.kf, p.kr, spec.name, p.fit.family).tolerance(b.estimate, unc)
    why = spec.why[p.pair_class](p, a, b, unc)
    row = _row(p.fit, p.ref, spec.name, term, proto.group, a.estimate, b.estimate, tol,
               why, mc=None if spec.exact else _mc(p, a.mcse, b.mcse), level=proto.level,
               terms=proto.terms)
    if spec.exact:  # its reason is the row's content: both sides, agreeing or not
        return replace(row, reason=why + (f"; {p.criteria}" if p.criteria else ""))
    return row if p.criteria is None else _of_criteria(row, p.criteria)


# What two posteriors of the same model hold to Monte-Carlo error alone: every value with
# an MCSE (an interval's ends have none, and keep the Bayesian pair's rule).
MATCHED_QUANTITIES = frozenset({"estimate", "std_error", "sd", "corr", "group_effect"})


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _matched_row(p: Pair, spec: QuantitySpec, term: str, a: Value, b: Value) -> Comparison:
    """A cross-implementation row: two samplers of the same model under the same priors
    agree within `matched_mcse_mult` MCSE of their gap, or one of them (or parity's
    translation of the model or its priors for it) is wrong."""
    assert a.mcse is not None and b.mcse is not None
    mc = (p.policy.matched_mcse_mult, math.hypot(a.mcse, b.mcse))
    why = (f"{p.fit.label} and {p.ref.label} sample the same model under the same priors, "
           "so only Monte-Carlo error may part them: an engine, or parity's translation of "
           "the model or its priors for one of them, is wrong")
    row = _row(p.fit, p.ref, spec.name, term, a.group, a.estimate, b.estimate, 0.0, why,
               mc=mc, level=a.level, terms=a.terms)
    return row if row.verdict != "agree" else replace(row, reason=None)


def _of_criteria(row: Comparison, note: str) -> Comparison:
    """A row of two fits of different criteria names them: within the tolerance it
    agrees all the same; beyond it, the gap is what the criteria differ by, not an
    engine's error, so the row is not comparable rather than a disagreement."""
    if row.verdict == "agree":
        return replace(row, reason=f"{note}; within the tolerance all the same"
                       + (f" ({row.reason})" if row.reason else ""))
    if row.verdict == "not_comparable":
        return row
    return replace(row, verdict="not_comparable",
                   reason=f"{note}; {row.reason}, beyond the tolerance {row.tolerance:.3g}")


def compare_all(fits: Sequence[Fit], reference_fits: Sequence[Fit], policy: Policy,
                kind_of: KindOf, checks: Sequence[OptimumCheck] = (),
                compare_unconverged: bool = False) -> list[Comparison]:
    """Each engine against each frequentist engine listed before it, a Bayesian engine
    also against each Bayesian engine before it (bambi against pymc isolates what the
    correlations change), and every engine against the matched-structure lme4 refit
    where it fitted independent components. A failed fit has no rows; an unconverged
    one has rows that say so (:func:`compare_pair`)."""
    rows: list[Comparison] = []
    models = list(dict.fromkeys(f.model for f in fits))
    for model in models:
        ok = [f for f in fits if f.model == model and f.has_numbers]
        variants = [f for f in reference_fits if f.model == model and f.has_numbers]
        for i, fit in enumerate(ok):
            for ref in ok[:i]:
                if fit_kind(ref, kind_of) == "frequentist" \
                        or fit_kind(fit, kind_of) in POSTERIOR_KINDS:
                    rows += compare_pair(fit, ref, policy, kind_of, checks,
                                         compare_unconverged)
            if "independent" in fit.structure.values():
                for ref in variants:
                    rows += compare_pair(fit, ref, policy, kind_of, checks,
                                         compare_unconverged)
    return rows
