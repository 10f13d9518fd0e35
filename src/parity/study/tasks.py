"""What a Dask worker runs: one engine's fits of one batch of replicates.

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
    """One task: `engine`'s fits of `replicates` of the design with `groups` groups."""

    groups: int
    index: int
    engine: str
    replicates: tuple[int, ...]
    # One response per replicate, and the sampler seed of each.
    responses: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"g{self.groups}-b{self.index:04d}-{self.engine}"


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
    info = engine_info(batch.engine)
    datas = [with_response(design, model.spec.response, y) for y in batch.responses]
    if info.embeds_r:
        return fit_in_child(batch.engine, model, datas, settings)
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


def fit_in_child(engine: str, model: Model, datas: list[PreparedData],
                 settings: Settings) -> list[Fit]:
    """`engine`'s fits of `datas` in one child process (its own embedded R)."""
    with tempfile.TemporaryDirectory(prefix="parity-study-") as tmp:
        job, out = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "fits.pkl")
        with open(job, "wb") as fh:
            pickle.dump((engine, model, datas, settings), fh)
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
