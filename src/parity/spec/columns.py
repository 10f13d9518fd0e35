"""Column names a formula can name: parity refuses the others, it never renames them.

A formula names columns as plain identifiers (see :func:`parity.spec.grammar.is_plain_name`),
so `Reaction.Time` or `my col` cannot be written in one. Renaming them silently would
make every report speak of columns the analyst's file does not have; instead, whenever a
formula or an option fails in a way such a column explains, the error names the column
and suggests an identifier to rename it to. Columns a model does not use are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from parity.spec.grammar import is_plain_name


def suggest_name(name: object) -> str:
    """An identifier close to `name`: other characters become `_`, a leading digit or
    underscore gets an `x` in front, a reserved word gets `_` after it."""
    text = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "column"
    if not text[0].isalpha():
        text = "x" + text
    return text if is_plain_name(text) else text + "_"


def unusable_columns(columns: Iterable[object]) -> list[str]:
    """The columns no formula can name."""
    return [str(c) for c in columns if not is_plain_name(c)]


def rename_advice(names: Iterable[str]) -> str:
    """`'Reaction.Time' (rename it, e.g. to 'Reaction_Time')`, for each name."""
    return ", ".join(f"{n!r} (rename it, e.g. to {suggest_name(n)!r})" for n in names)


def column_hint(text: str, columns: Iterable[object]) -> str | None:
    """Why `text` (a formula or an option) may have failed: the columns of the data
    that are not plain identifiers and that `text` seems to mean, or None."""
    bad = [c for c in unusable_columns(columns) if c and c in text]
    if not bad:
        return None
    which = "a column" if len(bad) == 1 else "columns"
    return (f"{which} of the data cannot be named in a formula: {rename_advice(bad)}; "
            "column names must be plain identifiers")


def describe_columns(columns: Iterable[object], limit: int = 20, width: int = 40) -> str:
    """`it has a, b, c` for an error message, or a description that quotes nothing.

    A config's `data` may name any file, and a file that is not a CSV parses into one
    column whose name is its whole first line: that is never quoted. Otherwise at most
    `limit` names are listed, each cut to `width` characters."""
    names = [str(c) for c in columns]
    if len(names) < 2:
        return "it has a single column; is it a comma-separated file?"
    shown = [n if len(n) <= width else n[: width - 1] + "…" for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"it has {', '.join(shown)}{more}"
