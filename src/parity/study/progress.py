"""A study's progress line."""

from __future__ import annotations

import sys
import time


class StudyProgress:
    """Replicates done / total with an ETA, on one terminal line (a line per tenth when
    the output is not a terminal)."""

    def __init__(self, total: int, done: int, quiet: bool) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self._last_tenth = -1
        self.show()

    def add(self, n: int) -> None:
        self.done += n
        self.show()

    def show(self) -> None:
        if self.quiet:
            return
        new = self.done - self.start_done
        elapsed = time.monotonic() - self.start
        eta = ""
        if new and self.done < self.total:
            eta = f", ETA {_duration(elapsed / new * (self.total - self.done))}"
        text = (f"study: {self.done}/{self.total} replicates "
                f"({self.done / max(1, self.total):.0%}){eta}")
        if self.tty:
            print(f"\r{text}\033[K", end="" if self.done < self.total else "\n",
                  file=sys.stderr, flush=True)
            return
        tenth = int(10 * self.done / max(1, self.total))
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            print(text, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"
