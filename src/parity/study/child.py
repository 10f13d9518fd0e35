"""A child process fitting one batch with an engine that embeds R (see
:mod:`parity.study.tasks`): `python -m parity.study.child job.pkl fits.pkl`. The job is
(engine, model, datas, settings, sd_intervals); a matched-structure refit's batch comes
as the variant's model and data and skips the profile intervals."""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import replace
from typing import Any

from parity.rows.prepare import PreparedData
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model

PROFILE = "profile likelihood (lme4's confint(method = \"profile\"))"


def with_sd_intervals(engine: Any, model: Model, data: PreparedData, settings: Settings,
                      fit: Fit) -> Fit:
    """lme4's fit with profile-likelihood intervals on its SDs and correlations, so a
    study's coverage of the true SDs covers lme4 too; where the profile fails, the fit
    keeps no interval and says why in its warnings."""
    if fit.status != "ok" or not model.spec.random or not hasattr(engine, "sd_intervals"):
        return fit
    try:
        found, why = engine.sd_intervals(model, data, settings)
    except Exception as exc:  # the fit stands without intervals
        found, why = {}, f"no profile intervals: {type(exc).__name__}: {exc}"
    components = tuple(
        replace(v, lower=found[(v.group, v.term, v.term2)][0],
                upper=found[(v.group, v.term, v.term2)][1])
        if (v.group, v.term, v.term2) in found else v
        for v in fit.variance_components)
    notes = fit.diagnostics.warnings + ((" ".join(why.split()),) if why else ())
    prov = fit.provenance
    return replace(fit, variance_components=components,
                   diagnostics=replace(fit.diagnostics, warnings=notes),
                   provenance=replace(prov, settings={**prov.settings,
                                                      "sd_intervals": PROFILE}))


def main(argv: list[str]) -> int:
    from parity.pipeline.workers import fit_one, init_worker, worker_engine

    init_worker(None, 1)
    job, out = argv
    with open(job, "rb") as fh:
        engine, model, datas, settings, sd_intervals = pickle.load(fh)
    fits = [fit_one(engine, model, d, settings) for d in datas]
    if sd_intervals:  # not for a matched-structure refit, which is only compared with
        fitted = worker_engine(engine)  # lme4's profile intervals of the SDs, if any
        fits = [with_sd_intervals(fitted, model, d, settings, f)
                for d, f in zip(datas, fits, strict=True)]
    with open(out + ".tmp", "wb") as fh:
        pickle.dump(fits, fh)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
