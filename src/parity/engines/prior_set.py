"""The priors a Bayesian fit ran under, one entry per parameter, in one vocabulary.

Two posteriors of the same model under the same priors must agree within Monte-Carlo
error, whatever implementation sampled them: that is the cross-implementation check of the
comparison (:mod:`parity.compare.rules`). It needs to know when two fits *are* the same
model with the same priors, and each engine names priors its own way (Bambi's
`HalfNormal(sigma: 40.6)`, brms's `normal(0, 5)` with a lower bound, a default that brms
computes from the data). So every Bayesian engine records, under
`provenance.settings["prior_set"]`, each parameter's prior as read back from the model it
built, keyed in lme4's names:

    intercept                       the intercept (of the centred predictors)
    fixed <column>                  each fixed coefficient, `fixed attitudepol`
    sd <group> <column>             each group-level SD, `sd subject (Intercept)`
    residual                        the residual SD
    lkj <group>                     the LKJ prior of a correlated block

and each value is the distribution as a priors document writes it, numbers to six
significant digits (`HalfNormal(sigma: 40.6)`), or, for a prior parity cannot state in
that vocabulary (an engine's own default of another family), the engine's own text,
prefixed with the engine's name, so that it never equals another engine's entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from parity.rows.design import build_design
from parity.schema import PRIOR_SET
from parity.spec.spec import ModelSpec, Term

KEY = PRIOR_SET


def text(dist: str, args: Mapping[str, Any]) -> str:
    """`Normal(mu: 0, sigma: 10)`: the parameters by name, to 6 significant digits
    (engines order and round them differently)."""
    return f"{dist}({', '.join(f'{k}: {float(v):.6g}' for k, v in sorted(args.items()))})"


def term_columns(frame: pd.DataFrame, terms: Sequence[Term], intercept: bool,
                 levels: dict[str, tuple[str, ...]]) -> list[tuple[Term, list[str]]]:
    """Each term with the names of its columns in `model.matrix(~ terms)` (R's coding:
    a term's columns follow the previous terms', and depend on them)."""
    out: list[tuple[Term, list[str]]] = []
    done: list[str] = []
    for i in range(len(terms)):
        names = [n for n in build_design(frame, terms[: i + 1], intercept, levels).names
                 if n != "(Intercept)"]
        out.append((terms[i], names[len(done):]))
        done = names
    return out


def fixed_columns(frame: pd.DataFrame, spec: ModelSpec,
                  levels: dict[str, tuple[str, ...]]) -> list[tuple[Term, list[str]]]:
    """The fixed terms with their coefficient names (the intercept left out)."""
    return term_columns(frame, spec.fixed, spec.intercept, levels)


def block_columns(frame: pd.DataFrame, spec: ModelSpec, levels: dict[str, tuple[str, ...]]
                  ) -> list[tuple[str, str, list[str]]]:
    """Each block's (group, term label as a priors document names it — `1` for the
    intercept —, its coefficient names), in the formula's order."""
    out: list[tuple[str, str, list[str]]] = []
    for block in spec.random:
        if block.intercept:
            out.append((block.group_label, "1", ["(Intercept)"]))
        for term, names in term_columns(frame, block.terms, block.intercept, levels):
            out.append((block.group_label, term.label, names))
    return out


def each(value: Any, n: int) -> list[float]:
    """A prior parameter given once for a term, or per column, as one value per column."""
    return [float(x) for x in np.broadcast_to(np.asarray(value, dtype=float), (n,))]
