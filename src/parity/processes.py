"""Worker processes that Ctrl-C does not reach.

Ctrl-C goes to the whole process group. The main process stops its workers itself, and
says so in one line; a worker that took the signal would print a traceback from
wherever it was: Python's multiprocessing start-up, an import, or an rpy2 callback
(embedding R installs R's handler, and rpy2 then Python's default one, over any that a
worker set). A signal mask is inherited across fork and exec and no library resets it,
so a worker is started with SIGINT blocked, and it stays blocked.
"""

from __future__ import annotations

import signal
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any


class _QuietProcess(SpawnProcess):
    def start(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            # A Ctrl-C that came meanwhile is delivered to this process now.
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _QuietSpawnContext(SpawnContext):
    Process = _QuietProcess


def quiet_spawn() -> Any:
    """The spawn context, whose processes start with SIGINT blocked."""
    return _QuietSpawnContext()


def block_interrupts() -> None:
    """Called first in a worker: SIGINT stays blocked there (again, should a worker be
    started some other way)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

