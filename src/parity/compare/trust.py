"""Whether a fit may be compared at all: one rule, applied to every engine's fit before
any comparison row is made.

A harness's worst answer is a confident one about a fit that never worked. So a fit is

- **failed** when its numbers cannot be numbers of this model and data: a non-finite
  estimate, SE or SD; no SEs (missing, or zero); an estimate, SE or SD beyond a bound
  relative to the data's scale (a variational fit that diverged, a separation whose
  estimates run off to infinity). Its numbers are dropped and nothing is compared with it.
- **unconverged** when it has plausible numbers that its own optimiser or sampler does not
  vouch for: the optimiser's convergence code or warning (false convergence, a Hessian
  that is not positive definite, lme4's gradient check), R-hat above 1.01, a bulk or tail
  ESS below 100 per chain, or divergent transitions above a stated share (Vehtari,
  Gelman, Simpson, Carpenter & Bürkner 2021). Its numbers are kept and shown; its rows
  are `not_comparable`, with the reason first, unless an analyst asks to compare them.
- **trusted** (status `ok`) otherwise.

The thresholds are data, in the tolerance file's `[trust]` table. The data's scale is
measured by the pipeline (which holds the rows) and handed in as a :class:`DataScale`;
this module reads only records and numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from parity.schema import Fit

State = Literal["ok", "unconverged", "failed"]
MAX_SHOWN = 3  # failures named in a reason before "N more"

# Warnings that are about convergence (lme4's checkConv, glmmTMB/nlminb, statsmodels).
_CONVERGENCE_WORDS = ("converg", "hessian", "nlminb", "max|grad|", "eigenvalue",
                      "iteration", "overflow", "not positive definite")


@dataclass(frozen=True)
class TrustRules:
    """The thresholds of the rule (tolerance file, `[trust]`).

    `scale_mult`: a Gaussian model's term reaches (|coefficient| × the range of its
    column), fitted values' distance from the mean response, SEs and SDs are at most this
    many response SDs. `link_bound`: the same on the link scale (log-odds, log-rate) for
    a binomial or Poisson model, where the response SD says nothing of the coefficients."""

    r_hat_max: float
    ess_per_chain_min: float
    divergence_share_max: float
    scale_mult: float
    link_bound: float


@dataclass(frozen=True)
class DataScale:
    """The data a fit's numbers are judged against: the fixed-effect design (columns
    named as the fit names its coefficients), the response's mean and SD, and the link."""

    names: tuple[str, ...]
    matrix: np.ndarray
    response_mean: float
    response_sd: float
    link: str = "identity"
    ranges: dict[str, float] = field(default_factory=dict)

    def reach(self, term: str) -> float:
        """How far a unit of `term`'s coefficient moves the linear predictor across the
        data: its column's range (1 for the intercept and unknown terms)."""
        r = self.ranges.get(term)
        return r if r is not None and r > 0 else 1.0

    @property
    def centre(self) -> float:
        """The linear predictor's natural level: the mean response on the link scale."""
        m = self.response_mean
        if self.link == "logit":
            p = min(max(m, 1e-6), 1 - 1e-6)
            return math.log(p / (1 - p))
        if self.link == "log":
            return math.log(max(m, 1e-6))
        return m


def data_scale(names: Sequence[str], matrix: np.ndarray, response: np.ndarray,
               link: str = "identity") -> DataScale:
    """A :class:`DataScale` from a design matrix and the response (for a binomial
    model, the proportion of successes)."""
    x = np.asarray(matrix, dtype=float)
    y = np.asarray(response, dtype=float)
    ranges = {n: float(np.ptp(x[:, j])) if x.shape[0] else 0.0 for j, n in enumerate(names)}
    sd = float(np.std(y, ddof=1)) if y.size > 1 else 0.0
    mean = float(np.mean(y)) if y.size else 0.0
    return DataScale(tuple(names), x, mean, sd, link, ranges)


@dataclass(frozen=True)
class Trust:
    """The rule's answer for one fit: its state and why (empty when trusted)."""

    state: State
    reasons: tuple[str, ...] = ()

    def text(self, label: str) -> str:
        """The reason as a row or fit states it: `glmmtmb did not converge (false
        convergence; Hessian not positive definite)`."""
        why = "; ".join(self.reasons)
        if self.state == "failed":
            return f"{label} failed ({why})"
        if self.state == "unconverged":
            return f"{label} did not converge ({why})"
        return f"{label} is trusted"


def _g(x: float) -> str:
    return f"{x:.3g}"


def _failures(fit: Fit, rules: TrustRules, scale: DataScale | None) -> list[str]:
    """Why the fit's numbers cannot be this model's, or []."""
    out: list[str] = []
    bad = [f.term for f in fit.fixed_effects if not math.isfinite(f.estimate)]
    bad += [v.label for v in fit.variance_components if not math.isfinite(v.estimate)]
    if bad:
        out.append(f"non-finite estimates: {', '.join(bad[:4])}{' …' if len(bad) > 4 else ''}")
    if not fit.fixed_effects:
        out.append("no fixed effects")
    no_se = [f.term for f in fit.fixed_effects
             if math.isfinite(f.estimate) and not (math.isfinite(f.std_error)
                                                   and f.std_error > 0)]
    if no_se:
        out.append(f"no SE for {', '.join(no_se[:4])}{' …' if len(no_se) > 4 else ''}")
    if scale is not None:
        out += _beyond_scale(fit, rules, scale)
    return out


def _bound(rules: TrustRules, scale: DataScale) -> tuple[float, str]:
    """The largest credible move of the linear predictor, and how to say it."""
    if scale.link == "identity":
        unit = scale.response_sd if scale.response_sd > 0 else max(abs(scale.response_mean),
                                                                    1e-12)
        return rules.scale_mult * unit, f"{rules.scale_mult:g} × the response SD {_g(unit)}"
    return rules.link_bound, f"{rules.link_bound:g} on the {scale.link} scale"


def _beyond_scale(fit: Fit, rules: TrustRules, scale: DataScale) -> list[str]:
    limit, said = _bound(rules, scale)
    out: list[str] = []
    for f in fit.fixed_effects:
        reach = scale.reach(f.term)
        if f.term != "(Intercept)" and math.isfinite(f.estimate) \
                and abs(f.estimate) * reach > limit:
            out.append(f"{f.term} = {_g(f.estimate)} moves the fit by "
                       f"{_g(abs(f.estimate) * reach)} across the data, beyond {said}")
        if math.isfinite(f.std_error) and f.std_error * reach > limit:
            out.append(f"SE({f.term}) = {_g(f.std_error)}, beyond {said}")
    eta = _fitted(fit, scale)
    if eta is not None:
        far = float(np.max(np.abs(eta - scale.centre))) if eta.size else 0.0
        if far > limit:
            out.append(f"fitted values reach {_g(far)} from the data's level, beyond {said}")
    for v in fit.variance_components:
        if v.kind == "sd" and math.isfinite(v.estimate) \
                and v.estimate * scale.reach(v.term or "(Intercept)") > limit:
            out.append(f"{v.label} = {_g(v.estimate)}, beyond {said}")
    for g in fit.group_effects:
        if math.isfinite(g.estimate) and abs(g.estimate) * scale.reach(g.term) > limit:
            out.append(f"group effects reach {_g(g.estimate)} ({g.label}), beyond {said}")
            break
    return out


def _fitted(fit: Fit, scale: DataScale) -> np.ndarray | None:
    """The fixed part of the linear predictor at every row, where the fit names every
    column of the design."""
    if not fit.fixed_effects or scale.matrix.size == 0:
        return None
    coef = {f.term: f.estimate for f in fit.fixed_effects}
    if set(coef) != set(scale.names) or not all(map(math.isfinite, coef.values())):
        return None
    beta = np.array([coef[n] for n in scale.names])
    with np.errstate(all="ignore"):
        return np.asarray(scale.matrix @ beta)


def _sampler_problems(fit: Fit, rules: TrustRules) -> list[str]:
    d = fit.diagnostics
    out: list[str] = []
    chains = d.chains or 1
    need = rules.ess_per_chain_min * chains
    if d.r_hat_max is not None and d.r_hat_max > rules.r_hat_max:
        out.append(f"R-hat {d.r_hat_max:.3f} > {rules.r_hat_max:g}")
    if d.ess_bulk_min is not None and d.ess_bulk_min < need:
        out.append(f"bulk ESS {d.ess_bulk_min:.0f} < {need:.0f} "
                   f"({rules.ess_per_chain_min:g} per chain × {chains})")
    if d.ess_tail_min is not None and d.ess_tail_min < need:
        out.append(f"tail ESS {d.ess_tail_min:.0f} < {need:.0f} "
                   f"({rules.ess_per_chain_min:g} per chain × {chains})")
    if d.divergences:
        total = chains * (d.draws or 0)
        share = d.divergences / total if total else 1.0
        if share > rules.divergence_share_max:
            out.append(f"{d.divergences} divergent transition{'s' if d.divergences > 1 else ''}"
                       f" ({share:.2%} of the draws, "
                       f"above {rules.divergence_share_max:.2%})")
    return out


def _optimiser_problems(fit: Fit) -> list[str]:
    """The optimiser's own words where it did not converge."""
    if fit.diagnostics.converged:
        return []
    said = [w for w in fit.diagnostics.warnings
            if any(word in w.lower() for word in _CONVERGENCE_WORDS)]
    said = list(dict.fromkeys(" ".join(w.split())[:160] for w in said))
    return said or ["the optimiser reports no convergence"]


def assess(fit: Fit, rules: TrustRules, scale: DataScale | None = None,
           sampled: bool | None = None) -> Trust:
    """The rule for one fit with numbers. `sampled` says the fit comes from MCMC draws
    (by default: it reports an R-hat), whose convergence is judged by its draws rather
    than by an optimiser's flag."""
    failures = _failures(fit, rules, scale)
    if failures:
        shown = failures[:MAX_SHOWN] + ([f"{len(failures) - MAX_SHOWN} more"]
                                        if len(failures) > MAX_SHOWN else [])
        engine_said = _optimiser_problems(fit) if not fit.diagnostics.converged else []
        return Trust("failed", tuple(shown + [f"the engine says: {w}"
                                              for w in engine_said[:2]]))
    if sampled is None:
        sampled = fit.diagnostics.r_hat_max is not None
    problems = _sampler_problems(fit, rules) if sampled else _optimiser_problems(fit)
    return Trust("unconverged", tuple(problems)) if problems else Trust("ok")


def vet(fit: Fit, rules: TrustRules, scale: DataScale | None = None) -> Fit:
    """`fit` with the rule's status: a failed fit loses its numbers (so nothing can be
    read from them by mistake) and says why; an unconverged one keeps them."""
    if not fit.has_numbers:
        return fit
    trust = assess(fit, rules, scale)
    if trust.state == "ok":
        return replace(fit, status="ok", reason=None) if fit.status != "ok" else fit
    reason = trust.text(fit.engine)
    if trust.state == "unconverged":
        return replace(fit, status="unconverged", reason=reason)
    return replace(fit, status="failed", reason=reason, fixed_effects=(),
                   variance_components=(), group_effects=(), fixed_effects_cov=(),
                   fit_statistics={})
