"""The comparison rules: one verdict per (model, engine, reference, quantity, term).

The verdict follows from the row's own numbers (`agree` exactly when
|value - reference_value| <= tolerance), except where the two fits do not estimate the
same quantity: a correlation one engine does not model, an SD of a differently
structured covariance, a component sitting on the boundary of a singular fit. Those are
`not_comparable`, never a silent agree or disagree, and every row that is not `agree`
says why in words a reader can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from parity.boundary import near_zero_sds, unit_corrs
from parity.compare.tolerances import Policy
from parity.schema import (
    Comparison,
    Fit,
    GroupEffect,
    OptimumCheck,
    Quantity,
    VarianceComponent,
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


def _poss(label: str) -> str:
    return f"{label}'" if label.endswith("s") else f"{label}'s"


def _row(fit: Fit, ref: Fit, quantity: Quantity, term: str, group: str | None,
         value: float | None, ref_value: float | None, tolerance: float | None,
         reason: str | None, comparable: bool = True,
         mc: tuple[float, float] | None = None) -> Comparison:
    """One row. `mc` is (k, MCSE of the gap) where a side has draws: the tolerance
    widens by k × MCSE, and the reason says where Monte-Carlo error decides the row."""
    if not comparable or value is None or ref_value is None or tolerance is None \
            or not (math.isfinite(value) and math.isfinite(ref_value)):
        return Comparison(fit.model, fit.label, ref.label, quantity, term,
                          value, ref_value, tolerance, "not_comparable",
                          reason or "a value is missing or not finite", group)
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
                      "agree" if agree else "disagree", why, group)


def _mc(p: _Pair, a: float | None, b: float | None) -> tuple[float, float] | None:
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
        values = (f"{c.objective} {c.engine_value:.3f} at {_poss(c.engine)} solution, "
                  f"{c.reference_value:.3f} at {_poss(c.reference)}")
        if c.better == "tie":
            return (f"both reach the same {c.criterion} optimum ({values}; difference "
                    f"{abs(c.difference):.1g}): the likelihood is flat here, and "
                    f"{_poss(c.engine)} SEs come from the Hessian of the full likelihood, "
                    f"{_poss(c.reference)} are conditional on the variance estimates")
        worse = c.reference if c.better == c.engine else c.engine
        return (f"{worse} stopped at a lower {c.criterion} optimum ({values}; difference "
                f"{abs(c.difference):.3g})")
    mine = {c.engine: c for c in checks if c.model == fit.model
            and c.engine in (fit.label, ref.label)}
    if len(mine) == 2:
        a, b = mine[fit.label], mine[ref.label]
        if a.reference == b.reference and a.objective == b.objective:
            values = (f"{a.objective} {a.engine_value:.3f} at {_poss(fit.label)} solution, "
                      f"{b.engine_value:.3f} at {_poss(ref.label)}")
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
            return (f"{_poss(fit.label)} estimates are inconsistent with its own variance "
                    f"components: at them, the GLS (lme4-profiled) {term} is {gls:.6g}, "
                    f"{fit.label} reports {est:.6g} ({z:.3g} SE apart); a fitting or "
                    "data-handling error, not a worse optimum")
    return None


def _few_groups(fit: Fit) -> str:
    if not fit.n_groups:
        return ""
    parts = [f"{n} {g} levels" for g, n in fit.n_groups.items()]
    return f"; with {', '.join(parts)} the posterior integrates over uncertain variances"


@dataclass(frozen=True)
class _Pair:
    """One engine against one reference, and what explains their differences."""

    fit: Fit
    ref: Fit
    policy: Policy
    kf: str
    kr: str
    structure: str | None
    optimum: str | None
    singular: list[str]

    @property
    def bayes(self) -> bool:
        return self.kf in POSTERIOR_KINDS or self.kr in POSTERIOR_KINDS

    @property
    def both_bayes(self) -> bool:
        """Two posteriors (bambi against pymc): where their structures differ, their
        differences are what modelling the correlations changes, so SDs and group effects
        are compared rather than set apart."""
        return self.kf in POSTERIOR_KINDS and self.kr in POSTERIOR_KINDS

    def correlation_effect(self) -> str:
        return (f"{self.structure}: the difference is what modelling the correlations "
                "changes" if self.structure else "")


POSTERIOR_KINDS = ("bayesian", "approximate")


def fit_kind(fit: Fit, kind_of: KindOf) -> str:
    """The fit's own kind where it has one, else its engine's."""
    return fit.kind or kind_of(fit.engine)


def compare_pair(fit: Fit, ref: Fit, policy: Policy, kind_of: KindOf,
                 checks: Sequence[OptimumCheck] = (),
                 compare_unconverged: bool = False) -> list[Comparison]:
    """Every fixed effect and variance component of `fit` against `ref`.

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
    """The rows of two fits that both carry numbers."""
    kf, kr = fit_kind(fit, kind_of), fit_kind(ref, kind_of)
    bayes = kf in POSTERIOR_KINDS or kr in POSTERIOR_KINDS
    pair = _Pair(fit, ref, policy, kf, kr, _structure_note(fit, ref),
                 None if bayes else _optimum_note(checks, fit, ref),
                 [f.label for f in (ref, fit) if f.diagnostics.singular])
    rows = (_fixed_rows(pair) + _component_rows(pair) + _group_effect_rows(pair)
            + _loglik_rows(pair))
    broken = "; ".join(n for f in (fit, ref) if (n := inconsistency(checks, f, policy)))
    if broken:
        # Numbers that contradict themselves explain a gap before any method does.
        rows = [replace(r, reason=broken) if r.verdict == "disagree" else r for r in rows]
    return rows


def _posterior_sd(p: _Pair, a: float, b: float) -> float | None:
    """The uncertainty a Bayesian pair's tolerance scales with: the larger posterior SD
    of two posteriors, the posterior side's against a frequentist fit, None for two
    frequentist fits (whose rules take the reference's own SE)."""
    if p.kf in POSTERIOR_KINDS and p.kr in POSTERIOR_KINDS:
        return max(a, b)
    if p.kf in POSTERIOR_KINDS:
        return a
    return b if p.kr in POSTERIOR_KINDS else None


def _fixed_rows(p: _Pair) -> list[Comparison]:
    """An estimate row and an SE row per coefficient."""
    fit, ref, policy, kf, kr = p.fit, p.ref, p.policy, p.kf, p.kr
    bayes, structure, optimum, singular = p.bayes, p.structure, p.optimum, p.singular
    rows: list[Comparison] = []
    terms = list(dict.fromkeys([f.term for f in ref.fixed_effects] +
                               [f.term for f in fit.fixed_effects]))
    for term in terms:
        a, b = fit.fixed(term), ref.fixed(term)
        if a is None or b is None:
            owner = ref.label if a is None else fit.label
            rows.append(_row(fit, ref, "estimate", term, None,
                             a.estimate if a else None, b.estimate if b else None, None,
                             f"{term} is a coefficient of {_poss(owner)} model only",
                             comparable=False))
            continue
        unc = _posterior_sd(p, a.std_error, b.std_error)
        if unc is None:
            unc = b.std_error
        tol = policy.rule(kf, kr, "estimate", fit.family).tolerance(b.estimate, unc)
        if bayes:
            z = abs(a.estimate - b.estimate) / unc if unc > 0 else math.inf
            why = f"posterior mean is {z:.2f} posterior SD from {_poss(ref.label)} estimate"
            why += "".join(f"; {n}" for n in (structure,) if n)
            if singular:
                why += f"; {' and '.join(singular)} fit is singular"
        else:
            rel = abs(a.estimate - b.estimate) / max(abs(b.estimate), 1e-300)
            why = structure or optimum or f"differs by {rel:.1e} relative"
        rows.append(_row(fit, ref, "estimate", term, None, a.estimate, b.estimate, tol, why,
                         mc=_mc(p, a.mcse, b.mcse)))
        tol = policy.rule(kf, kr, "std_error", fit.family).tolerance(b.std_error, None)
        ratio = a.std_error / b.std_error if b.std_error > 0 else math.inf
        if p.both_bayes:
            why = f"posterior SDs differ by a factor {ratio:.2f}" + "".join(
                f"; {n}" for n in (p.correlation_effect(),) if n)
        elif bayes:
            post = fit if kf in POSTERIOR_KINDS else ref
            base = ref if post is fit else fit
            ratio = (a.std_error / b.std_error if post is fit else b.std_error / a.std_error) \
                if min(a.std_error, b.std_error) > 0 else math.inf
            if post.kind == "approximate":
                why = (f"{_poss(post.label)} variational SD is {ratio:.2f}x {_poss(base.label)}"
                       " SE; a mean-field approximation ignores how the coefficients and "
                       "the group effects covary, and its SDs run small")
            elif ratio < 1:
                why = (f"posterior SD is {ratio:.2f}x {_poss(base.label)} SE: narrower than "
                       "the likelihood alone, so the prior carries information here")
            else:
                why = f"posterior SD is {ratio:.2f}x {_poss(base.label)} SE" + (
                    _few_groups(post) + f", which {_poss(base.label)} SE treats as known"
                    if post.n_groups else "")
        else:
            why = structure or optimum or f"SEs differ by a factor {ratio:.4f}"
        rows.append(_row(fit, ref, "std_error", term, None, a.std_error, b.std_error, tol, why,
                         mc=_mc(p, a.se_mcse, b.se_mcse)))
    return rows


def _component_rows(p: _Pair) -> list[Comparison]:
    """A row per SD and correlation that either fit has."""
    fit, ref, policy, kf, kr = p.fit, p.ref, p.policy, p.kf, p.kr
    bayes, optimum = p.bayes, p.optimum
    rows: list[Comparison] = []
    keys = list(dict.fromkeys((v.group, v.term, v.term2, v.kind)
                              for f in (ref, fit) for v in f.variance_components))
    for group, t1, t2, kind in keys:
        a_vc, b_vc = fit.component(group, t1, t2), ref.component(group, t1, t2)
        proto = a_vc or b_vc
        assert proto is not None
        label = proto.label
        value = a_vc.estimate if a_vc else None
        ref_value = b_vc.estimate if b_vc else None
        quantity: Quantity = "corr" if kind == "corr" else "sd"
        sf, sr = fit.structure.get(group), ref.structure.get(group)
        if group != "Residual" and sf != sr and not (p.both_bayes and kind == "sd"):
            indep = fit.label if sf == "independent" else ref.label
            why = (f"{indep} models no correlation between {t1} and {t2}" if kind == "corr"
                   else f"{group} covariance differs: {fit.label} {sf}, {ref.label} {sr}; "
                        "the SDs belong to different models (see the matched-structure rows)")
            rows.append(_row(fit, ref, quantity, label, group, value, ref_value, None, why,
                             comparable=False))
            continue
        if a_vc is None or b_vc is None:
            owner = ref.label if a_vc is None else fit.label
            rows.append(_row(fit, ref, quantity, label, group, value, ref_value, None,
                             f"only {owner} estimates {label}", comparable=False))
            continue
        edge = [(f.label, d) for f in (ref, fit) if (d := boundary(f, group, t1, t2))]
        if edge:
            why = "; ".join(f"{lab} fit is singular: {group} {d} (on the boundary)"
                            for lab, d in edge)
            post = (a_vc if kf in POSTERIOR_KINDS
                    else (b_vc if kr in POSTERIOR_KINDS else None))
            if post is not None and post.lower is not None and post.upper is not None:
                # Where the point estimate sits on the boundary, the posterior shows
                # what the data and prior say instead.
                sampler = fit if kf in POSTERIOR_KINDS else ref
                why += (f"; {_poss(sampler.label)} posterior: mean {post.estimate:.3g}, "
                        f"interval [{post.lower:.3g}, {post.upper:.3g}]")
            rows.append(_row(fit, ref, quantity, label, group, value, ref_value, None, why,
                             comparable=False))
            continue
        vc_unc = a_vc.std_error if kf in POSTERIOR_KINDS else (
            b_vc.std_error if kr in POSTERIOR_KINDS else None)
        assert value is not None and ref_value is not None
        tol = policy.rule(kf, kr, quantity, fit.family).tolerance(ref_value, vc_unc)
        if p.both_bayes:
            why = f"posterior means {value:.3g} and {ref_value:.3g}" + "".join(
                f"; {n}" for n in (p.correlation_effect(),) if n)
        elif bayes:
            why = f"posterior mean {value:.3g} against {_poss(ref.label)} {ref_value:.3g}"
            if group != "Residual":
                why += (f"; the posterior of a {group} SD from {fit.n_groups.get(group, '?')} "
                        "levels is wide and right-skewed, so its mean exceeds the REML estimate")
        else:
            why = optimum or f"differs by {abs(value - ref_value):.3g}"
        rows.append(_row(fit, ref, quantity, label, group, value, ref_value, tol, why,
                         mc=_mc(p, a_vc.mcse, b_vc.mcse)))
    return rows


def _no_effects(fit: Fit) -> str:
    """Why `fit` has no group effects, in its own words where it gave them."""
    note = next((w for w in fit.diagnostics.warnings if w.startswith("no group effects")),
                None)
    if note:
        return f"{fit.label} gives {note}"
    if fit.is_recorded:
        return f"{_poss(fit.label)} recorded reference holds no group effects"
    return f"{fit.label} reports no group effects"


def _effect_row(p: _Pair, effect: GroupEffect, value: float | None,
                ref_value: float | None, tol: float | None, why: str,
                comparable: bool, mc: tuple[float, float] | None = None) -> Comparison:
    """One group effect's row: `_row` with the effect's label, factor and level."""
    return replace(_row(p.fit, p.ref, "group_effect", effect.label, effect.group, value,
                        ref_value, tol, why, comparable, mc), level=effect.level)


def _group_effect_rows(p: _Pair) -> list[Comparison]:
    """A row per level and term of each grouping factor: one engine's conditional mode
    (or posterior mean of the deviation) against the other's, as `ranef()` reports them.

    The uncertainty in the tolerance is the reference's conditional SD for a frequentist
    pair, the posterior SD for a Bayesian one: a conditional mode is an estimate only to
    within that, and its two engines' plug-in or integrated variance components shrink
    it differently."""
    fit, ref, kf, kr = p.fit, p.ref, p.kf, p.kr
    if not fit.group_effects and not ref.group_effects:
        return []
    rows: list[Comparison] = []
    keys = list(dict.fromkeys((g.group, g.level, g.term)
                              for f in (ref, fit) for g in f.group_effects))
    for group, level, term in keys:
        a, b = fit.group_effect(group, level, term), ref.group_effect(group, level, term)
        proto = a or b
        assert proto is not None
        label = proto.label
        value = a.estimate if a else None
        ref_value = b.estimate if b else None
        if a is None or b is None:
            missing = fit if a is None else ref
            why = (_no_effects(missing) if not missing.group_effects
                   else f"only {(ref if a is None else fit).label} has {label}")
            rows.append(_effect_row(p, proto, value, ref_value, None, why, False))
            continue
        sf, sr = fit.structure.get(group), ref.structure.get(group)
        if sf != sr and not p.both_bayes:
            why = (f"{group} covariance differs: {fit.label} {sf}, {ref.label} {sr}; the "
                   "conditional modes belong to different models (see the "
                   "matched-structure rows)")
            rows.append(_effect_row(p, proto, value, ref_value, None, why, False))
            continue
        edge = [(f.label, d) for f in (ref, fit) if (d := boundary(f, group, term, None))]
        if edge:
            why = "; ".join(f"{lab} fit is singular: {group} {d} (on the boundary, where the "
                            "modes shrink to it)" for lab, d in edge)
            rows.append(_effect_row(p, proto, value, ref_value, None, why, False))
            continue
        unc = _posterior_sd(p, a.std_error or 0.0, b.std_error or 0.0)
        if unc is None:
            unc = b.std_error or 0.0
        tol = p.policy.rule(kf, kr, "group_effect", fit.family).tolerance(b.estimate, unc)
        gap = abs(a.estimate - b.estimate)
        z = gap / unc if unc > 0 else math.inf
        if p.both_bayes:
            why = f"posterior means {z:.2f} posterior SD apart" + "".join(
                f"; {n}" for n in (p.correlation_effect(),) if n)
        elif p.bayes:
            why = (f"posterior mean is {z:.2f} posterior SD from {_poss(ref.label)} "
                   f"conditional mode; the posterior integrates over the {group} variance, "
                   "the mode plugs in its estimate")
        else:
            why = p.optimum or f"differs by {gap:.3g} ({z:.2g} conditional SD)"
        rows.append(_effect_row(p, proto, value, ref_value, tol, why, True,
                                _mc(p, a.mcse, b.mcse)))
    return rows


def _loglik_rows(p: _Pair) -> list[Comparison]:
    """The maximised log-likelihoods of two frequentist fits of one model under one
    criterion; a Bayesian fit has none, which its row says where the other fit has one."""
    fit, ref = p.fit, p.ref
    term = f"logLik ({ref.criterion or fit.criterion or 'criterion unknown'})"
    a, b = fit.fit_statistics.get("loglik"), ref.fit_statistics.get("loglik")

    def row(tol: float | None, why: str, comparable: bool = True) -> Comparison:
        return _row(fit, ref, "loglik", term, None, a, b, tol, why, comparable)

    if a is None and b is None:
        return []  # neither fit has one (results recorded before fits reported it)
    if p.bayes:
        bayes = fit if p.kf in POSTERIOR_KINDS else ref
        what = ("approximates a posterior" if bayes.kind == "approximate"
                else "samples a posterior")
        return [row(None, f"{bayes.label} {what}: it has no maximised log-likelihood",
                    comparable=False)]
    if a is None or b is None:
        owner = fit if a is None else ref
        return [row(None, f"{owner.label} recorded no log-likelihood", comparable=False)]
    if fit.criterion != ref.criterion:
        return [row(None, f"{fit.label} maximised {fit.criterion}, {ref.label} "
                          f"{ref.criterion}: likelihoods of different criteria",
                    comparable=False)]
    if p.structure:
        return [row(None, f"{p.structure}: likelihoods of different models (see the "
                          "matched-structure rows)", comparable=False)]
    if fit.n_obs != ref.n_obs:
        return [row(None, f"{fit.label} used {fit.n_obs} rows, {ref.label} {ref.n_obs}",
                    comparable=False)]
    tol = p.policy.rule(p.kf, p.kr, "loglik", fit.family).tolerance(b, None)
    why = p.optimum or f"log-likelihoods differ by {abs(a - b):.3g}"
    return [row(tol, why)]


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
