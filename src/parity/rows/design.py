"""Design matrices built from a model spec the way R's `model.matrix()` builds them.

statsmodels gets these matrices directly, not a formula: that keeps Python's formula
evaluator away from analysts' text, and it gives statsmodels R's treatment coding and
R's column names (`genderM`, `genderM:attitudepol`), which are parity's canonical names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from parity.spec.spec import Term


@dataclass(frozen=True)
class Design:
    matrix: np.ndarray
    names: tuple[str, ...]
    # What each column is made of (`a = 'b1'`, `x`), for errors that must name it.
    sources: tuple[str, ...] = ()


def _coding(
    terms: Sequence[Term], intercept: bool, levels: dict[str, tuple[str, ...]]
) -> list[dict[str, bool]]:
    """For each term, whether each factor in it is coded by contrasts (True) or by a full
    set of indicators (False), following R's rule: a factor gets contrasts when the term
    without it is already in the model (the empty term counts as present), and without an
    intercept the first factor met is given full indicators instead."""
    present: set[frozenset[str]] = {frozenset()} | {frozenset(t.variables) for t in terms}
    codings: list[dict[str, bool]] = []
    first_done = intercept
    for term in terms:
        code: dict[str, bool] = {}
        for v in term.variables:
            if v not in levels:
                continue
            code[v] = frozenset(term.variables) - {v} in present
            if not first_done and len(term.variables) == 1:
                code[v] = False
                first_done = True
        codings.append(code)
    return codings


def build_design(
    frame: pd.DataFrame,
    terms: Sequence[Term],
    intercept: bool,
    levels: dict[str, tuple[str, ...]],
) -> Design:
    """Columns of `model.matrix(~ terms)` on `frame`, named as R names them."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    sources: list[str] = []
    n = len(frame)
    if intercept:
        cols.append(np.ones(n))
        names.append("(Intercept)")
        sources.append("the intercept")
    for term, code in zip(terms, _coding(terms, intercept, levels), strict=True):
        parts: list[tuple[list[str], list[str], list[np.ndarray]]] = []
        for v in term.variables:
            if v in levels:
                values = frame[v].astype(str).to_numpy()
                lv = levels[v][1:] if code[v] else levels[v]
                parts.append(([f"{v}{lev}" for lev in lv], [f"{v} = {lev!r}" for lev in lv],
                              [(values == lev).astype(float) for lev in lv]))
            else:
                parts.append(([v], [v], [frame[v].to_numpy(dtype=float)]))
        # R varies the first factor fastest within an interaction.
        combos: list[tuple[str, str, np.ndarray]] = [("", "", np.ones(n))]
        for pnames, psources, pcols in parts:
            combos = [
                (f"{name}:{pn}" if name else pn, f"{src} × {ps}" if src else ps, col * pc)
                for pn, ps, pc in zip(pnames, psources, pcols, strict=True)
                for name, src, col in combos
            ]
        for name, src, col in combos:
            names.append(name)
            sources.append(src)
            cols.append(col)
    matrix = np.column_stack(cols) if cols else np.empty((n, 0))
    return Design(matrix=matrix, names=tuple(names), sources=tuple(sources))


def name_clashes(design: Design) -> list[str]:
    """Coefficients that R's naming gives one name (`a` level `b1` and `ab` level `1`
    are both `ab1`): each as `'ab1' (a = 'b1' and ab = '1')`."""
    by_name: dict[str, list[str]] = {}
    for name, src in zip(design.names, design.sources, strict=True):
        by_name.setdefault(name, []).append(src)
    return [f"{name!r} ({' and '.join(srcs)})" for name, srcs in by_name.items()
            if len(srcs) > 1]


def group_codes(frame: pd.DataFrame, group: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each row's group as an integer 0 … G-1, and each group's label.

    MixedLM sorts the distinct values of `groups` and indexes every per-group matrix of a
    `VCSpec` by that sorted order, while it splits rows by value. Handing it integers whose
    order is the order parity builds the matrices in makes the two orders one by
    construction; labels (text "10" sorts before "2") would not. A nested factor `a:b` is
    coded from the tuple of its columns, never from joined text, which could merge
    distinct groups ("x:y" + "z" and "x" + "y:z")."""
    grouped = frame.groupby(list(group), observed=True, sort=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    first_row = np.unique(codes, return_index=True)[1]  # by code: 0, 1, …
    values = frame[list(group)].astype(str).to_numpy()
    labels = [":".join(values[i]) for i in first_row]
    return codes, labels
