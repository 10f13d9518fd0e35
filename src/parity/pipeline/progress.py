"""Progress of a run: one line per fit (model, engine, state, elapsed).

On a terminal the lines are redrawn in place twice a second; elsewhere (a log, CI) one
line is printed as each fit ends; with `quiet` nothing is printed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from parity.schema import Fit


@dataclass
class _Row:
    model: str
    engine: str
    state: str
    queued: float
    running: Callable[[], bool] | None = None
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None  # the fit's own time, as the engine measured it


class Progress:
    """Receives run_models' on_start/on_fit hooks and shows them."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False,
                 live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self.rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.Lock()
        self._drawn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.live:
            self._draw()

    def start(self, model: str, engine: str, cached: bool,
              running: Callable[[], bool] | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self.rows[(model, engine)] = _Row(model, engine, "cached" if cached else "queued",
                                              now, running)

    def done(self, fit: Fit) -> None:
        now = time.monotonic()
        with self._lock:
            row = self.rows.setdefault((fit.model, fit.label),
                                       _Row(fit.model, fit.label, "", now))
            cached = row.state == "cached"
            row.state = f"{fit.status} (cache)" if cached else fit.status
            row.ended = now
            row.seconds = fit.provenance.seconds
        if not self.live and not self.quiet:
            print(f"  {self._line(row, now)}", file=self.stream, flush=True)

    def _line(self, row: _Row, now: float) -> str:
        if row.ended is None and row.running is not None and row.running():
            if row.started is None:
                row.started = now
            row.state = "running"
        if row.seconds is not None:
            elapsed = row.seconds
        else:
            elapsed = now - (row.started if row.started is not None else now)
        return f"{row.model:<20} {row.engine:<18} {row.state:<12} {elapsed:6.1f} s"

    def _draw(self) -> None:
        now = time.monotonic()
        with self._lock:
            lines = [self._line(r, now) for r in self.rows.values()]
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self.stream.write(f"\x1b[2K{line}\n")
        self.stream.flush()
        self._drawn = len(lines)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()
