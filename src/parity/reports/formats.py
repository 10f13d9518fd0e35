"""The table of report formats: what each is called, the file suffix it is written
under, and the function that renders it. Runs and studies write through this one table,
so a new format (LaTeX, say) is one renderer and one row here, for both.

A format renders a `Report`: the document's blocks, and for a run the comparison rows
behind them (the CSV writes those rows at full precision rather than the rounded tables).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from parity.atomic import write_text_atomic
from parity.reports.blocks import Block
from parity.reports.csv_ import render_csv
from parity.reports.html import render_html
from parity.reports.markdown import render_markdown
from parity.schema import Comparison


@dataclass(frozen=True)
class Report:
    """One document to write: its blocks, and the comparison rows of a run (none for a
    study)."""

    blocks: tuple[Block, ...]
    comparisons: tuple[Comparison, ...] = ()


@dataclass(frozen=True)
class Format:
    """`rows`: the format writes the comparison rows, not the blocks, so a document
    without rows (a study) is not written in it."""

    name: str
    suffix: str
    render: Callable[[Report], str]
    rows: bool = False


FORMATS: tuple[Format, ...] = (
    Format("markdown", ".md", lambda r: render_markdown(r.blocks)),
    Format("html", ".html", lambda r: render_html(r.blocks)),
    Format("csv", ".csv", lambda r: render_csv(r.comparisons), rows=True),
)

# The formats that render blocks alone: what a study writes.
BLOCK_FORMATS = tuple(f for f in FORMATS if not f.rows)


def formats_named(names: Sequence[str]) -> tuple[Format, ...]:
    """The formats of these names, in the table's order (a `--formats` option's value);
    an unknown name is a ValueError naming the known ones."""
    known = {f.name for f in FORMATS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown report format {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return tuple(f for f in FORMATS if f.name in names)


def write_formats(out: Path, stem: str, report: Report,
                  formats: Sequence[Format] = FORMATS) -> dict[str, Path]:
    """`<stem><suffix>` under `out` for each format, written atomically; the paths by
    format name."""
    return {f.name: write_text_atomic(Path(out) / f"{stem}{f.suffix}", f.render(report))
            for f in formats}
