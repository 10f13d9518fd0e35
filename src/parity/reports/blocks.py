"""The plain blocks a report is built from (heading, paragraph, list, table, image): the
one vocabulary between what a report says (parity.reports.content, the study's report)
and how a format writes it (parity.reports.formats). Blocks hold user text as it is;
each renderer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARKS = {"agree": "✓", "disagree": "✗", "not_comparable": "○"}


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Mark:
    """A verdict shown as ✓ / ✗ / ○ (coloured in HTML)."""

    verdict: str


Span = str | Code | Strong | Mark
Inline = tuple[Span, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    spans: Inline


@dataclass(frozen=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    # A verdict per cell ("agree", "disagree", "not_comparable" or ""), which the HTML
    # report shows as the cell's colour; the Markdown report has no colours.
    states: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Image:
    """A figure: `path` is read for the HTML, `href` is the Markdown link."""

    alt: str
    path: Path
    href: str


Block = Heading | Para | Bullets | Table | Image
