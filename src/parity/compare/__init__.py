"""Verdicts under the tolerance policy, and what moved between two runs.

Reads only result records (:mod:`parity.schema`) and the engine registry's kinds.
"""

from __future__ import annotations

from parity.compare.rules import boundary, compare_all, compare_pair
from parity.compare.tolerances import Policy, Rule, load_policy

__all__ = ["Policy", "Rule", "boundary", "compare_all", "compare_pair", "load_policy"]
