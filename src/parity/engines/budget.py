"""Fits refused for their cost: an engine whose estimate (`Engine.cost`) is over what this
machine can give one fit is not started, and its fit says why, with the numbers.

statsmodels fits crossed grouping factors over a dense design: on lme4's InstEval
(73,421 rows, 2,972 students crossed with 1,128 lecturers) it ran for 13 minutes and
died allocating its 2.25 GiB design, at 12 GB, where lme4 needed 0.4 GB. Asked before
anything is fitted, the estimate refuses such a fit in a moment; the fit is
`unsupported` with the estimate as its reason, a row of the report like any other
refusal, and the other engines run. A model whose estimates fit in memory runs as
before, as does every engine that makes no estimate.

The memory one fit may take is half of this machine's physical memory (as for the
sampler settings' draws, `parity.engines.limits.check_memory`): several workers run side
by side, and the system needs its share. `PARITY_MEMORY_BYTES` sets it in bytes instead
(a smaller machine's limit, or a tiny one to see a refusal in a test).

Time: a fit whose engine estimates it longer than DEFAULT_MAX_MINUTES (30) is refused
too, or than M minutes with `parity run --max-minutes M` (`parity.run(...,
max_minutes=M)`), which also allows longer ones. Bambi on all of InstEval at the default
sampler settings would sample for most of an hour on 2 cores; said up front, the analyst
chooses: fewer draws, a longer limit, or another machine. statsmodels' dense design and
the samplers have time estimates, good to an order of magnitude.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from parity.engines.base import Engine, Refusal
from parity.engines.cost import Cost
from parity.engines.limits import available_memory
from parity.errors import UsageError
from parity.rows.dims import DesignDims
from parity.settings import Settings
from parity.spec.models import Model

MEMORY_ENV = "PARITY_MEMORY_BYTES"
DEFAULT_MAX_MINUTES = 30.0


@dataclass(frozen=True)
class Budget:
    """What one fit may take: `memory_bytes` (None: no limit known), the words that say
    where the limit comes from ("half of this machine's 23.3 GiB"), and the minutes a
    fit may take (None: as long as it takes)."""

    memory_bytes: int | None
    source: str = ""
    minutes: float | None = None
    # Whether `minutes` is DEFAULT_MAX_MINUTES, not asked for: a refusal then says how
    # to allow longer.
    default_minutes: bool = False


def minutes_problem(value: Any) -> str | None:
    """What is wrong with a time limit in minutes ("must be ..."), or None."""
    if value is None:
        return None
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        return "must be a number of minutes above 0"
    return None


def _size(n: float) -> str:
    """Bytes as a reader weighs them: `14.2 GiB`, `310 MiB`."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.0f} MiB"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.0f} minutes"


def machine_budget(minutes: float | None = None) -> Budget:
    """This run's budget: `PARITY_MEMORY_BYTES` when set (a whole number of bytes, or a
    one-line UsageError), else half of the physical memory, else no memory limit; and
    `minutes`, a time limit per fit (checked by the caller, `minutes_problem`), by
    default DEFAULT_MAX_MINUTES."""
    default = minutes is None
    limit = DEFAULT_MAX_MINUTES if minutes is None else minutes
    given = os.environ.get(MEMORY_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) == 0:
            raise UsageError(f"{MEMORY_ENV}={given!r}: must be a whole number of bytes above 0")
        return Budget(int(given), f"the {_size(int(given))} {MEMORY_ENV} allows", limit,
                      default)
    total = available_memory()
    if total is None:
        return Budget(None, minutes=limit, default_minutes=default)
    return Budget(total // 2, f"half of this machine's {_size(total)}", limit, default)


def over_budget(engine: str, cost: Cost, budget: Budget) -> Refusal | None:
    """The refusal of a fit whose estimated memory (first) or time is over `budget`,
    naming the engine, the estimate, what it is for and the limit; None when it fits,
    or is not known."""
    what = f" for {cost.basis}" if cost.basis else ""
    advice = f"; not fitted (fit fewer rows or levels, or leave {engine} out)"
    need = cost.memory_bytes
    if need is not None and budget.memory_bytes is not None and need > budget.memory_bytes:
        return Refusal(f"{engine} would need about {_size(need)}{what}, more than "
                       f"{budget.source}{advice}")
    took = cost.seconds
    if took is not None and budget.minutes is not None and took > 60 * budget.minutes:
        limit = (f"the default {budget.minutes:g}-minute limit a fit" if budget.default_minutes
                 else f"the {budget.minutes:g}-minute limit")
        advice = (f"; not fitted (fewer draws or rows, --max-minutes "
                  f"{math.ceil(took / 60 * 1.5 / 10) * 10:g} to allow it, or leave "
                  f"{engine} out)")
        return Refusal(f"{engine} would take about {_duration(took)}{what}, more than "
                       f"{limit}{advice}")
    return None


def cost_refusal(engine: Engine, model: Model, dims: DesignDims, settings: Settings,
                 budget: Budget | None = None) -> Refusal | None:
    """Why `engine` is not asked to fit `model` on a design of `dims`: its estimate is
    over the budget (by default this machine's, `machine_budget`); or None."""
    return over_budget(engine.name, engine.cost(model, dims, settings),
                       budget if budget is not None else machine_budget())
