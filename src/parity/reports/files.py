"""The names of the files the reports are written to: a module of names only, so that the
run can remove an older run's reports without importing the report writers."""

from __future__ import annotations

MARKDOWN = "comparison.md"
HTML = "comparison.html"
CSV = "comparison.csv"
REPORT_NAMES = (MARKDOWN, HTML, CSV)
FIGURES_DIR = "figures"
