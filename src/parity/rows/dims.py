"""The dimensions of a model's design on its prepared rows, read once, before any fit.

What a fit costs depends on few numbers: the rows, the fixed-effect columns, and for
each `( … | g)` block the levels of its grouping factor and the columns that vary by
them. Each engine estimates its memory (and where it can, its time) from these
(:meth:`parity.engines.base.Engine.cost`), so a fit that cannot finish on this machine is
refused in a moment instead of failing after minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from parity.rows.design import build_design
from parity.rows.prepare import PreparedData
from parity.spec.models import Model


@dataclass(frozen=True)
class BlockDims:
    """One `( … | g)` block: lme4's name of its grouping factor, the factor's levels in
    the rows, and the block's columns (intercept and slopes, a factor's contrasts each a
    column), each of which takes one coefficient per level."""

    group: str
    levels: int
    columns: int

    @property
    def random_columns(self) -> int:
        """The block's columns of the random-effects design: levels x columns."""
        return self.levels * self.columns


@dataclass(frozen=True)
class DesignDims:
    """A model's design on its rows. `n_outcomes` counts a binomial count's trials one
    by one (statsmodels' Bayesian mixed GLM takes 0/1 outcomes), and is `n_obs` for
    every other model."""

    n_obs: int
    n_fixed: int
    blocks: tuple[BlockDims, ...] = ()
    n_outcomes: int = 0

    @property
    def levels(self) -> dict[str, int]:
        """Levels of each grouping factor, by lme4's name, each factor once."""
        return {b.group: b.levels for b in self.blocks}

    @property
    def random_columns(self) -> int:
        """The width of the whole random-effects design, Z (lme4's q)."""
        return sum(b.random_columns for b in self.blocks)

    @property
    def block_columns(self) -> int:
        """Random columns of one row's blocks (one level of each factor): Z's nonzeros
        per row."""
        return sum(b.columns for b in self.blocks)

    @property
    def grouping_factors(self) -> int:
        """How many distinct grouping factors the blocks have (`(1 | a) + (x || a)` is one)."""
        return len(self.levels)


def design_dims(model: Model, data: PreparedData) -> DesignDims:
    """`model`'s design dimensions on its prepared rows `data`. Column counts are read
    from R's coding of one row (`build_design`), levels from the rows, so the numbers
    are the ones every engine's design has."""
    frame, spec = data.frame, model.spec
    head = frame.head(1)
    n_fixed = len(build_design(head, spec.fixed, spec.intercept, data.levels).names)
    blocks = tuple(
        BlockDims(b.group_label, int(frame[list(b.group)].drop_duplicates().shape[0]),
                  len(build_design(head, b.terms, b.intercept, data.levels).names))
        for b in spec.random)
    outcomes = (int(frame[model.trials].sum()) if model.trials is not None
                and model.trials in frame.columns else data.n_obs)
    return DesignDims(data.n_obs, n_fixed, blocks, outcomes)
