"""The plain blocks a report is built from (heading, paragraph, list, table, image) and
their Markdown form, so that the Markdown and the HTML reports carry the same content.
User text (formulas, terms, reasons) is escaped so it cannot become markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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

# Characters that could turn user text into markup. A bracket is escaped only where it
# could close a link (`](`, `][`, `]:`), so intervals like [1.0, 2.0] stay readable.
_MD_ESCAPE = re.compile(r"[\\`*<>|#&~]|\](?=[(\[:])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_text(text: str) -> str:
    return _MD_ESCAPE.sub(lambda m: "\\" + m.group(0), " ".join(text.splitlines()))


def _md_span(span: Span, in_table: bool) -> str:
    if isinstance(span, Code):
        text = " ".join(span.text.splitlines())
        if in_table:
            text = text.replace("|", "\\|")
        fence = "``" if "`" in text else "`"
        return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"
    if isinstance(span, Strong):
        return f"**{_md_text(span.text)}**"
    if isinstance(span, Mark):
        return MARKS.get(span.verdict, "?")
    return _md_text(span)


def _md_inline(spans: Inline, in_table: bool = False) -> str:
    return "".join(_md_span(s, in_table) for s in spans)


def markdown_lines(blocks: Iterable[Block]) -> list[str]:
    """Render blocks as Markdown; user text is escaped so it cannot become markup."""
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines.append("#" * b.level + " " + _md_text(b.text))
        elif isinstance(b, Para):
            lines.append(_md_inline(b.spans))
        elif isinstance(b, Bullets):
            lines += ["- " + _md_inline(item) for item in b.items]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_text(h) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_md_inline(c, True) for c in row) + " |" for row in b.rows]
        else:
            lines.append(f"![{_md_text(b.alt)}]({b.href})")
        lines.append("")
    return lines
