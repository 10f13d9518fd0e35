"""parity: term-by-term agreement between lme4, statsmodels and Bambi."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
