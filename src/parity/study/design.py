"""A study's designs: the original rows with more (or fewer) levels of one grouping
factor.

A design with G groups repeats the original within-group design under new group ids:
copy k of group `F1` is `F1~k` (copy 0 keeps the original ids), with every row of that
group, its predictors and its other grouping factors unchanged, and the first G groups of
the copies are kept. Other grouping factors (`scenario` in a crossed model) keep their
levels, so their groups grow in size, not in number. With G equal to the original number
of groups a design is the original data, row for row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from parity.errors import UsageError
from parity.rows.prepare import PreparedData, prepare
from parity.spec.models import Model

COPY_MARK = "~"


@dataclass(frozen=True)
class Design:
    """One design: its number of groups and its prepared rows (carrying the original
    responses, copied with their groups)."""

    groups: int
    factor: str
    data: PreparedData

    @property
    def n_obs(self) -> int:
        return self.data.n_obs


def study_factor(model: Model) -> str:
    """The grouping factor whose number of levels a study varies: the model's first."""
    if not model.spec.random:
        raise UsageError(f"model {model.name!r} has no grouping factor: a study varies the "
                         "number of groups of a mixed model")
    block = model.spec.random[0]
    if len(block.group) != 1:
        raise UsageError(f"a study varies a grouping factor that is one column, not "
                         f"{block.group_label!r}")
    return block.group[0]


def make_design(model: Model, original: PreparedData, groups: int) -> Design:
    """The design with `groups` levels of the model's first grouping factor."""
    factor = study_factor(model)
    frame = original.frame
    labels = list(original.levels.get(factor) or pd.unique(frame[factor].astype(str)))
    if groups < 2:
        raise UsageError(f"--groups: a design needs at least 2 groups, not {groups}")
    copies = -(-groups // len(labels))
    wanted = [label if k == 0 else f"{label}{COPY_MARK}{k}"
              for k in range(copies) for label in labels][:groups]
    taken = set(labels)
    clash = [w for w in wanted[len(labels):] if w in taken]
    if clash:
        raise UsageError(f"cannot name copies of {factor!r}: {clash[0]!r} is already a level")
    parts = []
    for k in range(copies):
        part = frame.copy()
        if k:
            part[factor] = part[factor].astype(str) + f"{COPY_MARK}{k}"
        parts.append(part)
    expanded = pd.concat(parts, ignore_index=True)
    expanded = expanded[expanded[factor].astype(str).isin(wanted)].reset_index(drop=True)
    # Categorical columns keep the original level order (the reference level R would
    # use), less levels a smaller design has no rows of; the factor's copies follow it.
    for column, order in original.levels.items():
        if column not in expanded:
            continue
        categories = wanted if column == factor else list(order)
        expanded[column] = pd.Categorical(expanded[column].astype(str),
                                          categories=categories).remove_unused_categories()
    categorical = tuple(dict.fromkeys((*model.categorical, *original.levels)))
    # The rows are prepared already: a transform's or an offset's column is there under
    # its alias (its inputs are not), so it is read as a plain column, not computed again.
    spec = replace(model.spec, derived=())
    data = prepare(expanded, spec, categorical, model.family, model.trials)
    return Design(groups=groups, factor=factor, data=data)


def with_response(data: PreparedData, response: str, values: object) -> PreparedData:
    """The design's rows with another response (a replicate)."""
    frame = data.frame.copy()
    frame[response] = values
    return PreparedData(frame=frame, levels=data.levels, n_dropped=0,
                        response_levels=data.response_levels)
