"""Where parity's R scripts are: one locator for every module that runs or hashes them
(the R engines, the recorded references, the fit cache, the R data-set reader)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def r_script_path(name: str) -> Path:
    """An R script: the package's copy (`parity/r_scripts`, put there when the wheel is
    built), else the source tree's `r_scripts/`."""
    shipped = Path(str(resources.files("parity") / "r_scripts" / name))
    if shipped.is_file():
        return shipped
    return Path(__file__).resolve().parents[3] / "r_scripts" / name
