"""Metamorphic checks: the same data, presented differently, must give the same fit.

A fit depends on the partition of the rows into groups, on the values, and on which level
of each factor is the reference. It must not depend on the order of the rows, on the text
of a group's label (`s01` or `1`, sorted any way), on the names of the columns, or on the
order of a factor's non-reference levels. Each transformation here changes only such a
presentation and says how to read the transformed fit's names back, so that two fits can
be compared term by term. Like scikit-learn's `check_estimator`, the checks take any
engine: the test suite runs them over every registered engine, and an engine added to
the registry is checked without a line of new test code.

The transformations are plain functions of explicit parameters (a permutation, a list of
new labels); the test suite draws those parameters with Hypothesis. Each changes only the
presentation and keeps the rest of the case (its family, and a binomial count's trials
column, renamed with the others), so a Poisson case is checked as Poisson.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from parity.schema import Fit, values
from parity.spec.grammar import parse_formula
from parity.spec.models import Model, make_model
from parity.spec.spec import ModelSpec, RandomTerm, Term
from parity.spec.transforms import Expr


@dataclass(frozen=True)
class Case:
    """A model and the data it is fitted on."""

    name: str
    frame: pd.DataFrame
    formula: str
    categorical: tuple[str, ...] = ()
    family: str = "gaussian"
    trials: str | None = None

    def model(self) -> Model:
        """The Model an engine is given for this case, family and trials included."""
        return make_model(self.name, self.formula, self.categorical, self.family,
                          self.trials)


@dataclass(frozen=True)
class Transformed:
    """A case presented differently, and how to read its fit's names back.

    `renamed` maps each original column to its new name (identity when unchanged);
    `levels` maps a relabelled grouping column's new labels (as text) to the old ones,
    so that group effects can be matched level by level."""

    case: Case
    description: str
    renamed: dict[str, str] = field(default_factory=dict)
    levels: dict[str, dict[str, str]] = field(default_factory=dict)


def permute_rows(case: Case, order: Sequence[int]) -> Transformed:
    """The rows in another order."""
    frame = case.frame.iloc[list(order)].reset_index(drop=True)
    return Transformed(replace(case, frame=frame), "rows permuted")


def relabel(case: Case, column: str, labels: Sequence[object]) -> Transformed:
    """Each level of `column` (in order of first appearance) gets the new label at the
    same position: the partition is unchanged, its text and sort order are not. Only for
    grouping factors, whose labels appear in no estimate's name."""
    old = list(pd.unique(case.frame[column].dropna()))
    if len(set(map(str, labels))) != len(old) or len(labels) != len(old):
        raise ValueError(f"need {len(old)} distinct labels for {column!r}")
    mapping = dict(zip(old, labels, strict=True))
    frame = case.frame.copy()
    frame[column] = frame[column].map(mapping)
    shown = ", ".join(map(str, list(labels)[:4]))
    return Transformed(replace(case, frame=frame),
                       f"{column} relabelled ({shown}, …)",
                       levels={column: {str(new): str(o) for o, new in mapping.items()}})


def rename_columns(case: Case, mapping: Mapping[str, str]) -> Transformed:
    """Columns renamed, the formula (and a binomial count's trials column) with them."""
    full = {c: mapping.get(c, c) for c in case.frame.columns}
    frame = case.frame.rename(columns=full)
    original = parse_formula(case.formula)
    spec = _rename_spec(original, full)
    categorical = tuple(full.get(c, c) for c in case.categorical)
    trials = None if case.trials is None else full.get(case.trials, case.trials)
    # A transform's name carries its column (`log(y)`, `poly(x, 2)1`): reading the fit
    # back maps each transform's new text to the old, as it maps the columns.
    calls = {d.expr.label: _rename_expr(d.expr, full).label for d in original.derived}
    return Transformed(replace(case, frame=frame, formula=spec.written_formula(),
                               categorical=categorical, trials=trials),
                       "columns renamed (" + ", ".join(f"{a}->{b}" for a, b in mapping.items())
                       + ")", renamed={**full, **calls})


def reorder_levels(case: Case, column: str, order: Sequence[int]) -> Transformed:
    """The non-reference levels of factor `column` in another order (`order` permutes
    them); the reference level stays first, so every coefficient keeps its meaning."""
    levels = sorted(map(str, pd.unique(case.frame[column].dropna())))
    rest = [levels[1:][i] for i in order]
    frame = case.frame.copy()
    frame[column] = pd.Categorical(frame[column].astype(str), categories=[levels[0], *rest])
    return Transformed(replace(case, frame=frame),
                       f"levels of {column} reordered ({', '.join([levels[0], *rest])})")


def _rename_spec(spec: ModelSpec, names: Mapping[str, str]) -> ModelSpec:
    def term(t: Term) -> Term:
        return Term(tuple(names.get(v, v) for v in t.variables))

    blocks = tuple(RandomTerm(tuple(names.get(g, g) for g in b.group), b.intercept,
                              tuple(term(t) for t in b.terms), b.correlated)
                   for b in spec.random)
    # A transform keeps its alias (the terms name aliases) and reads the renamed columns.
    derived = tuple(replace(d, expr=_rename_expr(d.expr, names),
                            name=_rename_expr(d.expr, names).label
                            + ("" if d.part is None else str(d.part)))
                    for d in spec.derived)
    return ModelSpec(names.get(spec.response, spec.response), spec.intercept,
                     tuple(term(t) for t in spec.fixed), blocks, derived, spec.offset)


def _rename_expr(expr: Expr, names: Mapping[str, str]) -> Expr:
    """`expr` reading the renamed columns."""
    if expr.kind == "col":
        return replace(expr, text=names.get(expr.text, expr.text))
    return replace(expr, args=tuple(_rename_expr(a, names) for a in expr.args))


def _back(name: str | None, renamed: Mapping[str, str]) -> str | None:
    """A coefficient or group name of the transformed fit under the original columns:
    each `:`-separated part starts with a column name (`sexM` is column `sex`, level
    `M`); the longest new name that prefixes the part is replaced."""
    if name is None or not renamed:
        return name
    inverse = sorted(((new, old) for old, new in renamed.items()), key=lambda p: -len(p[0]))
    parts = []
    for part in name.split(":"):
        for new, old in inverse:
            if part.startswith(new):
                part = old + part[len(new):]
                break
        parts.append(part)
    return ":".join(parts)


Key = tuple[str, str | None, str | None, str | None]


def _old_level(group: str, level: str, levels: Mapping[str, Mapping[str, str]]) -> str:
    """A group effect's level under the original labels (`group` already under the
    original column names; a nested factor's level is its columns' levels joined by ':')."""
    columns, parts = group.split(":"), level.split(":")
    if len(columns) != len(parts):
        return level
    return ":".join(levels.get(c, {}).get(p, p) for c, p in zip(columns, parts, strict=True))


def estimates(fit: Fit, renamed: Mapping[str, str] | None = None,
              levels: Mapping[str, Mapping[str, str]] | None = None
              ) -> dict[Key, tuple[float, float]]:
    """(quantity, group, term, term2) -> (estimate, uncertainty) under the original
    names. Uncertainty is a fixed effect's SE (posterior SD), or a component's SE where
    the engine gives one (NaN otherwise). A group effect is keyed (`group_effect`,
    group, level, term) under the original labels, with its conditional (posterior) SD."""
    renamed = renamed or {}
    out: dict[Key, tuple[float, float]] = {}
    for v in values(fit):
        if v.quantity == "loglik":
            continue  # the optimum's value: compared apart (criterion_difference)
        unc = v.uncertainty if v.uncertainty is not None else math.nan
        if v.quantity == "group_effect":
            factor = _back(v.group, renamed) or str(v.group)
            out[(v.quantity, factor, _old_level(factor, str(v.level), levels or {}),
                 _back(v.terms[0], renamed))] = (v.estimate, unc)
            continue
        group = v.group if v.group == "Residual" else _back(v.group, renamed)
        t1, t2 = (_back(t, renamed) for t in (*v.terms, None, None)[:2])
        if v.quantity == "corr" and t1 is not None and t2 is not None and t2 < t1:
            t1, t2 = t2, t1  # a correlation does not depend on the order of its terms
        out[(v.quantity, group, t1, t2)] = (v.estimate, unc)
    return out


def differences(base: Fit, other: Fit, renamed: Mapping[str, str] | None = None, *,
                rtol: float = 1e-6, atol: float = 1e-9, mc_sds: float | None = None,
                skip: Sequence[str] = (), exclude: Collection[Key] = (),
                levels: Mapping[str, Mapping[str, str]] | None = None,
                trust_may_differ: bool = False) -> list[str]:
    """Where `other` (a fit of transformed data) differs from `base`, in words.

    Frequentist fits are held to `rtol`/`atol`. With `mc_sds` (Bayesian fits), a
    posterior mean may move by `mc_sds` Monte-Carlo standard errors of the difference of
    two means, each taken as posterior SD / sqrt(smallest bulk ESS of its fit).
    Quantities named in `skip`, and the estimates in `exclude`, are not compared. A
    frequentist group effect is held to `rtol` of the larger of its size and its
    conditional SD: a mode near zero moves on the scale of its uncertainty.

    Both fits must carry numbers, and by default have the same trust status (a fit that
    converges on the data but not on its relabelling is not invariant);
    `trust_may_differ` lets it differ where the status itself is noise: a sampler's
    diagnostics at small settings, an optimiser's warnings on the way to a singular
    optimum."""
    problems: list[str] = []
    if not (base.has_numbers and other.has_numbers) or (
            base.status != other.status and not trust_may_differ):
        return [f"status {base.status} -> {other.status} ({other.reason or base.reason})"]
    a, b = estimates(base), estimates(other, renamed, levels)
    if set(a) != set(b):
        missing = sorted(map(str, set(a) ^ set(b)))
        return [f"different estimates: {', '.join(missing[:6])}"]
    ess = min(base.diagnostics.ess_bulk_min or math.inf, other.diagnostics.ess_bulk_min
              or math.inf)
    for key in a:
        if key[0] in skip or key in exclude:
            continue
        if mc_sds is not None and key[0] == "conclusion":
            continue  # read off the interval's ends, held below at their own MC error
        (x, ux), (y, uy) = a[key], b[key]
        if mc_sds is not None:
            # The posterior SD of the quantity, or for an SE-like quantity its own size.
            spread = max(ux, uy) if math.isfinite(ux) and math.isfinite(uy) else abs(x)
            if key[0] in ("lower", "upper"):
                spread *= _quantile_mcse_factor(base.interval or 0.95)
            tol = mc_sds * math.sqrt(2.0) * spread / math.sqrt(ess) if math.isfinite(
                ess) else math.inf
            tol = max(tol, atol)
        elif key[0] == "group_effect" and math.isfinite(ux):
            tol = atol + rtol * max(abs(x), ux)
        else:
            tol = atol + rtol * abs(x)
        if not (abs(x - y) <= tol or (math.isnan(x) and math.isnan(y))):
            label = " ".join(str(k) for k in key if k is not None)
            problems.append(f"{label}: {x:.10g} -> {y:.10g} (|diff| {abs(x - y):.3g} > "
                            f"{tol:.3g})")
    if base.diagnostics.singular != other.diagnostics.singular:
        problems.append(f"singular {base.diagnostics.singular} -> "
                        f"{other.diagnostics.singular}")
    return problems


def _quantile_mcse_factor(level: float) -> float:
    """How many times a posterior mean's Monte-Carlo error an equal-tailed interval's end
    has, for a normal posterior: sqrt(p (1 - p)) / phi(z_p) with p = (1 - level) / 2
    (2.67 at 95%), since a tail quantile rests on the few draws beyond it."""
    p = (1.0 - level) / 2.0
    z = NormalDist().inv_cdf(p)
    return math.sqrt(p * (1.0 - p)) / NormalDist().pdf(z)


def criterion_difference(base: Fit, other: Fit) -> float | None:
    """Relative difference of the fits' log-likelihoods (the optimum's value), or None."""
    x, y = base.fit_statistics.get("loglik"), other.fit_statistics.get("loglik")
    if x is None or y is None:
        return None
    return abs(x - y) / max(abs(x), 1e-300)


def sleepstudy_like(seed: int = 20, groups: int = 18, per_group: int = 10) -> pd.DataFrame:
    """Data shaped like lme4's sleepstudy, with a per-row covariate, so that the rows of
    different groups are not interchangeable: `y` ~ `x` with a random intercept and
    slope per group `g`, a crossed factor `h` (5 levels, intercept and slope) and a
    fixed factor `f` (3 levels). The effects are chosen large, so that REML fits are
    regular (no component on the boundary)."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    g = np.repeat(np.arange(groups), per_group)
    x = np.tile(np.arange(per_group, dtype=float), groups) + rng.normal(0.0, 1.0, n)
    h = rng.integers(0, 5, n)
    f = rng.integers(0, 3, n)
    b0 = rng.normal(0.0, 25.0, groups)
    b1 = rng.normal(0.0, 6.0, groups)
    c0 = rng.normal(0.0, 15.0, 5)
    c1 = rng.normal(0.0, 4.0, 5)
    y = (250.0 + b0[g] + (10.0 + b1[g] + c1[h]) * x + c0[h] + np.array([0.0, 8.0, -5.0])[f]
         + rng.normal(0.0, 25.0, n))
    return pd.DataFrame({
        "y": np.round(y, 4), "x": np.round(x, 4),
        "g": [f"s{k + 1:02d}" for k in g],
        "h": [f"item{k}" for k in h],
        "f": np.array(["ctl", "low", "high"])[f],
    })
