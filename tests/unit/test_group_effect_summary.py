"""A factor of thousands of levels is told by summaries: one table line per engine pair and
factor with its verdicts and the quantiles of its differences in tolerances, the levels
farthest apart named, and in the agreement figure a distribution where a line has more
group effects than SHOWN_LEVELS; a small factor keeps a mark per level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parity.reports.agreement import (
    QUANTILES,
    TAIL,
    distance,
    draw_agreement,
    model_lines,
    quantiles,
    split_line,
)
from parity.reports.blocks import Table
from parity.reports.caterpillar import SHOWN_LEVELS
from parity.reports.content import model_blocks
from parity.reports.markdown import render_markdown
from parity.reports.text import sig
from parity.schema import Comparison

PAIRS = (("statsmodels", "lme4"), ("bambi", "lme4"))
BIG, SMALL = "student", "lecturer"
TOL = 0.1


def effect(engine: str, reference: str, group: str, level: str, d: float | None,
           term: str = "(Intercept)") -> Comparison:
    """A group-effect row `d` tolerances from its reference (None: not comparable)."""
    label = f"ranef({group} {level}: {term})"
    if d is None:
        return Comparison("m", engine, reference, "group_effect", label, None, 1.0, TOL,
                          "not_comparable", "bambi has no effect here", group, level,
                          terms=(term,))
    verdict = "agree" if abs(d) <= 1 else "disagree"
    return Comparison("m", engine, reference, "group_effect", label, 1.0 + d * TOL, 1.0,
                      TOL, verdict, None if verdict == "agree" else "too far", group, level,
                      terms=(term,))


def factor(pair: tuple[str, str], group: str, n: int, scale: float, seed: int,
           apart: int = 0) -> list[Comparison]:
    """`n` levels, the first `apart` of them not comparable."""
    rng = np.random.default_rng(seed)
    return [effect(*pair, group, f"{group[0]}{i}",
                   None if i < apart else float(rng.normal(0.0, scale))) for i in range(n)]


@pytest.fixture(scope="module")
def rows() -> list[Comparison]:
    out: list[Comparison] = []
    for k, pair in enumerate(PAIRS):
        out += factor(pair, BIG, 3000, 0.5 + k, seed=k, apart=7 * k)
        out += factor(pair, SMALL, 5, 2.0, seed=10 + k)
    # One level far beyond every other, so the table must name it.
    out[1234] = effect(*PAIRS[0], BIG, "s1234", -40.0)
    return out


def factor_table(blocks: list) -> Table:
    tables = [b for b in blocks if isinstance(b, Table) and "factor" in b.header]
    assert len(tables) == 1
    return tables[0]


def test_one_line_per_pair_and_factor_with_its_counts_and_quantiles(
        rows: list[Comparison]) -> None:
    table = factor_table(model_blocks("m", [], comparisons=rows))
    header = list(table.header)
    assert header[:7] == ["engine vs reference", "factor", "levels", "rows", "agree",
                          "disagree", "not comparable"]
    assert header[7:14] == ["min", "5%", "25%", "median", "75%", "95%", "max"]
    lines = {(r[0][0], r[1][0]): [cell[0] for cell in r] for r in table.rows}
    assert len(lines) == len(table.rows) == 4  # thousands of levels, four lines
    for pair in PAIRS:
        label = f"{pair[0]} vs {pair[1]}"
        for group in (BIG, SMALL):
            mine = [c for c in rows if c.group == group and (c.engine, c.reference) == pair]
            line = lines[(label, group)]
            verdicts = [c.verdict for c in mine]
            assert line[2:7] == [str(len(mine)), str(len(mine)),
                                 str(verdicts.count("agree")), str(verdicts.count("disagree")),
                                 str(verdicts.count("not_comparable"))]
            d = np.array([(c.value - c.reference_value) / TOL for c in mine
                          if c.value is not None])
            expected = np.percentile(d, [0, 5, 25, 50, 75, 95, 100])
            assert line[7:14] == [sig(float(x), 3) for x in expected]
    assert lines[("bambi vs lme4", BIG)][6] == "7"


def test_the_levels_farthest_apart_are_named(rows: list[Comparison]) -> None:
    table = factor_table(model_blocks("m", [], comparisons=rows))
    farthest = {(r[0][0], r[1][0]): r[-1][0] for r in table.rows}
    named = farthest[("statsmodels vs lme4", BIG)].split("; ")
    assert named[0] == "s1234 (Intercept): -40"
    assert len(named) == 3
    mine = [c for c in rows if c.group == BIG and c.engine == "bambi"]
    top = sorted((c for c in mine if c.value is not None),
                 key=lambda c: -abs(distance(c) or 0.0))[:3]
    assert farthest[("bambi vs lme4", BIG)] == "; ".join(
        f"{c.level} (Intercept): {sig(distance(c), 3)}" for c in top)
    text = render_markdown(model_blocks("m", [], comparisons=rows))
    assert "s1234 (Intercept): -40" in text


def test_the_worst_rows_stay_a_few(rows: list[Comparison]) -> None:
    from parity.reports.content import WORST_GROUP_EFFECTS

    blocks = model_blocks("m", [], comparisons=rows)
    worst = [b for b in blocks if isinstance(b, Table) and "group effect" in b.header]
    assert len(worst) == 1 and len(worst[0].rows) == WORST_GROUP_EFFECTS
    assert worst[0].rows[0][1][0].text == "ranef(student s1234: (Intercept))"


def test_a_factor_without_any_distance_says_so() -> None:
    rows = [effect("bambi", "lme4", BIG, f"s{i}", None) for i in range(50)]
    table = factor_table(model_blocks("m", [], comparisons=rows))
    (line,) = table.rows
    assert [cell[0] for cell in line[6:]] == ["50", *["-"] * len(QUANTILES), "-"]


def test_quantiles_keep_an_infinite_distance_without_nan() -> None:
    inf = float("inf")
    assert quantiles([]) == []
    assert quantiles([1.0, 2.0, 3.0, 4.0, 5.0]) == list(
        np.quantile([1.0, 2.0, 3.0, 4.0, 5.0], QUANTILES))
    q = quantiles([1.0, 2.0, inf, inf])
    assert q[0] == 1.0 and q[-1] == inf and not any(np.isnan(q))


def test_a_big_factor_is_drawn_as_a_distribution_and_a_small_one_as_marks(
        rows: list[Comparison], tmp_path: Path) -> None:
    lines = dict(model_lines(rows))
    big = lines[f"bambi vs lme4: group effects of {BIG}"]
    small = lines[f"bambi vs lme4: group effects of {SMALL}"]
    assert len(big) == 3000 and len(small) == 5

    marks, spread = split_line(small)
    assert spread is None and marks == small

    marks, spread = split_line(big)
    assert marks == [] and spread is not None
    assert spread.rows == 3000 and spread.apart == 7
    d = np.array([distance(c) for c in big if c.verdict != "not_comparable"], dtype=float)
    assert np.allclose(spread.quantiles, np.percentile(d, [0, 5, 25, 50, 75, 95, 100]))
    tails = [distance(c) or 0.0 for c in spread.tails]
    assert len(tails) == 2 * TAIL
    assert min(tails) == d.min() and max(tails) == d.max()
    q05, q95 = np.percentile(d, [5, 95])
    assert all(t < q05 or t > q95 for t in tails)
    # A line of exactly SHOWN_LEVELS group effects is still drawn level by level.
    assert split_line(big[:SHOWN_LEVELS])[1] is None
    assert split_line(big[:SHOWN_LEVELS + 1])[1] is not None

    path = draw_agreement(tmp_path / "m.agreement.png", list(lines.items()), "m")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_other_rows_of_a_line_stay_marks_beside_its_distribution(
        rows: list[Comparison]) -> None:
    fixed = Comparison("m", "bambi", "lme4", "estimate", "x", 1.3, 1.0, TOL, "disagree",
                       "too far")
    marks, spread = split_line([fixed, *rows[:3000]])
    assert marks == [fixed] and spread is not None and spread.rows == 3000


def test_the_overview_caption_names_the_distribution_only_where_one_is_drawn(
        rows: list[Comparison], tmp_path: Path) -> None:
    from parity.reports.blocks import Image, Para
    from parity.reports.content import ReportData, report_blocks

    figure = {"": Image("agreement", tmp_path / "agreement.png", "agreement.png")}

    def caption(comparisons: list[Comparison]) -> str:
        blocks = report_blocks(ReportData(fits=[], comparisons=comparisons, agreement=figure))
        return next(str(b.spans[0]) for b in blocks if isinstance(b, Para)
                    and str(b.spans[0]).startswith("Every comparison row at"))

    assert "as a distribution" in caption(rows)
    assert "as a distribution" not in caption([c for c in rows if c.group == SMALL])
