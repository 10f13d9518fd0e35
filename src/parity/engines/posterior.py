"""Posterior summaries and convergence diagnostics computed from the draws themselves.

ArviZ's `summary` changed columns and started rounding in 1.x, and Bambi's versions pull
different ArviZ releases; computing from the draws keeps parity's numbers the same
whatever ArviZ is installed. R-hat is the rank-normalised split R-hat, ESS the bulk and
tail ESS of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), and the Monte-Carlo
standard errors of a mean and of an SD those of ArviZ's `mcse(method="mean" | "sd")`, as
ArviZ and Stan compute them; the test suite checks each against ArviZ where it is
installed.

The interval is equal-tailed (`INTERVAL_METHOD`), and the probability of direction is
:func:`p_direction`'s, as bayestestR's `p_direction(method = "direct")` counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from parity.schema import Diagnostics
from parity.settings import Settings

# A posterior is trusted to converge where every sampled value's R-hat is at most this and
# the sampler reported no divergent transition.
RHAT_MAX = 1.01

# How a posterior's lower/upper are found: the (1 - interval)/2 and (1 + interval)/2
# quantiles of the draws (the record's `interval_method`).
INTERVAL_METHOD = "posterior equal-tailed"


@dataclass(frozen=True)
class Summary:
    mean: float
    sd: float
    lower: float  # the equal-tailed interval: quantiles (1 -/+ interval) / 2 of the draws
    upper: float
    r_hat: float
    ess_bulk: float
    ess_tail: float = float("nan")
    mcse_mean: float = float("nan")  # Monte-Carlo SE of `mean`
    mcse_sd: float = float("nan")  # Monte-Carlo SE of `sd`
    p_direction: float = float("nan")  # see `p_direction`


def p_direction(draws: np.ndarray) -> float:
    """The posterior probability of direction: the share of draws on the side of 0 that
    holds more of them, max(#{x > 0}, #{x < 0}) / n over every draw of every chain.

    It is the share of draws with the sign of the posterior median whenever that median
    is not 0, and lies in [0.5, 1] unless draws are exactly 0 (which count to neither
    side, as in bayestestR's `p_direction(method = "direct")`). NaN without draws or
    with a non-finite one."""
    x = np.asarray(draws, dtype=float).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return float("nan")
    return float(max(np.count_nonzero(x > 0), np.count_nonzero(x < 0)) / x.size)


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    ranks = stats.rankdata(x, method="average").reshape(x.shape)
    return np.asarray(stats.norm.ppf((ranks - 0.375) / (x.size + 0.25)))


def _rhat_basic(x: np.ndarray) -> float:
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean()
    between = n * x.mean(axis=1).var(ddof=1)
    if within == 0:
        return float("nan")
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat (max of bulk and folded) of a (chains, draws) array."""
    x = _split(np.asarray(draws, dtype=float))
    if x.shape[1] < 2 or not np.all(np.isfinite(x)):
        return float("nan")
    bulk = _rhat_basic(_z_scale(x))
    folded = _rhat_basic(_z_scale(np.abs(x - np.median(x))))
    return max(bulk, folded)


def _autocov(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    centred = x - x.mean(axis=-1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=-1)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=-1)[..., :n]
    return np.asarray(acov / n)


def _ess(x: np.ndarray) -> float:
    m, n = x.shape
    acov = _autocov(x)
    chain_mean = x.mean(axis=1)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += np.var(chain_mean, ddof=1)
    if var_plus == 0:
        return float("nan")
    rho = np.zeros(n)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[1] = rho_odd
    t = 1
    while t < n - 3 and (rho_even + rho_odd) > 0.0:
        rho_even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        rho_odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if (rho_even + rho_odd) >= 0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    # Geyer's initial monotone sequence.
    t = 1
    while t <= max_t - 2:
        if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    ess = m * n
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(ess))
    return float(ess / tau)


def ess_bulk(draws: np.ndarray) -> float:
    """Bulk effective sample size of a (chains, draws) array."""
    x = _split(np.asarray(draws, dtype=float))
    if x.shape[1] < 4 or not np.all(np.isfinite(x)):
        return float("nan")
    return _ess(_z_scale(x))


def _valid(x: np.ndarray, min_draws: int = 4) -> bool:
    return x.ndim == 2 and x.shape[1] >= min_draws and bool(np.all(np.isfinite(x)))


def ess_tail(draws: np.ndarray) -> float:
    """Tail ESS of a (chains, draws) array: the smaller ESS of the indicators of the 5%
    and 95% quantiles, which says how well the sampler explored the tails an interval
    is read from."""
    x = np.asarray(draws, dtype=float)
    if not _valid(x):
        return float("nan")
    out = []
    for q in (0.05, 0.95):
        indicator = (x <= np.quantile(x, q)).astype(float)
        split = _split(indicator)
        out.append(_ess(split) if np.ptp(split) > 0 else float("nan"))
    return float(min(out))


def _ess_mean(x: np.ndarray) -> float:
    return _ess(_split(x))


def mcse_mean(draws: np.ndarray) -> float:
    """Monte-Carlo standard error of the posterior mean: SD / sqrt(ESS of the mean)."""
    x = np.asarray(draws, dtype=float)
    if not _valid(x) or np.ptp(x) == 0:
        return float("nan")
    var = float(((x - x.mean()) ** 2).sum() / (x.size - 1))
    return float(np.sqrt(var / _ess_mean(x)))


def mcse_sd(draws: np.ndarray) -> float:
    """Monte-Carlo standard error of the posterior SD, by the delta method on the
    squared deviations' mean and their ESS (ArviZ's `mcse(method="sd")`)."""
    x = np.asarray(draws, dtype=float)
    if not _valid(x) or np.ptp(x) == 0:
        return float("nan")
    sq = (x - x.mean()) ** 2
    evar = float(sq.mean())
    varvar = (float((sq**2).mean()) - evar**2) / _ess_mean(sq)
    return float(np.sqrt(max(varvar, 0.0) / evar / 4))


def summarize(draws: np.ndarray, interval: float) -> Summary:
    """Posterior mean, SD, equal-tailed interval (its `interval` share of the draws
    between the two quantiles) and probability of direction of a (chains, draws) array,
    with its diagnostics and Monte-Carlo errors."""
    x = np.asarray(draws, dtype=float)
    flat = x.reshape(-1)
    tail = (1.0 - interval) / 2.0
    lower, upper = np.quantile(flat, [tail, 1.0 - tail])
    x2 = x if x.ndim == 2 else flat[None, :]
    return Summary(
        mean=float(flat.mean()),
        sd=float(flat.std(ddof=1)),
        lower=float(lower),
        upper=float(upper),
        r_hat=rhat(x2),
        ess_bulk=ess_bulk(x2),
        ess_tail=ess_tail(x2),
        mcse_mean=mcse_mean(x2),
        mcse_sd=mcse_sd(x2),
        p_direction=p_direction(flat),
    )


def finite_or_none(x: float) -> float | None:
    """A diagnostic as the record holds it: None where the draws could not give one."""
    return float(x) if np.isfinite(x) else None


def _worst(pick: Any, values: list[float]) -> float | None:
    """The worst of a diagnostic over every sampled value (None where none is finite)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(pick(finite)) if finite else None


def sampler_diagnostics(values: Iterable[np.ndarray], *, settings: Settings,
                        ran: Mapping[str, Any], divergences: int | None,
                        notes: Sequence[str], singular: bool) -> Diagnostics:
    """One rule for every sampler's fit, whichever library drew it: the worst R-hat and
    bulk and tail ESS over every sampled value (each a (chains, draws) array), converged
    only with R-hat <= RHAT_MAX and no divergence, and a warning for each of the chains,
    draws and warm-up asked in `settings` that the fit reports having run otherwise
    (some releases ignore settings silently) and for the divergences, after the
    engine's own `notes`.

    Two engines judged by two copies of this rule could call the same posterior
    converged in one and not in the other; the cross-implementation check would then
    compare a trusted fit with an untrusted one."""
    rhats: list[float] = []
    esses: list[float] = []
    tails: list[float] = []
    for a in values:
        rhats.append(rhat(a))
        esses.append(ess_bulk(a))
        tails.append(ess_tail(a))
    asked = {"chains": settings.chains, "draws": settings.draws, "tune": settings.tune}
    warnings = [*notes] + [f"asked for {k}={v} but the fit ran {k}={ran.get(k)}"
                           for k, v in asked.items()
                           if ran.get(k) is not None and ran.get(k) != v]
    if divergences:
        warnings.append(f"{divergences} divergent transitions")
    r_hat_max = _worst(np.nanmax, rhats)
    return Diagnostics(converged=r_hat_max is not None and r_hat_max <= RHAT_MAX
                       and not divergences,
                       singular=singular, warnings=tuple(dict.fromkeys(warnings)),
                       r_hat_max=r_hat_max, ess_bulk_min=_worst(np.nanmin, esses),
                       divergences=divergences, ess_tail_min=_worst(np.nanmin, tails),
                       chains=ran.get("chains"), draws=ran.get("draws"))
