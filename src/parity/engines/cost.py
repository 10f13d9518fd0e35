"""What a fit will cost, estimated from the design's dimensions before anything is fitted.

Each engine's :meth:`~parity.engines.base.Engine.cost` is one of the formulas here, over
:class:`parity.rows.dims.DesignDims`. The formulas count the arrays that dominate a
fit's memory, with their constants named and calibrated: what matters is the order of
magnitude (lme4's sparse design of InstEval takes about 0.4 GB, statsmodels' dense one
would take tens), not the last megabyte. `benchmarks/cost_calibration.py` measures
statsmodels' estimate against the peak memory of real fits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # engines.base imports this module; it stays light
    from parity.rows.dims import DesignDims
    from parity.settings import Settings

BYTES_PER_FLOAT = 8

# statsmodels' MixedLM fits several grouping factors (crossed, or nested as lme4's
# `(1 | a) + (1 | a:b)`) as variance components of one group that holds every row, so
# its random-effects design is dense: rows x (levels x columns of every block). The fit
# holds it many times over at once: parity's per-component matrices, MixedLM's
# augmented design (`_aex_r`), the Woodbury solver's solution against it and LAPACK's
# copy of its transpose, and, for the conditional covariances of the group effects,
# the scaled design, the solver's result and its intermediates. The peak resident
# memory a fit added on InstEval-shaped data (benchmarks/cost_calibration.py: 2,000,
# 5,000 and 10,000 rows, designs of 2 to 46 MB) was 16 MB (the modules the first fit
# imports) plus 11 designs, within 6% (the table in docs/engines.md).
MIXEDLM_DENSE_COPIES = 11
MIXEDLM_BASE_BYTES = 16 * 2**20
# Its time grew with the design's cells (rows x columns): 8.6 s, 37 s and 149 s on
# a 2-core machine at those sizes, about 26 microseconds a cell at the largest.
# An order of magnitude only: the iterations vary from data set to data set.
MIXEDLM_SECONDS_PER_CELL = 2.6e-5
# statsmodels' Bayesian mixed GLMs are given the same dense design (parity stacks its
# columns, a binomial count repeated once per trial); the library works on a sparse
# copy. Counted from the code, not measured: the columns, their stack, the row copy.
BAYES_GLM_DENSE_COPIES = 3

# lme4 keeps the random-effects design sparse (Zt, and the sparse Cholesky factor of
# Lambda'Zt Z Lambda + I): memory grows with the design's nonzeros (one per row and
# fixed or block column), not with its width. lme4 fitted InstEval (73,421 rows, 5
# nonzeros a row: 2 fixed columns, 3 blocks) at a peak of about 0.40 GB, of which R
# with lme4 loaded is 0.21 GB: about 0.5 KiB a nonzero. The constant doubles that, as
# the fill-in of the Cholesky factor of crossed factors grows faster than the nonzeros.
LME4_BYTES_PER_NONZERO = 1024
# glmmTMB tapes the Laplace approximation with TMB's automatic differentiation, the tape
# holding every operation on the nonzeros. InstEval took a peak of about 0.70 GB, about
# 1.3 KiB a nonzero above R at rest; doubled likewise.
GLMMTMB_BYTES_PER_NONZERO = 2560

# Bytes per posterior value as a Bayesian fit holds it: numpyro's draws, their NumPy
# and xarray copies and the summaries computed from them (float64), with room to spare
# (`parity.engines.limits.check_memory` counts the draws with it too).
BYTES_PER_DRAW_VALUE = 8 * 4
# formulae (Bambi's design) codes each grouping factor as a dense rows x levels matrix,
# and each chain (one XLA device each) holds its own copy while it samples: on all of
# InstEval (73,421 rows x 4,114 levels, 2.4 GB a copy) a fit's peak was 3.5 GB with 1
# chain and 5.8 GB with 2 (benchmarks/bambi_scale.json), 2.3 GB a chain above the 0.9 GB
# of Python, JAX, PyMC and Bambi at work (0.95 GB on the seed model).
FORMULAE_INDICATOR_BYTES = 8
SAMPLER_RUNTIME_BYTES = 900 * 2**20
# Each chain evaluates the linear predictor over every row: the fixed-effect design and
# each block's columns gathered by group (float64), and their products.
PREDICTOR_COPIES_PER_CHAIN = 2

# NUTS' time: every draw, warm-up included, takes a trajectory of leapfrog steps, each
# one gradient of the log density over every row. Measured with numpyro on 2 cores
# (benchmarks/bambi_scale.json): 55 steps a draw on the seed model (20 parameters), 61
# on VerbAgg (7,584 rows, 350 parameters), 159 on 5,000 rows of InstEval (3,600) and 63
# on all of it (4,120) after 200 warm-up iterations (1,023, numpyro's cap, after 60).
# The steps grow about as the fourth root of the parameters (Beskos et al. 2013, the
# cost of HMC in d dimensions); a short warm-up or a harder posterior (funnels, strong
# correlations) takes up to the cap. Against the fits' own seconds there, the estimate
# was -10%, -7%, +8%, -17%, and -58% after 60 warm-ups.
STEPS_PER_DRAW_SCALE = 20.0
# One leapfrog step of one chain on one core: a fixed cost, the gradient's cost per cell
# of the row-wise design (rows x (fixed columns + block columns + 1)), and per parameter
# (the position, momentum and mass-matrix updates).
SECONDS_PER_STEP = 2.5e-5
SECONDS_PER_STEP_CELL = 5e-9
SECONDS_PER_STEP_PARAMETER = 9e-8
# Compiling the model once, and reading the draws into a fit (summaries, ESS and R-hat
# of every parameter): about 5 microseconds a posterior value.
SAMPLER_COMPILE_SECONDS = 5.0
SECONDS_PER_POSTERIOR_VALUE = 5e-6


@dataclass(frozen=True)
class Cost:
    """An engine's estimate of one fit: peak memory in bytes and wall time in seconds
    (None: the engine makes no such estimate), and what the memory is mostly for, in
    words a refusal can quote ("a dense 73,421 × 4,114 random-effects design")."""

    memory_bytes: int | None = None
    seconds: float | None = None
    basis: str = ""

    @property
    def known(self) -> bool:
        return self.memory_bytes is not None or self.seconds is not None


NO_ESTIMATE = Cost()


def _n(value: int) -> str:
    return f"{value:,}"


def statsmodels_cost(dims: DesignDims, gaussian: bool) -> Cost:
    """statsmodels: a dense random-effects design where it fits several grouping
    factors as variance components of one all-rows group (above); one grouping factor
    is fitted group by group, each group's matrices its own rows only, so its design is
    rows x the block's columns."""
    if not dims.blocks:  # OLS or GLM: the fixed-effect design, a few times
        return Cost(MIXEDLM_DENSE_COPIES * dims.n_obs * dims.n_fixed * BYTES_PER_FLOAT,
                    basis=f"a {_n(dims.n_obs)} × {_n(dims.n_fixed)} fixed-effect design")
    if not gaussian:
        rows, width = dims.n_outcomes or dims.n_obs, dims.random_columns
        return Cost(BAYES_GLM_DENSE_COPIES * rows * width * BYTES_PER_FLOAT,
                    basis=f"a dense {_n(rows)} × {_n(width)} random-effects design")
    dense = dims.grouping_factors > 1
    width = dims.random_columns if dense else dims.block_columns
    cells = dims.n_obs * (width + dims.n_fixed)
    return Cost(MIXEDLM_BASE_BYTES + MIXEDLM_DENSE_COPIES * cells * BYTES_PER_FLOAT,
                seconds=MIXEDLM_SECONDS_PER_CELL * cells if dense else None,
                basis=(f"a dense {_n(dims.n_obs)} × {_n(width)} random-effects design"
                       if dense else f"a {_n(dims.n_obs)}-row design"))


def sparse_cost(dims: DesignDims, bytes_per_nonzero: int) -> Cost:
    """An R engine that keeps the random-effects design sparse: its nonzeros (one per
    row and block column, beside the fixed-effect design) times `bytes_per_nonzero`."""
    nonzeros = dims.n_obs * (dims.n_fixed + dims.block_columns)
    return Cost(nonzeros * bytes_per_nonzero,
                basis=f"a sparse design of {_n(nonzeros)} nonzeros")


def posterior_values(dims: DesignDims) -> int:
    """The parameters a Bayesian engine samples: the fixed effects, each level's
    coefficients and each block's SDs, the residual SD and one to spare."""
    return (dims.n_fixed + 2
            + sum(b.columns * (b.levels + 1) for b in dims.blocks))


def steps_per_draw(parameters: int) -> float:
    """NUTS' leapfrog steps a draw, typical of a mixed model of `parameters` values."""
    return STEPS_PER_DRAW_SCALE * max(parameters, 1) ** 0.25


def sampler_seconds(dims: DesignDims, settings: Settings, cores: int) -> float:
    """The chains' leapfrog steps (warm-up and draws) at the measured cost of a step over
    the design's cells, the chains sharing `cores`, plus compiling and summarising."""
    values = posterior_values(dims)
    cells = dims.n_obs * (dims.n_fixed + dims.block_columns + 1)
    step = (SECONDS_PER_STEP + SECONDS_PER_STEP_CELL * cells
            + SECONDS_PER_STEP_PARAMETER * values)
    chain_steps = settings.chains * (settings.draws + settings.tune) * steps_per_draw(values)
    sampling = chain_steps * step / max(1, min(cores, settings.chains))
    summary = settings.draws * settings.chains * values * SECONDS_PER_POSTERIOR_VALUE
    return SAMPLER_COMPILE_SECONDS + sampling + summary


def sampler_cost(dims: DesignDims, settings: Settings, cores: int | None = None) -> Cost:
    """Bambi: in memory, its runtime, the draws (draws x chains x parameters), each
    chain's copy of formulae's dense indicators of each grouping factor, and each
    chain's linear predictor over every row; in time, NUTS' steps on this machine's cores (`cores`,
    by default those this process may use)."""
    draws = settings.draws * settings.chains * posterior_values(dims) * BYTES_PER_DRAW_VALUE
    indicators = (settings.chains * dims.n_obs * sum(dims.levels.values())
                  * FORMULAE_INDICATOR_BYTES)
    predictor = (settings.chains * PREDICTOR_COPIES_PER_CHAIN * dims.n_obs
                 * (dims.n_fixed + dims.block_columns + 1) * BYTES_PER_FLOAT)
    return Cost(SAMPLER_RUNTIME_BYTES + draws + indicators + predictor,
                seconds=sampler_seconds(dims, settings, cores or usable_cores()),
                basis=(f"{_n(settings.tune)} warm-up and {_n(settings.draws)} draws × "
                       f"{settings.chains} chains of {_n(posterior_values(dims))} "
                       f"parameters over {_n(dims.n_obs)} rows"))


# brms through rstan, not calibrated beyond the politeness and sleepstudy models (where
# a fit's R process holds about 300 MB): R with brms and rstan loaded; the draws held three
# times (rstan's own, of every parameter including each level's standardised value; the
# draws array brms builds; the matrix handed to Python); the pointwise log-likelihood of
# the sensitivities (rows x draws) where it is computed; the data Stan holds; compiling a
# new model structure (about a minute here) and NUTS's steps as Bambi's, the chains one
# after another.
STAN_RUNTIME_BYTES = 300 * 2**20
STAN_DRAW_COPIES = 3
STAN_COMPILE_SECONDS = 60.0


def stan_cost(dims: DesignDims, settings: Settings, loglik: bool) -> Cost:
    """brms: R's runtime, the draws (each level's value twice: standardised and scaled),
    the pointwise log-likelihood where `loglik`, and the data; in time, compiling and
    the chains' steps on one core."""
    values = posterior_values(dims) + sum(b.columns * b.levels for b in dims.blocks)
    n_draws = settings.draws * settings.chains
    draws = n_draws * values * BYTES_PER_FLOAT * STAN_DRAW_COPIES
    pointwise = n_draws * dims.n_obs * BYTES_PER_FLOAT if loglik else 0
    data = dims.n_obs * (dims.n_fixed + dims.block_columns + 2) * BYTES_PER_FLOAT
    seconds = STAN_COMPILE_SECONDS + sampler_seconds(dims, settings, 1)
    return Cost(STAN_RUNTIME_BYTES + draws + pointwise + data, seconds=seconds,
                basis=(f"{_n(settings.tune)} warm-up and {_n(settings.draws)} draws × "
                       f"{settings.chains} chains of {_n(values)} parameters over "
                       f"{_n(dims.n_obs)} rows, compiled first"))


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system says it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
