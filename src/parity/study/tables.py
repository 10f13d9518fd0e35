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


def summarize(rows: Sequence[StudyRow], fits: Sequence[tuple[int, Fit]]
              ) -> list[dict[str, Any]]:
    """Per design × engine × quantity × term: bias and RMSE against the truth, interval
    coverage, the share of rows whose verdict agrees (of the rows with a verdict; a
    `not_comparable` row does not agree), the share of singular fits and of fits with
    divergent transitions, and `n` rows (one per replicate the engine fitted)."""
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
        errors = [r.estimate - r.truth for r in rs if r.truth is not None]
        covered = [float(r.covered) for r in rs if r.covered is not None]
        verdicts = [r.verdict for r in rs if r.verdict not in (None, REFERENCE)]
        divergent = [float(bool(r.divergences)) for r in rs if r.divergences is not None]
        out.append({
            "groups": groups, "engine": engine, "quantity": quantity, "term": term,
            "group": rs[0].group,
            "truth": rs[0].truth,
            "bias": _mean(errors),
            "rmse": float(np.sqrt(np.mean(np.square(errors)))) if errors else None,
            "coverage": _mean(covered),
            "n_intervals": len(covered),
            "agree_rate": _mean([float(v == "agree") for v in verdicts]),
            "n_verdicts": len(verdicts),
            "singular_rate": _mean([float(r.singular) for r in rs]),
            "divergence_rate": _mean(divergent),
            "n": len(rs),
            "failed_fits": failed.get((groups, engine), 0),
        })
    return out


def row_dicts(rows: Sequence[StudyRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
