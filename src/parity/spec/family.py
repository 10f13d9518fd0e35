"""Response families: what a model's response is, and the link its coefficients are on.

A model is Gaussian (identity link), binomial (logit link: a 0/1 outcome, or a count of
successes out of a `trials` column) or Poisson (log link: a count). The grammar does not
change: the response stays a column name, and each engine is told the family and the
trials column as data, never as formula text.
"""

from __future__ import annotations

from parity.errors import UsageError

# family -> its canonical link, the one every engine uses by default
LINKS: dict[str, str] = {"gaussian": "identity", "binomial": "logit", "poisson": "log"}
FAMILIES: tuple[str, ...] = tuple(LINKS)


def check_family(family: str, trials: str | None) -> tuple[str, str | None]:
    """The family and trials column, or a one-line UsageError."""
    if family not in LINKS:
        raise UsageError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if trials is not None and family != "binomial":
        raise UsageError(f"a trials column ({trials!r}) belongs to the binomial family, not "
                         f"{family}")
    if trials is not None and (not isinstance(trials, str) or not trials):
        raise UsageError("trials must name a column")
    return family, trials


def link(family: str) -> str:
    return LINKS[family]
