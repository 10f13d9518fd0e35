"""parity: term-by-term agreement between lme4, statsmodels and Bambi.

From Python: `parity.run(formulas, data, ...)` returns a :class:`parity.api.Run`, and
`parity.load(path)` reads a results.json back into one. They are loaded on first use, so
that `import parity` (and the `parity` command) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from parity.api import Run, load, run

__all__ = ["Run", "__version__", "load", "run"]


def __getattr__(name: str) -> Any:
    if name in ("Run", "load", "run"):
        from parity import api

        return getattr(api, name)
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
