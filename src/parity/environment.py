"""The versions that produced a run, recorded in every results.json so that two runs from
different environments can be told apart and compared (`parity diff`)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from parity import __version__
from parity.registry import engine_info, engine_with_role
from parity.schema import Fit

# Beside the engines' stacks (which the run passes in, from the registry): what draws
# the reports.
REPORT_PACKAGES = ("matplotlib",)


# Where parity keeps what it computed once for reuse (fits, figures, compiled programs).
CACHE_ENV = "PARITY_CACHE_DIR"


def cache_dir() -> Path:
    """$PARITY_CACHE_DIR, else the user cache directory ($XDG_CACHE_HOME/parity)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "parity"


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported); packages
    that are not installed are left out."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def environment(fits: Sequence[Fit] = (), packages: Iterable[str] = ()) -> dict[str, object]:
    """Python, platform, the versions of `packages` (every engine's stack) and of the
    report packages; R's as every R engine's fits report it, and the reference engine's
    (lme4's) as its fits report it."""
    r_versions = sorted({f.provenance.r_version for f in fits
                         if f.provenance.r_version and engine_info(f.engine).embeds_r})
    reference = engine_with_role("reference")
    lme4 = sorted({f.provenance.engine_version for f in fits
                   if f.engine == reference and f.status == "ok"})
    return {
        "parity": __version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": package_versions(dict.fromkeys([*packages, *REPORT_PACKAGES])),
        "r": r_versions,
        "lme4": lme4,
    }
