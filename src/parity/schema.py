"""The one result record every engine fills, and its JSON form (results.json).

Downstream code (comparison, reports, analysts' scripts) reads only these records, never
an engine library's objects. Field names are a contract: add fields, never rename.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from parity.atomic import write_text_atomic

# 2 added: `fits[].group_effects`, `fits[].fixed_effects_cov`, `fits[].criterion`,
# `fits[].family` and `fits[].link`, the
# likelihood statistics (`loglik`, `aic`, `bic`, `deviance`) in `fit_statistics`, and the
# `level` of comparison rows (quantities `group_effect` and `loglik`). Version-1 files
# still read: the new fields are empty there.
# 3 added: the status `unconverged` (a fit with numbers that did not converge; see
# parity.compare.trust), each Bayesian quantity's Monte-Carlo standard error (`mcse`, and
# `se_mcse` of a posterior SD), `diagnostics.ess_tail_min`, `chains` and `draws`, and a
# comparison row's `unconverged` (the labels of its fits that did not converge).
# 4 added what analysts publish: per fixed effect its test `statistic` and
# `statistic_kind` (t or z), `df` and `df_method`, `p_value`, the `interval_method` of
# `lower`/`upper`, and a posterior's `p_direction`; a variance component's
# `interval_method`; a fit's `interval` (the level of every interval it holds); and the
# comparison quantities `lower`, `upper`, `df` and `conclusion`; and a comparison row's
# `terms` (the coefficient names it is of). Older files still read: the new fields are
# empty there.
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)

# `unconverged`: the fit returned numbers, but its optimiser or sampler did not converge
# (parity.compare.trust); its numbers are reported, and compared only when asked.
Status = Literal["ok", "unconverged", "failed", "skipped", "unsupported"]
# Fits that carry numbers, trusted or not.
WITH_NUMBERS: tuple[str, ...] = ("ok", "unconverged")


# --- Criterion: what a frequentist fit maximised --------------------------------------
# A fit records its criterion as text, as lme4 names it: "REML", "ML", "OLS" (a
# fixed-only Gaussian model, fitted by least squares), "Laplace" (a GLMM's Laplace
# approximation), "AGQ(n)" (a GLMM by adaptive Gauss-Hermite quadrature, n > 1 points)
# or "nAGQ=0" (glmer's fast criterion: the fixed effects come out of the penalised
# iteratively reweighted least squares step, and the Laplace approximation judges only the
# variance parameters, so its fixed effects maximise no likelihood). `Criterion` is the
# kind, without the number of points.
Criterion = Literal["REML", "ML", "OLS", "Laplace", "AGQ", "nAGQ=0"]
CRITERIA: tuple[Criterion, ...] = ("REML", "ML", "OLS", "Laplace", "AGQ", "nAGQ=0")


class _FamilyLike(Protocol):
    """A response family as `parity.spec.family.Family` is (schema imports no stage)."""

    @property
    def residual_sd(self) -> bool: ...


@dataclass(frozen=True)
class ParsedCriterion:
    """A criterion's text read back: its kind, whether it is the REML criterion, and
    its quadrature points as glmer's nAGQ counts them (1 for every kind but AGQ and
    nAGQ=0)."""

    kind: Criterion
    reml: bool
    nagq: int = 1


def criterion_of(family: _FamilyLike, reml: bool, nagq: int = 1, mixed: bool = True) -> str:
    """The criterion text a frequentist fit of a `family` model records, from its
    settings and whether it has grouping terms; lme4's rule, so every engine that
    follows it names one optimum alike. A family without a residual SD has no REML:
    a GLMM is fitted by Laplace (or AGQ(n), or nAGQ=0), a GLM by ML."""
    if not family.residual_sd:
        if not mixed:
            return "ML"
        if nagq == 0:
            return "nAGQ=0"
        return f"AGQ({int(nagq)})" if nagq > 1 else "Laplace"
    if not mixed:
        return "OLS"
    return "REML" if reml else "ML"


_AGQ = re.compile(r"AGQ\(([0-9]+)\)")


def parse_criterion(text: str | None) -> ParsedCriterion | None:
    """The criterion a fit recorded, read back (None where none was recorded, as in
    references recorded before fits named it); text that is no criterion is a
    ValueError."""
    if text is None:
        return None
    kind = next((c for c in CRITERIA if c == text and c != "AGQ"), None)
    if kind is not None:
        return ParsedCriterion(kind, reml=kind == "REML", nagq=0 if kind == "nAGQ=0" else 1)
    match = _AGQ.fullmatch(text)
    if match and int(match.group(1)) > 1:
        return ParsedCriterion("AGQ", reml=False, nagq=int(match.group(1)))
    raise ValueError(f"{text!r} is not a criterion (known: REML, ML, OLS, Laplace, AGQ(n), "
                     "nAGQ=0)")


StatisticKind = Literal["t", "z"]


@dataclass(frozen=True)
class FixedEffect:
    """One coefficient under lme4's name; for Bambi, posterior mean and SD.

    `mcse` is the Monte-Carlo standard error of a posterior mean, `se_mcse` that of the
    posterior SD (None for an engine without draws): what sampling alone can move them.

    What an analyst publishes of it comes from the engine's own library, as that library
    reports it: the test `statistic` (`statistic_kind` t or z), its degrees of freedom
    `df` and how they were found (`df_method`: "Satterthwaite", "Kenward-Roger",
    "residual" for least squares, "containment" for nlme's between/within rule; None for
    a z-test), the two-sided `p_value`, and how `lower`/`upper` were found
    (`interval_method`: "Wald-t", "Wald-z", "profile" or "posterior equal-tailed"). A
    posterior has no test: it gives `p_direction`, the posterior probability that the
    coefficient has the sign of its posterior median, instead. A method followed by
    "(parity)" names a value parity computed because the library has no function for it.
    """

    term: str
    estimate: float
    std_error: float
    lower: float
    upper: float
    mcse: float | None = None
    se_mcse: float | None = None
    statistic: float | None = None
    statistic_kind: StatisticKind | None = None
    df: float | None = None
    df_method: str | None = None
    p_value: float | None = None
    interval_method: str | None = None
    p_direction: float | None = None
    # A posterior's power-scaling sensitivity to its prior and to its likelihood
    # (parity.engines.sensitivity); None where not computed or without a posterior.
    prior_sensitivity: float | None = None
    likelihood_sensitivity: float | None = None

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval lies on one side of 0 (None without a finite interval)."""
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            return None
        return self.lower > 0 or self.upper < 0

    @property
    def conclusion(self) -> float | None:
        """The coefficient's conclusion at its interval's level, as a number a comparison
        row can hold (:data:`CONCLUSIONS`): 1 or -1 where the interval excludes 0 (the
        effect is there, with that sign), 0.5 or -0.5 where it does not (no effect
        shown, the estimate's sign kept: two engines reach the same conclusion only with
        the same sign and the same exclusion). None without a finite interval."""
        excludes = self.excludes_zero
        if excludes is None or not math.isfinite(self.estimate):
            return None
        sign = 1.0 if self.estimate >= 0 else -1.0
        return sign if excludes else sign / 2


# Power-scaling sensitivity above this is a prior's (or a likelihood's) doing: the
# published default (Kallioinen et al. 2024, priorsense).
SENSITIVITY_THRESHOLD = 0.05

# Where a Bayesian fit records every parameter's prior in one vocabulary
# (`provenance.settings[PRIOR_SET]`; parity.engines.prior_set writes it, parity.compare.matched
# reads it).
PRIOR_SET = "prior_set"


def sensitivity_diagnosis(prior: float | None, likelihood: float | None) -> str | None:
    """priorsense's words for a parameter: "prior-data conflict" (sensitive to both),
    "strong prior / weak likelihood" (to the prior only), or "none"; None where either
    was not computed."""
    if prior is None or likelihood is None or not (math.isfinite(prior)
                                                  and math.isfinite(likelihood)):
        return None
    if prior > SENSITIVITY_THRESHOLD:
        return ("prior-data conflict" if likelihood > SENSITIVITY_THRESHOLD
                else "strong prior / weak likelihood")
    return "none"


# What a conclusion row's values mean.
CONCLUSIONS = {1.0: "effect > 0", -1.0: "effect < 0", 0.5: "not shown (estimate > 0)",
               -0.5: "not shown (estimate < 0)"}


@dataclass(frozen=True)
class VarianceComponent:
    """An SD (`term2` None) or a correlation between `term` and `term2` within `group`.

    The residual SD is group `Residual` with `term` None.
    """

    group: str
    term: str | None
    term2: str | None
    kind: Literal["sd", "corr"]
    estimate: float
    std_error: float | None = None
    lower: float | None = None
    upper: float | None = None
    mcse: float | None = None  # of a posterior mean (None without draws)
    # How lower/upper were found: "profile" (lme4's profile likelihood, `--profile`),
    # "posterior equal-tailed", "Wald (log scale)" (glmmTMB, nlme); None without them.
    interval_method: str | None = None
    # As FixedEffect's: a posterior's sensitivity to its prior and to its likelihood.
    prior_sensitivity: float | None = None
    likelihood_sensitivity: float | None = None

    @property
    def label(self) -> str:
        """How comparison rows and reports name it: `sd(subject: (Intercept))`,
        `corr(subject: (Intercept), attitudepol)`, `sd(Residual)`."""
        if self.group == "Residual":
            return "sd(Residual)"
        if self.kind == "corr":
            return f"corr({self.group}: {self.term}, {self.term2})"
        return f"sd({self.group}: {self.term})"


@dataclass(frozen=True)
class GroupEffect:
    """One group-specific effect of one level, as lme4's `ranef()` reports it: the
    deviation of `level`'s coefficient `term` from the fixed effect. Frequentist engines
    give the conditional mode and the square root of its conditional variance
    (`condVar`); a Bayesian engine the posterior mean and SD of the same deviation."""

    group: str
    level: str
    term: str
    estimate: float
    std_error: float | None = None
    mcse: float | None = None  # of a posterior mean (None without draws)

    @property
    def label(self) -> str:
        """How comparison rows name it: `ranef(subject F1: (Intercept))`."""
        return f"ranef({self.group} {self.level}: {self.term})"


@dataclass(frozen=True)
class Diagnostics:
    """What the engine said of its own fit, and for a sampler what its draws say.

    `converged` is the engine's own flag; parity's rule for trusting a fit
    (parity.compare.trust) reads it with the rest. `r_hat_max`, `ess_bulk_min` and
    `ess_tail_min` are the worst over every sampled value, `chains` and `draws` (per
    chain, after warm-up) what ran, so that an ESS can be judged per chain and
    divergences as a share."""

    converged: bool
    singular: bool
    warnings: tuple[str, ...] = ()
    r_hat_max: float | None = None
    ess_bulk_min: float | None = None
    divergences: int | None = None
    ess_tail_min: float | None = None
    chains: int | None = None
    draws: int | None = None


@dataclass(frozen=True)
class Provenance:
    """What produced the numbers: versions, the settings that actually ran, and where
    this record came from: fitted in this run, read from parity's fit cache, or a
    recorded lme4 reference used in place of a live fit."""

    engine_version: str
    r_version: str | None
    settings: dict[str, Any]
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)
    source: Literal["fit", "cache", "recorded"] = "fit"


@dataclass(frozen=True)
class Fit:
    """One model fitted by one engine.

    `structure` maps each grouping factor to the covariance structure the engine
    actually fitted ("correlated" or "independent"), so comparisons know when two
    engines estimated different things.
    """

    model: str
    formula: str
    engine: str
    status: Status
    reason: str | None
    n_obs: int
    n_dropped: int
    fixed_effects: tuple[FixedEffect, ...] = ()
    variance_components: tuple[VarianceComponent, ...] = ()
    diagnostics: Diagnostics = Diagnostics(converged=False, singular=False)
    provenance: Provenance = Provenance("", None, {}, 0.0)
    engine_formula: str | None = None
    structure: dict[str, str] = field(default_factory=dict)
    fit_statistics: dict[str, float] = field(default_factory=dict)
    n_groups: dict[str, int] = field(default_factory=dict)
    variant: str | None = None
    # "REML" or "ML" for a frequentist mixed model, "OLS" for least squares (whose
    # log-likelihood is at the ML variance under either setting), None for a posterior.
    # `fit_statistics` (`loglik`, `aic`, `bic`, `deviance` = -2 loglik) belong to it.
    criterion: str | None = None
    group_effects: tuple[GroupEffect, ...] = ()
    # The covariance matrix of the fixed effects, rows and columns in `fixed_effects`'
    # order (lme4's `vcov()`; the posterior covariance for a Bayesian engine), so that a
    # contrast can be checked and not only each SE.
    fixed_effects_cov: tuple[tuple[float, ...], ...] = ()
    # The response family and the link its coefficients (and comparisons) are on.
    family: str = "gaussian"
    link: str = "identity"
    # The fit's own kind where it differs from its engine's (statsmodels' mixed GLMMs are
    # approximate Bayesian fits: "approximate"); None means the engine's registry kind.
    kind: str | None = None
    # The level of every interval the fit holds (`--interval`); None in records written
    # before it was kept (the run's settings say it there).
    interval: float | None = None

    @property
    def has_numbers(self) -> bool:
        """Whether the fit carries estimates: trusted (`ok`) or `unconverged`."""
        return self.status in WITH_NUMBERS

    @property
    def is_recorded(self) -> bool:
        """A recorded lme4 reference used in place of a live fit (parity.engines.recorded)."""
        return self.provenance.source == "recorded"

    @property
    def from_cache(self) -> bool:
        """Read from parity's fit cache instead of fitted in this run (parity.pipeline.cache)."""
        return self.provenance.source == "cache"

    @property
    def label(self) -> str:
        """The engine as comparisons name it: `lme4`, or `lme4:independent` for a
        reference refitted with another covariance structure."""
        return self.engine if self.variant is None else f"{self.engine}:{self.variant}"

    def contrast(self, weights: dict[str, float]) -> tuple[float, float]:
        """The estimate and standard error of sum(w * coefficient) over `weights`
        (term -> weight), from `fixed_effects_cov`: `fit.contrast({"genderM": 1,
        "attitudepol": -1})`. KeyError for a term the fit lacks, ValueError when the
        fit recorded no covariance."""
        terms = [f.term for f in self.fixed_effects]
        if len(self.fixed_effects_cov) != len(terms):
            raise ValueError(f"{self.label} recorded no covariance of its fixed effects")
        missing = [t for t in weights if t not in terms]
        if missing:
            raise KeyError(f"{self.label} has no fixed effect {missing[0]!r}")
        w = [float(weights.get(t, 0.0)) for t in terms]
        est = sum(wi * f.estimate for wi, f in zip(w, self.fixed_effects, strict=True))
        var = sum(w[i] * w[j] * self.fixed_effects_cov[i][j]
                  for i in range(len(w)) for j in range(len(w)))
        return est, math.sqrt(max(var, 0.0))

    @cached_property
    def _group_effect_index(self) -> dict[tuple[str, str, str], GroupEffect]:
        # InstEval's fits hold 4,114 group effects each: a search per level would make
        # a caterpillar figure and the comparison quadratic in the levels. The first of
        # a repeated key wins, as the search it replaces found it.
        index: dict[tuple[str, str, str], GroupEffect] = {}
        for g in self.group_effects:
            index.setdefault((g.group, g.level, g.term), g)
        return index

    def group_effect(self, group: str, level: str, term: str) -> GroupEffect | None:
        return self._group_effect_index.get((group, level, term))

    def fixed(self, term: str) -> FixedEffect | None:
        return next((f for f in self.fixed_effects if f.term == term), None)

    def component(
        self, group: str, term: str | None, term2: str | None = None
    ) -> VarianceComponent | None:
        return next(
            (
                v
                for v in self.variance_components
                if v.group == group and v.term == term and v.term2 == term2
            ),
            None,
        )


Verdict = Literal["agree", "disagree", "not_comparable"]
Quantity = Literal["estimate", "std_error", "sd", "corr", "group_effect", "loglik",
                   "lower", "upper", "df", "conclusion"]


@dataclass(frozen=True)
class Comparison:
    """One term of one model, one engine against one reference engine.

    `verdict` is `agree` exactly when |value - reference_value| <= tolerance (the absolute
    tolerance that applied), `disagree` otherwise, and `not_comparable` when the two fits
    do not estimate the same quantity. Every row that is not `agree` has a `reason`.
    `quantity` is `estimate` or `std_error` (fixed effects), `sd` or `corr` (variance
    components), `group_effect` (one level's deviation, as `ranef()`) or `loglik` (the
    maximised log-likelihood under one criterion); `group` is the grouping factor of a
    variance component or group effect (None for fixed effects), `level` the group's
    level of a group effect, and `term` the readable label.
    """

    model: str
    engine: str
    reference: str
    quantity: Quantity
    term: str
    value: float | None
    reference_value: float | None
    tolerance: float | None
    verdict: Verdict
    reason: str | None
    group: str | None = None
    level: str | None = None
    # The labels of this row's fits that did not converge: such a row is
    # `not_comparable`, or, when asked for (`--compare-unconverged`), compared but
    # counted apart from the rows of trusted fits.
    unconverged: tuple[str, ...] = ()
    # The coefficient names the row is of, as the engines name them (`genderM`;
    # `(Intercept)` and `attitudepol` for a correlation); none for the residual SD and
    # the log-likelihood. `term` is the readable label built from them.
    terms: tuple[str, ...] = ()

    @property
    def self_refit(self) -> bool:
        """A row of one engine against its own refit of another covariance structure
        (`lme4 vs lme4:independent`): what the structure changes, not a disagreement
        between engines."""
        return self.engine.split(":", 1)[0] == self.reference.split(":", 1)[0]


# ---- One flattening of a fit: every number it estimates, as comparisons name it ---------


@dataclass(frozen=True)
class Value:
    """One number a fit estimates, named as the comparison rows about it are named.

    Every reader that walks a fit's numbers (the comparison, `parity diff`, the
    invariance checks, `Run.estimates`, a study's rows) reads these, so that a number a
    fit gains is seen by all of them at once. `term` is the readable label
    (`genderM`, `sd(subject: (Intercept))`, `ranef(subject F1: (Intercept))`,
    `logLik (REML)`), so a value and its comparison rows share (quantity, term);
    `terms` holds the coefficient names it is of (none for the residual SD and the
    log-likelihood), for a reader that renames them. `uncertainty` is the SE or
    posterior SD where the fit gives one (None for an SE itself), `mcse` what sampling
    alone can move the value (None without draws)."""

    quantity: Quantity
    term: str
    estimate: float
    uncertainty: float | None = None
    lower: float | None = None
    upper: float | None = None
    group: str | None = None
    level: str | None = None
    terms: tuple[str, ...] = ()
    mcse: float | None = None
    # The posterior's power-scaling sensitivity of this number's parameter (estimate,
    # SE, SD and correlation rows of a Bayesian fit that computed it).
    prior_sensitivity: float | None = None
    likelihood_sensitivity: float | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, tuple[str, ...]]:
        """What makes two fits' values the same number: quantity, group, level and
        coefficient names (not `term`, whose log-likelihood label names a criterion)."""
        return (self.quantity, self.group, self.level, self.terms)


def values(fit: Fit) -> Iterator[Value]:
    """Each number of `fit`, in the order of the record: per fixed effect its estimate,
    its SE, its interval's ends, its t-test's df and its conclusion (each where the fit
    has it), the variance components, the group effects, the log-likelihood."""
    for fe in fit.fixed_effects:
        ps, ls = fe.prior_sensitivity, fe.likelihood_sensitivity
        yield Value("estimate", fe.term, fe.estimate, fe.std_error, fe.lower, fe.upper,
                    terms=(fe.term,), mcse=fe.mcse, prior_sensitivity=ps,
                    likelihood_sensitivity=ls)
        yield Value("std_error", fe.term, fe.std_error, terms=(fe.term,), mcse=fe.se_mcse,
                    prior_sensitivity=ps, likelihood_sensitivity=ls)
        if math.isfinite(fe.lower) and math.isfinite(fe.upper):
            yield Value("lower", fe.term, fe.lower, fe.std_error, terms=(fe.term,),
                        prior_sensitivity=ps, likelihood_sensitivity=ls)
            yield Value("upper", fe.term, fe.upper, fe.std_error, terms=(fe.term,),
                        prior_sensitivity=ps, likelihood_sensitivity=ls)
        if fe.df is not None:
            yield Value("df", fe.term, fe.df, terms=(fe.term,))
        if (code := fe.conclusion) is not None:
            yield Value("conclusion", fe.term, code, terms=(fe.term,))
    for vc in fit.variance_components:
        yield Value(vc.kind, vc.label, vc.estimate, vc.std_error, vc.lower, vc.upper,
                    group=vc.group, mcse=vc.mcse,
                    terms=tuple(t for t in (vc.term, vc.term2) if t is not None),
                    prior_sensitivity=vc.prior_sensitivity,
                    likelihood_sensitivity=vc.likelihood_sensitivity)
    for g in fit.group_effects:
        yield Value("group_effect", g.label, g.estimate, g.std_error, group=g.group,
                    level=g.level, terms=(g.term,), mcse=g.mcse)
    if "loglik" in fit.fit_statistics:
        yield Value("loglik", f"logLik ({fit.criterion or '?'})",
                    fit.fit_statistics["loglik"])


# ---- end of the flattening -------------------------------------------------------------


def structure_of(groups: list[str] | tuple[str, ...],
                 components: tuple[VarianceComponent, ...] | list[VarianceComponent]
                 ) -> dict[str, str]:
    """Each grouping factor's fitted covariance structure, read from what was estimated:
    `correlated` when the fit reports a correlation for the group, else `independent`
    (a lone random intercept included: there is nothing to correlate)."""
    correlated = {v.group for v in components if v.kind == "corr"}
    return {g: "correlated" if g in correlated else "independent" for g in groups}


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def fit_to_dict(fit: Fit) -> dict[str, Any]:
    out: dict[str, Any] = _clean(asdict(fit))
    return out


def _source(prov: dict[str, Any]) -> Literal["fit", "cache", "recorded"]:
    """A provenance's source; results files written before the field existed said it
    in their settings."""
    source = prov.get("source")
    if source in ("fit", "cache", "recorded"):
        return source
    settings = prov.get("settings") or {}
    if settings.get("source") == "recorded":
        return "recorded"
    if isinstance(settings.get("cache"), dict) and settings["cache"].get("hit"):
        return "cache"
    return "fit"


def optional_float(x: Any) -> float | None:
    """An optional number as written (null stays None)."""
    return None if x is None else float(x)


def fit_from_dict(d: dict[str, Any]) -> Fit:
    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    diag = d.get("diagnostics") or {}
    prov = d.get("provenance") or {}
    return Fit(
        model=d["model"],
        formula=d["formula"],
        engine=d["engine"],
        status=d["status"],
        reason=d.get("reason"),
        n_obs=int(d.get("n_obs", 0)),
        n_dropped=int(d.get("n_dropped", 0)),
        fixed_effects=tuple(
            FixedEffect(f["term"], num(f["estimate"]), num(f["std_error"]), num(f["lower"]),
                        num(f["upper"]), optional_float(f.get("mcse")),
                        optional_float(f.get("se_mcse")),
                        statistic=optional_float(f.get("statistic")),
                        statistic_kind=f.get("statistic_kind"), df=optional_float(f.get("df")),
                        df_method=f.get("df_method"), p_value=optional_float(f.get("p_value")),
                        interval_method=f.get("interval_method"),
                        p_direction=optional_float(f.get("p_direction")),
                        prior_sensitivity=optional_float(f.get("prior_sensitivity")),
                        likelihood_sensitivity=optional_float(
                            f.get("likelihood_sensitivity")))
            for f in d.get("fixed_effects", [])
        ),
        variance_components=tuple(
            VarianceComponent(
                v["group"], v.get("term"), v.get("term2"), v["kind"], num(v["estimate"]),
                v.get("std_error"), v.get("lower"), v.get("upper"), optional_float(v.get("mcse")),
                v.get("interval_method"), optional_float(v.get("prior_sensitivity")),
                optional_float(v.get("likelihood_sensitivity")),
            )
            for v in d.get("variance_components", [])
        ),
        diagnostics=Diagnostics(
            converged=bool(diag.get("converged", False)),
            singular=bool(diag.get("singular", False)),
            warnings=tuple(diag.get("warnings", [])),
            r_hat_max=diag.get("r_hat_max"),
            ess_bulk_min=diag.get("ess_bulk_min"),
            divergences=diag.get("divergences"),
            ess_tail_min=diag.get("ess_tail_min"),
            chains=diag.get("chains"),
            draws=diag.get("draws"),
        ),
        provenance=Provenance(
            engine_version=prov.get("engine_version", ""),
            r_version=prov.get("r_version"),
            settings=dict(prov.get("settings", {})),
            seconds=float(prov.get("seconds", 0.0)),
            versions=dict(prov.get("versions", {})),
            source=_source(prov),
        ),
        engine_formula=d.get("engine_formula"),
        structure=dict(d.get("structure", {})),
        fit_statistics={str(k): float(v) for k, v in (d.get("fit_statistics") or {}).items()
                        if isinstance(v, (int, float))},
        n_groups={k: int(v) for k, v in (d.get("n_groups") or {}).items()},
        variant=d.get("variant"),
        criterion=d.get("criterion"),
        group_effects=tuple(
            GroupEffect(str(g["group"]), str(g["level"]), str(g["term"]), num(g["estimate"]),
                        optional_float(g.get("std_error")), optional_float(g.get("mcse")))
            for g in d.get("group_effects") or []
        ),
        fixed_effects_cov=tuple(tuple(num(x) for x in row)
                                for row in d.get("fixed_effects_cov") or []),
        family=str(d.get("family") or "gaussian"),
        link=str(d.get("link") or "identity"),
        kind=d.get("kind"),
        interval=optional_float(d.get("interval")),
    )


def comparison_from_dict(d: dict[str, Any]) -> Comparison:
    return Comparison(
        model=d["model"], engine=d["engine"], reference=d["reference"],
        quantity=d["quantity"], term=d["term"], value=d.get("value"),
        reference_value=d.get("reference_value"), tolerance=d.get("tolerance"),
        verdict=d["verdict"], reason=d.get("reason"), group=d.get("group"),
        level=d.get("level"), unconverged=tuple(d.get("unconverged") or ()),
        terms=tuple(str(t) for t in d.get("terms") or ()),
    )


def results_document(
    fits: list[Fit], comparisons: list[Comparison] | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    doc.update(extra)
    doc["fits"] = [fit_to_dict(f) for f in fits]
    doc["comparisons"] = [_clean(asdict(c)) for c in comparisons or []]
    return doc


@dataclass(frozen=True)
class OptimumCheck:
    """Another frequentist engine's solution judged by lme4's objective.

    `engine_value` and `reference_value` are lme4's log-likelihood (under `criterion`,
    REML or ML) at the engine's
    variance components and at lme4's own optimum (of the same covariance structure);
    `better` names the solution the objective prefers, or `tie`. `fixed_at_solution`
    holds the fixed effects lme4 profiles out at the engine's components (the GLS
    estimates), against which the engine's own are checked for self-consistency."""

    model: str
    engine: str
    reference: str
    objective: str
    engine_value: float
    reference_value: float
    difference: float
    better: str
    fixed_at_solution: dict[str, float] = field(default_factory=dict)
    criterion: str = "REML"  # or "ML": the likelihood both values are of


def optimum_check_from_dict(d: dict[str, Any]) -> OptimumCheck:
    return OptimumCheck(
        model=d["model"], engine=d["engine"], reference=d["reference"],
        objective=d["objective"], engine_value=float(d["engine_value"]),
        reference_value=float(d["reference_value"]), difference=float(d["difference"]),
        better=d["better"],
        fixed_at_solution={str(k): float(v)
                           for k, v in (d.get("fixed_at_solution") or {}).items()},
        criterion=str(d.get("criterion", "REML")),
    )


@dataclass(frozen=True)
class RunResults:
    """One record of a run: what results.json holds, and what the reports, `parity diff`,
    `assert_parity` and the Python API read. `meta` carries the run's description
    (versions, settings, tolerance sources, models, environment) in results.json's
    layout."""

    fits: tuple[Fit, ...]
    comparisons: tuple[Comparison, ...] = ()
    reference_fits: tuple[Fit, ...] = ()
    optimum_checks: tuple[OptimumCheck, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        """results.json's layout (the fields in the order the file has always had)."""
        doc = results_document(list(self.fits), list(self.comparisons),
                               complete=self.complete, **self.meta)
        doc["reference_fits"] = [fit_to_dict(f) for f in self.reference_fits]
        doc["optimum_checks"] = [asdict(c) for c in self.optimum_checks]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunResults:
        """A results.json document back into the record (KeyError/TypeError when it is
        not one: callers turn those into one-line errors)."""
        known = {"schema_version", "complete", "fits", "comparisons", "reference_fits",
                 "optimum_checks"}
        return cls(
            fits=tuple(fit_from_dict(f) for f in doc.get("fits") or []),
            comparisons=tuple(comparison_from_dict(c) for c in doc.get("comparisons") or []),
            reference_fits=tuple(fit_from_dict(f) for f in doc.get("reference_fits") or []),
            optimum_checks=tuple(optimum_check_from_dict(c)
                                 for c in doc.get("optimum_checks") or []),
            meta={k: v for k, v in doc.items() if k not in known},
            complete=bool(doc.get("complete", True)),
        )

    def write(self, path: Path) -> Path:
        write_json_atomic(path, self.to_dict())
        return Path(path)


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """results.json, written atomically; NaN is refused rather than written as invalid JSON."""
    write_text_atomic(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
