"""The end of `parity run` on a terminal: the summary matrix, so that whether anything
disagrees is known without opening a file. Coloured on a terminal (unless NO_COLOR is
set), plain in a log."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TextIO

from parity.reports.summary import (
    between_engines,
    counts_text,
    matrix_states,
    summary_matrix,
)
from parity.reports.text import format_table
from parity.schema import Comparison

_COLOURS = {"agree": "\033[32m", "disagree": "\033[31m", "not_comparable": "\033[33m"}
_RESET = "\033[0m"


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def matrix_text(comparisons: Sequence[Comparison], models: Sequence[str] = (),
                colour: bool = False) -> str:
    """The summary matrix as an aligned table: each cell `agree/comparable` and the
    not-comparable count."""
    header, body = summary_matrix(comparisons, models)
    states = matrix_states(comparisons, header, body)

    def paint(padded: str, row: int, column: int) -> str:
        state = states[row][column]
        return f"{_COLOURS[state]}{padded}{_RESET}" if colour and state else padded

    return format_table(header, body, paint)


def verdict_line(comparisons: Sequence[Comparison]) -> str:
    """The counts of the rows between engines, and how many rows compared an engine with
    its own refit (not counted with them)."""
    engines = between_engines(comparisons)
    own = len(comparisons) - len(engines)
    return (f"{len(engines)} comparison rows between engines: {counts_text(engines)}"
            + (f" (and {own} of an engine against its own refit)" if own else ""))
