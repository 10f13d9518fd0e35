"""A study's tidy rows (replicate × engine × quantity × term) and their summary per
design × engine × quantity × term.

A row's `covered` says whether the engine's interval (Wald or t for lme4's and
statsmodels' fixed effects, the equal-tailed posterior interval for a Bayesian engine,
all at the run's `interval`, 95% by default; lme4's profile-likelihood interval for an SD
or a correlation) holds the true value; it is None where the engine gives no interval
(statsmodels gives none for an SD). `verdict` is the
comparison of the engine's fit of that replicate with the reference engine's, by the
tolerance policy of `parity run` (`reference` on the reference engine's own rows); an
engine that fitted independent random coefficients is judged against the reference's
matched-structure refit (`lme4:independent`), as in `parity run`, and `judged_against`
names which; `reason` is the comparison's reason where the verdict is not `agree`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from parity.compare.quantities import PARAMETERS
from parity.schema import Comparison, Fit, values
from parity.study.truth import Truth

REFERENCE = "reference"


@dataclass(frozen=True)
class StudyRow:
    groups: int
    replicate: int
    engine: str
    quantity: str
    term: str
    group: str | None
    estimate: float
    uncertainty: float | None
    lower: float | None
    upper: float | None
    truth: float | None
    covered: bool | None
    verdict: str | None
    singular: bool
    divergences: int | None
    # The label of the fit the verdict is against: the reference engine, or its
    # matched-structure refit (`lme4:independent`) for an engine that fitted independent
    # random coefficients; and the comparison's reason where the verdict is not `agree`.
    judged_against: str | None = None
    reason: str | None = None


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _covered(truth: float | None, lower: float | None, upper: float | None) -> bool | None:
    if truth is None or lower is None or upper is None:
        return None
    return bool(lower <= truth <= upper)


def fit_rows(fit: Fit, groups: int, replicate: int, truth: Truth,
             verdicts: dict[tuple[str, str], str]) -> list[StudyRow]:
    """The rows of one engine's fit of one replicate."""
    if fit.status != "ok":
        return []
    out: list[StudyRow] = []
    common: dict[str, Any] = dict(groups=groups, replicate=replicate, engine=fit.engine,
                                  singular=bool(fit.diagnostics.singular),
                                  divergences=fit.diagnostics.divergences)
    for v in values(fit):
        if v.quantity not in PARAMETERS:
            continue  # a study has truths for the model's parameters only
        t = truth.value(v.quantity, v.term)
        lo, hi = _finite(v.lower), _finite(v.upper)
        out.append(StudyRow(quantity=v.quantity, term=v.term, group=v.group,
                            estimate=v.estimate, uncertainty=_finite(v.uncertainty),
                            lower=lo, upper=hi, truth=t, covered=_covered(t, lo, hi),
                            verdict=verdicts.get((v.quantity, v.term)), **common))
    return out


def verdicts_against(comparisons: Iterable[Comparison], engine: str,
                     reference: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(quantity, term) -> (verdict, reason) of `engine` against `reference` (a fit's
    label: `lme4`, or the matched-structure `lme4:independent`); the reason is kept
    where the verdict is not `agree`."""
    return {(c.quantity, c.term): (c.verdict, None if c.verdict == "agree" else c.reason)
            for c in comparisons
            if c.engine == engine and c.reference == reference and c.level is None}


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


# Monte-Carlo error (Morris, White & Crowther 2019, "Using simulation studies to evaluate
# statistical methods", Stat Med 38:2074, table 6; the conventions of R's rsimsum). A
# number resting on fewer than MIN_REPLICATES replicates is reported but marked as too
# imprecise to read as a finding; MC_LEVEL is the level of the Wilson intervals of the
# shares, whatever the level of the engines' intervals.
MIN_REPLICATES = 20
MC_LEVEL = 0.95


def share_mcse(p: float | None, n: int) -> float | None:
    """The binomial Monte-Carlo SE of a share `p` of `n`: sqrt(p(1 − p)/n). It is 0 at
    p = 0 or 1, which says nothing about how far the true share may be: read the Wilson
    interval there."""
    if p is None or n < 1:
        return None
    return math.sqrt(p * (1.0 - p) / n)


def wilson(p: float | None, n: int, level: float = MC_LEVEL
           ) -> tuple[float | None, float | None]:
    """The Wilson score interval of a share `p` of `n` at `level`: unlike p ± z·MCSE it
    stays inside [0, 1] and has width at p = 0 or 1 (there it is [0, z²/(n + z²)] or
    [n/(n + z²), 1]), so a share that is all or nothing of a few replicates is not read
    as certain."""
    if p is None or n < 1:
        return None, None
    z = NormalDist().inv_cdf(0.5 + level / 2)
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def error_summary(estimates: Sequence[float], truth: float | None) -> dict[str, float | None]:
    """Bias, empirical SE and RMSE of `estimates` of `truth`, each with its Monte-Carlo SE:
    bias's sqrt(var(θ̂)/n) (variance with n − 1), the empirical SE's
    empSE/sqrt(2(n − 1)), the MSE's sqrt(Σ((θ̂ − θ)² − MSE)²/(n(n − 1))) and the RMSE's
    from it by the delta method, MCSE(MSE)/(2·RMSE). None where a number needs more
    estimates than there are (a Monte-Carlo SE needs two) or no truth."""
    est = np.asarray(estimates, dtype=float)
    n = len(est)
    out: dict[str, float | None] = dict.fromkeys(
        ("bias", "bias_mcse", "empse", "empse_mcse", "rmse", "rmse_mcse"))
    if n >= 2:
        empse = float(np.std(est, ddof=1))
        out["empse"], out["empse_mcse"] = empse, empse / math.sqrt(2 * (n - 1))
    if truth is None or n == 0:
        return out
    err = est - truth
    mse = float(np.mean(err ** 2))
    rmse = math.sqrt(mse)
    out["bias"], out["rmse"] = float(np.mean(err)), rmse
    if n >= 2:
        out["bias_mcse"] = math.sqrt(float(np.var(est, ddof=1)) / n)
        mse_mcse = math.sqrt(float(np.sum((err ** 2 - mse) ** 2)) / (n * (n - 1)))
        out["rmse_mcse"] = mse_mcse / (2 * rmse) if rmse > 0 else 0.0
    return out


def share_summary(name: str, outcomes: Sequence[float]) -> dict[str, float | None]:
    """A share of 0/1 `outcomes` as `name`, with `name_mcse` (binomial) and the Wilson
    interval `name_lower`, `name_upper` (at MC_LEVEL)."""
    p = _mean(outcomes)
    lo, hi = wilson(p, len(outcomes))
    return {name: p, f"{name}_mcse": share_mcse(p, len(outcomes)),
            f"{name}_lower": lo, f"{name}_upper": hi}


def summarize(rows: Sequence[StudyRow], fits: Sequence[tuple[int, Fit]]
              ) -> list[dict[str, Any]]:
    """Per design × engine × quantity × term: bias, empirical SE and RMSE against the
    truth, interval coverage, the share of rows whose verdict agrees (of the rows with a
    verdict; a `not_comparable` row does not agree), the share of singular fits and of
    fits with divergent transitions, and `n` rows (one per replicate the engine fitted).

    Each is a Monte-Carlo estimate and carries its Monte-Carlo SE (`<name>_mcse`; see
    `error_summary` and `share_mcse`); each share also carries its 95% Wilson interval
    (`<name>_lower`, `<name>_upper`), which stays informative where the share is 0 or 1
    and its binomial SE is 0. The count behind a share is `n_intervals` for coverage,
    `n_verdicts` for agree_rate, `n` (rows; fits for divergence_rate, `n_divergence`) for
    the others; a number with fewer than MIN_REPLICATES behind it is imprecise."""
    grouped: dict[tuple[int, str, str, str], list[StudyRow]] = {}
    for r in rows:
        grouped.setdefault((r.groups, r.engine, r.quantity, r.term), []).append(r)
    failed: dict[tuple[int, str], int] = {}
    for groups, fit in fits:
        if fit.status != "ok":
            failed[(groups, fit.engine)] = failed.get((groups, fit.engine), 0) + 1
    out: list[dict[str, Any]] = []
    for (groups, engine, quantity, term), rs in sorted(grouped.items(),
                                                       key=lambda kv: kv[0]):
        truth = rs[0].truth  # one truth per quantity and term
        covered = [float(r.covered) for r in rs if r.covered is not None]
        verdicts = [r.verdict for r in rs if r.verdict not in (None, REFERENCE)]
        divergent = [float(bool(r.divergences)) for r in rs if r.divergences is not None]
        out.append({
            "groups": groups, "engine": engine, "quantity": quantity, "term": term,
            "group": rs[0].group,
            "truth": truth,
            **error_summary([r.estimate for r in rs], truth),
            **share_summary("coverage", covered),
            "n_intervals": len(covered),
            **share_summary("agree_rate", [float(v == "agree") for v in verdicts]),
            "n_verdicts": len(verdicts),
            **share_summary("singular_rate", [float(r.singular) for r in rs]),
            **share_summary("divergence_rate", divergent),
            "n_divergence": len(divergent),
            "n": len(rs),
            "failed_fits": failed.get((groups, engine), 0),
        })
    return out


def row_dicts(rows: Sequence[StudyRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
