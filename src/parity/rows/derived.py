"""The columns a formula's transforms make, computed once by parity for every engine.

`log(Reaction)` or `poly(Days, 2)` is evaluated here with numpy from the parsed tree
(never by R or Python's `eval`), on the complete rows, and stored under the spec's safe
alias; each engine then fits the same numbers. `scale` and `poly` follow R exactly
(`scale()`: centre, divide by the SD; `poly()`: R's orthogonal basis), so lme4 given
these columns matches lme4 given the analyst's own text.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from parity.errors import DataError
from parity.spec.spec import ModelSpec
from parity.spec.transforms import Derived, Expr

_UNARY = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
}
_OPS = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
}


def orthogonal_poly(x: np.ndarray, degree: int, name: str) -> np.ndarray:
    """R's `poly(x, degree)`: the columns of the QR of the centred powers, each scaled
    to unit length. Q times R's diagonal does not depend on the QR's signs, so the basis
    is R's column for column."""
    distinct = len(np.unique(x))
    if degree >= distinct:
        raise DataError(f"{name}: the degree ({degree}) must be below the number of "
                        f"distinct values of its argument ({distinct})")
    powers = np.vander(x - x.mean(), degree + 1, increasing=True)
    q, r = np.linalg.qr(powers)
    z = q * np.diag(r)
    basis = z[:, 1:]
    return basis / np.sqrt((basis ** 2).sum(axis=0))


def evaluate(expr: Expr, frame: pd.DataFrame) -> np.ndarray:
    """The values of `expr` on `frame`'s rows (a matrix for `poly`)."""
    if expr.kind == "col":
        column = frame[expr.text]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(f"column {expr.text!r} is not numeric, so it cannot be "
                            "transformed")
        return column.to_numpy(dtype=float)
    if expr.kind == "num":
        return np.full(len(frame), float(expr.text))
    if expr.kind in ("paren", "neg"):
        inner = evaluate(expr.args[0], frame)
        return inner if expr.kind == "paren" else -inner
    if expr.kind == "op":
        return np.asarray(_OPS[expr.text](evaluate(expr.args[0], frame),
                                          evaluate(expr.args[1], frame)))
    arg = evaluate(expr.args[0], frame)
    if expr.text == "I":
        return arg
    if expr.text == "scale":
        return np.asarray((arg - arg.mean()) / arg.std(ddof=1))
    if expr.text == "poly":
        return orthogonal_poly(arg, int(expr.args[1].text), expr.label)
    return np.asarray(_UNARY[expr.text](arg))


def _column(derived: Derived, frame: pd.DataFrame) -> np.ndarray:
    values = evaluate(derived.expr, frame)
    return values[:, derived.part - 1] if derived.part is not None else values


def _value(value: object) -> str:
    """A cell as an error message shows it (`0.0`, not `np.float64(0.0)`)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def _refuse_text(offset: Derived, frame: pd.DataFrame) -> None:
    """An offset is a number per row; one that reads a factor has no meaning."""
    for c in offset.expr.columns():
        column = frame[c]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(f"{offset.name}: column {c!r} is not numeric; an offset is a "
                            "number per row")


def refuse_alias_columns(columns: Iterable[object], spec: ModelSpec) -> None:
    """A data column named like an alias would be confused with the computed one."""
    taken = [d.alias for d in spec.derived if d.alias in set(columns)]
    if taken:
        raise DataError(f"column {taken[0]!r} is a name parity keeps for computed "
                        "columns; rename it")


def add_derived(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """`frame` with each derived column added under its alias; a value that is not a
    finite number (log of 0 or of a negative, an overflow) is refused naming its row
    (1-based, as the data's rows are counted) and the inputs there."""
    if not spec.derived:
        return frame
    out = frame.copy()
    with np.errstate(all="ignore"):
        for d in spec.derived:
            if d.alias in spec.offset:
                _refuse_text(d, frame)
            values = _column(d, frame)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                inputs = ", ".join(f"{c} = {_value(frame[c].iloc[row])}"
                                   for c in d.expr.columns())
                raise DataError(f"{d.name} is not a finite number at row "
                                f"{int(frame.index[row]) + 1} ({inputs}); parity refuses "
                                "it rather than drop the row")
            out[d.alias] = values
    return out
