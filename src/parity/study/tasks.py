"""What a Dask worker runs: one engine's fits of one batch of replicates.

A batch with a `variant` ("independent") is the reference engine's matched-structure
refit of its replicates (:mod:`parity.pipeline.matched`, as `parity run` refits lme4 for
the engines that fit independent random coefficients): the variant is built from the
design (its indicator columns come from the design's rows), each replicate's response is
swapped in, and the fits are read back under the model's own names.

R and JAX never share a process: an engine that embeds R fits its whole batch in a
child process of the worker (`python -m parity.study.child`, one embedded R for the
batch, as lme4 fits take milliseconds), so a Dask worker itself only ever holds JAX and
statsmodels. A Bayesian engine with a compiled fit (the registry's `compiled`) compiles
once per design and worker and reuses it for every replicate that worker gets; other
engines fit afresh in the worker.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from parity.engines.base import status_fit
from parity.registry import engine_info
from parity.rows.prepare import PreparedData
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.design import with_response

# Compiled fits held by this worker process: (engine, model, design, settings) -> fit.
_COMPILED: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class Batch:
    """One task: `engine`'s fits of `replicates` of the design with `groups` groups
    (of the model's `variant`, when given: the matched-structure refit)."""

    groups: int
    index: int
    engine: str
    replicates: tuple[int, ...]
    # One response per replicate, and the sampler seed of each.
    responses: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]
    variant: str | None = None
    # lme4's profile intervals of the SDs (an engine that embeds R; not for a variant).
    sd_intervals: bool = True

    @property
    def label(self) -> str:
        """The fits' label: the engine, or `engine:variant` (`lme4:independent`)."""
        return self.engine if self.variant is None else f"{self.engine}:{self.variant}"

    @property
    def name(self) -> str:
        tail = "" if self.variant is None else f"-{self.variant}"
        return f"g{self.groups}-b{self.index:04d}-{self.engine}{tail}"


def _compiled(engine: str, model: Model, data: PreparedData, settings: Settings) -> Any:
    key = (engine, model.name, model.formula, data.digest(), repr(settings))
    fit = _COMPILED.get(key)
    if fit is None:
        # PyTensor warns at import that it found no BLAS for its C backend; the compiled
        # fits run on JAX, so the warning would only clutter the study's terminal.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from parity.engines import compile_fit

            fit = _COMPILED[key] = compile_fit(engine, model, data, settings)
    return fit


def run_batch(batch: Batch, model: Model, design: PreparedData,
              settings: Settings) -> list[Fit]:
    """The fits of one batch, in replicate order (a failed fit is a Fit saying why)."""
    if batch.variant is not None:
        return _run_variant(batch, model, design, settings)
    info = engine_info(batch.engine)
    datas = [with_response(design, model.spec.response, y) for y in batch.responses]
    if info.embeds_r:
        return fit_in_child(batch.engine, model, datas, settings,
                            sd_intervals=batch.sd_intervals)
    if info.compiled is not None:
        try:
            compiled = _compiled(batch.engine, model, design, settings)
        except Exception as exc:
            why = f"{batch.engine}: cannot compile the model: {type(exc).__name__}: {exc}"
            return [status_fit(batch.engine, model, d, "failed", why, settings) for d in datas]
        return [compiled.fit(y, seed) for y, seed in
                zip(batch.responses, batch.seeds, strict=True)]
    from parity.pipeline.workers import fit_one

    return [fit_one(batch.engine, model, d, replace(settings, seed=seed))
            for d, seed in zip(datas, batch.seeds, strict=True)]


def _run_variant(batch: Batch, model: Model, design: PreparedData,
                 settings: Settings) -> list[Fit]:
    """The matched-structure refits of a batch, read back under `model`'s names (a fit
    that failed says so, under the variant's label)."""
    from parity.pipeline.matched import INDEPENDENT, independent_variant, read_back

    variant = independent_variant(model, design) if batch.variant == INDEPENDENT else None
    if variant is None:
        why = f"{batch.label}: {model.name!r} has no {batch.variant} variant"
        return [replace(status_fit(batch.engine, model, design, "failed", why, settings),
                        variant=batch.variant) for _ in batch.replicates]
    datas = [with_response(variant.data, model.spec.response, y) for y in batch.responses]
    if engine_info(batch.engine).embeds_r:
        fits = fit_in_child(batch.engine, variant.model, datas, settings, sd_intervals=False)
    else:
        from parity.pipeline.workers import fit_one

        fits = [fit_one(batch.engine, variant.model, d, settings) for d in datas]
    return [read_back(f, variant, model) for f in fits]


def fit_in_child(engine: str, model: Model, datas: list[PreparedData],
                 settings: Settings, sd_intervals: bool = True) -> list[Fit]:
    """`engine`'s fits of `datas` in one child process (its own embedded R), with
    lme4's profile intervals of the SDs unless `sd_intervals` is False."""
    with tempfile.TemporaryDirectory(prefix="parity-study-") as tmp:
        job, out = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "fits.pkl")
        with open(job, "wb") as fh:
            pickle.dump((engine, model, datas, settings, sd_intervals), fh)
        done = subprocess.run([sys.executable, "-m", "parity.study.child", job, out],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not os.path.exists(out):
            tail = " ".join((done.stderr or "").split())[-300:]
            why = f"{engine}: the child process fitting the batch ended with code " \
                  f"{done.returncode}: {tail or 'no message'}"
            return [status_fit(engine, model, d, "failed", why, settings) for d in datas]
        with open(out, "rb") as fh:
            fits: list[Fit] = pickle.load(fh)
    return fits
