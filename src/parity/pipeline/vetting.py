"""Every fit vetted before it is compared: the trust rule (parity.compare.trust) given
the rows the fit was made from.

The rule judges a fit's numbers against the data's scale, which only the pipeline holds:
the fixed-effect design (R's columns, so its names are the fits' names) and the response
on its own scale. Each worker vets its fits under the shipped thresholds, so a fit
recorded, cached or studied has passed the rule too; a run vets them again under its own
tolerance policy, so that an analyst's `[trust]` thresholds decide.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from parity.compare.tolerances import Policy, load_policy
from parity.compare.trust import DataScale, TrustRules, data_scale, vet
from parity.rows.design import build_design
from parity.rows.prepare import PreparedData
from parity.schema import Fit
from parity.spec.family import link
from parity.spec.models import Model


def scale_of(model: Model, data: PreparedData) -> DataScale:
    """The data's scale for `model`'s fits: its fixed design, and its response as a
    proportion for a binomial model with trials."""
    frame = data.frame
    design = build_design(frame, model.spec.fixed, model.spec.intercept, data.levels)
    y = frame[model.spec.response].to_numpy(dtype=float)
    if model.trials is not None:
        with np.errstate(all="ignore"):
            y = y / frame[model.trials].to_numpy(dtype=float)
    return data_scale(design.names, design.matrix, y, link(model.family))


@cache
def shipped_rules() -> TrustRules:
    """The shipped `[trust]` thresholds (a worker knows no analyst's policy; the null
    device is never a pyproject.toml)."""
    return load_policy(project=Path(os.devnull)).trust


def vet_fit(fit: Fit, model: Model, data: PreparedData,
            rules: TrustRules | None = None) -> Fit:
    """`fit` under the trust rule, its numbers judged against `data`."""
    if not fit.has_numbers:
        return fit
    return vet(fit, rules or shipped_rules(), scale_of(model, data))


def vet_all(fits: Sequence[Fit], models: Sequence[Model], prepared: dict[str, PreparedData],
            policy: Policy) -> list[Fit]:
    """Each fit of a run under the run's own thresholds. A matched-structure refit
    (`variant`) is judged against its model's rows."""
    by_name = {m.name: m for m in models}
    scales: dict[str, DataScale] = {}
    out: list[Fit] = []
    for fit in fits:
        model = by_name.get(fit.model)
        if model is None or fit.model not in prepared or not fit.has_numbers:
            out.append(fit)
            continue
        if fit.model not in scales:
            scales[fit.model] = scale_of(model, prepared[fit.model])
        out.append(vet(fit, policy.trust, scales[fit.model]))
    return out
