"""Rows and factor coding that every engine shares.

Each library has its own default level order and NA handling; parity decides both once
here and passes the result explicitly to every engine, so differences between engines
are differences of method, never of data.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype, is_object_dtype

from parity.errors import DataError
from parity.rows.derived import add_derived, refuse_alias_columns
from parity.rows.design import build_design, name_clashes
from parity.rows.identifiable import check_rows
from parity.spec.columns import describe_columns, rename_advice, unusable_columns
from parity.spec.family import Family, family_of
from parity.spec.spec import ModelSpec


@dataclass(frozen=True)
class PreparedData:
    """The complete rows of the columns a model uses, with categoricals coded.

    `levels` gives each categorical's level order; the first level is the reference.
    `response_levels`: for a binomial response given as a two-level factor, its levels
    as (failure, success), the frame holding 0 and 1 in their place; None otherwise.
    """

    frame: pd.DataFrame
    levels: dict[str, tuple[str, ...]]
    n_dropped: int
    response_levels: tuple[str, str] | None = None

    @property
    def n_obs(self) -> int:
        return len(self.frame)

    def digest(self) -> str:
        """Content hash of the rows and coding a model saw (for provenance and caches)."""
        h = hashlib.sha256()
        h.update(self.frame.to_csv(index=False, float_format="%.17g").encode())
        h.update(repr(sorted(self.levels.items())).encode())
        if self.response_levels is not None:  # digests of numeric responses stay as they were
            h.update(repr(self.response_levels).encode())
        return h.hexdigest()


def _label(value: object) -> str:
    """A level's text as R's as.character() writes it (3, not 3.0, for whole numbers)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def level_order(values: pd.Series) -> tuple[str, ...]:
    """Sorted levels: numerically for numeric columns, by code point otherwise.

    This is R's default `factor()` order in the C locale, and the R side sorts the same
    way when it runs on its own, so the reference level agrees without being told.
    A pandas categorical keeps its own order (a factor loaded from R keeps R's levels,
    so its reference level is the one R would use), less the levels with no rows.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().map(_label))
        return tuple(lv for lv in map(_label, values.dtype.categories) if lv in present)
    uniq = pd.unique(values.dropna())
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        return tuple(_label(v) for v in sorted(uniq))
    return tuple(sorted({_label(v) for v in uniq}, key=_text_order))


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _text_order(label: str) -> tuple[int, float, str]:
    """Labels that are numbers written as text (ids read as text, so that `01` and `1`
    stay two groups) sort by value, then by text; other labels after them, by code
    point. A numeric factor keeps the reference level R would give it; the R side
    (`parity_levels`) sorts the same way."""
    if _NUMBER.fullmatch(label):
        return (0, float(label), label)
    return (1, 0.0, label)


def _is_real(value: object) -> bool:
    """A real number (Python or numpy int or float); a bool is a truth value, not one."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _numbers_as_floats(frame: pd.DataFrame, keep: set[str]) -> pd.DataFrame:
    """Object columns whose every value is a real number (a column assembled from Python
    floats, or ints and floats) as float columns, so that they are numeric as the same
    numbers in a float column are: a response is accepted, a covariate is not made a
    factor. Columns in `keep` (declared categorical, grouping factors) stay as they are:
    as floats, long integer ids would lose digits and merge."""
    numeric = [c for c in frame.columns
               if c not in keep and is_object_dtype(frame[c]) and len(frame) > 0
               and all(_is_real(v) for v in frame[c])]
    if not numeric:
        return frame
    out = frame.copy()
    for c in numeric:
        out[c] = frame[c].astype(float)
    return out


def _kind(value: object) -> str:
    """What a value is, as the clash message names it: number, text, or its type."""
    if _is_real(value):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def _refuse_label_clashes(values: pd.Series, column: str) -> None:
    """A level is its value's text (`_label`), so in a column of mixed types 1 (a number)
    and "1" (text) would silently become one group. Values of different kinds that read
    as the same text are refused, naming the column and both values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        distinct: Iterable[object] = values.dtype.categories
    elif is_object_dtype(values):
        distinct = values.dropna()
    else:
        return
    seen: dict[str, object] = {}
    for value in distinct:
        label = _label(value)
        first = seen.setdefault(label, value)
        if _kind(first) != _kind(value):
            raise DataError(
                f"column {column!r} holds {_show(first)} and {_show(value)}, which would "
                f"be one level {label!r}; make the column one type (all text, or all "
                "numbers)")


def _show(value: object) -> str:
    """A value and its kind for a message: `1 (number)`, `'1' (text)`."""
    text = repr(value) if isinstance(value, str) else str(value)
    return f"{text} ({_kind(value)})"


def _refuse_stray_text(values: pd.Series, column: str) -> None:
    """A column of numbers with a stray text value ("n/a", "12,5") would silently become
    a factor with one level per number. Unless it is declared categorical, refuse it,
    naming the first such row (1-based, as a spreadsheet counts data rows) and value."""
    if is_numeric_dtype(values) or is_bool_dtype(values):
        return
    text = values.map(lambda v: v if isinstance(v, str) else str(v))
    numeric = text.map(lambda v: bool(_NUMBER.fullmatch(v.strip())))
    if numeric.any() and not numeric.all():
        row = numeric.index[~numeric.to_numpy()][0]
        raise DataError(f"column {column!r} holds numbers and text: row {int(row) + 1} is "
                        f"{text[row]!r}; fix or blank that value, or declare the column "
                        "categorical (--categorical) if it is a factor")


def prepare(
    frame: pd.DataFrame, spec: ModelSpec, categorical: Iterable[str] = (),
    family: str | Family = "gaussian", trials: str | None = None,
    weights: str | None = None,
) -> PreparedData:
    """Keep the model's columns (and a binomial count's trials column, and the weights
    column), drop incomplete rows, and code categoricals.

    Declared categoricals, grouping factors and non-numeric columns are categorical.
    Levels come from the complete rows (as R's `drop.unused.levels`). A response that its
    family cannot model is refused here, before any engine sees it, and so are weights
    that are not finite positive numbers (lme4 refuses negative ones; a zero weight
    would drop a row that parity counts).
    """
    columns = spec.variables()
    sources = spec.source_columns()
    extra = [c for c in dict.fromkeys((trials, weights)) if c]  # columns beside the formula's
    needed = [*sources, *(c for c in extra if c not in sources)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        bad = unusable_columns(frame.columns) if frame.shape[1] > 1 else []
        advice = (f"; columns a formula cannot name: {rename_advice(bad)}" if bad else "")
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not in the data "
            f"({describe_columns(frame.columns)}){advice}"
        )
    refuse_alias_columns(frame.columns, spec)
    declared = set(categorical)
    factors = declared | set(spec.grouping_factors)
    if weights is not None and weights in factors:
        raise DataError(f"the weights column {weights!r} is categorical (declared, or a "
                        "grouping factor); weights are a positive number per row")
    for d in spec.derived:
        read = [c for c in d.expr.columns() if c in factors]
        if d.alias in spec.offset and read:
            raise DataError(f"{d.name} reads {read[0]!r}, which is categorical (declared, "
                            "or a grouping factor); an offset is a number per row")
    sub = frame.loc[:, needed]
    complete = _numbers_as_floats(sub.dropna(), declared | set(spec.grouping_factors))
    n_dropped = len(sub) - len(complete)
    if complete.empty:
        raise DataError("no complete rows for the columns the model uses")
    if spec.derived:
        keep = [*columns, *(c for c in extra if c not in columns)]
        complete = add_derived(complete, spec).loc[:, keep]
    fam = family if isinstance(family, Family) else family_of(family)
    response = complete[spec.response]
    response_levels = None
    if spec.response in declared or not is_numeric_dtype(response) or is_bool_dtype(response):
        if not fam.factor_response:
            example = next((v for v in response if not isinstance(v, (int, float))),
                           response.iloc[0])
            why = "declared categorical" if spec.response in declared else f"holds {example!r}"
            raise DataError(f"the response {spec.response!r} is not numeric ({why}); parity "
                            f"fits a numeric {fam.name} response (a two-level factor is a "
                            "binomial response)")
        complete, response_levels = _code_factor_response(complete, spec.response, trials)
    if trials is not None and trials not in columns:
        _refuse_stray_text(complete[trials], trials)
    check_response(complete, spec.response, fam, trials)
    if weights is not None:
        check_weights(complete, weights)
    for c in columns[1:]:
        if c not in declared and c not in spec.grouping_factors:
            _refuse_stray_text(complete[c], c)
    cats = [
        c
        for c in columns[1:]
        if c in declared or c in spec.grouping_factors or not is_numeric_dtype(complete[c])
    ]
    out = complete.reset_index(drop=True).copy()
    out[spec.response] = out[spec.response].astype(float)
    for c in extra:
        if c not in columns:
            out[c] = out[c].astype(float)
    levels: dict[str, tuple[str, ...]] = {}
    for c in cats:
        _refuse_label_clashes(complete[c], c)
        order = level_order(complete[c])
        if len(order) < 2:
            what = "grouping factor" if c in spec.grouping_factors else "categorical column"
            raise DataError(f"{what} {c!r} has only one level ({order[0]!r}) in the "
                            f"{len(complete)} complete rows; it needs at least 2")
        levels[c] = order
        out[c] = pd.Categorical(out[c].map(_label), categories=list(order))
    for c in columns[1:]:
        if c not in levels:
            out[c] = out[c].astype(float)
    for c in [spec.response, *(c for c in columns[1:] if c not in levels)]:
        n_inf = int((out[c].abs() == float("inf")).sum())
        if n_inf:
            raise DataError(f"column {c!r} has {n_inf} infinite value(s); the engines "
                            "need finite numbers (make them missing, or drop the rows)")
    _refuse_name_clashes(out, spec, levels)
    check_rows(out, spec, levels, fam)
    return PreparedData(frame=out, levels=levels, n_dropped=n_dropped,
                        response_levels=response_levels)


def _code_factor_response(frame: pd.DataFrame, response: str, trials: str | None
                          ) -> tuple[pd.DataFrame, tuple[str, str]]:
    """A binomial response given as a factor, coded as R's binomial family reads one: its
    first level (parity's level order, which is R's, or the stored order of a factor
    loaded from R) is failure, 0, the other success, 1. Coded once here, every engine
    fits the same numbers. Returns the coded rows and (failure, success)."""
    values = frame[response]
    if trials is not None:
        raise DataError(f"the response {response!r} is a factor, and a factor response is "
                        f"one outcome per row; with trials ({trials!r}) the response must "
                        "count the successes")
    _refuse_label_clashes(values, response)
    order = level_order(values)
    if len(order) != 2:
        shown = ", ".join(map(repr, order[:5])) + (", ..." if len(order) > 5 else "")
        raise DataError(f"the binomial response {response!r} is a factor with {len(order)} "
                        f"level(s) in the complete rows ({shown}); a factor response needs "
                        "exactly 2 (the first is failure, the other success)")
    out = frame.copy()
    out[response] = (values.astype(object).map(_label) == order[1]).astype(float).to_numpy()
    return out, (order[0], order[1])


def check_weights(frame: pd.DataFrame, weights: str) -> None:
    """Weights are finite numbers above 0, or a one-line DataError naming the first row
    (1-based, as the data's rows are counted) that is not."""
    column = frame[weights]
    _refuse_stray_text(column, weights)
    if not is_numeric_dtype(column) or is_bool_dtype(column):
        row = column.index[0]
        raise DataError(f"the weights column {weights!r} is not numeric (row "
                        f"{int(row) + 1} is {column[row]!r})")
    values = column.to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"weight {weights} = {float(values[i])!r} at row "
                        f"{int(column.index[i]) + 1}; weights must be finite numbers above 0")


def check_response(frame: pd.DataFrame, response: str, family: str | Family,
                   trials: str | None) -> None:
    """What a family needs of its response, as one-line DataErrors (the family's own
    check: :meth:`parity.spec.family.Family.check_response`)."""
    fam = family if isinstance(family, Family) else family_of(family)
    fam.check_response(frame, response, trials)


def _refuse_name_clashes(frame: pd.DataFrame, spec: ModelSpec,
                         levels: dict[str, tuple[str, ...]]) -> None:
    """Two coefficients with one name would be compared as one (the other never), so a
    model whose names clash is refused, naming both sources."""
    head = frame.head(1)
    designs = [build_design(head, spec.fixed, spec.intercept, levels)]
    designs += [build_design(head, b.terms, b.intercept, levels) for b in spec.random]
    for design in designs:
        clashes = name_clashes(design)
        if clashes:
            raise DataError(f"two coefficients would have one name: {'; '.join(clashes)}; "
                            "rename a column or a level so that the names differ")
