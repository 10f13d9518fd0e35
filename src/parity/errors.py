"""Errors raised for users: one hierarchy that the CLI turns into one line and an exit code.

Exit code 2 is a usage error (bad formula, bad file, bad option), 1 a fit that failed.
"""

from __future__ import annotations


class ParityError(Exception):
    """Base class; `exit_code` tells the CLI how to leave."""

    exit_code = 2


class UsageError(ParityError):
    """Options that do not make sense together or name unknown things."""


class FormulaError(UsageError):
    """A formula outside parity's grammar; nothing was evaluated."""

    def __str__(self) -> str:
        return f"formula: {super().__str__()}"


class DataError(UsageError):
    """A data file or column that cannot serve the model asked for."""


class FitError(ParityError):
    """A fit that ran but failed; recorded in results, and exit code 1."""

    exit_code = 1
