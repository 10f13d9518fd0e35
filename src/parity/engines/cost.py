"""What a fit will cost, estimated from the design's dimensions before anything is fitted.

Each engine's :meth:`~parity.engines.base.Engine.cost` is one of the formulas here, over
:class:`parity.rows.dims.DesignDims`. The formulas count the arrays that dominate a
fit's memory, with their constants named and calibrated: what matters is the order of
magnitude (lme4's sparse design of InstEval takes about 0.4 GB, statsmodels' dense one
would take tens), not the last megabyte. `benchmarks/cost_calibration.py` measures
statsmodels' estimate against the peak memory of real fits.
"""

from __future__ import annotations

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
# formulae (Bambi's design) codes each grouping factor as a dense integer indicator
# matrix, rows x levels, before it makes the sparse group-specific design from it.
FORMULAE_INDICATOR_BYTES = 8
# Each chain evaluates the linear predictor over every row: the fixed-effect design and
# each block's columns gathered by group (float64), and their products.
PREDICTOR_COPIES_PER_CHAIN = 2


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


def sampler_cost(dims: DesignDims, settings: Settings) -> Cost:
    """Bambi and the PyMC model: the draws (draws x chains x parameters), formulae's
    dense indicators of each grouping factor, and each chain's linear predictor over
    every row."""
    draws = settings.draws * settings.chains * posterior_values(dims) * BYTES_PER_DRAW_VALUE
    indicators = dims.n_obs * sum(dims.levels.values()) * FORMULAE_INDICATOR_BYTES
    predictor = (settings.chains * PREDICTOR_COPIES_PER_CHAIN * dims.n_obs
                 * (dims.n_fixed + dims.block_columns + 1) * BYTES_PER_FLOAT)
    return Cost(draws + indicators + predictor,
                basis=(f"{_n(settings.draws)} draws × {settings.chains} chains of "
                       f"{_n(posterior_values(dims))} parameters, and "
                       f"{_n(dims.n_obs)} rows"))
