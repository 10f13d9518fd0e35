"""Matched covariance structures: refit lme4 the way another engine fitted the model.

Bambi gives every `( … | group)` block independent coefficients, and statsmodels' crossed
models are independent variance components; lme4's `(attitude | subject)` estimates their
correlation. To give those engines a like-for-like reference, lme4 is refitted with every
random coefficient in a block of its own. lme4's `||` does not split a factor into its
contrasts, so each random column becomes a numeric indicator column (`attitudepol`), and
the refit's names are mapped back to the canonical ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from parity.pipeline.naming import written_names
from parity.rows.design import build_design
from parity.rows.prepare import PreparedData
from parity.schema import Fit, VarianceComponent
from parity.spec.models import Model
from parity.spec.spec import ModelSpec, RandomTerm, Term

INDEPENDENT = "independent"
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Variant:
    """A refit of `model` with another covariance structure, and how to read it back."""

    name: str
    model: Model
    data: PreparedData
    terms: dict[str, str]  # refit column -> canonical term name


def needs_independent(spec: ModelSpec, data: PreparedData) -> bool:
    """Whether lme4's own fit of `spec` estimates correlations that the independent
    engines do not: a `|` block of two or more coefficients, or a `||` block with a
    factor in it (lme4's `||` does not split a factor into its contrasts: `(f || g)` is
    `(1 | g) + (0 + f | g)`, whose indicator columns are correlated)."""
    for block in spec.random:
        ncol = len(build_design(data.frame.head(1), block.terms, block.intercept,
                                data.levels).names)
        if block.correlated and ncol >= 2:
            return True
        if not block.correlated and any(v in data.levels for t in block.terms
                                        for v in t.variables):
            return True
    return False


def independent_variant(model: Model, data: PreparedData) -> Variant | None:
    """The model with every random coefficient independent, or None if it already is."""
    spec = model.spec
    if not needs_independent(spec, data):
        return None
    frame = data.frame.copy()
    mapping: dict[str, str] = {}
    blocks: list[RandomTerm] = []
    for block in spec.random:
        design = build_design(data.frame, block.terms, block.intercept, data.levels)
        if block.intercept:
            blocks.append(RandomTerm(block.group, True, (), True))
        for j, name in enumerate(design.names):
            if name == "(Intercept)":
                continue
            column = next((c for c, n in mapping.items() if n == name), None)
            if column is None:
                column = name if _IDENT.match(name) and name not in frame.columns else None
                k = 1
                while column is None or column in frame.columns:
                    column, k = f"re_{k}", k + 1
                frame[column] = design.matrix[:, j]
                mapping[column] = name
            blocks.append(RandomTerm(block.group, False, (Term((column,)),), True))
    new_spec = ModelSpec(spec.response, spec.intercept, spec.fixed, tuple(blocks),
                         derived=spec.derived, offset=spec.offset)
    new_model = replace(model, spec=new_spec)  # its family, trials and weights too
    new_data = PreparedData(frame=frame, levels=data.levels, n_dropped=data.n_dropped,
                            response_levels=data.response_levels)
    return Variant(INDEPENDENT, new_model, new_data, mapping)


def read_back(fit: Fit, variant: Variant, original: Model) -> Fit:
    """The refit under canonical names: its indicator columns (`attitudepol`) back to the
    terms they stand for, in its components and its group effects, and transformed
    columns under lme4's names."""
    groups = original.spec.grouping_labels()
    components = tuple(
        VarianceComponent(
            v.group, variant.terms.get(v.term, v.term) if v.term else v.term,
            variant.terms.get(v.term2, v.term2) if v.term2 else v.term2,
            v.kind, v.estimate, v.std_error, v.lower, v.upper,
        )
        for v in fit.variance_components
    )
    effects = tuple(replace(g, term=variant.terms.get(g.term, g.term))
                    for g in fit.group_effects)
    return written_names(replace(
        fit,
        formula=original.formula,
        variance_components=components,
        group_effects=effects,
        variant=variant.name,
        structure={g: INDEPENDENT for g in groups},
    ), original.spec)
