"""The one rule for "singular": when a fitted covariance sits on the boundary.

Every engine's `diagnostics.singular` is this rule applied to its own variance
components, or'ed with the engine's own flag where the library has one (lme4's
`isSingular()`). The comparison rules (:mod:`parity.compare.rules`) use the same thresholds to
say which component is on the boundary, so a fit is never called regular by its engine
and singular by the comparison, or the other way round.

A covariance is on the boundary when, within one grouping factor,

- an SD is below `BOUNDARY_SD` times the residual SD (a variance estimated as zero;
  lme4's own `isSingular()` uses 1e-4 on the relative Cholesky factor, and an optimiser
  that stops near zero, as statsmodels' does, lands between the two), or
- a correlation is ±1 to within `1 - BOUNDARY_CORR`, or
- the relative covariance matrix has a Cholesky pivot below `BOUNDARY_SD` (a degenerate
  block of three or more coefficients whose pairwise correlations are all below 1).

statsmodels has no flag of its own: its "MLE may be on the boundary" warning compares
variances with a fixed absolute threshold, so it depends on the units of the response;
it is kept among the fit's warnings but does not decide. Posterior means (Bambi) are
judged by the same rule; they rarely meet it, since a posterior mean of an SD is not zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from parity.schema import VarianceComponent

# A correlation this close to ±1, or an SD this small relative to the residual SD, is a
# covariance on the boundary of its parameter space.
BOUNDARY_CORR = 0.999
BOUNDARY_SD = 1e-3


def residual_scale(components: Iterable[VarianceComponent]) -> float:
    """The residual SD that relative SDs are measured against (1 without one)."""
    for v in components:
        if v.group == "Residual" and v.kind == "sd" and v.estimate > 0:
            return float(v.estimate)
    return 1.0


def near_zero_sds(components: Sequence[VarianceComponent], group: str) -> dict[str, float]:
    """The SDs of `group` below the boundary threshold, by term."""
    scale = residual_scale(components)
    return {v.term: v.estimate for v in components
            if v.group == group and v.kind == "sd" and v.term is not None
            and v.estimate / scale < BOUNDARY_SD}


def unit_corrs(components: Sequence[VarianceComponent], group: str) -> list[VarianceComponent]:
    """The correlations of `group` at ±1."""
    return [v for v in components
            if v.group == group and v.kind == "corr" and abs(v.estimate) >= BOUNDARY_CORR]


def degenerate_block(components: Sequence[VarianceComponent], group: str) -> bool:
    """Whether `group`'s relative covariance matrix has a Cholesky pivot on the boundary."""
    scale = residual_scale(components)
    sds = {v.term: v.estimate / scale for v in components
           if v.group == group and v.kind == "sd" and v.term is not None}
    terms = list(sds)
    if len(terms) < 2:
        return False
    corr = np.eye(len(terms))
    for v in components:
        if v.group == group and v.kind == "corr" and v.term in sds and v.term2 in sds:
            i, j = terms.index(v.term), terms.index(v.term2)
            corr[i, j] = corr[j, i] = v.estimate
    d = np.array([sds[t] for t in terms])
    cov = corr * np.outer(d, d)
    if not np.all(np.isfinite(cov)):
        return False
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return True
    return bool(np.any(np.diag(chol) < BOUNDARY_SD))


def on_boundary(components: Sequence[VarianceComponent]) -> bool:
    """The rule: some grouping factor's covariance is on the boundary."""
    groups = {v.group for v in components if v.group != "Residual"}
    return any(near_zero_sds(components, g) or unit_corrs(components, g)
               or degenerate_block(components, g) for g in groups)


def singular(components: Sequence[VarianceComponent], engine_flag: bool = False) -> bool:
    """A fit's `diagnostics.singular`: the rule, or the engine's own flag."""
    return bool(engine_flag) or on_boundary(components)
