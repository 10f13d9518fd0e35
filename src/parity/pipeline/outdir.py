"""The output directory of a run: what parity writes there, and who may write it.

Every file name a run writes is named here, so that a new run can remove what an older
one left: a smaller or interrupted run must not leave the old comparison beside its own
fits. Two runs writing one directory at once would interleave their files, so a run
holds an exclusive lock on it (`.parity.lock`, `flock`, released by the kernel if the
process dies) and a second run is refused. Whether the directory can be written is
checked before anything is fitted, so a bad `--out` costs seconds, not a run.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from parity.errors import UsageError
from parity.reports.files import FIGURES_DIR, REPORT_NAMES

RESULTS_NAME = "results.json"
PARTIAL_NAME = "results.partial.json"
LOCK_NAME = ".parity.lock"
DRAWS_DIR = "draws"  # posterior draws, with --save-draws

# What `parity study` writes (parity.study.report names them for writing; they are said
# here too, as this stage is below the study's, so a new study clears an older one's).
# A study's batch folder (`study.batches`) is not among them: it is what a rerun resumes
# from, and each batch file is checked against its key and checksum when read.
STUDY_NAMES = ("study.json", "study.md", "study.html", "tolerances.calibrated.toml")
STUDY_BATCHES_DIR = "study.batches"


def refuse_a_file(out: Path, option: str = "--out") -> None:
    """UsageError when `out` is a file or under one: said before anything else is
    checked or created."""
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"is under a file ({str(parent)!r})"
            raise UsageError(f"{option} {str(out)!r} {what}; give a directory")
        if parent.exists():
            break


def check_writable(out: Path, option: str = "--out") -> Path:
    """Create `out` if needed and prove a file can be written in it, or UsageError."""
    out = Path(out)
    where = repr(str(out))
    refuse_a_file(out, option)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".parity-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {where} cannot be written "
                         f"({exc.strerror or type(exc).__name__})") from None
    return out


@contextmanager
def claimed(out: Path, clear: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """The directory checked, locked for this run, and cleared of an older run's
    results and reports (`clear`, by default :func:`clear_previous`; a study passes
    :func:`clear_study`); the lock is held until the block ends."""
    out = check_writable(out)
    handle: IO[str] = open(out / LOCK_NAME, "a+")  # noqa: SIM115 (held across the block)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UsageError(f"another parity run (or study) is writing to "
                                 f"{str(out)!r}; wait for it to finish, or give another "
                                 "--out") from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        (clear or clear_previous)(out)
        yield out
    finally:
        handle.close()  # closing releases the lock


def clear_previous(out: Path) -> None:
    """Remove the results and reports an earlier run left (only files parity writes)."""
    for name in (RESULTS_NAME, *REPORT_NAMES):
        (out / name).unlink(missing_ok=True)
    for folder, pattern in ((FIGURES_DIR, "*.png"), (DRAWS_DIR, "*.nc")):
        if (out / folder).is_dir():
            for path in (out / folder).glob(pattern):
                path.unlink(missing_ok=True)


def clear_study(out: Path) -> None:
    """Remove the files and figures an earlier study left, so that a smaller study (one
    without Bayesian engines draws no differences figure) leaves none of them beside its
    own; keep the batch files a rerun resumes from."""
    for name in STUDY_NAMES:
        (out / name).unlink(missing_ok=True)
    if (out / FIGURES_DIR).is_dir():
        for path in (out / FIGURES_DIR).glob("*.png"):
            path.unlink(missing_ok=True)
