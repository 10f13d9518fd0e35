"""Blocks as Markdown. User text (formulas, terms, reasons) is escaped so it cannot become
markup; code spans keep it verbatim."""

from __future__ import annotations

import re
from collections.abc import Iterable

from parity.reports.blocks import (
    MARKS,
    Block,
    Bullets,
    Code,
    Heading,
    Inline,
    Mark,
    Para,
    Span,
    Strong,
    Table,
)

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
    """The blocks as Markdown lines, a blank line after each block."""
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


def render_markdown(blocks: Iterable[Block]) -> str:
    """A whole Markdown document; figures are linked by their `href`."""
    return "\n".join(markdown_lines(blocks))
