"""What people read: Markdown, HTML, CSV and figures, built from result records only."""

from __future__ import annotations

from parity.reports.write import write_reports

__all__ = ["write_reports"]
