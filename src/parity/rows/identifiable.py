"""Whether the rows can carry the model, checked once before any engine runs.

Each engine meets too few rows, too few groups or collinear columns in its own way:
lme4 stops with its own message or silently drops a column, statsmodels returns a
singular fit or NaN standard errors, Bambi samples an unidentified posterior. None of
those is a difference between engines worth reporting, so parity refuses such a model
up front with one message that names the numbers. The rules for groups are lme4's own
(`lmerControl`'s `check.nlev.gtr.1`, `check.nobs.vs.nlev`, `check.nobs.vs.nRE`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from parity.errors import DataError
from parity.rows.design import build_design
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
            where: str) -> None:
    n = len(frame)
    for block in spec.random:
        label = block.group_label
        n_levels = int(frame[list(block.group)].drop_duplicates().shape[0])
        if n_levels < 2:
            raise DataError(f"{where}: grouping factor {label!r} has {n_levels} level in the "
                            "complete rows; a random effect needs at least 2")
        if n_levels >= n:
            raise DataError(
                f"{where}: grouping factor {label!r} has {n_levels} levels for {n} complete "
                "rows; lme4 needs fewer levels than rows (each group needs replicates)")
        q = len(build_design(frame.head(1), block.terms, block.intercept, levels).names)
        if n_levels * q >= n:
            bar = "|" if block.correlated else "||"
            raise DataError(
                f"{where}: ({block.rhs()} {bar} {label}) has {n_levels * q} random effects "
                f"({n_levels} levels x {q} columns) for {n} complete rows; lme4 needs more "
                "rows than random effects")


def check_rows(frame: pd.DataFrame, spec: ModelSpec,
               levels: dict[str, tuple[str, ...]]) -> None:
    """Raise DataError, naming the formula and the numbers, when the complete rows
    `frame` (coded as for the engines) cannot identify `spec`."""
    where = spec.lme4_formula()
    _fixed(frame, spec, levels, where)
    _groups(frame, spec, levels, where)
