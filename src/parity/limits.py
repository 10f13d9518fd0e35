"""Models an engine cannot express, refused before anything is fitted.

What no engine can identify (too few rows or groups, collinear columns) is refused by
:mod:`parity.validate`; what parity's grammar refuses never gets this far. What is left
are limits of one engine that would otherwise pass unnoticed or fail late, after the
other engines have run. They are checked only when that engine is asked for, and the
message says how to go on: rename the column, or leave the engine out.

Bambi names its own parameters after the model (`Intercept`, `sigma`, `mu`) and its
posterior dimensions `chain` and `draw`. A column of the same name either stops Bambi
("Variable name sigma already exists") or, worse, is silently merged with the
parameter: `y ~ 1 + Intercept` samples one intercept, not two coefficients, and a column
`chain` disappears from the posterior.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from parity.errors import UsageError
from parity.models import Model

BAMBI_RESERVED: dict[str, str] = {
    "Intercept": "its intercept",
    "sigma": "its residual SD",
    "mu": "its linear predictor",
    "chain": "a posterior dimension",
    "draw": "a posterior dimension",
}


def bambi_problem(model: Model) -> str | None:
    """Why Bambi cannot fit `model` as written, or None."""
    for column in model.spec.variables():
        if column in BAMBI_RESERVED:
            return (f"Bambi cannot fit a column named {column!r} (the name of "
                    f"{BAMBI_RESERVED[column]}); rename the column, or leave bambi out of "
                    "the engines")
    return None


def check_expressible(models: Sequence[Model], engines: Iterable[str]) -> None:
    """Raise UsageError for the first model an engine asked for cannot express."""
    if "bambi" not in set(engines):
        return
    for model in models:
        problem = bambi_problem(model)
        if problem:
            raise UsageError(f"model {model.name}: {problem}")
