"""Same rows, same coding for every engine: complete rows, level order, R's design
matrices, and what no engine can identify."""

from __future__ import annotations

from parity.rows.design import Design, build_design
from parity.rows.prepare import PreparedData, prepare

__all__ = ["Design", "PreparedData", "build_design", "prepare"]
