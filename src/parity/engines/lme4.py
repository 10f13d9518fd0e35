"""The lme4 bridge: parity's R code (`r_scripts/lme4_fit.R`) called through rpy2.

R is embedded once per worker process and the script sourced once. The R function
returns the JSON that the same script prints when run with Rscript, so a row of a parity
report can be reproduced in R alone, and both paths are parsed by one function here.
The bridge runs in its own worker process, never beside JAX (rpy2 issues #585, #961).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from parity import boundary
from parity.engines import rscript
from parity.engines.base import Engine, EngineKind, status_fit
from parity.environment import package_versions
from parity.rows.prepare import PreparedData
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    VarianceComponent,
    structure_of,
)
from parity.settings import Settings
from parity.spec.models import Model

SCRIPT_NAME = "lme4_fit.R"
PROFILE_SCRIPT = "lme4_profile.R"
# PARITY_LME4=recorded uses recorded references even where R is installed.
FORCE_RECORDED = "PARITY_LME4"


def r_script_path(name: str = SCRIPT_NAME) -> Path:
    """An R script (lme4's fitter by default), wherever it is installed."""
    return rscript.r_script_path(name)


def lme4_group(name: str, groups: Sequence[str]) -> str:
    """The grouping factor of one of lme4's VarCorr rows: lme4 calls a factor's second
    block `subject.1` (as in `(Days || Subject)` or `(1 | g) + (0 + x | g)`)."""
    base = re.sub(r"\.\d+$", "", name)
    return name if name in groups or base not in groups else base


def _number(x: Any) -> float:
    """A number from R's JSON; R's NA (null) is NaN, which the trust rule then reads as
    a missing value (glmmTMB gives no SEs where its Hessian cannot be inverted)."""
    return float("nan") if x is None else float(x)


def fit_from_r_json(
    model: Model, doc: dict[str, Any], settings: Settings, seconds: float
) -> Fit:
    """A Fit from the JSON that `parity_fit()` (or `parity_glmmtmb_fit()`) in R returns,
    or its script prints; `engine` in the JSON names the engine."""
    engine = str(doc.get("engine") or "lme4")
    package = {"lme4": "lme4", "glmmtmb": "glmmTMB"}.get(engine, engine)
    diag = doc["diagnostics"]
    groups = model.spec.grouping_labels()
    components = tuple(
        VarianceComponent(lme4_group(v["group"], groups), v.get("term"), v.get("term2"),
                          v["kind"],
                          float("nan") if v["estimate"] is None else float(v["estimate"]))
        for v in doc["variance_components"]
    )
    # R's versions, and the Python side of the bridge (rpy2) that carried them.
    versions = {**package_versions(("rpy2",)),
                **{k: str(v) for k, v in doc.get("versions", {}).items()}}
    return Fit(
        model=model.name,
        formula=model.formula,
        engine=engine,
        status="ok",
        reason=None,
        n_obs=int(doc["n_obs"]),
        n_dropped=int(doc["n_dropped"]),
        fixed_effects=tuple(
            FixedEffect(f["term"], _number(f["estimate"]), _number(f["std_error"]),
                        _number(f["lower"]), _number(f["upper"]))
            for f in doc["fixed_effects"]
        ),
        variance_components=components,
        diagnostics=Diagnostics(
            converged=bool(diag["converged"]),
            # The engine's own flag (lme4's isSingular()), or'ed with the one boundary
            # rule (parity.boundary).
            singular=boundary.singular(components, bool(diag["singular"])),
            warnings=tuple(str(w) for w in diag.get("warnings", [])),
        ),
        provenance=Provenance(
            engine_version=versions.get(package, ""),
            r_version=versions.get("r"),
            settings={"method": doc.get("method"), "reml": settings.reml,
                      "interval": settings.interval,
                      **({"nagq": settings.nagq} if model.family != "gaussian" else {})},
            seconds=seconds,
            versions=versions,
        ),
        engine_formula=doc.get("formula"),
        structure=structure_of(list(model.spec.grouping_labels()), components),
        fit_statistics={k: float(v) for k, v in (doc.get("fit_statistics") or {}).items()
                        if v is not None},
        criterion=doc.get("criterion"),
        group_effects=tuple(
            GroupEffect(lme4_group(str(g["group"]), groups), str(g["level"]), str(g["term"]),
                        _number(g["estimate"]),
                        None if g.get("std_error") is None else float(g["std_error"]))
            for g in doc.get("group_effects") or []
        ),
        fixed_effects_cov=tuple(tuple(_number(x) for x in row)
                                for row in doc.get("fixed_effects_cov") or []),
        family=str(doc.get("family") or model.family),
        link=str(doc.get("link") or "identity"),
    )


def _component_json(v: VarianceComponent) -> dict[str, Any]:
    """A component as the R side reads it (absent fields left out, not null)."""
    return {k: val for k, val in asdict(v).items() if val is not None}


class Lme4Engine(Engine):
    name = "lme4"
    kind: EngineKind = "frequentist"
    # The R scripts sourced, in order, and the function that fits.
    scripts: tuple[str, ...] = (SCRIPT_NAME,)
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

    def __init__(self) -> None:
        self._sourced = False
        self._profile_sourced = False

    def missing(self) -> str | None:
        if os.environ.get(FORCE_RECORDED, "") == "recorded":
            return f"{FORCE_RECORDED}=recorded: live R is not used"
        try:
            import rpy2.robjects  # noqa: F401
        except Exception as exc:  # rpy2 missing, or R not found / ABI mismatch
            return f"rpy2 with R and {self.label} is needed ({type(exc).__name__}: {exc})"
        return None

    def fallback(self, model: Model, data: PreparedData, settings: Settings) -> Fit | None:
        from parity.engines.recorded import find_recorded

        return find_recorded(model, data, settings, engine=self.name)

    def fallback_hint(self) -> str:
        from parity.engines.recorded import skipped_records

        skipped = "".join(f"; {s}" for s in skipped_records())
        return ("no recorded lme4 reference matches this model and data; install R and lme4 "
                "(`make r-deps`: Debian's r-base-core r-cran-lme4 r-cran-jsonlite) and "
                "`pip install 'parity[r]'`, or record one where R is installed with "
                "`parity record --out DIR` and point $PARITY_REFERENCES at DIR" + skipped)

    def _bridge(self, function: str | None = None) -> Any:
        import rpy2.robjects as ro

        if not self._sourced:  # one embedded R per worker; the scripts are sourced once
            for script in self.scripts:
                ro.r["source"](str(r_script_path(script)))
            self._sourced = True
        return ro.globalenv[function or self.function]

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

        levels = ro.ListVector({k: ro.StrVector(list(v)) for k, v in data.levels.items()})
        rows = [_component_json(v) for v in components]
        if not model.gaussian:
            fn = self._bridge("parity_glmer_at")
            trials = ro.NULL if model.trials is None else model.trials
            out = fn(self._r_frame(data), model.spec.lme4_formula(), levels, json.dumps(rows),
                     json.dumps(fixed or {}), model.family, trials)
            doc = json.loads(str(out[0]))
            return {"criterion": float(doc["criterion"]), "reml": False, "fixed": {}}
        fn = self._bridge("parity_reml_at")
        out = fn(self._r_frame(data), model.spec.lme4_formula(), levels, json.dumps(rows),
                 reml=reml)
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
        import rpy2.robjects as ro

        self._bridge()
        if not self._profile_sourced:
            ro.r["source"](str(r_script_path(PROFILE_SCRIPT)))
            self._profile_sourced = True
        levels = ro.ListVector({k: ro.StrVector(list(v)) for k, v in data.levels.items()})
        out = ro.globalenv["parity_sd_profile"](self._r_frame(data), model.spec.lme4_formula(),
                                                levels, reml=settings.reml,
                                                level=settings.interval)
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

    @staticmethod
    def _r_frame(data: PreparedData) -> Any:
        import rpy2.robjects as ro
        from rpy2.rlike.container import OrdDict

        as_numeric = ro.r["as.numeric"]
        cols = OrdDict()
        for name in data.frame.columns:
            col = data.frame[name]
            if name in data.levels:
                cols[name] = ro.StrVector([str(v) for v in col])
            else:
                # Numbers reach R through R's own parser, as they do when the script reads
                # the CSV itself: R's strtod can differ from Python's by one unit in the
                # last place, which a fit near a boundary amplifies.
                cols[name] = as_numeric(ro.StrVector([repr(float(v)) for v in col]))
        return ro.DataFrame(cols)

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        import rpy2.robjects as ro
        from rpy2.rinterface_lib.embedded import RRuntimeError

        start = time.perf_counter()
        formula = model.spec.lme4_formula()
        try:
            fn = self._bridge()
            levels = ro.ListVector({k: ro.StrVector(list(v)) for k, v in data.levels.items()})
            trials = ro.NULL if model.trials is None else model.trials
            out = fn(self._r_frame(data), formula, levels, reml=settings.reml,
                     level=settings.interval, family=model.family, trials=trials,
                     nagq=settings.nagq)
        except RRuntimeError as exc:
            return status_fit(self.name, model, data, "failed",
                              f"{self.label}: {str(exc).strip()}", settings,
                              time.perf_counter() - start)
        doc = json.loads(str(out[0]))
        fit = fit_from_r_json(model, doc, settings, time.perf_counter() - start)
        # Rows were dropped before R saw them; count them as parity dropped them.
        return replace(fit, n_dropped=data.n_dropped)


class GlmmTMBEngine(Lme4Engine):
    """glmmTMB, a second frequentist opinion on lme4's model: the same likelihood, reached
    through TMB's Laplace approximation and nlminb rather than lme4's profiled deviance and
    BOBYQA. It runs in the R worker beside lme4 (`r_scripts/glmmtmb_fit.R`), reports
    under lme4's names, and its solution is judged by lme4's criterion like any other
    frequentist engine's. `(x || g)` is glmmTMB's `diag(x | g)`, which, unlike lme4's
    `||`, also makes a factor's columns independent."""

    name = "glmmtmb"
    scripts = (SCRIPT_NAME, "glmmtmb_fit.R")
    function = "parity_glmmtmb_fit"
    label = "glmmTMB"
    # TMB's exact gradients let nlminb stop at the same point however the data are
    # presented: the invariance cases (regular fits, every transformation) hold to 1e-6,
    # far tighter than lme4's derivative-free BOBYQA.
    invariance_rtol = 1e-6

    def missing(self) -> str | None:
        reason = super().missing()
        if reason is not None:
            return reason
        import rpy2.robjects as ro

        if not bool(ro.r["requireNamespace"]("glmmTMB", quietly=True)[0]):
            return ("the R package glmmTMB is not installed (`make r-deps`: Debian's "
                    "r-cran-glmmtmb)")
        return None

    def fallback_hint(self) -> str:
        return ("no recorded glmmTMB reference matches this model and data; install R and "
                "glmmTMB (`make r-deps`: Debian's r-cran-glmmtmb) and `pip install "
                "'parity[r]'`, or record one where they are installed with `parity record "
                "--engines glmmtmb --out DIR` and point $PARITY_REFERENCES at DIR")

    def evaluate_at(self, model: Model, data: PreparedData,
                    components: Sequence[VarianceComponent], reml: bool = True,
                    fixed: dict[str, float] | None = None) -> dict[str, Any]:
        raise NotImplementedError("optimum checks evaluate lme4's criterion only")
