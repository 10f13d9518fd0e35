"""The brms engine: the model sampled by Stan through R's brms (`r_scripts/brms_fit.R`).

All other Bayesian evidence in parity comes from one stack, PyMC (Bambi and the pymc
engine share its sampler set-up and its translation of priors). brms is an independent
implementation of the same models: its `(x | g)` with an LKJ prior is the pymc engine's
model, its `(x || g)` Bambi's, and given the same priors (a priors document that sets
every class the model has) the posteriors must agree within Monte-Carlo error. The
comparison checks exactly that (:mod:`parity.compare.rules`), so a translation error in
any of the three shows up as a disagreement that names itself.

The R side returns the draws; every summary, R-hat, ESS, Monte-Carlo error and
sensitivity is computed here by the same code as for Bambi's draws
(:mod:`parity.engines.posterior`, :mod:`parity.engines.sensitivity`), so the three
samplers are read alike. Divergences and the settings that ran are read back from the
Stan fit. Compiled programs are cached by their Stan code (see the R script), under
``<parity's cache>/stan``.

Not a default engine: it runs in the R worker (`process = "r"`), and compiling a new model
structure takes about half a minute to a minute.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from parity import boundary
from parity.engines.bambi import (
    SensitivityKey,
    component,
    fixed_effect,
    with_sensitivity,
)
from parity.engines.base import Refusal, status_fit
from parity.engines.cost import Cost, stan_cost
from parity.engines.posterior import (
    finite_or_none,
    mcse_mean,
    sampler_diagnostics,
    summarize,
)
from parity.engines.prior_set import KEY as PRIOR_SET
from parity.engines.prior_set import block_columns, fixed_columns
from parity.engines.prior_set import text as prior_text_of
from parity.engines.rbridge import RScriptEngine
from parity.engines.sensitivity import METHOD as SENSITIVITY_METHOD
from parity.engines.sensitivity import pair as sense
from parity.engines.sensitivity import too_large
from parity.environment import cache_dir, package_versions
from parity.rows.dims import DesignDims
from parity.rows.prepare import PreparedData
from parity.schema import (
    Fit,
    GroupEffect,
    Provenance,
    structure_of,
)
from parity.settings import Settings
from parity.spec.models import Model
from parity.spec.priors import Priors, priors_of

# Compiled Stan programs, under parity's cache directory.
STAN_CACHE = "stan"
# parity's compiler flags for Stan programs (beside the R scripts), used where the analyst
# has set none: -O1 without debugging symbols (measured on sleepstudy's model: compiled
# in 34 s against 65 s at R's -g -O2, sampling 4.7 s against 5.5 s).
MAKEVARS = "stan_makevars"


def resolved_priors(model: Model, data: PreparedData, priors: Priors | None
                    ) -> dict[str, Any] | None:
    """The document resolved for this model, one entry per parameter under lme4's
    names, as the R side translates it (None: brms's defaults throughout)."""
    if priors is None:
        return None

    def one(p: Any) -> dict[str, Any] | None:
        return None if p is None else {"dist": p.dist, "args": p.args}

    fixed = [{"term": name, "prior": one(priors.fixed_prior(term.label))}
             for term, names in fixed_columns(data.frame, model.spec, data.levels)
             for name in names]
    sd = [{"group": group, "term": name, "prior": one(priors.sd_prior(label, group))}
          for group, label, names in block_columns(data.frame, model.spec, data.levels)
          for name in names]
    # brms has an LKJ prior only where a block has correlations.
    correlated = any(b.correlated and int(b.intercept) + len(b.terms) > 1
                     for b in model.spec.random)
    return {"intercept": one(priors.intercept) if model.spec.intercept else None,
            "fixed": fixed, "sd": sd, "residual": one(priors.residual),
            "lkj_eta": priors.lkj_eta if correlated else None}


def prior_set(model: Model, resolved: dict[str, Any],
              correlated: list[str]) -> dict[str, str]:
    """Each parameter's prior in the shared vocabulary (:mod:`parity.engines.prior_set`):
    the document's where it sets one, else `brms default` (brms computes its own from
    the data, in families a document does not name)."""
    def txt(p: dict[str, Any] | None) -> str:
        return "brms default" if p is None else prior_text_of(p["dist"], p["args"])

    r = resolved
    out: dict[str, str] = {}
    if model.spec.intercept:
        out["intercept"] = txt(r["intercept"])
    for f in r["fixed"]:
        out[f"fixed {f['term']}"] = txt(f["prior"])
    for s in r["sd"]:
        out[f"sd {s['group']} {s['term']}"] = txt(s["prior"])
    out["residual"] = txt(r["residual"])
    for group in correlated:
        eta = r["lkj_eta"]
        out[f"lkj {group}"] = ("brms default" if eta is None
                               else prior_text_of("LKJ", {"eta": eta}))
    return out


def _loglik_fits(n_obs: int, settings: Settings) -> bool:
    """Whether the pointwise log-likelihood of the sensitivities is small enough to hold."""
    return too_large(n_obs, settings.draws * settings.chains) is None


class BrmsEngine(RScriptEngine):
    """brms (Stan's NUTS through rstan), with parity's priors document translated."""

    name = "brms"
    function = "parity_brms_fit"
    label = "brms"

    def refuses(self, model: Model, settings: Settings) -> Refusal | None:
        nested = [b.group_label for b in model.spec.random if len(b.group) > 1]
        if nested:
            return Refusal(f"brms: parity passes grouping factors of one column only, not "
                           f"{nested[0]} (make it a column of its own)")
        return super().refuses(model, settings)

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """What a fit holds and takes (:func:`parity.engines.cost.stan_cost`)."""
        return stan_cost(dims, settings, loglik=_loglik_fits(dims.n_obs, settings))

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        import rpy2.robjects as ro
        from rpy2.rinterface_lib.embedded import RRuntimeError

        from parity.engines.rscripts import r_script_path

        start = time.perf_counter()
        resolved = resolved_priors(model, data, priors_of(settings.priors))
        makevars = r_script_path(MAKEVARS)
        try:
            fn = self.r_function()
            ro.r["Sys.setenv"](PARITY_STAN_MAKEVARS=str(makevars))
            out = fn(self.r_frame(data), model.spec.lme4_formula(), self.r_levels(data),
                     reml=settings.reml, level=settings.interval, family=model.family,
                     draws=settings.draws, tune=settings.tune, chains=settings.chains,
                     target_accept=settings.target_accept, seed=settings.seed,
                     priors=ro.NULL if resolved is None else self.r_priors(resolved),
                     cache_dir=str(cache_dir() / STAN_CACHE),
                     loglik=_loglik_fits(data.n_obs, settings))
            doc = json.loads(str(out.rx2("json")[0]))
            draws = np.asarray(out.rx2("draws"), dtype=float)
        except RRuntimeError as exc:
            return status_fit(self.name, model, data, "failed",
                              f"brms: {str(exc).strip()}", settings,
                              time.perf_counter() - start)
        return self._to_fit(model, data, settings, doc, draws, resolved,
                            time.perf_counter() - start)

    def r_priors(self, resolved: dict[str, Any]) -> str:
        """The resolved priors as the R side reads them (JSON)."""
        return json.dumps(resolved)

    def _to_fit(self, model: Model, data: PreparedData, settings: Settings,
                doc: dict[str, Any], draws: np.ndarray, resolved: dict[str, Any] | None,
                seconds: float) -> Fit:
        chains = int(doc["chains"])
        per_chain = draws.shape[0] // chains
        columns = doc["columns"]

        def arr(i: int) -> np.ndarray:  # (chains, draws): R's columns are chain after chain
            return draws[:, i].reshape(chains, per_chain)

        level = settings.interval
        fixed, components, effects = [], [], []
        lp = ll = None
        for i, c in enumerate(columns):
            kind = c["kind"]
            if kind == "fixed":
                fixed.append(fixed_effect(c["term"], summarize(arr(i), level)))
            elif kind == "sd":
                components.append(component(c["group"], c.get("term"), None, "sd",
                                            summarize(arr(i), level)))
            elif kind == "corr":
                components.append(component(c["group"], c["term"], c["term2"], "corr",
                                            summarize(arr(i), level)))
            elif kind == "effect":
                a = arr(i)
                effects.append(GroupEffect(c["group"], str(c["level"]), c["term"],
                                           float(a.mean()), float(a.std(ddof=1)),
                                           finite_or_none(mcse_mean(a))))
            elif kind == "lprior":
                lp = arr(i)
            elif kind == "loglik":
                ll = arr(i)
        found, how = self._sensitivities(columns, arr, lp, ll, data.n_obs, chains * per_chain)
        fixed, components = with_sensitivity(fixed, components, found)
        structure = structure_of(list(model.spec.grouping_labels()), components)
        correlated = [g for g, s in structure.items() if s == "correlated"]
        cov = np.atleast_2d(np.cov(draws[:, [i for i, c in enumerate(columns)
                                              if c["kind"] == "fixed"]], rowvar=False))
        ran = dict(doc.get("ran") or {})
        versions = {**package_versions(("rpy2",)),
                    **{k: str(v) for k, v in (doc.get("versions") or {}).items()}}
        return Fit(
            model=model.name,
            formula=model.formula,
            engine=self.name,
            status="ok",
            reason=None,
            n_obs=int(doc["n_obs"]),
            n_dropped=data.n_dropped,
            fixed_effects=tuple(fixed),
            variance_components=tuple(components),
            diagnostics=sampler_diagnostics(
                (arr(i) for i, c in enumerate(columns)
                 if c["kind"] not in ("lprior", "loglik")),
                settings=settings,
                ran=ran, divergences=int(doc.get("divergences") or 0),
                notes=[str(w) for w in doc.get("warnings") or []],
                singular=boundary.singular(tuple(components))),
            provenance=Provenance(
                engine_version=versions.get("brms", ""),
                r_version=versions.get("r"),
                settings={
                    "requested": {**settings.as_dict(), "sampler": "rstan NUTS"},
                    "ran": ran,
                    "summary": f"posterior mean, posterior SD, {level:.0%} equal-tailed "
                               "interval (ETI)",
                    "priors": {" ".join(str(p[k]) for k in ("class", "group", "coef")
                                        if p.get(k)): (p["prior"] or "(flat)") + (
                        " (brms default)" if p.get("source") == "default" else "")
                               for p in doc.get("priors") or []},
                    PRIOR_SET: prior_set(model, resolved or resolved_priors(
                        model, data, Priors()) or {}, correlated),
                    "compiled": doc.get("compiled"),
                    "sensitivity": how,
                },
                seconds=seconds,
                versions=versions,
            ),
            engine_formula=str(doc.get("formula") or model.spec.lme4_formula()),
            structure=structure,
            family=model.family,
            link=model.fam.link,
            group_effects=tuple(effects),
            fixed_effects_cov=tuple(tuple(float(x) for x in row) for row in cov)
            if fixed else (),
            interval=level,
        )

    @staticmethod
    def _sensitivities(columns: list[dict[str, Any]], arr: Any, lp: np.ndarray | None,
                       ll: np.ndarray | None, n_obs: int, n_draws: int
                       ) -> tuple[dict[SensitivityKey, tuple[float | None, float | None]], str]:
        """Each coefficient's, SD's and correlation's power-scaling sensitivity, with
        brms's own log prior (its `lprior`) and the summed pointwise log-likelihood."""
        large = too_large(n_obs, n_draws)
        if large:
            return {}, large
        if lp is None or ll is None:
            return {}, "not computed: brms gave no lprior or log-likelihood"
        out: dict[SensitivityKey, tuple[float | None, float | None]] = {}
        for i, c in enumerate(columns):
            if c["kind"] == "fixed":
                out["fixed", c["term"], None] = sense(arr(i), lp, ll)
            elif c["kind"] == "sd":
                out["sd", c["group"], c.get("term")] = sense(arr(i), lp, ll)
            elif c["kind"] == "corr":
                out["corr", c["group"], f"{c['term']},{c['term2']}"] = sense(arr(i), lp, ll)
        return out, SENSITIVITY_METHOD

    def fallback(self, model: Model, data: PreparedData, settings: Settings) -> Fit | None:
        return None  # no recorded references: a posterior is sampled, not looked up

    def fallback_hint(self) -> str:
        return ("brms needs R with brms and rstan (`make r-deps`: Debian's r-cran-brms, "
                "r-cran-rstan and libboost-dev) and `pip install 'parity[r]'`")
