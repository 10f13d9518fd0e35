"""Partial results: the fits of a run so far, readable if the run never finishes.

A run can take minutes (Bambi samples) and be stopped at any time. After each fit the
fits so far are written to results.partial.json (the results.json schema, with
`"complete": false`, no comparisons), atomically, so an interrupted run leaves either
no file or a whole one. When the run completes, results.json is written (with
`"complete": true`) and the partial file is removed. A results.json left by an earlier
run in the same directory is removed when the first fit of a new run arrives, so the
directory never mixes a finished old run with an unfinished new one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from parity.pipeline.outdir import PARTIAL_NAME, RESULTS_NAME
from parity.schema import Fit, RunResults

__all__ = ["PARTIAL_NAME", "RESULTS_NAME", "PartialResults"]


class PartialResults:
    """An on_fit hook that keeps results.partial.json up to date, then calls `then`."""

    def __init__(self, out: Path, meta: dict[str, Any],
                 then: Callable[[Fit], None] | None = None) -> None:
        self.out = Path(out)
        self.path = self.out / PARTIAL_NAME
        self.meta = meta
        self.then = then
        self.fits: list[Fit] = []

    def __call__(self, fit: Fit) -> None:
        if not self.fits:
            (self.out / RESULTS_NAME).unlink(missing_ok=True)
        self.fits.append(fit)
        RunResults(tuple(self.fits), meta=self.meta, complete=False).write(self.path)
        if self.then is not None:
            self.then(fit)

    def finish(self) -> None:
        """The run is complete and results.json written: the partial file goes."""
        self.path.unlink(missing_ok=True)
