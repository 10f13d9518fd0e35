"""Data sets shipped with installed R packages (`--r-dataset lme4::sleepstudy`).

They let parity be tried on data it has never seen, with lme4's own examples as the
test. The package and data set names are checked against a strict pattern before R
starts, then passed to `r_scripts/r_dataset.R` as separate command-line arguments
(no shell, nothing pasted into R code); the script writes the data as CSV and the
factor columns with R's level order beside it, so R's reference levels are kept.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from parity.engines.rscripts import r_script_path
from parity.errors import DataError, UsageError

SCRIPT_NAME = "r_dataset.R"
_PART = r"[A-Za-z][A-Za-z0-9._]{0,99}"
_SPEC = re.compile(rf"({_PART})::({_PART})")
TIMEOUT_S = 120


@dataclass(frozen=True)
class RDataset:
    """A data set loaded from R: its rows, and its factor columns in R's level order."""

    name: str
    frame: pd.DataFrame
    factors: dict[str, tuple[str, ...]]


def parse_r_dataset(text: str) -> tuple[str, str]:
    """`PKG::NAME` as (PKG, NAME); anything else is a usage error, before R runs."""
    m = _SPEC.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise UsageError(
            f"--r-dataset {text!r} is not PKG::NAME (letters, digits, '.' and '_', "
            "starting with a letter), e.g. lme4::sleepstudy")
    return m.group(1), m.group(2)


def r_script(name: str = SCRIPT_NAME) -> Path:
    """The data-set reader's R script, wherever it is installed."""
    return r_script_path(name)


def _read(csv: Path, sidecar: Path) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    factors = {k: tuple(str(v) for v in vs)
               for k, vs in json.loads(sidecar.read_text(encoding="utf-8")).items()}
    header = pd.read_csv(csv, nrows=0).columns
    # R writes NA as an empty field; a factor level spelt "NA" stays a level.
    na = {c: [""] if c in factors else ["", "NA", "NaN"] for c in header}
    frame = pd.read_csv(csv, dtype={c: str for c in factors}, keep_default_na=False,
                        na_values=na)
    for column, levels in factors.items():
        coded = pd.Categorical(frame[column], categories=list(dict.fromkeys(levels)))
        if pd.isna(coded).sum() != frame[column].isna().sum():
            raise DataError(f"factor {column!r} has values outside its levels")
        frame[column] = coded
    return frame, factors


def load_r_dataset(text: str) -> RDataset:
    """Run `Rscript r_dataset.R PKG NAME OUT.csv FACTORS.json` and read what it wrote.

    A missing R, package or data set is a DataError of one line."""
    pkg, name = parse_r_dataset(text)
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise DataError(f"--r-dataset {pkg}::{name} needs R, and Rscript is not on PATH")
    with tempfile.TemporaryDirectory(prefix="parity-rdata-") as tmp:
        csv, sidecar = Path(tmp) / "data.csv", Path(tmp) / "factors.json"
        try:
            proc = subprocess.run(
                [rscript, "--vanilla", str(r_script()), pkg, name, str(csv), str(sidecar)],
                capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            raise DataError(f"loading {pkg}::{name} in R took over {TIMEOUT_S} s") from None
        if proc.returncode != 0 or not csv.is_file():
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            why = lines[-1] if lines else f"Rscript exited with status {proc.returncode}"
            raise DataError(f"cannot load {pkg}::{name} from R: {why}")
        frame, factors = _read(csv, sidecar)
    if frame.empty:
        raise DataError(f"{pkg}::{name} has no rows")
    return RDataset(f"{pkg}::{name}", frame, factors)
