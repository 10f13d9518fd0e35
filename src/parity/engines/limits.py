"""Models an engine cannot express, refused before anything is fitted.

What no engine can identify (too few rows or groups, collinear columns) is refused by
:mod:`parity.rows.identifiable`; what parity's grammar refuses never gets this far. What is left
are limits of one engine that would otherwise pass unnoticed or fail late, after the
other engines have run. They are checked only when that engine is asked for, and the
message says how to go on: rename the column, or leave the engine out.

Bambi names its own parameters after the model (`Intercept`, `sigma`, `mu`) and its
posterior dimensions `chain` and `draw`. A column of the same name either stops Bambi
("Variable name sigma already exists") or, worse, is silently merged with the
parameter: `y ~ 1 + Intercept` samples one intercept, not two coefficients, and a column
`chain` disappears from the posterior.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import pandas as pd

from parity.engines.cost import BYTES_PER_DRAW_VALUE
from parity.errors import UsageError
from parity.settings import Settings
from parity.spec.models import Model

BAMBI_RESERVED: dict[str, str] = {
    "Intercept": "its intercept",
    "sigma": "its residual SD",
    "mu": "its linear predictor",
    "chain": "a posterior dimension",
    "draw": "a posterior dimension",
}


def bambi_problem(model: Model) -> str | None:
    """Why Bambi cannot fit `model` as written, or None."""
    for column in model.spec.variables():
        if column in BAMBI_RESERVED:
            return (f"Bambi cannot fit a column named {column!r} (the name of "
                    f"{BAMBI_RESERVED[column]}); rename the column, or leave bambi out of "
                    "the engines")
    return None


def sampler_bytes(model: Model, frame: pd.DataFrame, settings: Settings) -> int:
    """About how much memory Bambi's draws of `model` take: draws x chains x the
    parameters sampled (fixed effects, each group's effects and SDs, the residual SD)."""
    spec = model.spec
    params = len(spec.fixed) + 2
    for block in spec.random:
        groups = int(frame[list(block.group)].drop_duplicates().shape[0]) \
            if all(g in frame.columns for g in block.group) else 1
        per_group = len(block.terms) + int(block.intercept)
        params += per_group * (groups + 1)
    return settings.draws * settings.chains * params * BYTES_PER_DRAW_VALUE


def available_memory() -> int | None:
    """Physical memory in bytes (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(models: Sequence[Model], frame: pd.DataFrame, engines: Iterable[str],
                 settings: Settings, jobs: int = 1) -> None:
    """Refuse sampler settings whose draws cannot fit in memory (`--draws 100000000`
    would grow past the machine's memory after minutes of sampling)."""
    from parity.engines import engine_info

    slow = [e for e in dict.fromkeys(engines) if engine_info(e).kind == "bayesian"]
    if not slow or not models:
        return
    total = available_memory()
    if total is None:
        return
    worst = max(models, key=lambda m: sampler_bytes(m, frame, settings))
    need = sampler_bytes(worst, frame, settings) * max(1, min(jobs, len(models)))
    if need > total // 2:
        raise UsageError(f"the sampler settings need about {need / 2**30:.1f} GiB for the "
                         f"draws of model {worst.name} ({settings.draws} draws x "
                         f"{settings.chains} chains), more than half of this machine's "
                         f"{total / 2**30:.1f} GiB; ask for fewer draws or chains")


def nagq_problem(model: Model, settings: Settings) -> str | None:
    """Why `model` cannot take `settings.nagq`, or None. glmer reads nAGQ for a binomial
    or Poisson model with grouping terms only (lmer, glm and lm have no such setting, and
    an nAGQ they would ignore is refused rather than dropped); adaptive Gauss-Hermite
    quadrature (nAGQ > 1) also needs a single scalar random-effect term, while nAGQ = 0
    (the fixed effects estimated in the PIRLS step) works for any GLMM."""
    if settings.nagq == 1:
        return None
    blocks = model.spec.random
    scalar = len(blocks) == 1 and blocks[0].intercept and not blocks[0].terms
    if model.gaussian:
        why = "is Gaussian"
    elif not blocks:
        why = "has no grouping term"
    elif settings.nagq > 1 and not scalar:
        why = "has more than one random-effect term, or a random slope"
    else:
        return None
    if settings.nagq == 0:
        return (f"--nagq 0: model {model.name} {why}; lme4 takes nAGQ = 0 only for a "
                "binomial or Poisson model with grouping terms")
    return (f"--nagq {settings.nagq}: model {model.name} {why}; lme4 takes nAGQ > 1 "
            "only for a binomial or Poisson model with a single (1 | g) term")


def check_expressible(models: Sequence[Model], engines: Iterable[str],
                      settings: Settings | None = None) -> None:
    """Ask every engine's one refusal method (`Engine.refuses`) about every model, before
    anything is fitted: a refusal that stops the run (a column Bambi cannot take, an
    nAGQ lme4 cannot use) is a UsageError naming the model. The other refusals (a family
    or a structure the engine does not fit) leave that fit `unsupported`, with its
    reason, and the other engines run."""
    from parity.engines import load_engine

    settings = settings or Settings()
    for name in dict.fromkeys(engines):
        engine = load_engine(name)
        for model in models:
            refusal = engine.refuses(model, settings)
            if refusal is not None and refusal.stops_run:
                raise UsageError(refusal.reason)
    # Only lme4 reads nAGQ, but an nAGQ no model can take is refused whoever runs: the
    # setting was asked for, and would be silently ignored.
    for model in models:
        problem = nagq_problem(model, settings)
        if problem:
            raise UsageError(problem)
