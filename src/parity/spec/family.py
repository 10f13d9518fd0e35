"""Response families: what a model's response is, and the link its coefficients are on.

A model is Gaussian (identity link), binomial (logit link: a 0/1 outcome, or a count of
successes out of a `trials` column) or Poisson (log link: a count). The grammar does not
change: the response stays a column name, and each engine is told the family and the
trials column as data, never as formula text.

A family is asked, not compared as text: whether it has a residual SD (glmmTMB's
`usesDispersion`), which link it is on, whether it takes a trials column, and what it
needs of a response. `Model.family` stays the family's name (a string written into
records and cache keys); `Model.fam` is the :class:`Family` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parity.errors import DataError, UsageError

if TYPE_CHECKING:  # pandas is imported on use: the CLI's --help reads FAMILIES
    import pandas as pd

ResponseCheck = Callable[["pd.DataFrame", str, "str | None"], None]


@dataclass(frozen=True)
class Family:
    """A response family as data (Bambi's `Family`, glmmTMB's `usesDispersion`).

    `residual_sd`: the conditional distribution has a scale of its own (a residual SD
    to estimate and compare, REML to choose); binomial and Poisson variances follow
    from the mean, so their fits are GLM(M)s on the link scale. `trials`: the family
    may name a column of trials per row. `factor_response`: a two-level factor response is
    read as R's family reads it (first level failure, the other success)."""

    name: str
    link: str
    residual_sd: bool
    trials: bool = False
    factor_response: bool = False
    _check: ResponseCheck | None = field(default=None, repr=False, compare=False)

    def check_response(self, frame: pd.DataFrame, response: str,
                       trials: str | None = None) -> None:
        """Refuse, as one-line DataErrors, a response this family cannot model (in the
        complete rows `frame`); a Gaussian response is any finite number."""
        if self._check is not None:
            self._check(frame, response, trials)


def _first_bad(frame: pd.DataFrame, response: str, mask: pd.Series) -> str:
    i = int(mask.to_numpy().nonzero()[0][0])
    return f"row {i + 1} of the complete rows: {frame[response].iloc[i]!r}"


def _counts(frame: pd.DataFrame, response: str) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(frame[response], errors="coerce").astype(float)


def _poisson(frame: pd.DataFrame, response: str, trials: str | None) -> None:
    """A Poisson response is a whole number of at least 0."""
    y = _counts(frame, response)
    bad = (y != y.round()) | (y < 0)
    if bad.any():
        raise DataError(f"a poisson response must be a whole number of at least 0; "
                        f"{response!r} has {int(bad.sum())} that are not "
                        f"({_first_bad(frame, response, bad)})")


def _binomial(frame: pd.DataFrame, response: str, trials: str | None) -> None:
    """A binomial response is a whole number from 0 to its trials (0 or 1 without a
    trials column), and a trials column holds whole numbers of at least 1."""
    y = _counts(frame, response)
    if trials is None:
        bad = ~y.isin([0.0, 1.0])
        if bad.any():
            raise DataError(f"a binomial response without --trials must be 0 or 1; "
                            f"{response!r} has {int(bad.sum())} other values "
                            f"({_first_bad(frame, response, bad)}); name the number of "
                            "trials with --trials")
        return
    n = _counts(frame, trials)
    bad_n = (n != n.round()) | (n < 1)
    if bad_n.any():
        i = int(bad_n.to_numpy().nonzero()[0][0])
        raise DataError(f"the trials column {trials!r} must hold whole numbers of at least "
                        f"1; it has {int(bad_n.sum())} that are not (row {i + 1} of the "
                        f"complete rows: {frame[trials].iloc[i]!r})")
    bad = (y != y.round()) | (y < 0) | (y > n)
    if bad.any():
        raise DataError(f"a binomial response must be a whole number from 0 to its trials "
                        f"({trials!r}); {response!r} has {int(bad.sum())} that are not "
                        f"({_first_bad(frame, response, bad)})")


GAUSSIAN = Family("gaussian", "identity", residual_sd=True)
BINOMIAL = Family("binomial", "logit", residual_sd=False, trials=True, factor_response=True,
                  _check=_binomial)
POISSON = Family("poisson", "log", residual_sd=False, _check=_poisson)

# Every family parity fits, by name: the CLI's --family choices, a models.toml's
# `family`, and the API's `family=` read this table.
FAMILIES: dict[str, Family] = {f.name: f for f in (GAUSSIAN, BINOMIAL, POISSON)}
# family -> its canonical link, the one every engine uses by default
LINKS: dict[str, str] = {name: f.link for name, f in FAMILIES.items()}


def family_of(name: str) -> Family:
    """The family called `name`, or a one-line UsageError listing the known ones."""
    family = FAMILIES.get(name) if isinstance(name, str) else None
    if family is None:
        raise UsageError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return family


def check_family(family: str, trials: str | None) -> tuple[str, str | None]:
    """The family and trials column, or a one-line UsageError."""
    fam = family_of(family)
    if trials is not None and not fam.trials:
        raise UsageError(f"a trials column ({trials!r}) belongs to the binomial family, not "
                         f"{family}")
    if trials is not None and (not isinstance(trials, str) or not trials):
        raise UsageError("trials must name a column")
    return family, trials


def link(family: str) -> str:
    return FAMILIES[family].link
