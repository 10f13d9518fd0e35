"""Run settings shared by every engine (sampler settings matter to Bambi only).

Every way in (the CLI's options, a models.toml's [sampler], `parity.run`, `assert_parity`
and the pytest plugin) checks a setting with :func:`setting_problem`, keyed by the
:class:`Settings` field, so that one value is refused alike, with the same words,
whichever way it came in; each caller only says where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Defaults are the seed notebook's sampler settings.

    `interval` is the coverage of every engine's interval (Wald or t for lme4 and
    statsmodels, equal-tailed posterior interval for Bambi), so intervals are comparable.
    """

    draws: int = 2000
    tune: int = 2000
    chains: int = 4
    target_accept: float = 0.95
    seed: int = 42
    interval: float = 0.94
    reml: bool = True
    # lme4's adaptive Gauss-Hermite quadrature points for a GLMM (1: Laplace); more only
    # where lme4 allows it, one scalar random-effect term.
    nagq: int = 1
    # The draws folder (`<out>/draws`) where engines with posterior draws write them
    # (NetCDF, `<model>.<engine>.nc`), or None to keep none. A fit records its file
    # relative to the folder above it (the run's output folder, which holds
    # results.json), so the output folder can be moved. It changes no number, so no
    # cache key holds it; a fit asked to save its draws is sampled afresh rather than
    # read from the cache.
    save_draws: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# 0.9999999999999999 is below 1, yet an interval's quantile at it is infinite.
MAX_PROBABILITY = 0.999999
# lme4 refuses more adaptive Gauss-Hermite points than this.
MAX_NAGQ = 25

Check = Callable[[Any], str | None]


def _whole(low: int, high: int | None = None, note: str = "") -> Check:
    """A whole number in [low, high]; bool is refused though Python counts it an int."""
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if high is not None and not low <= value <= high:
            return f"must be from {low}{note} to {high}"
        if value < low:
            return f"must be at least {low}"
        return None
    return check


def _probability(value: Any) -> str | None:
    """A share strictly inside (0, 1), capped where its normal quantile stays finite."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "must be a number"
    if not math.isfinite(value) or not 0 < value <= MAX_PROBABILITY:
        return f"must be above 0 and at most {MAX_PROBABILITY}"
    return None


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _folder_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a folder or None"


# One check per Settings field (a test holds the two key sets equal).
SETTING_CHECKS: dict[str, Check] = {
    "draws": _whole(1),
    "tune": _whole(1),
    "chains": _whole(1),
    "target_accept": _probability,
    "seed": _whole(0),
    "interval": _probability,
    "reml": _flag,
    "nagq": _whole(1, MAX_NAGQ, " (Laplace)"),
    "save_draws": _folder_or_none,
}
SETTING_NAMES = tuple(f.name for f in fields(Settings))


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the Settings field `name` ("must be ..."), or
    None; the caller prefixes where the value came from (`--draws`, `parity.run(): ...`)."""
    if name not in SETTING_CHECKS:
        raise KeyError(f"{name!r} is not a parity setting (known: {', '.join(SETTING_NAMES)})")
    return SETTING_CHECKS[name](value)


def tolerance_problem(value: Any) -> str | None:
    """What is wrong with an rtol or atol, or None: NaN or a negative tolerance would
    fail every row, and an infinite one would pass every row without comparing."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        return "must be a finite number >= 0"
    return None
