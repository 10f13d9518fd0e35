"""When two posteriors are the same model under the same priors, and what parts them when not.

Two Bayesian engines that sample the same model (family, rows, covariance structure)
under the same priors must agree within Monte-Carlo error: Bambi and brms on independent
blocks, the pymc engine and brms on correlated ones, Bambi and the pymc engine where the
model has no correlated block. Their rows are a cross-implementation check, with no
tolerance but the Monte-Carlo error of the gap, and a gap beyond it is a bug in an engine
or in parity's translation of the model or its priors, which the row says.

"The same priors" is read from the fits, never assumed: each Bayesian engine records
every parameter's prior as its built model holds it (`provenance.settings["prior_set"]`,
one vocabulary, :mod:`parity.engines.prior_set`). Where the two records differ, the first
difference is the reason the rows give beside any structural one.
"""

from __future__ import annotations

from typing import Any

from parity.schema import PRIOR_SET, Fit


def prior_set(fit: Fit) -> dict[str, str] | None:
    """The priors a posterior ran under, per parameter (None: the fit did not record
    them, as a fit read from a record older than the field)."""
    found: Any = (fit.provenance.settings or {}).get(PRIOR_SET)
    if not isinstance(found, dict) or not found:
        return None
    return {str(k): str(v) for k, v in found.items()}


def prior_difference(fit: Fit, ref: Fit) -> str | None:
    """The first parameter whose prior differs between two posteriors, as a reason
    (None where both recorded the same priors, or either recorded none)."""
    a, b = prior_set(fit), prior_set(ref)
    if a is None or b is None:
        return None
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            left = a.get(key, "none")
            right = b.get(key, "none")
            return (f"the priors differ: {fit.label}'s {key} is {left}, {ref.label}'s "
                    f"{right}")
    return None


def same_model(fit: Fit, ref: Fit) -> bool:
    """Whether two posteriors sample exactly the same model under the same priors: the
    same family and rows, the same covariance structure of every grouping factor, and the
    same recorded prior for every parameter."""
    a, b = prior_set(fit), prior_set(ref)
    return (a is not None and a == b and fit.family == ref.family
            and fit.n_obs == ref.n_obs and fit.structure == ref.structure
            and fit.has_numbers and ref.has_numbers)
