"""The generated summary: verdict counts per engine pair, where the Bayesian and the
frequentist engines agree, why they do not where they do not, and a model × pair matrix.

Every sentence is counted or copied from Comparison rows, never written about specific
numbers by hand. The report is built from a few plain blocks (heading, paragraph, list,
table, image) so that the Markdown and the HTML files carry the same content; the Markdown
form of those blocks is here because the summary is handed out as Markdown lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from parity.schema import Comparison

BAYESIAN = frozenset({"bambi"})
FREQUENTIST = frozenset({"lme4", "statsmodels"})
MARKS = {"agree": "✓", "disagree": "✗", "not_comparable": "○"}
MAX_PLACES = 8  # rows listed under one reason before "and N more"


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


@dataclass(frozen=True)
class Image:
    """A figure: `path` is read for the HTML, `href` is the Markdown link."""

    alt: str
    path: Path
    href: str


Block = Heading | Para | Bullets | Table | Image

# ---- Markdown form of the blocks ---------------------------------------------------------

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


# ---- what the verdicts say ---------------------------------------------------------------


def engine_kind(label: str) -> str:
    """`bayesian`, `frequentist` or `other`; `lme4:independent` is lme4's kind."""
    engine = label.split(":", 1)[0]
    return ("bayesian" if engine in BAYESIAN else
            "frequentist" if engine in FREQUENTIST else "other")


def pair_label(c: Comparison) -> str:
    return f"{c.engine} vs {c.reference}"


def row_name(c: Comparison) -> str:
    """A row's term as a reader names it: `genderM`, `SE(genderM)`, `sd(Residual)`."""
    return f"SE({c.term})" if c.quantity == "std_error" else c.term


def pair_counts(comparisons: Sequence[Comparison]) -> dict[str, Counter[str]]:
    """Verdict counts per engine pair, pairs in the order the rows name them."""
    counts: dict[str, Counter[str]] = {}
    for c in comparisons:
        counts.setdefault(pair_label(c), Counter())[c.verdict] += 1
    return counts


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?=x\b|(?!\w|\.\d))")


def _places(rows: Sequence[Comparison]) -> str:
    by_place: dict[tuple[str, str], list[str]] = {}
    for c in rows:
        by_place.setdefault((c.model, pair_label(c)), []).append(row_name(c))
    parts = [f"{m} ({p}): {', '.join(names)}" for (m, p), names in by_place.items()]
    more = len(parts) - MAX_PLACES
    return "; ".join(parts[:MAX_PLACES]) + (f"; and {more} more" if more > 0 else "")


def reason_items(rows: Sequence[Comparison]) -> list[Inline]:
    """The rows that do not agree, one item per distinct reason.

    Reasons that differ only in their numbers are one reason: the numbers become `…`
    here and stay whole in each model's table."""
    groups: dict[tuple[str, str], list[Comparison]] = {}
    for c in rows:
        if c.verdict != "agree":
            key = (c.verdict, _NUMBER.sub("…", c.reason or "no reason given"))
            groups.setdefault(key, []).append(c)
    items: list[Inline] = []
    for (verdict, template), members in groups.items():
        text = (members[0].reason or template) if len(members) == 1 else template
        items.append((Mark(verdict), " ", Strong(verdict.replace("_", " ")), f": {text} — ",
                      _places(members)))
    return items


def _agree_items(rows: Sequence[Comparison]) -> list[Inline]:
    items: list[Inline] = []
    for model in dict.fromkeys(c.model for c in rows):
        mine = [c for c in rows if c.model == model and c.verdict != "not_comparable"]
        agree = [c for c in mine if c.verdict == "agree"]
        if not mine:
            continue
        by_q: dict[str, list[str]] = {}
        for c in agree:
            names = by_q.setdefault(c.quantity, [])
            if c.term not in names:
                names.append(c.term)
        which = "; ".join(f"{q}: {', '.join(t)}" for q, t in by_q.items())
        items.append((Strong(model), f": {len(agree)} of {len(mine)} comparable rows agree"
                      + (f" — {which}" if which else "")))
    return items


def _class_blocks(title: str, rows: Sequence[Comparison], list_agree: bool) -> list[Block]:
    if not rows:
        return []
    comparable = [c for c in rows if c.verdict != "not_comparable"]
    agree = sum(c.verdict == "agree" for c in comparable)
    blocks: list[Block] = [Heading(3, title), Para((
        f"{agree} of {len(comparable)} comparable rows agree; "
        f"{len(rows) - len(comparable)} rows are not comparable.",))]
    if list_agree:
        items = _agree_items(rows)
        if items:
            blocks += [Para(("Where they agree:",)), Bullets(tuple(items))]
    reasons = reason_items(rows)
    if reasons:
        blocks += [Para(("Where they do not, by reason:",)), Bullets(tuple(reasons))]
    return blocks


def summary_blocks(comparisons: Sequence[Comparison]) -> list[Block]:
    """Counts per engine pair, then Bayesian against frequentist, then the rest."""
    blocks: list[Block] = [Heading(2, "Summary")]
    if not comparisons:
        return blocks + [Para(("No comparisons were made.",))]
    items: list[Inline] = []
    for pair, n in pair_counts(comparisons).items():
        comparable = n["agree"] + n["disagree"]
        items.append((Strong(pair), f": {n['agree']} of {comparable} comparable rows agree, "
                      f"{n['disagree']} disagree; {n['not_comparable']} not comparable"))
    blocks += [Bullets(tuple(items))]
    classes: dict[str, list[Comparison]] = {"bf": [], "ff": [], "rest": []}
    for c in comparisons:
        kinds = {engine_kind(c.engine), engine_kind(c.reference)}
        key = "bf" if kinds == {"bayesian", "frequentist"} else (
            "ff" if kinds == {"frequentist"} else "rest")
        classes[key].append(c)
    bayes, freq, rest = classes["bf"], classes["ff"], classes["rest"]
    engines = {e.split(":", 1)[0] for c in bayes for e in (c.engine, c.reference)}
    b_names = ", ".join(sorted(e for e in engines if engine_kind(e) == "bayesian"))
    f_names = ", ".join(sorted(e for e in engines if engine_kind(e) == "frequentist"))
    blocks += _class_blocks(f"Bayesian ({b_names}) against frequentist ({f_names})", bayes, True)
    blocks += _class_blocks("Between frequentist fits", freq, False)
    blocks += _class_blocks("Other pairs", rest, False)
    return blocks


def summary_matrix(comparisons: Sequence[Comparison],
                   models: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per model (and a total), one column per engine pair, each
    cell `agree/comparable`, with the not-comparable count beside it."""
    order = list(dict.fromkeys([*models, *(c.model for c in comparisons)]))
    pairs = list(pair_counts(comparisons))

    def cell(rows: list[Comparison]) -> str:
        if not rows:
            return "–"
        n = Counter(c.verdict for c in rows)
        text = f"{n['agree']}/{n['agree'] + n['disagree']}"
        return text + (f" (+{n['not_comparable']} n/c)" if n["not_comparable"] else "")

    body = [[m] + [cell([c for c in comparisons if c.model == m and pair_label(c) == p])
                   for p in pairs] for m in order]
    if comparisons:
        body.append(["all models"] + [cell([c for c in comparisons if pair_label(c) == p])
                                      for p in pairs])
    return ["model", *pairs], body


def matrix_blocks(comparisons: Sequence[Comparison], models: Sequence[str] = ()) -> list[Block]:
    header, body = summary_matrix(comparisons, models)
    return [Heading(2, "Summary matrix"),
            Para(("Each cell: rows that agree / comparable rows; n/c: rows not comparable.",)),
            Table(tuple(header), tuple(tuple((c,) for c in row) for row in body))]


def summary_lines(comparisons: Sequence[Comparison]) -> list[str]:
    """The generated summary as Markdown lines."""
    return markdown_lines(summary_blocks(comparisons))


def summary_matrix_lines(comparisons: Sequence[Comparison],
                         models: Sequence[str] = ()) -> list[str]:
    """The model × engine pair matrix as Markdown lines."""
    return markdown_lines(matrix_blocks(comparisons, models))
