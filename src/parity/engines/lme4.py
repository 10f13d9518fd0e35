"""The lme4 engine: `r_scripts/lme4_fit.R` through the R bridge (:mod:`parity.engines.rbridge`).

Beside its fits, lme4 has jobs no other engine has. Its criterion judges the other
frequentist engines' optima (:meth:`Lme4Engine.evaluate_at`), and it refits models with
independent random coefficients where another engine fitted them that way
(:mod:`parity.pipeline.matched`). Its profile-likelihood intervals of the SDs serve
`parity study` (:meth:`Lme4Engine.sd_intervals`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from parity.engines import rbridge
from parity.engines.base import Refusal
from parity.engines.cost import LME4_BYTES_PER_NONZERO, Cost, sparse_cost
from parity.engines.limits import nagq_problem
from parity.engines.rbridge import FORCE_RECORDED, RScriptEngine
from parity.rows.dims import DesignDims
from parity.rows.prepare import PreparedData
from parity.schema import VarianceComponent
from parity.settings import Settings
from parity.spec.models import Model

__all__ = ["FORCE_RECORDED", "Lme4Engine", "r_script_path"]

SCRIPT_NAME = "lme4_fit.R"
PROFILE_SCRIPT = "lme4_profile.R"


def r_script_path(name: str = SCRIPT_NAME) -> Path:
    """An R script (lme4's fitter by default), wherever it is installed."""
    return rbridge.r_script_path(name)


def _component_json(v: VarianceComponent) -> dict[str, Any]:
    """A component as the R side reads it (absent fields left out, not null)."""
    return {k: val for k, val in asdict(v).items() if val is not None}


class Lme4Engine(RScriptEngine):
    """lme4 (lmer, glmer; lm and glm for models without grouping terms): parity's
    reference, whose REML or ML criterion judges the other frequentist engines' optima."""

    name = "lme4"
    function = "parity_fit"
    label = "lme4"
    # lmer's default optimiser (nloptwrap's BOBYQA) stops at its own tolerances, at a
    # point that depends on the last bits of the criterion along its path. Measured on a
    # regular crossed model (parity.engines.invariance.sleepstudy_like, `(x || h)` with 5 levels
    # of h): permuting the rows moved sd(h) by 1.0e-4 relative, and the same data with a
    # factor's levels in another order gave estimates 1e-11 apart in one R process and
    # 4.4e-5 apart in another, while the REML criterion stayed within 1.4e-11. A flat
    # criterion turns the optimiser's tolerance into that much play in the estimates;
    # lme4 reproduces itself to this, not to 1e-6. The optimum's value is held to 1e-9.
    invariance_rtol = 1e-3

    def r_settings(self, settings: Settings) -> dict[str, Any]:
        """lmerTest's df method for lmer's t-tests, and profile-likelihood intervals."""
        return {"ddf": settings.ddf, "profile": settings.profile}

    def refuses(self, model: Model, settings: Settings) -> Refusal | None:
        why = nagq_problem(model, settings)
        return Refusal(why, stops_run=True) if why else super().refuses(model, settings)

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """lme4's random-effects design is sparse: its memory grows with the nonzeros."""
        return sparse_cost(dims, LME4_BYTES_PER_NONZERO)

    def evaluate_at(self, model: Model, data: PreparedData,
                    components: Sequence[VarianceComponent], reml: bool = True,
                    fixed: dict[str, float] | None = None) -> dict[str, Any]:
        """lme4's criterion of `model` at the variance components another engine
        estimated, one objective to judge two optima by: the REML criterion (-2 REML
        log-likelihood), or with `reml=False` the ML deviance (-2 log-likelihood). And
        the fixed effects lme4 profiles out there (`fixed`, term -> GLS estimate), which
        an engine's own fixed effects must equal if they belong to its components.

        For a binomial or Poisson model it is glmer's Laplace deviance at the other
        engine's variance components and fixed effects (`fixed`), which the Laplace
        approximation does not profile out."""
        import rpy2.robjects as ro

        levels = self.r_levels(data)
        rows = [_component_json(v) for v in components]
        weights = ro.NULL if model.weights is None else model.weights
        if not model.gaussian:
            fn = self.r_function("parity_glmer_at")
            trials = ro.NULL if model.trials is None else model.trials
            out = fn(self.r_frame(data), model.spec.lme4_formula(), levels, json.dumps(rows),
                     json.dumps(fixed or {}), model.family, trials, weights=weights)
            doc = json.loads(str(out[0]))
            return {"criterion": float(doc["criterion"]), "reml": False, "fixed": {}}
        fn = self.r_function("parity_reml_at")
        out = fn(self.r_frame(data), model.spec.lme4_formula(), levels, json.dumps(rows),
                 reml=reml, weights=weights)
        doc = json.loads(str(out[0]))
        return {"criterion": float(doc["criterion"]), "reml": bool(doc.get("reml", reml)),
                "fixed": {str(k): float(v) for k, v in (doc.get("fixed") or {}).items()}}

    def sd_intervals(self, model: Model, data: PreparedData, settings: Settings
                     ) -> tuple[dict[tuple[str, str | None, str | None], tuple[float, float]],
                                str | None]:
        """Profile-likelihood intervals of the SDs and correlations at `settings.interval`
        (`confint(method = "profile")`, `r_scripts/lme4_profile.R`), keyed by (group,
        term, term2); or no intervals and why (a profile that fails, as lme4's does when
        it finds a lower deviance). Used by `parity study`, not by `parity run`."""
        profile = self.r_function("parity_sd_profile", PROFILE_SCRIPT)
        import rpy2.robjects as ro

        out = profile(self.r_frame(data), model.spec.lme4_formula(), self.r_levels(data),
                      reml=settings.reml, level=settings.interval, family=model.family,
                      trials=ro.NULL if model.trials is None else model.trials,
                      nagq=settings.nagq,
                      weights=ro.NULL if model.weights is None else model.weights)
        doc = json.loads(str(out[0]))
        if "error" in doc:
            return {}, f"no profile intervals: {doc['error']}"
        found: dict[tuple[str, str | None, str | None], tuple[float, float]] = {}
        for row in doc["rows"]:
            if row["lower"] is None or row["upper"] is None:
                continue
            key = (str(row["group"]), row["term"], row["term2"])
            found[key] = (float(row["lower"]), float(row["upper"]))
            if row["term2"] is not None:
                found[(str(row["group"]), row["term2"], row["term"])] = found[key]
        return found, None
