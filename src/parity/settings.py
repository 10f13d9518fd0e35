"""Run settings shared by every engine (sampler settings matter to Bambi only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    # Where engines with posterior draws write them (NetCDF, `<model>.<engine>.nc`), or
    # None to keep none. It changes no number, so no cache key holds it; a fit asked to
    # save its draws is sampled afresh rather than read from the cache.
    save_draws: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
