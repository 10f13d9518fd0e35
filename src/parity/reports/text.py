"""How numbers and plain-text tables are written in every report, so that a value reads
the same in the Markdown, the HTML, the study and on the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

MISSING = "–"


def num(x: float | None, digits: int = 2) -> str:
    """Fixed decimals, as a table of estimates wants them; a value too small to show in
    `digits` decimals keeps `digits` significant ones instead of reading as 0.00."""
    if x is None or x != x:
        return MISSING
    if x != 0 and abs(x) < 10 ** -digits:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def sig(x: object, digits: int = 6, missing: str = MISSING) -> str:
    """`digits` significant digits, for values whose scale is not known in advance
    (differences, tolerances, likelihoods); `missing` for anything that is not a number."""
    if isinstance(x, (int, float)) and x == x:
        return f"{x:.{digits}g}"
    return missing


Paint = Callable[[str, int, int], str]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 paint: Paint | None = None) -> str:
    """Columns padded to their widest cell under a rule of dashes, so a terminal reader
    can scan down them. `paint(padded, row, column)` may decorate a body cell (colour
    codes); cells are padded first, since codes take no width on screen."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str], row: int | None) -> str:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        if paint is not None and row is not None:
            padded = [paint(p, row, j) for j, p in enumerate(padded)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header, None), "  ".join("-" * w for w in widths),
                      *(line(r, i) for i, r in enumerate(rows))])
