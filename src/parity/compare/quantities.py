"""What each quantity is, said once: one entry per quantity a comparison row can hold.

An entry says which part of a fit the quantity comes from, which pairs of engine kinds
the tolerance file must give it a rule for, how reports name and mark its rows, what
uncertainty its tolerance scales with, and why two values of it differ, worded for each
class of pair: two frequentist fits, a posterior against a frequentist fit, and two
posteriors. It also orders the not-comparable checks the rows go through
(:mod:`parity.compare.rules` holds the checks themselves: a covariance structure that
differs, a value one fit lacks, a component on the boundary) and words their reasons.

A new quantity (say Satterthwaite degrees of freedom) is one entry here, its values in
:func:`parity.schema.values`, and its rules in the tolerance file; the comparison, `parity
diff`, the reports and the tolerance checks read it from this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from parity.schema import (
    SENSITIVITY_THRESHOLD,
    Fit,
    FixedEffect,
    ParsedCriterion,
    Quantity,
    Value,
    parse_criterion,
    sensitivity_diagnosis,
)

if TYPE_CHECKING:
    from parity.compare.tolerances import Policy

POSTERIOR_KINDS = ("bayesian", "approximate")

# The three ways two fits can differ, each with its own explanation of a gap.
PairClass = Literal["frequentist", "bayes", "both_bayes"]
PAIR_CLASSES: tuple[PairClass, ...] = ("frequentist", "bayes", "both_bayes")


@dataclass(frozen=True)
class Pair:
    """One engine against one reference, and what explains their differences: the
    structure note (a covariance one fits as independent), the optimum note (what the
    optimum checks say of two frequentist fits), the labels of singular fits, and the
    criteria note (two frequentist fits of different criteria, :func:`criteria_note`)."""

    fit: Fit
    ref: Fit
    policy: Policy
    kf: str
    kr: str
    structure: str | None
    optimum: str | None
    singular: list[str]
    criteria: str | None = None
    # Two posteriors of the same model under the same priors (compare.matched): their
    # rows are a cross-implementation check, Monte-Carlo error their only tolerance.
    matched: bool = False
    # Two posteriors under different priors: the first difference, as a reason.
    priors: str | None = None

    @property
    def bayes(self) -> bool:
        return self.kf in POSTERIOR_KINDS or self.kr in POSTERIOR_KINDS

    @property
    def both_bayes(self) -> bool:
        """Two posteriors (bambi against pymc): where their structures differ, their
        differences are what modelling the correlations changes, so SDs and group effects
        are compared rather than set apart."""
        return self.kf in POSTERIOR_KINDS and self.kr in POSTERIOR_KINDS

    @property
    def pair_class(self) -> PairClass:
        return "both_bayes" if self.both_bayes else "bayes" if self.bayes else "frequentist"

    def correlation_effect(self) -> str:
        """What parts two posteriors' models: the structure, and the priors."""
        parts = [f"{self.structure}: the difference is what modelling the correlations "
                 "changes"] if self.structure else []
        if self.priors:
            parts.append(self.priors)
        return "; ".join(parts)


# A value of the fit and of the reference (None where that fit lacks it).
Wording = Callable[[Pair, Value | None, Value | None], str | None]
# Why two values differ, given the uncertainty their tolerance scaled with.
Why = Callable[[Pair, Value, Value, float | None], str]
# A check every quantity can run, in the order its entry lists them.
SharedGuard = Literal["structure", "missing", "boundary"]
Guard = SharedGuard | Wording


@dataclass(frozen=True)
class QuantitySpec:
    """One quantity: where it comes from, its rules, its names and its reasons.

    `part` is the part of a fit it is read from (rows come out part by part, in table
    order); `pairs` the pairs of kinds whose tolerance rules must have it (None: every
    pair); `parameter` whether it is a parameter of the model (what a study has a truth
    for, and `Run.estimates` tabulates); `row_name` how a reader names its row (a
    format of the row's `term`); `marker` its marker in the agreement figure (None:
    the default dot, not in the legend); `se_scaled` whether a frequentist rule scales
    with the reference's own SE of the value (`parity diff`). `guards` are the
    not-comparable checks in order, a shared one by name (worded by `missing`,
    `structure` and `boundary`) or one of its own; `missing` returning None means no row
    at all. `term` names a row from both fits where the value's own label will not do;
    `uncertainty` is what the tolerance's `sd_mult` multiplies; `why` the reason a gap
    gets, per class of pair."""

    name: Quantity
    part: str
    guards: tuple[Guard, ...]
    missing: Wording
    uncertainty: Callable[[Pair, Value, Value], float | None]
    why: Mapping[PairClass, Why]
    row_name: str = "{term}"
    marker: str | None = None
    pairs: tuple[str, ...] | None = None
    parameter: bool = False
    se_scaled: bool = False
    structure: Callable[[Pair, Value], str | None] | None = None
    boundary: Callable[[Pair, Value | None, Value | None, list[tuple[str, str]]], str] | None \
        = None
    term: Callable[[Pair, Value], str] | None = None
    # The quantity whose tolerance rule this one follows (an interval's endpoints follow
    # the estimate's), or None for a rule of its own in the tolerance file.
    rule_of: str | None = None
    # Compared exactly (a conclusion: the same or not), with its reason kept on every
    # row, agreeing or not, since the reason is what a reader wants from it.
    exact: bool = False
    # The tolerance where it is not the rule's of the reference value and `uncertainty`
    # (an interval's end, which carries the errors of its estimate and of its SE).
    tolerance: Callable[[Pair, Value, Value, float | None], float] | None = None


# ---- shared wording helpers ---------------------------------------------------------------


def poss(label: str) -> str:
    """`lme4's`, `statsmodels'`."""
    return f"{label}'" if label.endswith("s") else f"{label}'s"


def _notes(*notes: str | None) -> str:
    return "".join(f"; {n}" for n in notes if n)


def _few_groups(fit: Fit) -> str:
    if not fit.n_groups:
        return ""
    parts = [f"{n} {g} levels" for g, n in fit.n_groups.items()]
    return f"; with {', '.join(parts)} the posterior integrates over uncertain variances"


def _no_effects(fit: Fit) -> str:
    """Why `fit` has no group effects, in its own words where it gave them."""
    note = next((w for w in fit.diagnostics.warnings if w.startswith("no group effects")),
                None)
    if note:
        return f"{fit.label} gives {note}"
    if fit.is_recorded:
        return f"{poss(fit.label)} recorded reference holds no group effects"
    return f"{fit.label} reports no group effects"


def _posterior_sd(p: Pair, a: float, b: float) -> float | None:
    """The uncertainty a Bayesian pair's tolerance scales with: the larger posterior SD
    of two posteriors, the posterior side's against a frequentist fit, None for two
    frequentist fits (whose rules take the reference's own SE)."""
    if p.kf in POSTERIOR_KINDS and p.kr in POSTERIOR_KINDS:
        return max(a, b)
    if p.kf in POSTERIOR_KINDS:
        return a
    return b if p.kr in POSTERIOR_KINDS else None


def _sd_or_reference_se(p: Pair, a: Value, b: Value) -> float | None:
    """A posterior SD where a side has one, else the reference's SE: a coefficient or a
    conditional mode is an estimate only to within it."""
    unc = _posterior_sd(p, a.uncertainty or 0.0, b.uncertainty or 0.0)
    return b.uncertainty or 0.0 if unc is None else unc


def _posterior_side(p: Pair, a: Value, b: Value) -> float | None:
    """The posterior side's SD of a component (None for two frequentist fits)."""
    return a.uncertainty if p.kf in POSTERIOR_KINDS else (
        b.uncertainty if p.kr in POSTERIOR_KINDS else None)


def _z(gap: float, unc: float | None) -> float:
    return gap / unc if unc is not None and unc > 0 else math.inf


def _owner(p: Pair, a: Value | None) -> str:
    """The label of the fit that has the value, where only one does."""
    return p.ref.label if a is None else p.fit.label


def _proto(a: Value | None, b: Value | None) -> Value:
    proto = a or b
    assert proto is not None
    return proto


def _same_for_all(why: Why) -> Mapping[PairClass, Why]:
    return dict.fromkeys(PAIR_CLASSES, why)


# ---- criteria -----------------------------------------------------------------------------

# What a criterion's name does not say by itself.
_CRITERION_GLOSS = {"AGQ": "adaptive quadrature, {n} points",
                    "nAGQ=0": "fixed effects from PIRLS, Laplace for the variances only"}


def _parsed(text: str | None) -> ParsedCriterion | None:
    """A recorded criterion read back; None where none was recorded or the text is one
    this parity does not know (a newer results file)."""
    try:
        return parse_criterion(text)
    except ValueError:
        return None


def _named(text: str) -> str:
    """`AGQ(25) (adaptive quadrature, 25 points)`; `Laplace`, `REML` as they are."""
    parsed = _parsed(text)
    gloss = _CRITERION_GLOSS.get(parsed.kind) if parsed else None
    return f"{text} ({gloss.format(n=parsed.nagq)})" if gloss and parsed else text


def criteria_note(fit: Fit, ref: Fit) -> str | None:
    """Why two frequentist fits estimate different things, or None: they maximised
    different criteria (Laplace against AGQ(n) or nAGQ=0, REML against ML), each with an
    optimum of its own, so a gap between them is the criteria's, not an engine's. Least
    squares (OLS) estimates a fixed-only Gaussian model's coefficients as REML and ML do;
    a fit that records no criterion is not said to differ."""
    a, b = fit.criterion, ref.criterion
    if a is None or b is None or a == b or "OLS" in (a, b):
        return None
    return (f"{fit.label} fitted {_named(a)}, {ref.label} {_named(b)}: different "
            "criteria, each with an optimum of its own")


def loglik_scale(fit: Fit) -> str | None:
    """Why a fit's log-likelihood is not on the scale of another criterion's: glmer's
    AGQ(n) deviance leaves out the saturated model's log-likelihood (measured on cbpp:
    -50.005 at AGQ(25) where the Laplace fit has -92.027, and -41.978 is the saturated
    model's); nAGQ=0's is the Laplace approximation, at fixed effects that do not
    maximise it."""
    parsed = _parsed(fit.criterion)
    if parsed is None:
        return None
    if parsed.kind == "AGQ":
        return (f"{poss(fit.label)} {fit.criterion} log-likelihood is relative to the "
                "saturated model (glmer's adaptive quadrature leaves out its "
                "log-likelihood), another scale, so its logLik, AIC and deviance are not "
                "comparable with another criterion's")
    if parsed.kind == "nAGQ=0":
        return (f"{poss(fit.label)} nAGQ=0 log-likelihood is the Laplace approximation at "
                "fixed effects that do not maximise it")
    return None


# ---- fixed effects ------------------------------------------------------------------------


def _estimate_missing(p: Pair, a: Value | None, b: Value | None) -> str:
    return f"{_proto(a, b).term} is a coefficient of {poss(_owner(p, a))} model only"


def _estimate_freq(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    rel = abs(a.estimate - b.estimate) / max(abs(b.estimate), 1e-300)
    return p.structure or p.optimum or f"differs by {rel:.1e} relative"


def _measured(p: Pair, a: Value, b: Value) -> str | None:
    """The measured cause of a Bayesian–frequentist gap, where the posterior side
    computed its power-scaling sensitivity: the prior (its prior sensitivity above the
    threshold) or not the prior (the likelihood's own shape: a posterior mean is not a
    mode, and a posterior SD is not a curvature); None where it was not computed."""
    if p.both_bayes:  # two posteriors: the prior is not what parts them from each other
        return None
    post, v, other = (p.fit, a, p.ref) if p.kf in POSTERIOR_KINDS else (p.ref, b, p.fit)
    ps, ls = v.prior_sensitivity, v.likelihood_sensitivity
    if ps is None or ls is None:
        return None
    name = f"{poss(post.label)} {v.term}"
    if ps > SENSITIVITY_THRESHOLD:
        return (f"{name} is prior-sensitive ({ps:.2g} > {SENSITIVITY_THRESHOLD:g}; "
                f"{sensitivity_diagnosis(ps, ls)}): the gap to {poss(other.label)} comes "
                "from the prior")
    cause = (f"the posterior integrates the likelihood over its uncertain variances, "
             f"where {poss(other.label)} SE plugs in their estimates"
             if v.quantity in ("std_error", "lower", "upper") else
             "it is the likelihood's shape: a posterior mean is not the likelihood's mode")
    return (f"{name} is not prior-sensitive ({ps:.2g} ≤ {SENSITIVITY_THRESHOLD:g}; "
            f"likelihood sensitivity {ls:.2g}), so the gap to {poss(other.label)} is not "
            f"the prior's: {cause}")


def _estimate_bayes(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    z = _z(abs(a.estimate - b.estimate), unc)
    why = f"posterior mean is {z:.2f} posterior SD from {poss(p.ref.label)} estimate"
    why += _notes(_measured(p, a, b), p.structure, p.priors if p.both_bayes else None)
    if p.singular:
        why += f"; {' and '.join(p.singular)} fit is singular"
    return why


def _se_ratio(a: Value, b: Value) -> float:
    return a.estimate / b.estimate if b.estimate > 0 else math.inf


def _se_freq(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    return p.structure or p.optimum or f"SEs differ by a factor {_se_ratio(a, b):.4f}"


def _se_bayes(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    post = p.fit if p.kf in POSTERIOR_KINDS else p.ref
    base = p.ref if post is p.fit else p.fit
    ratio = (a.estimate / b.estimate if post is p.fit else b.estimate / a.estimate) \
        if min(a.estimate, b.estimate) > 0 else math.inf
    if post.kind == "approximate":
        return (f"{poss(post.label)} variational SD is {ratio:.2f}x {poss(base.label)} SE; "
                "a mean-field approximation ignores how the coefficients and the group "
                "effects covary, and its SDs run small")
    measured = _measured(p, a, b)
    if measured:
        return f"posterior SD is {ratio:.2f}x {poss(base.label)} SE; {measured}"
    if ratio < 1:
        return (f"posterior SD is {ratio:.2f}x {poss(base.label)} SE: narrower than the "
                "likelihood alone, so the prior carries information here")
    return f"posterior SD is {ratio:.2f}x {poss(base.label)} SE" + (
        _few_groups(post) + f", which {poss(base.label)} SE treats as known"
        if post.n_groups else "")


def _se_both(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    return (f"posterior SDs differ by a factor {_se_ratio(a, b):.2f}"
            + _notes(p.correlation_effect()))


# ---- variance components ------------------------------------------------------------------


def _component_missing(p: Pair, a: Value | None, b: Value | None) -> str:
    return f"only {_owner(p, a)} estimates {_proto(a, b).term}"


def _component_structure(p: Pair, v: Value) -> str | None:
    fit, ref = p.fit, p.ref
    sf, sr = fit.structure.get(v.group or ""), ref.structure.get(v.group or "")
    if v.quantity == "corr":
        indep = fit.label if sf == "independent" else ref.label
        return f"{indep} models no correlation between {v.terms[0]} and {v.terms[1]}"
    if p.both_bayes:
        return None  # two posteriors' SDs: compared, the correlations being the difference
    return (f"{v.group} covariance differs: {fit.label} {sf}, {ref.label} {sr}; the SDs "
            "belong to different models (see the matched-structure rows)")


def _component_boundary(p: Pair, a: Value | None, b: Value | None,
                        edge: list[tuple[str, str]]) -> str:
    group = _proto(a, b).group
    why = "; ".join(f"{lab} fit is singular: {group} {d} (on the boundary)" for lab, d in edge)
    post = a if p.kf in POSTERIOR_KINDS else (b if p.kr in POSTERIOR_KINDS else None)
    if post is not None and post.lower is not None and post.upper is not None:
        # Where the point estimate sits on the boundary, the posterior shows what the
        # data and prior say instead.
        sampler = p.fit if p.kf in POSTERIOR_KINDS else p.ref
        why += (f"; {poss(sampler.label)} posterior: mean {post.estimate:.3g}, "
                f"interval [{post.lower:.3g}, {post.upper:.3g}]")
    return why


def _component_freq(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    return p.optimum or f"differs by {abs(a.estimate - b.estimate):.3g}"


def _component_bayes(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    why = f"posterior mean {a.estimate:.3g} against {poss(p.ref.label)} {b.estimate:.3g}"
    measured = _measured(p, a, b)
    if measured:
        return f"{why}; {measured}"
    if a.group != "Residual":
        why += (f"; the posterior of a {a.group} SD from "
                f"{p.fit.n_groups.get(a.group or '', '?')} levels is wide and right-skewed, "
                "so its mean exceeds the REML estimate")
    return why


def _component_both(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    return (f"posterior means {a.estimate:.3g} and {b.estimate:.3g}"
            + _notes(p.correlation_effect()))


# ---- group effects ------------------------------------------------------------------------


def _effect_missing(p: Pair, a: Value | None, b: Value | None) -> str:
    lacking = p.fit if a is None else p.ref
    if not lacking.group_effects:
        return _no_effects(lacking)
    return f"only {_owner(p, a)} has {_proto(a, b).term}"


def _effect_structure(p: Pair, v: Value) -> str | None:
    if p.both_bayes:
        return None
    fit, ref = p.fit, p.ref
    sf, sr = fit.structure.get(v.group or ""), ref.structure.get(v.group or "")
    return (f"{v.group} covariance differs: {fit.label} {sf}, {ref.label} {sr}; the "
            "conditional modes belong to different models (see the matched-structure rows)")


def _effect_boundary(p: Pair, a: Value | None, b: Value | None,
                     edge: list[tuple[str, str]]) -> str:
    group = _proto(a, b).group
    return "; ".join(f"{lab} fit is singular: {group} {d} (on the boundary, where the modes "
                     "shrink to it)" for lab, d in edge)


def _effect_freq(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    gap = abs(a.estimate - b.estimate)
    return p.optimum or f"differs by {gap:.3g} ({_z(gap, unc):.2g} conditional SD)"


def _effect_bayes(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    z = _z(abs(a.estimate - b.estimate), unc)
    return (f"posterior mean is {z:.2f} posterior SD from {poss(p.ref.label)} conditional "
            f"mode; the posterior integrates over the {a.group} variance, the mode plugs in "
            "its estimate")


def _effect_both(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    z = _z(abs(a.estimate - b.estimate), unc)
    return f"posterior means {z:.2f} posterior SD apart" + _notes(p.correlation_effect())


# ---- the log-likelihood -------------------------------------------------------------------


def _loglik_term(p: Pair, v: Value) -> str:
    return f"logLik ({p.ref.criterion or p.fit.criterion or 'criterion unknown'})"


def _loglik_of_posterior(p: Pair, a: Value | None, b: Value | None) -> str | None:
    if not p.bayes:
        return None
    bayes = p.fit if p.kf in POSTERIOR_KINDS else p.ref
    what = "approximates a posterior" if bayes.kind == "approximate" else "samples a posterior"
    return f"{bayes.label} {what}: it has no maximised log-likelihood"


def _loglik_missing(p: Pair, a: Value | None, b: Value | None) -> str:
    return f"{(p.fit if a is None else p.ref).label} recorded no log-likelihood"


def _loglik_criteria(p: Pair, a: Value | None, b: Value | None) -> str | None:
    fit, ref = p.fit, p.ref
    if fit.criterion == ref.criterion:
        return None
    return (f"{fit.label} maximised {fit.criterion}, {ref.label} {ref.criterion}: "
            "likelihoods of different criteria"
            + _notes(*(loglik_scale(f) for f in (fit, ref))))


def _loglik_models(p: Pair, a: Value | None, b: Value | None) -> str | None:
    if not p.structure:
        return None
    return f"{p.structure}: likelihoods of different models (see the matched-structure rows)"


def _loglik_rows(p: Pair, a: Value | None, b: Value | None) -> str | None:
    fit, ref = p.fit, p.ref
    return None if fit.n_obs == ref.n_obs else (
        f"{fit.label} used {fit.n_obs} rows, {ref.label} {ref.n_obs}")


def _loglik_why(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    return p.optimum or f"log-likelihoods differ by {abs(a.estimate - b.estimate):.3g}"


# ---- what analysts publish: intervals, df and conclusions ----------------------------------


def _fixed_of(fit: Fit, v: Value) -> FixedEffect | None:
    return fit.fixed(v.terms[0]) if v.terms else None


def _level(fit: Fit) -> str:
    return f"{fit.interval:.0%}" if fit.interval is not None else "its"


def _interval_name(fit: Fit, fe: FixedEffect | None) -> str:
    """`Wald-t (Satterthwaite df 4.0)`, `Wald-z`, `profile`, `posterior equal-tailed`."""
    if fe is None or fe.interval_method is None:
        return "interval"
    if fe.interval_method == "Wald-t" and fe.df is not None:
        return f"Wald-t ({fe.df_method or 'df'} {fe.df:.3g} df)" if fe.df_method else \
            f"Wald-t ({fe.df:.3g} df)"
    return fe.interval_method


# Why a Wald-z interval and a Wald-t one part.
_Z_AGAINST_T = ("the z interval treats the SE as known, the t interval widens it for the "
                "uncertainty of the variance estimates")


def _levels_differ(p: Pair, a: Value | None, b: Value | None) -> str | None:
    """Intervals at different levels (a recorded reference of another `--interval`)."""
    la, lb = p.fit.interval, p.ref.interval
    if la is None or lb is None or math.isclose(la, lb):
        return None
    return f"{p.fit.label} gives {la:.0%} intervals, {p.ref.label} {lb:.0%}: different levels"


def _method_class(fe: FixedEffect | None) -> str | None:
    """An interval's method, a Wald-t's with its df rule's class (Satterthwaite and
    Kenward-Roger claim the same df; nlme's containment rule does not)."""
    if fe is None or fe.interval_method is None:
        return None
    if fe.interval_method == "Wald-t":
        return f"Wald-t {_DF_CLASSES.get(fe.df_method or '', fe.df_method)}"
    return fe.interval_method


def _methods_differ(p: Pair, a: Value | None, b: Value | None) -> str | None:
    """Two frequentist intervals found by different methods (Wald-z against Wald-t with
    few df, Wald against profile) differ by design, not by an engine's error: their ends
    are set apart, and the conclusion row says whether the difference matters. A
    posterior interval against a frequentist one is compared, as its estimate is."""
    if p.bayes:
        return None
    fa = _fixed_of(p.fit, a) if a else None
    fb = _fixed_of(p.ref, b) if b else None
    ma, mb = _method_class(fa), _method_class(fb)
    if ma is None or mb is None or ma == mb:
        return None
    ma, mb = ma.split(" ")[0], mb.split(" ")[0]
    why = (f"{poss(p.fit.label)} {_interval_name(p.fit, fa)} interval and "
           f"{poss(p.ref.label)} {_interval_name(p.ref, fb)} are different methods")
    if {ma, mb} == {"Wald-z", "Wald-t"}:
        why += f": {_Z_AGAINST_T}"
    return why + "; see the conclusion row"


def _endpoint_tolerance(p: Pair, a: Value, b: Value, unc: float | None) -> float:
    """An interval's end is estimate ± q SE (q = 1.96 for a 95% Wald-z interval), so it
    carries the estimate's error and q times the SE's: the estimate's rule at the
    reference's estimate, plus q times the SE rule's tolerance at the reference's SE (a
    posterior's SD for a posterior)."""
    fe = _fixed_of(p.ref, b)
    rule = p.policy.rule(p.kf, p.kr, "estimate", p.fit.family)
    if fe is None or not (fe.std_error > 0 and math.isfinite(fe.std_error)):
        return rule.tolerance(b.estimate, unc)
    q = abs(b.estimate - fe.estimate) / fe.std_error
    se_rule = p.policy.rule(p.kf, p.kr, "std_error", p.fit.family)
    return (rule.tolerance(fe.estimate, unc)
            + q * se_rule.tolerance(fe.std_error, None))


def _endpoint_why(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    fa, fb = _fixed_of(p.fit, a), _fixed_of(p.ref, b)
    na, nb = _interval_name(p.fit, fa), _interval_name(p.ref, fb)
    gap = abs(a.estimate - b.estimate)
    why = f"{a.quantity} ends differ by {gap:.3g}"
    if na != nb:
        why += f": {poss(p.fit.label)} {na} interval against {poss(p.ref.label)} {nb}"
        if "Wald-z" in (na, nb) and any(n.startswith("Wald-t") for n in (na, nb)):
            why += f"; {_Z_AGAINST_T}"
    if p.bayes:
        why += f" ({_z(gap, unc):.2f} posterior SD)"
        if not p.both_bayes:
            return why + _notes(_measured(p, a, b), p.structure, p.optimum)
    return why + _notes(p.structure, p.optimum)


def _endpoint_missing(p: Pair, a: Value | None, b: Value | None) -> None:
    return None  # an interval one fit lacks: its estimate's row is the row of record


# df: methods that claim the same number (the denominator df of a coefficient's t-test)
# are compared; others are different rules, said so.
_DF_CLASSES = {"Satterthwaite": "approximate", "Kenward-Roger": "approximate",
               "residual": "residual", "containment": "containment"}


def _df_method(fit: Fit, v: Value | None) -> str | None:
    """The df rule of the coefficient a value is of."""
    fe = _fixed_of(fit, v) if v else None
    return fe.df_method if fe else None


def _df_methods(p: Pair, a: Value | None, b: Value | None) -> str | None:
    ma, mb = _df_method(p.fit, a), _df_method(p.ref, b)
    if ma == mb or _DF_CLASSES.get(ma or "", ma) == _DF_CLASSES.get(mb or "", mb):
        return None
    return (f"{poss(p.fit.label)} {ma} df and {poss(p.ref.label)} {mb} df are different "
            "rules for the t-test's degrees of freedom")


def _df_why(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    ma, mb = _df_method(p.fit, a), _df_method(p.ref, b)
    what = f"{ma} against {mb}" if ma != mb else str(ma)
    return f"df {a.estimate:.4g} against {b.estimate:.4g} ({what})"


def evidence(fit: Fit, fe: FixedEffect | None) -> str:
    """One side of a conclusion row: `lme4: p = 0.0067 (t, Satterthwaite df 4.0)`,
    `statsmodels: p = 2.4e-07 (z)`, `bambi: 95% interval [-31.2, -12.1], P(direction) =
    0.999`."""
    if fe is None:
        return f"{fit.label}: no such coefficient"
    if fe.p_value is not None:
        test: str = fe.statistic_kind or "test"
        if fe.df is not None:
            test += f", {fe.df_method + ' ' if fe.df_method else ''}df {fe.df:.3g}"
        return f"{fit.label}: p = {fe.p_value:.2g} ({test})"
    side = f"{fit.label}: {_level(fit)} interval [{fe.lower:.4g}, {fe.upper:.4g}]"
    if fe.p_direction is not None:
        side += f", P(direction) = {fe.p_direction:.3g}"
    return side


def _conclusion_why(p: Pair, a: Value, b: Value, unc: float | None) -> str:
    fa, fb = _fixed_of(p.fit, a), _fixed_of(p.ref, b)
    sides = f"{evidence(p.ref, fb)}; {evidence(p.fit, fa)}"
    if a.estimate == b.estimate:
        verdict = ("same conclusion: the effect is there in both"
                   if abs(a.estimate) == 1 else "same conclusion: no effect shown in either")
        caveat = _conclusion_caveat(p, fa, fb)
        return f"{sides}; {verdict}" + (f", but {caveat}" if caveat else "")
    level = _level(p.ref)
    if abs(a.estimate) == 1 and abs(b.estimate) == 1:
        diff = f"different conclusions: the {level} intervals exclude 0 on opposite sides"
    elif abs(a.estimate) == 1 or abs(b.estimate) == 1:
        shown, not_shown = (p.fit, p.ref) if abs(a.estimate) == 1 else (p.ref, p.fit)
        diff = (f"different conclusions: {poss(shown.label)} {level} interval excludes 0, "
                f"{poss(not_shown.label)} does not")
    else:
        diff = "different conclusions: the estimates have opposite signs, neither interval " \
               "excludes 0"
    caveat = _conclusion_caveat(p, fa, fb)
    return f"{sides}; {diff}" + (f"; {caveat}" if caveat else "")


def _conclusion_caveat(p: Pair, fa: FixedEffect | None, fb: FixedEffect | None) -> str | None:
    """What a reader should know when two tests of one coefficient differ in kind: a
    z-test against a t-test with few df, or a posterior against a test."""
    sides = [(p.fit, fa), (p.ref, fb)]
    z = [f for f, fe in sides if fe is not None and fe.statistic_kind == "z"]
    t = [(f, fe) for f, fe in sides if fe is not None and fe.statistic_kind == "t"
         and fe.df is not None]
    if z and t:
        f, fe = t[0]
        assert fe is not None and fe.df is not None
        if fe.df < 30:
            return (f"{poss(z[0].label)} z-test treats the SE as known, where "
                    f"{poss(f.label)} t-test has only {fe.df:.3g} {fe.df_method or ''} df "
                    "(few groups carry this coefficient)").replace("  ", " ")
    return None


def _none(p: Pair, a: Value, b: Value) -> float | None:
    return None


def _no_row(p: Pair, a: Value | None, b: Value | None) -> None:
    return None


# ---- the table ----------------------------------------------------------------------------

_COMPONENT_WHY: Mapping[PairClass, Why] = {
    "frequentist": _component_freq, "bayes": _component_bayes, "both_bayes": _component_both}

QUANTITY_SPECS: dict[str, QuantitySpec] = {spec.name: spec for spec in (
    QuantitySpec(
        name="estimate", part="fixed", guards=("missing",), missing=_estimate_missing,
        uncertainty=_sd_or_reference_se,
        why={"frequentist": _estimate_freq, "bayes": _estimate_bayes,
             "both_bayes": _estimate_bayes},
        marker="o", parameter=True, se_scaled=True),
    # An SE the other fit lacks is said once, by its coefficient's estimate row.
    QuantitySpec(
        name="std_error", part="fixed", guards=("missing",), missing=_no_row,
        uncertainty=_none,
        why={"frequentist": _se_freq, "bayes": _se_bayes, "both_bayes": _se_both},
        row_name="SE({term})", marker="s"),
    QuantitySpec(
        name="sd", part="component", guards=("structure", "missing", "boundary"),
        missing=_component_missing, uncertainty=_posterior_side, why=_COMPONENT_WHY,
        marker="^", parameter=True, structure=_component_structure,
        boundary=_component_boundary),
    QuantitySpec(
        name="corr", part="component", guards=("structure", "missing", "boundary"),
        missing=_component_missing, uncertainty=_posterior_side, why=_COMPONENT_WHY,
        marker="D", parameter=True, structure=_component_structure,
        boundary=_component_boundary),
    # A missing effect is said before a differing structure: a fit that reports no
    # group effects at all says so, whatever its structure.
    QuantitySpec(
        name="group_effect", part="group_effect",
        guards=("missing", "structure", "boundary"), missing=_effect_missing,
        uncertainty=_sd_or_reference_se,
        why={"frequentist": _effect_freq, "bayes": _effect_bayes,
             "both_bayes": _effect_both},
        se_scaled=True, structure=_effect_structure, boundary=_effect_boundary),
    # A maximised log-likelihood exists for frequentist fits only, of one criterion, one
    # covariance structure and one set of rows.
    QuantitySpec(
        name="loglik", part="fit",
        guards=(_loglik_of_posterior, "missing", _loglik_criteria, _loglik_models,
                _loglik_rows),
        missing=_loglik_missing, uncertainty=_none, why=_same_for_all(_loglik_why),
        pairs=("frequentist-frequentist",), term=_loglik_term),
    # An interval's ends, under the estimate's rule: what an analyst publishes beside it.
    QuantitySpec(
        name="lower", part="fixed", guards=("missing", _levels_differ, _methods_differ),
        missing=_endpoint_missing, uncertainty=_sd_or_reference_se,
        why=_same_for_all(_endpoint_why), row_name="lower({term})", marker="<",
        rule_of="estimate", tolerance=_endpoint_tolerance),
    QuantitySpec(
        name="upper", part="fixed", guards=("missing", _levels_differ, _methods_differ),
        missing=_endpoint_missing, uncertainty=_sd_or_reference_se,
        why=_same_for_all(_endpoint_why), row_name="upper({term})", marker=">",
        rule_of="estimate", tolerance=_endpoint_tolerance),
    # Degrees of freedom of a t-test, where both fits have them by comparable rules.
    QuantitySpec(
        name="df", part="fixed", guards=("missing", _df_methods), missing=_no_row,
        uncertainty=_none, why=_same_for_all(_df_why), row_name="df({term})",
        marker="x", pairs=("frequentist-frequentist",)),
    # The analyst's question: the same sign, and an interval that excludes 0 in both or
    # in neither.
    QuantitySpec(
        name="conclusion", part="fixed", guards=("missing", _levels_differ),
        missing=_no_row, uncertainty=_none, why=_same_for_all(_conclusion_why),
        row_name="conclusion({term})", marker="*", exact=True),
)}

# The parts of a fit in the order their rows come out.
PARTS: tuple[str, ...] = tuple(dict.fromkeys(s.part for s in QUANTITY_SPECS.values()))
# The parameters of a model: fixed effects and variance components.
PARAMETERS: tuple[str, ...] = tuple(q for q, s in QUANTITY_SPECS.items() if s.parameter)


def spec_of(quantity: str) -> QuantitySpec:
    """The entry of a quantity; KeyError names the ones there are."""
    try:
        return QUANTITY_SPECS[quantity]
    except KeyError:
        raise KeyError(f"unknown quantity {quantity!r} (known: "
                       f"{', '.join(QUANTITY_SPECS)})") from None


def row_name(quantity: str, term: str) -> str:
    """A row's term as a reader names it: `genderM`, `SE(genderM)`, `sd(Residual)`; a
    quantity this parity does not know (a newer results file) by its term."""
    spec = QUANTITY_SPECS.get(quantity)
    return term if spec is None else spec.row_name.format(term=term)
