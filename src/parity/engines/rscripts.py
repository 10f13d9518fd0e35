"""Where parity's R scripts are, and the one hash of the R code a fit depends on.

A leaf beside the R bridge (:mod:`parity.engines.rbridge`): the fit cache, the recorded
references and the R data-set reader need the scripts and their hash, not embedded R, and
the bridge itself falls back on the recorded references, so these live apart from both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

# PARITY_LME4=recorded uses recorded references even where R is installed (every R
# engine; the name is lme4's, the first R engine, and kept).
FORCE_RECORDED = "PARITY_LME4"


def r_script_path(name: str) -> Path:
    """An R script: the package's copy (`parity/r_scripts`, put there when the wheel is
    built), else the source tree's `r_scripts/`."""
    shipped = Path(str(resources.files("parity") / "r_scripts" / name))
    if shipped.is_file():
        return shipped
    return Path(__file__).resolve().parents[3] / "r_scripts" / name


def r_code_sha256(scripts: Sequence[str]) -> str:
    """One SHA-256 of the R code a fit runs: of each script's digest, in the order they
    are sourced. The fit cache keys on it and a recorded reference stores it."""
    return hashlib.sha256(b"".join(hashlib.sha256(r_script_path(s).read_bytes()).digest()
                                   for s in scripts)).hexdigest()


def forced_recorded() -> bool:
    """$PARITY_LME4=recorded: R engines use recorded references, never live R."""
    return os.environ.get(FORCE_RECORDED, "") == "recorded"
