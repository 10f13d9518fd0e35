"""Blocks as one self-contained HTML page: the same content as the Markdown.

Inline CSS, no scripts, no external assets: figures are embedded as `data:image/png`
URIs, so the file can be mailed or archived alone. Every piece of text goes through
html.escape, since model names, formulas and terms are user data.

Written by hand rather than through a template engine: each block is one small
function of a few lines, and the only "template" is the page shell below, so Jinja2
would add a dependency and a second language (with its own autoescape rules to get
right) without making any of this shorter.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape

from parity.reports.blocks import (
    MARKS,
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Inline,
    Mark,
    Para,
    Span,
    Strong,
    Table,
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 80rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1, h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h2 { margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f6f8fa; padding: 0 .25rem; border-radius: 3px; font-size: .88em; }
img { max-width: 100%; height: auto; }
.mark { font-weight: bold; }
.agree { color: #1a7f37; }
.disagree { color: #cf222e; }
.not_comparable { color: #6e7781; }
tbody tr td.cell-agree { background: #dafbe1; }
tbody tr td.cell-disagree { background: #ffebe9; }
tbody tr td.cell-not_comparable { background: #fff8c5; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
          padding: .4rem 1rem; margin: 1rem 0; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; columns: 2; }
"""


def _span(span: Span) -> str:
    if isinstance(span, Code):
        return f"<code>{escape(span.text)}</code>"
    if isinstance(span, Strong):
        return f"<strong>{escape(span.text)}</strong>"
    if isinstance(span, Mark):
        css = span.verdict if span.verdict in MARKS else "unknown"
        return (f'<span class="mark {css}" title="{escape(span.verdict)}">'
                f"{escape(MARKS.get(span.verdict, '?'))}</span>")
    return escape(span)


def _inline(spans: Inline) -> str:
    return "".join(_span(s) for s in spans)


def _image(img: Image) -> str:
    try:
        data = base64.b64encode(img.path.read_bytes()).decode("ascii")
    except OSError as exc:
        return f"<p>Figure not available: {escape(str(exc))}</p>"
    return (f'<figure><img alt="{escape(img.alt)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        level = min(max(b.level, 1), 6)
        return f"<h{level}>{escape(b.text)}</h{level}>"
    if isinstance(b, Para):
        return f"<p>{_inline(b.spans)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{_inline(i)}</li>" for i in b.items) + "\n</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{escape(h)}</th>" for h in b.header)

        def cell(i: int, j: int, c: Inline) -> str:
            state = b.states[i][j] if i < len(b.states) and j < len(b.states[i]) else ""
            css = f' class="cell-{state}"' if state in MARKS else ""
            return f"<td{css}>{_inline(c)}</td>"

        body = "\n".join("<tr>" + "".join(cell(i, j, c) for j, c in enumerate(row)) + "</tr>"
                         for i, row in enumerate(b.rows))
        return (f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n"
                "</table>")
    return _image(b)


def _slug(text: str, taken: set[str]) -> str:
    base = "s-" + ("-".join(re.findall(r"[A-Za-z0-9]+", text)).lower() or "section")
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def render_html(blocks: Sequence[Block]) -> str:
    """A whole HTML document, titled by its first top-level heading, with an anchor on
    every section and a table of contents under the headline."""
    title = next((b.text for b in blocks if isinstance(b, Heading) and b.level == 1),
                 "parity")
    taken: set[str] = set()
    parts: list[str] = []
    toc: list[str] = []
    for b in blocks:
        if isinstance(b, Heading) and b.level == 2:
            slug = _slug(b.text, taken)
            toc.append(f'<li><a href="#{slug}">{escape(b.text)}</a></li>')
            parts.append(f'<h2 id="{slug}">{escape(b.text)}</h2>')
        else:
            parts.append(_block(b))
    if toc and len(parts) > 1:
        nav = '<nav class="toc"><strong>Contents</strong>\n<ul>\n' + "\n".join(toc) + \
            "\n</ul></nav>"
        at = 2 if len(blocks) > 1 and isinstance(blocks[1], Para) else 1  # after the headline
        parts.insert(at, nav)
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
