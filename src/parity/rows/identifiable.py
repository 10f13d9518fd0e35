"""Whether the rows can carry the model, checked once before any engine runs.

Each engine meets too few rows, too few groups or collinear columns in its own way:
lme4 stops with its own message or silently drops a column, statsmodels returns a
singular fit or NaN standard errors, Bambi samples an unidentified posterior. None of
those is a difference between engines worth reporting, so parity refuses such a model
up front with one message that names the numbers. The rules for groups are lme4's own
(`check.nlev.gtr.1`, `check.nobs.vs.nlev`, `check.nobs.vs.nRE`), as lmer and glmer apply
them. A Gaussian model has a residual variance beside its random effects, so lmer needs
fewer levels than rows and fewer random effects than rows. A binomial or Poisson model has
none, and glmer (through `glFormula`) allows one level per row and as many random effects
as rows: an observation-level random effect, the usual way to let counts vary more than
the family's variance allows (lme4's `grouseticks`, `(1 | INDEX)`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from parity.errors import DataError
from parity.rows.design import build_design
from parity.spec.family import GAUSSIAN, Family
from parity.spec.spec import ModelSpec

# R's lm() tolerance for a column that adds nothing to the ones before it (qr tol).
ALIAS_TOL = 1e-7


def aliased_columns(matrix: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """Columns that are (numerically) combinations of the columns before them.

    The unpivoted QR's diagonal is each column's distance from the span of the earlier
    columns; R's lm() drops the same columns, in the same order."""
    if matrix.shape[1] == 0:
        return []
    r = np.linalg.qr(matrix, mode="r")
    norms = np.linalg.norm(matrix, axis=0)
    diag = np.abs(np.diag(r))
    return [n for n, d, s in zip(names, diag, norms, strict=True)
            if s == 0.0 or d <= ALIAS_TOL * s]


def _fixed(frame: pd.DataFrame, spec: ModelSpec, levels: dict[str, tuple[str, ...]],
           where: str) -> None:
    design = build_design(frame, spec.fixed, spec.intercept, levels)
    n, p = design.matrix.shape
    if n <= p:
        raise DataError(
            f"{where}: {n} complete rows for {p} fixed-effect columns; the model needs "
            "more rows than columns (drop terms, or check for missing values)")
    aliased = aliased_columns(design.matrix, design.names)
    if aliased:
        raise DataError(
            f"{where}: fixed-effect column(s) {', '.join(aliased)} are combinations of "
            "the columns before them (collinear, or a factor combination with no rows); "
            "lme4 would drop them and statsmodels and Bambi cannot, so the engines would "
            "fit different models: drop the term(s)")


def _groups(frame: pd.DataFrame, spec: ModelSpec, levels: dict[str, tuple[str, ...]],
            where: str, family: Family) -> None:
    """lme4's checks of each grouping factor. With a residual SD (lmer) the residual and
    a factor with one level per row, or a block with as many effects as rows, cannot be
    told apart; without one (glmer) they can, so glmer stops only past that point."""
    n = len(frame)
    one_per_row = not family.residual_sd  # glmer's allow.n
    fitter = "lmer" if family.residual_sd else "glmer"
    for block in spec.random:
        label = block.group_label
        n_levels = int(frame[list(block.group)].drop_duplicates().shape[0])
        if n_levels < 2:
            raise DataError(f"{where}: grouping factor {label!r} has {n_levels} level in the "
                            "complete rows; a random effect needs at least 2 (lme4's "
                            "check.nlev.gtr.1)")
        if n_levels > n or (n_levels == n and not one_per_row):
            raise DataError(
                f"{where}: grouping factor {label!r} has {n_levels} levels for {n} complete "
                f"rows; {fitter} needs fewer levels than rows in a {family.name} model, so "
                "that each group has replicates (lme4's check.nobs.vs.nlev)")
        q = len(build_design(frame.head(1), block.terms, block.intercept, levels).names)
        n_re = n_levels * q
        if n_re > n or (n_re == n and not one_per_row):
            bar = "|" if block.correlated else "||"
            most = "at most as many random effects as rows" if one_per_row \
                else "more rows than random effects"
            raise DataError(
                f"{where}: ({block.rhs()} {bar} {label}) has {n_re} random effects "
                f"({n_levels} levels x {q} columns) for {n} complete rows; {fitter} needs "
                f"{most} in a {family.name} model (lme4's check.nobs.vs.nRE)")


def check_rows(frame: pd.DataFrame, spec: ModelSpec,
               levels: dict[str, tuple[str, ...]], family: Family = GAUSSIAN) -> None:
    """Raise DataError, naming the formula and the numbers, when the complete rows
    `frame` (coded as for the engines) cannot identify `spec` under `family` (whose
    residual SD decides lmer's rules or glmer's)."""
    where = spec.lme4_formula()
    _fixed(frame, spec, levels, where)
    _groups(frame, spec, levels, where, family)
