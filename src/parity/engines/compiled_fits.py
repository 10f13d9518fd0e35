"""Bambi's and the pymc engine's fits of one design, compiled once and refitted per
response (:mod:`parity.engines.compiled` samples; this module builds each engine's model
and reads the draws into parity's record exactly as the engine's own `fit` does).

The model is built on the design's rows with the *original* response, so Bambi's default
priors (which scale with the response and the predictors) are those of the original data
for every replicate: a study varies the data, not the prior.
"""

from __future__ import annotations

import time
import warnings as warnings_module
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from parity.engines.bambi import BambiEngine, build_model, captured_logs
from parity.engines.base import status_fit
from parity.engines.compiled import CompiledSampler, Draws
from parity.rows.prepare import PreparedData
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model
from parity.spec.priors import priors_of


class CompiledFit(Protocol):
    engine: str

    def fit(self, y: np.ndarray, seed: int) -> Fit: ...


def _reported(pm_model: Any, drop: set[str]) -> list[str]:
    """The variables a fit reports, as PyMC's samplers keep them (no transformed values),
    less `drop` (the likelihood's own deterministics, which Bambi does not keep)."""
    from pymc.util import get_default_varnames

    names = [v.name for v in get_default_varnames(pm_model.unobserved_value_vars,
                                                  include_transformed=False)]
    return [n for n in names if n not in drop and not n.endswith("_offset")]


def _uncentre(bmodel: Any, posterior: Any) -> Any:
    """Bambi samples the intercept of centred predictors and reports the intercept of the
    predictors as given: intercept - mean(X) · coefficients, per draw (what Bambi's own
    post-processing does after `Model.fit`)."""
    backend = bmodel.backend
    components = getattr(backend, "distributional_components", None)
    if components is None:
        components = {k: v for k, v in backend.components.items()
                      if hasattr(v, "design_matrix_without_intercept")}
    if not getattr(bmodel, "center_predictors", True):
        return posterior
    for pm_component in components.values():
        component = pm_component.component
        if not (component.intercept_term and component.common_terms):
            continue
        names = [t.alias or t.name for t in component.common_terms.values()]
        chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
        coefs = np.column_stack([
            np.asarray(posterior[n].transpose("chain", "draw", ...).values)
            .reshape(chains * draws, -1) for n in names])
        means = np.asarray(pm_component.design_matrix_without_intercept).mean(0)
        shift = (coefs @ means).reshape(chains, draws)
        term = component.intercept_term
        name = term.alias or term.name
        intercept = posterior[name].transpose("chain", "draw")
        posterior[name] = intercept.copy(data=np.asarray(intercept.values) - shift)
    return posterior


class _Compiled:
    """What every compiled fit shares: sample a response, read the draws as the engine's
    own fit does (`_read`), and turn a library failure into a failed Fit."""

    engine: str
    model: Model
    data: PreparedData
    settings: Settings
    sampler: CompiledSampler

    def _read(self, draws: Draws, settings: Settings, seconds: float,
              notes: list[str]) -> Fit:
        raise NotImplementedError

    def fit(self, y: np.ndarray, seed: int) -> Fit:
        """The engine's fit of response `y` with sampler seed `seed`, as parity's record."""
        start = time.perf_counter()
        settings = replace(self.settings, seed=seed)
        try:
            with captured_logs() as logged, \
                    warnings_module.catch_warnings(record=True) as caught:
                warnings_module.simplefilter("always")
                draws = self.sampler.sample(y, seed)
            notes = logged + [f"{w.category.__name__}: {w.message}" for w in caught]
            fit = self._read(draws, settings, time.perf_counter() - start, notes)
        except Exception as exc:  # a library failure is a result, not a crash
            return status_fit(self.engine, self.model, self.data, "failed",
                              f"{self.engine}: {type(exc).__name__}: {exc}", settings,
                              time.perf_counter() - start)
        return _mark_compiled(fit, self.sampler)


class CompiledBambi(_Compiled):
    """Bambi's model of `model` on `data`, compiled once."""

    engine = "bambi"

    def __init__(self, model: Model, data: PreparedData, settings: Settings) -> None:
        refusal = BambiEngine().refuses(model, settings)
        if refusal is not None:
            raise ValueError(refusal.reason)
        if not model.gaussian:  # the compiled sampler reads Gaussian draws only
            raise ValueError("a compiled Bambi fit is built for Gaussian models only")
        self.model, self.data, self.settings = model, data, settings
        with captured_logs(), warnings_module.catch_warnings():
            warnings_module.simplefilter("ignore")
            self.bmodel = build_model(model, data, priors_of(settings.priors))
            self.bmodel.build()
        pm_model = self.bmodel.backend.model
        # Bambi keeps no deterministic that is a parameter of the likelihood (`mu`).
        params = set(self.bmodel.family.likelihood.params)
        drop = {v.name for v in pm_model.deterministics if v.name in params}
        self.sampler = CompiledSampler(pm_model, _reported(pm_model, drop), settings)

    def _read(self, draws: Draws, settings: Settings, seconds: float,
              notes: list[str]) -> Fit:
        draws.posterior = _uncentre(self.bmodel, draws.posterior)
        return BambiEngine()._to_fit(self.model, self.data, settings, draws, self.bmodel,
                                     seconds, notes, sensitivity=False)


class CompiledPymc(_Compiled):
    """The pymc engine's model (lme4's covariance structure) of `model`, compiled once."""

    engine = "pymc"

    def __init__(self, model: Model, data: PreparedData, settings: Settings) -> None:
        from parity.engines.pymc_model import PymcEngine

        engine = PymcEngine()
        refusal = engine.refuses(model, settings)
        if refusal is not None:
            raise ValueError(refusal.reason)
        self.model, self.data, self.settings = model, data, settings
        self._engine = engine
        with captured_logs(), warnings_module.catch_warnings():
            warnings_module.simplefilter("ignore")
            pm_model, self.layout, self.priors = engine.build(model, data,
                                                              priors_of(settings.priors))
        self.sampler = CompiledSampler(pm_model, _reported(pm_model, set()), settings)

    def _read(self, draws: Draws, settings: Settings, seconds: float,
              notes: list[str]) -> Fit:
        return self._engine._pymc_fit(self.model, self.data, settings, draws, self.layout,
                                      self.priors, seconds, notes, sensitivity=False)


def _mark_compiled(fit: Fit, sampler: CompiledSampler) -> Fit:
    """Say in the provenance that the sampler was compiled once and reused, and how the
    chains ran (in parallel on devices, or one after another)."""
    prov = fit.provenance
    # `sampler_run` 1 is the run that compiled (its seconds include the compilation).
    ran = {**prov.settings.get("ran", {}), "chain_method": sampler.chain_method,
           "compiled_once": True, "sampler_run": sampler.runs}
    return replace(fit, provenance=replace(prov, settings={**prov.settings, "ran": ran}))
