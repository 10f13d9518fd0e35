"""A study's progress line: fits done per engine, and an ETA weighted by what each
engine's fits cost.

A replicate is complete only once every engine has fitted it, so counting complete
replicates says 10% long after most of the work is done (lme4's fits are milliseconds,
Bambi's seconds). The line counts fits, and the ETA prices the fits left by each
engine's own measured cost (worker seconds per fit, from the batches that finished),
converted to wall time by the throughput seen so far. Until an engine has a finished
batch its fits are priced at the mean of the engines that have one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


class StudyProgress:
    """Fits done / total with an ETA, on one terminal line (a line per tenth when the
    output is not a terminal)."""

    def __init__(self, total: Mapping[str, int], done: Mapping[str, int], quiet: bool,
                 stream: TextIO | None = None) -> None:
        self.total = dict(total)
        self.done = {e: int(done.get(e, 0)) for e in self.total}
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.worker_seconds: dict[str, float] = {}
        self.fitted: dict[str, int] = {}  # fits this run made, per engine (not resumed)
        self._last_tenth = -1
        self.show()

    @property
    def fits_done(self) -> int:
        return sum(self.done.values())

    @property
    def fits_total(self) -> int:
        return sum(self.total.values())

    def add(self, engine: str, n: int, seconds: float | None = None) -> None:
        """`n` fits of `engine` finished, in a batch that held a worker `seconds`."""
        self.done[engine] = self.done.get(engine, 0) + n
        if seconds is not None:
            self.worker_seconds[engine] = self.worker_seconds.get(engine, 0.0) + seconds
            self.fitted[engine] = self.fitted.get(engine, 0) + n
        self.show()

    def eta(self) -> float | None:
        """Seconds left, or None before any batch of this run has finished."""
        cost = {e: self.worker_seconds[e] / self.fitted[e] for e in self.fitted
                if self.fitted[e]}
        if not cost:
            return None
        mean = sum(cost.values()) / len(cost)
        spent = sum(cost[e] * n for e, n in self.fitted.items())
        elapsed = time.monotonic() - self.start
        if spent <= 0 or elapsed <= 0:
            return None
        left = sum(cost.get(e, mean) * (self.total[e] - self.done.get(e, 0))
                   for e in self.total)
        return left / (spent / elapsed)

    def text(self) -> str:
        done, total = self.fits_done, self.fits_total
        parts = ", ".join(f"{e} {self.done.get(e, 0)}/{n}" for e, n in self.total.items())
        eta = self.eta() if done < total else None
        tail = f", ETA {_duration(eta)}" if eta is not None else ""
        return f"study: {done}/{total} fits ({done / max(1, total):.0%}; {parts}){tail}"

    def show(self) -> None:
        if self.quiet:
            return
        finished = self.fits_done >= self.fits_total
        if self.tty:
            print(f"\r{self.text()}\033[K", end="\n" if finished else "",
                  file=self.stream, flush=True)
            return
        tenth = int(10 * self.fits_done / max(1, self.fits_total))
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            print(self.text(), file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"
