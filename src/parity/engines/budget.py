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
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from parity.engines.base import Engine, Refusal
from parity.engines.cost import Cost
from parity.engines.limits import available_memory
from parity.errors import UsageError
from parity.rows.dims import DesignDims
from parity.settings import Settings
from parity.spec.models import Model

MEMORY_ENV = "PARITY_MEMORY_BYTES"


@dataclass(frozen=True)
class Budget:
    """What one fit may take: `memory_bytes` (None: no limit known), and the words that
    say where the limit comes from ("half of this machine's 23.3 GiB")."""

    memory_bytes: int | None
    source: str = ""


def _size(n: float) -> str:
    """Bytes as a reader weighs them: `14.2 GiB`, `310 MiB`."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.0f} MiB"


def machine_budget() -> Budget:
    """This run's budget: `PARITY_MEMORY_BYTES` when set (a whole number of bytes, or a
    one-line UsageError), else half of the physical memory, else no limit."""
    given = os.environ.get(MEMORY_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) == 0:
            raise UsageError(f"{MEMORY_ENV}={given!r}: must be a whole number of bytes above 0")
        return Budget(int(given), f"the {_size(int(given))} {MEMORY_ENV} allows")
    total = available_memory()
    if total is None:
        return Budget(None)
    return Budget(total // 2, f"half of this machine's {_size(total)}")


def over_budget(engine: str, cost: Cost, budget: Budget) -> Refusal | None:
    """The refusal of a fit whose estimated memory is over `budget`, naming the engine,
    the estimate, what it is for and the limit; None when it fits, or is not known."""
    need = cost.memory_bytes
    if need is None or budget.memory_bytes is None or need <= budget.memory_bytes:
        return None
    what = f" for {cost.basis}" if cost.basis else ""
    return Refusal(f"{engine} would need about {_size(need)}{what}, more than "
                   f"{budget.source}; not fitted (fit fewer rows or levels, or leave "
                   f"{engine} out)")


def cost_refusal(engine: Engine, model: Model, dims: DesignDims, settings: Settings,
                 budget: Budget | None = None) -> Refusal | None:
    """Why `engine` is not asked to fit `model` on a design of `dims`: its estimate is
    over the budget (by default this machine's, `machine_budget`); or None."""
    return over_budget(engine.name, engine.cost(model, dims, settings),
                       budget if budget is not None else machine_budget())
