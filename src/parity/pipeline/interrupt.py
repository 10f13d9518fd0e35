"""SIGTERM handled like Ctrl-C: one line, an exit code, partial results kept.

A job scheduler or `timeout` stops a run with SIGTERM, which by default kills Python
without unwinding: no message, and engine workers left running. Here it stops the
workers (they hold nothing that needs saving: every finished fit is already in
results.partial.json) and raises :class:`Terminated` in the main thread, which the CLI
reports in one line with exit code 143 (128 + SIGTERM).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The run received SIGTERM."""

    exit_code = 128 + signal.SIGTERM


def _stop(signum: int, frame: FrameType | None) -> None:
    for child in multiprocessing.active_children():
        child.terminate()
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (main thread only; elsewhere Python
    cannot install signal handlers, and the block changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
