"""The names of the files a run's reports are written to, from the table of formats, so
that the run can remove an older run's reports by name."""

from __future__ import annotations

from parity.reports.formats import FORMATS

STEM = "comparison"
REPORT_NAMES = tuple(f"{STEM}{f.suffix}" for f in FORMATS)
FIGURES_DIR = "figures"
