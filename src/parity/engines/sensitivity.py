"""Power-scaling sensitivity of a posterior to its prior and to its likelihood, per
parameter (Kallioinen, Paananen, Bürkner & Vehtari 2024, *Detecting and diagnosing prior
and likelihood sensitivity with power-scaling*, Stat Comput 34:57; R's priorsense,
`arviz_stats.psense`).

A Bayesian–frequentist gap has two candidate causes: the prior, or the likelihood's own
shape (a skewed marginal whose mean is not the mode). Raising the prior (or the
likelihood) to a power α near 1 and asking how far each parameter's posterior moves
tells them apart without refitting: the draws are reweighted by importance sampling,
w ∝ exp((α − 1) log p), and the move is the cumulative Jensen–Shannon distance between
the weighted and the unweighted draws, per unit of log2 α. Above THRESHOLD (0.05, the
published default) a parameter is prior-sensitive; sensitive to both, it is a prior-data
conflict; to the prior but not the likelihood, a strong prior or weak likelihood.

Implemented here in NumPy, the same on every stack: the importance weights are
truncated at √S times their mean (Ionides 2008) where the published method smooths
their tail with a Pareto fit; for α = 0.99 and 1.01 the weights are close to uniform and
the two agree closely (tests/engines/test_sensitivity.py compares them with arviz_stats
where it is installed). The prior scaled is the priors an analyst sets: of the fixed
effects, the group SDs, the residual SD and correlations; the group effects' own
Normal(0, SD) is part of the model, as in priorsense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from parity.schema import SENSITIVITY_THRESHOLD as THRESHOLD
from parity.schema import sensitivity_diagnosis as diagnosis

__all__ = ["THRESHOLD", "diagnosis", "pair", "sensitivity", "cjs_distance", "log_density"]

ALPHAS = (0.99, 1.01)
METHOD = ("power-scaling sensitivity (Kallioinen et al. 2024), α 0.99 and 1.01, "
          "truncated importance weights")
# The pointwise log-likelihood is rows x draws x chains numbers; beyond this many the
# sensitivity is not computed (InstEval at the defaults would need 4.7 GB for it).
MAX_LOGLIK_VALUES = 50_000_000


def too_large(n_obs: int, draws: int) -> str | None:
    """Why the sensitivities of a fit of `n_obs` rows and `draws` draws (all chains) are
    not computed, as every sampler's record says it, or None where they fit in memory."""
    if n_obs * draws <= MAX_LOGLIK_VALUES:
        return None
    return f"not computed: the pointwise log-likelihood would hold {n_obs:,} rows x {draws:,} draws"


def log_density(dist: str, args: Mapping[str, Any], x: Any) -> np.ndarray:
    """The log density of one of the priors a priors document names (Bambi's default
    distributions among them) at `x`, with array arguments broadcast over its last
    axis. KeyError for a distribution it does not know."""
    from scipy import stats

    x = np.asarray(x, dtype=float)

    def arg(name: str) -> np.ndarray:
        return np.asarray(args[name], dtype=float)

    if dist == "Normal":
        out = stats.norm.logpdf(x, arg("mu"), arg("sigma"))
    elif dist == "StudentT":
        out = stats.t.logpdf(x, arg("nu"), arg("mu"), arg("sigma"))
    elif dist == "HalfNormal":
        out = stats.halfnorm.logpdf(x, scale=arg("sigma"))
    elif dist == "HalfStudentT":
        out = np.where(x >= 0, math.log(2) + stats.t.logpdf(x, arg("nu"), 0, arg("sigma")),
                       -np.inf)
    elif dist == "Exponential":
        out = stats.expon.logpdf(x, scale=1 / arg("lam"))
    else:
        raise KeyError(dist)
    return np.asarray(out, dtype=float)


def _weights(log_component: np.ndarray, alpha: float) -> np.ndarray:
    """Normalised importance weights of power-scaling a component by `alpha`,
    truncated at √S times their mean."""
    lw = (alpha - 1.0) * log_component
    w = np.exp(lw - lw.max())
    w /= w.sum()
    cap = math.sqrt(len(w)) / len(w)
    w = np.minimum(w, cap)
    return w / w.sum()


def cjs_distance(x: np.ndarray, w: np.ndarray) -> float:
    """The cumulative Jensen–Shannon distance between the draws `x` and the same draws
    weighted by `w` (priorsense's `cjs_dist`)."""
    order = np.argsort(x)
    x, w = x[order], w[order]
    width = np.diff(x)
    p = np.linspace(1 / len(x), 1 - 1 / len(x), len(x) - 1)
    q = np.cumsum(w / w.sum())[:-1]
    p_int, q_int = float(np.dot(p, width)), float(np.dot(q, width))
    if p_int + q_int <= 0:
        return 0.0
    log_p = np.log2(p, out=np.zeros_like(p), where=p > 0)
    log_q = np.log2(q, out=np.zeros_like(q), where=q > 0)
    mid = 0.5 * (p + q)
    log_m = np.log2(mid, out=np.zeros_like(mid), where=mid > 0)
    pq = float(np.sum(width * p * (log_p - log_m))) + 0.5 / math.log(2) * (q_int - p_int)
    qp = float(np.sum(width * q * (log_q - log_m))) + 0.5 / math.log(2) * (p_int - q_int)
    return math.sqrt((max(pq, 0.0) + max(qp, 0.0)) / (p_int + q_int))


def sensitivity(theta: Any, log_component: Any) -> float:
    """How far `theta`'s posterior moves per unit of log2 α when the component whose
    per-draw log density is `log_component` is raised to α (both flattened alike)."""
    x = np.asarray(theta, dtype=float).ravel()
    lc = np.asarray(log_component, dtype=float).ravel()
    if len(x) < 2 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(lc)):
        return float("nan")
    grads = []
    for alpha in ALPHAS:
        w = _weights(lc, alpha)
        d = max(cjs_distance(x, w), cjs_distance(-x, w))
        grads.append(d / abs(math.log2(alpha)))
    return float(np.mean(grads))


def pair(theta: Any, log_prior: Any, log_lik: Any) -> tuple[float | None, float | None]:
    """A parameter's prior and likelihood sensitivity, rounded as reported (None where
    not finite)."""
    out = []
    for component in (log_prior, log_lik):
        s = sensitivity(theta, component)
        out.append(round(s, 4) if math.isfinite(s) else None)
    return out[0], out[1]
