"""The generated summary: verdict counts per engine pair, where the Bayesian and the
frequentist engines agree, why they do not where they do not, and a model × pair matrix.

Every sentence is counted or copied from Comparison rows, never written about specific
numbers by hand; the summary is made of the blocks in :mod:`parity.reports.blocks`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from parity.compare.quantities import row_name as quantity_row_name
from parity.engines import ENGINE_NAMES
from parity.engines import engine_kind as registry_kind
from parity.reports.blocks import (
    Block,
    Bullets,
    Heading,
    Inline,
    Mark,
    Para,
    Strong,
    Table,
)
from parity.reports.markdown import markdown_lines
from parity.schema import Comparison

MAX_PLACES = 8  # rows listed under one reason before "and N more"


# ---- what the verdicts say ---------------------------------------------------------------


def engine_kind(label: str) -> str:
    """The registry's kind of an engine label (`lme4:independent` is lme4's), or `other`
    for an engine the registry does not know."""
    engine = label.split(":", 1)[0]
    return registry_kind(engine) if engine in ENGINE_NAMES else "other"


def pair_label(c: Comparison) -> str:
    return f"{c.engine} vs {c.reference}"


def row_name(c: Comparison) -> str:
    """A row's term as a reader names it: `genderM`, `SE(genderM)`, `sd(Residual)` (the
    quantity table's `row_name`)."""
    return quantity_row_name(c.quantity, c.term)


UNCONVERGED = "unconverged"


def bucket(c: Comparison) -> str:
    """What a row counts as: its verdict, or `unconverged` for a row of a fit that did
    not converge, which is counted apart whatever its verdict."""
    return UNCONVERGED if c.unconverged else c.verdict


def pair_counts(comparisons: Sequence[Comparison]) -> dict[str, Counter[str]]:
    """Counts per engine pair (:func:`bucket`), pairs in the order the rows name them."""
    counts: dict[str, Counter[str]] = {}
    for c in comparisons:
        counts.setdefault(pair_label(c), Counter())[bucket(c)] += 1
    return counts


def between_engines(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The rows of two different engines: not an engine against its own refit of
    another covariance structure (:func:`refit_rows`)."""
    return [c for c in comparisons if not c.self_refit]


def refit_rows(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The rows of an engine against its own matched-structure refit: how much
    modelling the correlations changes that engine's answer."""
    return [c for c in comparisons if c.self_refit]


def counts_text(comparisons: Sequence[Comparison]) -> str:
    """`12 agree, 3 disagree, 4 not comparable` (and the rows of unconverged fits,
    counted apart)."""
    n = Counter(bucket(c) for c in comparisons)
    text = (f"{n['agree']} agree, {n['disagree']} disagree, {n['not_comparable']} not "
            "comparable")
    if n[UNCONVERGED]:
        text += f"; {n[UNCONVERGED]} against fits that did not converge"
    return text


def refit_sentence(comparisons: Sequence[Comparison]) -> str:
    """What the rows of an engine against its own refit show, or ""."""
    own = refit_rows(comparisons)
    if not own:
        return ""
    moved = [c for c in own if c.verdict == "disagree"]
    pairs = ", ".join(dict.fromkeys(pair_label(c) for c in own))
    text = (f"{len(own)} rows compare an engine with its own refit of the other covariance "
            f"structure ({pairs}), which shows what modelling the correlations changes, "
            "not a disagreement between engines, and are not counted above")
    if moved:
        text += f": {len(moved)} of them move beyond the tolerance"
    return text + "."


CONCLUSION = "conclusion"


def conclusion_changes(comparisons: Sequence[Comparison]
                       ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (model, term)s with a conclusion row between two engines, and those among
    them whose conclusion changes between some pair (a `disagree` conclusion row of fits
    that converged)."""
    rows = [c for c in between_engines(comparisons)
            if c.quantity == CONCLUSION and not c.unconverged]
    judged = list(dict.fromkeys((c.model, c.term) for c in rows
                                if c.verdict != "not_comparable"))
    changed = list(dict.fromkeys((c.model, c.term) for c in rows if c.verdict == "disagree"))
    return judged, changed


def conclusion_sentence(comparisons: Sequence[Comparison]) -> str:
    """How many terms change conclusion between engines, and which (pairs named), or ""
    where no conclusion was compared."""
    judged, changed = conclusion_changes(comparisons)
    if not judged:
        return ""
    if not changed:
        return (f"Conclusions: every one of {len(judged)} terms reaches the same conclusion "
                "in every pair of engines.")
    where = []
    for model, term in changed:
        pairs = ", ".join(pair_label(c) for c in between_engines(comparisons)
                          if c.quantity == CONCLUSION and c.verdict == "disagree"
                          and c.model == model and c.term == term and not c.unconverged)
        where.append(f"{term} in {model} ({pairs})")
    return (f"Conclusions: {len(changed)} of {len(judged)} terms change conclusion between "
            f"engines: {'; '.join(where)}.")


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?=x\b|(?!\w|\.\d))")


def _with_ranges(template: str, reasons: Sequence[str]) -> str:
    """`template` (numbers replaced by NUL) with each number slot filled by its value, or
    by `low–high` where the reasons differ there (each end written as in its reason)."""
    slots = [_NUMBER.findall(r) for r in reasons]
    parts = template.split("\x00")
    out = [parts[0]]
    for k, rest in enumerate(parts[1:]):
        texts = [found[k] for found in slots if k < len(found)]
        values = sorted(set(texts), key=_as_number)
        shown = values[0] if len(values) == 1 else f"{values[0]}–{values[-1]}"
        out += [shown, rest]
    return "".join(out)


def _as_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _names(rows: Sequence[Comparison]) -> list[str]:
    """Each row's name, except that one factor's group effects (one row per level and
    term, dozens of them) are counted in one name: `36 group effects of Subject`."""
    names: list[str] = []
    effects: dict[str | None, int] = {}
    for c in rows:
        if c.quantity == "group_effect":
            effects[c.group] = effects.get(c.group, 0) + 1
        elif (name := row_name(c)) not in names:
            names.append(name)
    names += [f"{n} group effect{'s' if n > 1 else ''} of {g}" for g, n in effects.items()]
    return names


def _places(rows: Sequence[Comparison]) -> str:
    by_place: dict[tuple[str, str], list[Comparison]] = {}
    for c in rows:
        by_place.setdefault((c.model, pair_label(c)), []).append(c)
    parts = [f"{m} ({p}): {', '.join(_names(members))}"
             for (m, p), members in by_place.items()]
    more = len(parts) - MAX_PLACES
    return "; ".join(parts[:MAX_PLACES]) + (f"; and {more} more" if more > 0 else "")


def reason_items(rows: Sequence[Comparison]) -> list[Inline]:
    """The rows that do not agree, one item per distinct reason.

    Reasons that differ only in their numbers are one reason, with each number given as
    the range it takes across the rows ("posterior SD is 1.35–1.93x lme4's SE"); each
    model's table keeps every row's own numbers."""
    groups: dict[tuple[str, str], list[Comparison]] = {}
    for c in rows:
        if c.verdict != "agree":
            key = (c.verdict, _NUMBER.sub("\x00", c.reason or "no reason given"))
            groups.setdefault(key, []).append(c)
    items: list[Inline] = []
    for (verdict, template), members in groups.items():
        text = _with_ranges(template, [m.reason or "" for m in members])
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
        by_q: dict[str, list[Comparison]] = {}
        for c in agree:
            by_q.setdefault(c.quantity, []).append(c)
        which = "; ".join(f"{q}: {', '.join(_names(cs))}" for q, cs in by_q.items())
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


def headline(comparisons: Sequence[Comparison], models: Sequence[str] = ()) -> str:
    """One paragraph from the verdicts: the counts, then for each engine pair the models
    where every comparable row agrees and those where some do not."""
    if not comparisons:
        return "No comparisons were made."
    order = list(dict.fromkeys([*models, *(c.model for c in comparisons)]))
    engines = between_engines(comparisons)
    text = [f"{len(engines)} comparison rows between engines over {len(order)} model"
            f"{'s' if len(order) != 1 else ''}: {counts_text(engines)}."]
    for pair in pair_counts(engines):
        mine = [c for c in engines if pair_label(c) == pair and not c.unconverged]
        bad = [m for m in order if any(c.model == m and c.verdict == "disagree" for c in mine)]
        good = [m for m in order if m not in bad and any(
            c.model == m and c.verdict == "agree" for c in mine)]
        stuck = [m for m in order if any(c.model == m and c.unconverged for c in engines
                                         if pair_label(c) == pair)]
        parts = []
        if good:
            parts.append(f"agree on {', '.join(good)}")
        if bad:
            parts.append(f"disagree somewhere on {', '.join(bad)}")
        if stuck:
            parts.append(f"not compared where a fit did not converge ({', '.join(stuck)})")
        if parts:
            text.append(f"{pair}: {'; '.join(parts)}.")
    conclusions = conclusion_sentence(comparisons)
    refit = refit_sentence(comparisons)
    return " ".join(text + [t for t in (conclusions, refit) if t])


def summary_blocks(comparisons: Sequence[Comparison],
                   fit_kinds: Mapping[tuple[str, str], str] | None = None) -> list[Block]:
    """Counts per engine pair, then Bayesian against frequentist, then the rest, each with
    its rows grouped by reason. `fit_kinds` gives a fit's own kind where it differs from
    its engine's ((model, label) -> kind: statsmodels' approximate mixed GLMs)."""
    own = fit_kinds or {}

    def kind_of(model: str, label: str) -> str:
        return own.get((model, label)) or engine_kind(label)

    blocks: list[Block] = [Heading(2, "Where they agree, and why they differ")]
    if not comparisons:
        return blocks + [Para(("No comparisons were made.",))]
    items: list[Inline] = []
    for pair, n in pair_counts(comparisons).items():
        comparable = n["agree"] + n["disagree"]
        refit = " (an engine against its own refit: what the correlations change)" \
            if any(c.self_refit for c in comparisons if pair_label(c) == pair) else ""
        stuck = (f"; {n[UNCONVERGED]} against fits that did not converge"
                 if n[UNCONVERGED] else "")
        items.append((Strong(pair), f"{refit}: {n['agree']} of {comparable} comparable rows "
                      f"agree, {n['disagree']} disagree; {n['not_comparable']} not comparable"
                      f"{stuck}"))
    blocks += [Bullets(tuple(items))]
    classes: dict[str, list[Comparison]] = {"bf": [], "ff": [], "rest": []}
    for c in comparisons:
        kinds = {kind_of(c.model, c.engine), kind_of(c.model, c.reference)}
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


ALL_MODELS = "all models"


CONCLUSIONS_COLUMN = "conclusions"


def _cell_rows(comparisons: Sequence[Comparison], model: str, pair: str) -> list[Comparison]:
    """The rows of one matrix cell (the last line, `all models`, takes every model): an
    engine pair's rows but its conclusions, or the conclusions column's rows of every
    pair between engines."""
    if pair == CONCLUSIONS_COLUMN:
        return [c for c in between_engines(comparisons) if c.quantity == CONCLUSION
                and (model == ALL_MODELS or c.model == model)]
    return [c for c in comparisons if pair_label(c) == pair and c.quantity != CONCLUSION
            and (model == ALL_MODELS or c.model == model)]


def _conclusions_cell(rows: list[Comparison]) -> str:
    """`same for 3 terms`, or `1 of 3 terms differ`, over the pairs between engines."""
    judged, changed = conclusion_changes(rows)
    if not judged:
        return "–"
    if not changed:
        return f"same for {len(judged)} term{'s' if len(judged) != 1 else ''}"
    return f"{len(changed)} of {len(judged)} terms differ"


def summary_matrix(comparisons: Sequence[Comparison],
                   models: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per model (and a total), one column per engine pair, each
    cell `agree/comparable`, with the not-comparable count beside it; and a last column,
    where conclusions were compared, saying how many terms change conclusion between
    engines."""
    order = list(dict.fromkeys([*models, *(c.model for c in comparisons)]))
    pairs = list(pair_counts([c for c in comparisons if c.quantity != CONCLUSION]))
    with_conclusions = any(c.quantity == CONCLUSION for c in between_engines(comparisons))

    def cell(rows: list[Comparison]) -> str:
        if not rows:
            return "–"
        n = Counter(bucket(c) for c in rows)
        text = f"{n['agree']}/{n['agree'] + n['disagree']}"
        text += f" (+{n['not_comparable']} n/c)" if n["not_comparable"] else ""
        return text + (f" (+{n[UNCONVERGED]} unconv.)" if n[UNCONVERGED] else "")

    def cells(model: str) -> list[str]:
        out = [cell(_cell_rows(comparisons, model, p)) for p in pairs]
        if with_conclusions:
            out.append(_conclusions_cell(_cell_rows(comparisons, model, CONCLUSIONS_COLUMN)))
        return out

    body = [[m, *cells(m)] for m in order]
    if comparisons:
        body.append([ALL_MODELS, *cells(ALL_MODELS)])
    return ["model", *pairs, *([CONCLUSIONS_COLUMN] if with_conclusions else [])], body


def matrix_states(comparisons: Sequence[Comparison], header: Sequence[str],
                  body: Sequence[Sequence[str]]) -> list[list[str]]:
    """The verdict colour (:func:`cell_state`) of each cell of `summary_matrix`'s body,
    the model column included (as "")."""
    return [[""] + [cell_state(_cell_rows(comparisons, row[0], p)) for p in header[1:]]
            for row in body]


def cell_state(rows: Sequence[Comparison]) -> str:
    """A matrix cell's colour: `disagree` if a row disagrees, `not_comparable` if some are
    not comparable and the rest agree, `agree` if every row agrees, "" if empty."""
    if not rows:
        return ""
    verdicts = {bucket(c) for c in rows}
    if "disagree" in verdicts:
        return "disagree"
    return "not_comparable" if verdicts & {"not_comparable", UNCONVERGED} else "agree"


def matrix_blocks(comparisons: Sequence[Comparison], models: Sequence[str] = ()) -> list[Block]:
    header, body = summary_matrix(comparisons, models)
    states = tuple(tuple(row) for row in matrix_states(comparisons, header, body))
    return [Heading(2, "Summary matrix"),
            Para(("Each cell: rows that agree / comparable rows (conclusions apart); n/c: "
                  "rows not comparable; unconv.: rows of a fit that did not converge, "
                  "counted apart. Conclusions: the terms whose conclusion at the interval's "
                  "level (the sign, and whether the interval excludes 0) changes between "
                  "some pair of engines.",)),
            Table(tuple(header), tuple(tuple((c,) for c in row) for row in body), states)]


def summary_lines(comparisons: Sequence[Comparison]) -> list[str]:
    """The generated summary as Markdown lines."""
    return markdown_lines(summary_blocks(comparisons))

