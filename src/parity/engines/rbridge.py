"""The bridge to R that every R engine shares: parity's R scripts called through rpy2.

An R engine is a fit script (`r_scripts/<engine>_fit.R`) beside the shared R library
(`r_scripts/parity.R`), and a small subclass of :class:`RScriptEngine` naming the R
function that fits. Everything else is here, once: where the scripts are
(:func:`r_script_path`) and the one hash of the R code a fit depends on
(:func:`r_code_sha256`), both from :mod:`parity.engines.rscripts`, which the fit cache
and the recorded references read without this bridge; R embedded once per worker process
with the scripts sourced once, the rows handed to R as R itself would read them, and the
JSON record the R side returns read into a :class:`~parity.schema.Fit`
(:func:`fit_from_r_json`; its fields are listed in docs/results-schema.md).

The R function returns the same JSON its script prints under Rscript, so any row of a
parity report can be reproduced in R alone. R engines run in the worker of process group
"r", never beside JAX (rpy2 issues #585, #961).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from parity import boundary
from parity.engines.base import Engine, status_fit
from parity.engines.rscripts import (
    FORCE_RECORDED,
    forced_recorded,
    r_script_path,
)
from parity.environment import package_versions
from parity.registry import engine_info
from parity.rows.prepare import PreparedData
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    VarianceComponent,
    optional_float,
    structure_of,
)
from parity.settings import Settings
from parity.spec.models import Model

# The shared R library every fit script sources first.
SHARED_SCRIPT = "parity.R"
def lme4_group(name: str, groups: Sequence[str]) -> str:
    """The grouping factor of one of lme4's VarCorr rows: lme4 calls a factor's second
    block `subject.1` (as in `(Days || Subject)` or `(1 | g) + (0 + x | g)`)."""
    base = re.sub(r"\.\d+$", "", name)
    return name if name in groups or base not in groups else base


def _number(x: Any) -> float:
    """A number from R's JSON; R's NA (null) is NaN, which the trust rule then reads as
    a missing value (glmmTMB gives no SEs where its Hessian cannot be inverted)."""
    return float("nan") if x is None else float(x)


def _text(x: Any) -> str | None:
    return None if x is None else str(x)


def fixed_from_r(f: dict[str, Any]) -> FixedEffect:
    """One fixed-effect row of the R record; the test and interval fields, absent in
    records written before they were kept, are None."""
    kind = f.get("statistic_kind")
    return FixedEffect(
        f["term"], _number(f["estimate"]), _number(f["std_error"]), _number(f["lower"]),
        _number(f["upper"]), statistic=optional_float(f.get("statistic")),
        statistic_kind=kind if kind in ("t", "z") else None, df=optional_float(f.get("df")),
        df_method=_text(f.get("df_method")), p_value=optional_float(f.get("p_value")),
        interval_method=_text(f.get("interval_method")))


def fit_from_r_json(
    model: Model, doc: dict[str, Any], settings: Settings, seconds: float
) -> Fit:
    """A Fit from the record an R fit function returns (`parity_record()` in
    `r_scripts/parity.R`), or its script prints; `engine` in the record names the engine,
    whose registry row names its R package (the first of `r_packages`)."""
    engine = str(doc.get("engine") or "lme4")
    packages = engine_info(engine).r_packages
    package = packages[0] if packages else engine
    diag = doc["diagnostics"]
    groups = model.spec.grouping_labels()
    # The level of every interval in the record (records written before it was kept:
    # the run's setting, which the R side was given).
    interval = optional_float(doc.get("interval"))
    if interval is None:
        interval = settings.interval
    components = tuple(
        VarianceComponent(lme4_group(v["group"], groups), v.get("term"), v.get("term2"),
                          v["kind"],
                          float("nan") if v["estimate"] is None else float(v["estimate"]),
                          lower=optional_float(v.get("lower")),
                          upper=optional_float(v.get("upper")),
                          interval_method=_text(v.get("interval_method")))
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
        fixed_effects=tuple(fixed_from_r(f) for f in doc["fixed_effects"]),
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
                      "interval": interval,
                      **({"nagq": settings.nagq} if not model.fam.residual_sd else {}),
                      # What the engine ran beyond the common arguments (lme4's ddf and
                      # profile), as the record says, else as asked.
                      **{k: getattr(settings, k) for k in ("ddf", "profile")
                         if k in engine_info(engine).settings},
                      **{str(k): v for k, v in (doc.get("settings") or {}).items()}},
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
        interval=interval,
    )


class RScriptEngine(Engine):
    """An engine whose fit is an R function in parity's R scripts. A subclass names the
    function (`function`) and the package as people spell it (`label`); its scripts and
    R packages are its registry row's (`r_scripts`, `r_packages`)."""

    function: str
    label: str

    def r_settings(self, settings: Settings) -> dict[str, Any]:
        """Settings the engine's fit function takes beyond the common arguments (reml,
        level, family, trials, nagq, weights); none by default."""
        return {}

    def __init__(self) -> None:
        self._sourced: set[str] = set()

    @property
    def scripts(self) -> tuple[str, ...]:
        """The R scripts sourced, in order: the shared library, then the engine's own."""
        return engine_info(self.name).r_scripts

    def missing(self) -> str | None:
        if forced_recorded():
            return f"{FORCE_RECORDED}=recorded: live R is not used"
        try:
            import rpy2.robjects as ro
        except Exception as exc:  # rpy2 missing, or R not found / ABI mismatch
            return f"rpy2 with R and {self.label} is needed ({type(exc).__name__}: {exc})"
        for package in ("jsonlite", *engine_info(self.name).r_packages):
            if not bool(ro.r["requireNamespace"](package, quietly=True)[0]):
                return (f"the R package {package} is not installed (`make r-deps`: "
                        f"Debian's r-cran-{package.lower()})")
        return None

    def fallback(self, model: Model, data: PreparedData, settings: Settings) -> Fit | None:
        from parity.engines.recorded import find_recorded

        return find_recorded(model, data, settings, engine=self.name)

    def fallback_hint(self) -> str:
        from parity.engines.recorded import skipped_records

        skipped = "".join(f"; {s}" for s in skipped_records())
        debian = " ".join(f"r-cran-{p.lower()}"
                          for p in ("jsonlite", *engine_info(self.name).r_packages))
        return (f"no recorded {self.label} reference matches this model and data; install "
                f"R and {self.label} (`make r-deps`: Debian's r-base-core {debian}) and "
                "`pip install 'parity[r]'`, or record one where they are installed with "
                f"`parity record --engines {self.name} --out DIR` and point "
                "$PARITY_REFERENCES at DIR" + skipped)

    def source(self, *extra: str) -> None:
        """Source the engine's scripts, then `extra` ones, each once per process (one
        embedded R per worker)."""
        import rpy2.robjects as ro

        for script in (*self.scripts, *extra):
            if script not in self._sourced:
                ro.r["source"](str(r_script_path(script)))
                self._sourced.add(script)

    def r_function(self, name: str | None = None, *extra: str) -> Any:
        """An R function of the sourced scripts (the engine's fit function by default)."""
        import rpy2.robjects as ro

        self.source(*extra)
        return ro.globalenv[name or self.function]

    @staticmethod
    def r_frame(data: PreparedData) -> Any:
        """The prepared rows as an R data frame: factors as text (coded in R with
        `r_levels`), numbers through R's own parser."""
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

    @staticmethod
    def r_levels(data: PreparedData) -> Any:
        """Each factor's levels in parity's order, as an R list."""
        import rpy2.robjects as ro

        return ro.ListVector({k: ro.StrVector(list(v)) for k, v in data.levels.items()})

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        import rpy2.robjects as ro
        from rpy2.rinterface_lib.embedded import RRuntimeError

        start = time.perf_counter()
        try:
            fn = self.r_function()
            trials = ro.NULL if model.trials is None else model.trials
            # Only engines that fit weights take them (the others refuse such a model).
            weights = {} if model.weights is None else {"weights": model.weights}
            out = fn(self.r_frame(data), model.spec.lme4_formula(), self.r_levels(data),
                     reml=settings.reml, level=settings.interval, family=model.family,
                     trials=trials, nagq=settings.nagq, **weights,
                     **self.r_settings(settings))
        except RRuntimeError as exc:
            return status_fit(self.name, model, data, "failed",
                              f"{self.label}: {str(exc).strip()}", settings,
                              time.perf_counter() - start)
        doc = json.loads(str(out[0]))
        fit = fit_from_r_json(model, doc, settings, time.perf_counter() - start)
        # Rows were dropped before R saw them; count them as parity dropped them.
        return replace(fit, n_dropped=data.n_dropped)
