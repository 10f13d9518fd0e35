"""The comparison rows as CSV, one row per line, for analysts' own tools.

Numbers are written with full precision (repr), so a value read back is the value compared;
None is an empty field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from parity.compare.quantities import row_name
from parity.schema import Comparison

# `unconverged`: the row's fits that did not converge, separated by ";" (empty for a row
# of trusted fits). `terms`: the coefficient names the row is of, as the engines name
# them, separated by ";" (empty for the residual SD and the log-likelihood), so that a
# script can join the rows to its own coefficient table without parsing labels. `label`:
# the row as the reports name it (`SE(genderM)`, `conclusion(genderM)`). New columns are
# appended, so a script reading columns by position keeps working.
COLUMNS = ("model", "engine", "reference", "quantity", "term", "group", "value",
           "reference_value", "tolerance", "verdict", "reason", "level", "unconverged",
           "terms", "label")


def _field(x: object) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x)
    if isinstance(x, tuple):
        return ";".join(map(str, x))
    return str(x)


def render_csv(comparisons: Sequence[Comparison]) -> str:
    """The CSV text: a header, then one line per comparison row, in the given order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in comparisons:
        writer.writerow([_field(row_name(c.quantity, c.term) if name == "label"
                                else getattr(c, name)) for name in COLUMNS])
    return buf.getvalue()
