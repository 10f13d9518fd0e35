"""Reports from hand-made records: every file written, self-contained and escaped HTML,
CSV that round-trips, a summary generated from the verdicts, failures that stay local."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest

from parity.reports import figures as report_figures
from parity.reports.content import ReportData, report_blocks
from parity.reports.csv_ import COLUMNS, render_csv
from parity.reports.formats import FORMATS
from parity.reports.markdown import render_markdown
from parity.reports.summary import (
    reason_items,
    summary_lines,
    summary_matrix,
)
from parity.reports.write import write_reports
from parity.schema import (
    Comparison,
    Diagnostics,
    Fit,
    FixedEffect,
    OptimumCheck,
    RunResults,
    Status,
    VarianceComponent,
    Verdict,
)

Quantity = Literal["estimate", "std_error", "sd", "corr"]
FORMULA = "frequency ~ gender + attitude + (attitude | subject)"


def make_fit(engine: str, model: str = "slope", shift: float = 0.0, status: Status = "ok",
             variant: str | None = None, formula: str = FORMULA,
             term: str = "attitudepol") -> Fit:
    ok = status == "ok"
    return Fit(
        model=model, formula=formula, engine=engine, status=status,
        reason=None if ok else "the engine raised", n_obs=83, n_dropped=1,
        fixed_effects=(FixedEffect("(Intercept)", 256.9 + shift, 13.5, 230.0, 283.8),
                       FixedEffect(term, -19.7 + shift, 5.6, -30.6, -8.8)) if ok else (),
        variance_components=(
            VarianceComponent("subject", "(Intercept)", None, "sd", 20.3, None, 9.0, 35.0),
            VarianceComponent("subject", "(Intercept)", term, "corr", 0.2),
            VarianceComponent("Residual", None, None, "sd", 35.2),
        ) if ok else (),
        diagnostics=Diagnostics(converged=ok, singular=False),
        engine_formula=formula, structure={"subject": "correlated"}, variant=variant,
    )


def row(engine: str, reference: str, verdict: Verdict, reason: str | None = None,
        model: str = "slope", quantity: Quantity = "estimate", term: str = "attitudepol",
        value: float | None = -19.7, group: str | None = None) -> Comparison:
    return Comparison(model, engine, reference, quantity, term, value, -19.7, 0.1, verdict,
                      reason, group)


FITS = [make_fit("lme4"), make_fit("statsmodels", shift=1e-4), make_fit("bambi", shift=0.9),
        make_fit("lme4", model="additive"), make_fit("bambi", model="additive", status="failed")]
REFERENCE_FITS = [make_fit("lme4", variant="independent")]
COMPARISONS = [
    row("statsmodels", "lme4", "agree", value=0.1 + 0.2),
    row("bambi", "lme4", "agree", term="(Intercept)"),
    row("bambi", "lme4", "disagree", "posterior mean is 0.52 posterior SD from lme4's estimate"),
    row("bambi", "statsmodels", "disagree",
        "posterior mean is 0.61 posterior SD from statsmodels's estimate"),
    row("bambi", "lme4", "not_comparable", "bambi models no correlation here", quantity="corr",
        term="corr(subject: (Intercept), attitudepol)", value=None, group="subject"),
    row("bambi", "lme4:independent", "agree", quantity="sd",
        term="sd(subject: (Intercept))", group="subject"),
]
CHECKS = [OptimumCheck("slope", "statsmodels", "lme4", "REML criterion", 795.12, 795.1, 0.02,
                       "lme4")]


def run(fits: list[Fit], comparisons: list[Comparison] | None = None,
        reference_fits: list[Fit] | None = None,
        checks: list[OptimumCheck] | None = None) -> RunResults:
    return RunResults(tuple(fits), tuple(comparisons or ()), tuple(reference_fits or ()),
                      tuple(checks or ()))


def fits_markdown(fits: list[Fit]) -> str:
    """The Markdown of a report of fits alone: the side-by-side tables."""
    return render_markdown(report_blocks(ReportData(fits)))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("reports")
    return write_reports(out, run(FITS, COMPARISONS, REFERENCE_FITS, CHECKS),
                         title="parity test")


def test_all_files_written(written: dict[str, Path]) -> None:
    assert set(written) == {"markdown", "html", "csv", "figures"}
    for kind in ("markdown", "html", "csv"):
        assert written[kind].is_file() and written[kind].stat().st_size > 0
    pngs = sorted(p.name for p in written["figures"].glob("*.png"))
    agreement = ["agreement.png", *sorted(f"{m}.agreement.png"
                                          for m in {c.model for c in COMPARISONS})]
    assert pngs == sorted(["additive.png", "slope.png", *agreement])
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written["figures"].iterdir())


def test_html_is_self_contained(written: dict[str, Path]) -> None:
    text = written["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", text, re.IGNORECASE)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower()
    pngs = list(written["figures"].glob("*.png"))
    assert text.count('src="data:image/png;base64,') == len(pngs)  # every figure, inline


def test_csv_matches_comparisons(written: dict[str, Path]) -> None:
    with written["csv"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == COLUMNS == (
        "model", "engine", "reference", "quantity", "term", "group", "value",
        "reference_value", "tolerance", "verdict", "reason", "level", "unconverged",
        "terms", "label")
    assert len(rows) - 1 == len(COMPARISONS)
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert float(first["value"]) == 0.1 + 0.2  # full precision, not rounded
    assert first["group"] == "" and first["reason"] == ""  # None is empty
    assert first["unconverged"] == ""
    nc = dict(zip(COLUMNS, rows[5], strict=True))
    assert nc["value"] == "" and nc["group"] == "subject"


def test_csv_names_each_row_s_coefficients_and_labels_it_as_the_reports_do() -> None:
    """`terms`: the raw coefficient names beside the label, `;`-joined (empty for the
    residual SD); `label`: the row as a reader names it."""
    rows = [replace(row("statsmodels", "lme4", "agree"), terms=("attitudepol",)),
            replace(row("statsmodels", "lme4", "agree", quantity="std_error"),
                    terms=("attitudepol",)),
            replace(row("bambi", "lme4", "not_comparable", "no correlation",
                        quantity="corr", term="corr(subject: (Intercept), attitudepol)",
                        group="subject"), terms=("(Intercept)", "attitudepol")),
            row("statsmodels", "lme4", "agree", quantity="sd", term="sd(Residual)",
                group="Residual")]
    text = render_csv(rows + [replace(rows[0], quantity="conclusion")])
    read = [dict(zip(COLUMNS, r, strict=True)) for r in csv.reader(io.StringIO(text))][1:]
    assert [(r["terms"], r["label"]) for r in read] == [
        ("attitudepol", "attitudepol"), ("attitudepol", "SE(attitudepol)"),
        ("(Intercept);attitudepol", "corr(subject: (Intercept), attitudepol)"),
        ("", "sd(Residual)"), ("attitudepol", "conclusion(attitudepol)")]


def test_compared_rows_carry_their_coefficient_names() -> None:
    """Every row the comparison builds, comparable or not, has `terms`."""
    from parity.compare.rules import compare_pair
    from parity.compare.tolerances import load_policy
    from parity.engines import engine_kind

    lme4 = replace(make_fit("lme4"), fit_statistics={"loglik": -400.0}, criterion="REML")
    bambi = replace(make_fit("bambi", shift=0.9), structure={"subject": "independent"},
                    variance_components=make_fit("bambi").variance_components[::2])
    rows = compare_pair(bambi, lme4, load_policy(), engine_kind)
    by = {(r.quantity, r.term): r.terms for r in rows}
    assert by[("estimate", "attitudepol")] == ("attitudepol",)
    assert by[("std_error", "(Intercept)")] == ("(Intercept)",)
    assert by[("sd", "sd(subject: (Intercept))")] == ("(Intercept)",)
    assert by[("sd", "sd(Residual)")] == ()
    corr = next(r for r in rows if r.quantity == "corr")
    assert corr.verdict == "not_comparable" and corr.terms == ("(Intercept)", "attitudepol")
    assert {r.terms for r in rows if r.quantity == "loglik"} <= {()}
    assert all(r.terms for r in rows if r.quantity != "loglik" and r.group != "Residual")


def test_markdown_has_summary_matrix_reasons_and_marks(written: dict[str, Path]) -> None:
    text = written["markdown"].read_text(encoding="utf-8")
    # The headline, the matrix, the agreement figure, the reasons, then each model.
    assert text.index("comparison rows between engines over 2 models") \
        < text.index("## Summary matrix") \
        < text.index("figures/agreement.png") < text.index("## Where they agree") \
        < text.index("## slope")
    assert "| model | statsmodels vs lme4 | bambi vs lme4 |" in text
    assert "| slope | 1/1 | 1/2 (+1 n/c) |" in text
    assert "bambi models no correlation here" in text
    assert "posterior mean is 0.52 posterior SD from lme4's estimate" in text
    assert "bambi (vs lme4)" in text and "lme4:independent" in text
    assert "✗" in text and "✓" in text and "○" in text
    assert "REML criterion" in text  # optimum checks
    assert "![slope: estimates and intervals by engine](figures/slope.png)" in text


def test_failed_fits_and_models_without_comparisons(tmp_path: Path) -> None:
    fits = [make_fit("lme4", model="broken", status="failed"),
            make_fit("statsmodels", model="broken", status="skipped")]
    paths = write_reports(tmp_path, run(fits))
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "No engine produced a fit for this model." in text
    assert "No comparisons were made." in text
    assert "**lme4**: failed — the engine raised" in text
    assert (paths["figures"] / "broken.png").is_file()


def test_user_text_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    fits = [make_fit("lme4", model=evil, formula=f"y ~ {evil}", term=evil),
            make_fit("statsmodels", model=evil, formula=f"y ~ {evil}", term=evil)]
    comps = [row("statsmodels", "lme4", "disagree", f"because {evil}", model=evil, term=evil)]
    paths = write_reports(tmp_path, run(fits, comps), title=evil)
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "<script>" not in re.sub(r"`[^`]*`", "", md)  # raw only inside code spans
    assert sorted(p.name for p in paths["figures"].iterdir()) == [
        "agreement.png", "script_alert_1_script.agreement.png", "script_alert_1_script.png"]


def test_one_failing_figure_does_not_stop_the_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    draw = report_figures.draw_model_figure

    def flaky(path: Path, model: str, fits: list[Fit]) -> Path:
        if model == "slope":
            raise RuntimeError("no ink")
        return draw(path, model, fits)

    monkeypatch.setattr(report_figures, "draw_model_figure", flaky)
    paths = write_reports(tmp_path, run(FITS, COMPARISONS, REFERENCE_FITS, CHECKS))
    estimates = [p.name for p in paths["figures"].glob("*.png") if "agreement" not in p.name]
    assert estimates == ["additive.png"]
    assert "Figure not drawn: RuntimeError: no ink" in paths["markdown"].read_text("utf-8")
    drawn = len(list(paths["figures"].glob("*.png")))
    assert paths["html"].read_text("utf-8").count("data:image/png") == drawn


def test_reasons_differing_only_in_numbers_are_grouped_with_their_range() -> None:
    rows = [*COMPARISONS, row("bambi", "lme4", "disagree",
                              "posterior mean is 1.30 posterior SD from lme4's estimate",
                              model="additive", term="genderM")]
    items = reason_items(rows)
    texts = ["".join(s if isinstance(s, str) else getattr(s, "text", "") for s in i)
             for i in items]
    grouped = [t for t in texts if "posterior mean is 0.52–1.30 posterior SD" in t]
    assert len(grouped) == 1
    assert "…" not in "".join(texts)
    assert "slope (bambi vs lme4): attitudepol" in grouped[0]
    assert "additive (bambi vs lme4): genderM" in grouped[0]
    alone = [t for t in texts if "statsmodels's estimate" in t]
    assert alone and "0.61" in alone[0]  # a reason of its own keeps its numbers
    assert any("bambi models no correlation here" in t for t in texts)


def test_summary_matrix_counts_agree_over_comparable() -> None:
    header, body = summary_matrix(COMPARISONS, ["slope", "additive"])
    assert header == ["model", "statsmodels vs lme4", "bambi vs lme4", "bambi vs statsmodels",
                      "bambi vs lme4:independent"]
    assert body[0] == ["slope", "1/1", "1/2 (+1 n/c)", "0/1", "1/1"]
    assert body[1] == ["additive", "–", "–", "–", "–"]
    lines = summary_lines(COMPARISONS)
    assert "- **bambi vs lme4**: 1 of 2 comparable rows agree, 1 disagree; 1 not comparable" \
        in lines


def test_a_report_of_fits_alone_is_the_side_by_side_tables() -> None:
    text = fits_markdown(FITS)
    assert text.startswith("# parity comparison")
    assert "`frequency ~ gender + attitude + (attitude | subject)`" in text
    assert "| `attitudepol` |" in text


def test_terminal_matrix_plain_and_coloured() -> None:
    from parity.reports.terminal import matrix_text, verdict_line

    plain = matrix_text(COMPARISONS, ["slope", "additive"], colour=False)
    lines = plain.splitlines()
    assert lines[0].split()[0] == "model" and lines[-1].startswith("all models")
    assert "\033[" not in plain
    coloured = matrix_text(COMPARISONS, ["slope", "additive"], colour=True)
    assert "\033[31m" in coloured  # a pair with a disagreeing row is red
    assert coloured.replace("\033[31m", "").replace("\033[32m", "").replace(
        "\033[33m", "").replace("\033[0m", "").split() == plain.split()
    assert verdict_line(COMPARISONS).startswith(
        f"{len(COMPARISONS)} comparison rows between engines: ")


def test_agreement_distance_is_in_tolerances() -> None:
    from parity.reports.agreement import LIMIT, NC_X, _x, distance

    close = row("statsmodels", "lme4", "agree", None)
    assert distance(replace(close, value=10.5, reference_value=10.0, tolerance=1.0)) == 0.5
    far = replace(close, value=30.0, reference_value=10.0, tolerance=2.0, verdict="disagree")
    assert distance(far) == 10.0 and _x(far) == (LIMIT, ">")
    nc = replace(close, verdict="not_comparable", tolerance=None)
    assert distance(nc) is None and _x(nc) == (NC_X, "x")


def test_report_shows_the_agreement_figures_and_a_verdict_per_model(tmp_path: Path) -> None:
    paths = write_reports(tmp_path, run(FITS, COMPARISONS, REFERENCE_FITS, CHECKS))
    figures = sorted(p.name for p in paths["figures"].glob("*.png"))
    assert "agreement.png" in figures
    assert {f"{m}.agreement.png" for m in {c.model for c in COMPARISONS}} <= set(figures)
    md = paths["markdown"].read_text("utf-8")
    assert md.index("Summary matrix") < md.index("figures/agreement.png")
    assert "comparable rows disagree" in md or "Every comparable row agrees" in md
    assert "…" not in md


R_VERSION = "R version 4.2.2 Patched (2022-11-10 r83330)"


def r_fit(engine: str, package: str, version: str, source: Literal["fit", "cache", "recorded"],
          model: str = "slope") -> Fit:
    """A fit of an R engine as the engine (or a record of it) leaves it: its package's
    version in `engine_version` and under the package's own name in `versions`."""
    fit = make_fit(engine, model=model)
    settings = ({"recorded": {"recorded_at": "2026-01-01T00:00:00+00:00"}}
                if source == "recorded" else {})
    return replace(fit, provenance=replace(
        fit.provenance, engine_version=version, r_version=R_VERSION, settings=settings,
        versions={"r": R_VERSION, package: version}, source=source))


def recorded_note(fits: list[Fit]) -> str:
    text = fits_markdown(fits)
    return next(line for line in text.splitlines() if "**Recorded" in line)


def test_recorded_glmmtmb_beside_live_lme4_is_named_as_glmmtmb() -> None:
    """glmmTMB recorded while lme4 ran live: the note names glmmTMB with its own version,
    and does not say that R was unused."""
    note = recorded_note([r_fit("lme4", "lme4", "1.1.31", "fit"),
                          r_fit("glmmtmb", "glmmTMB", "1.1.5", "recorded")])
    assert note.startswith("**Recorded glmmTMB numbers:**")
    assert "glmmTMB 1.1.5" in note and "the glmmTMB results for slope" in note
    assert "lme4 1.1.5" not in note and "lme4 results" not in note
    assert "R was not used" not in note and "lme4 ran in R in this run" in note
    assert note.endswith("are recorded references matched by data hash, formula and "
                         "settings.")


def test_every_recorded_engine_is_named_with_its_own_version() -> None:
    note = recorded_note([r_fit("lme4", "lme4", "1.1.31", "recorded"),
                          r_fit("glmmtmb", "glmmTMB", "1.1.5", "recorded"),
                          make_fit("statsmodels")])
    assert note.startswith("**Recorded lme4 and glmmTMB numbers:**")
    assert "R was not used in this run" in note
    assert f"the lme4 results for slope ({R_VERSION}, lme4 1.1.31)" in note
    assert f"the glmmTMB results for slope ({R_VERSION}, glmmTMB 1.1.5)" in note
    assert "lme4 1.1.5" not in note


def test_recorded_lme4_beside_cached_glmmtmb_says_where_each_came_from() -> None:
    note = recorded_note([r_fit("lme4", "lme4", "1.1.31", "recorded"),
                          r_fit("glmmtmb", "glmmTMB", "1.1.5", "cache")])
    assert note.startswith("**Recorded lme4 numbers:** R was not used in this run;")
    assert "the glmmTMB results come from the fit cache" in note
    assert "the lme4 results for slope" in note and "glmmTMB 1.1.5" not in note


def test_the_formats_table_names_the_files_and_a_subset_writes_only_those(
        tmp_path: Path) -> None:
    from parity.reports.files import REPORT_NAMES
    from parity.reports.formats import FORMATS, formats_named

    assert REPORT_NAMES == ("comparison.md", "comparison.html", "comparison.csv")
    assert [f.name for f in FORMATS] == ["markdown", "html", "csv"]
    paths = write_reports(tmp_path, run(FITS, COMPARISONS), formats=formats_named(["csv"]))
    assert set(paths) == {"csv", "figures"}
    assert sorted(p.name for p in tmp_path.glob("comparison.*")) == ["comparison.csv"]
    with pytest.raises(ValueError, match="unknown report format latex; known: csv, html"):
        formats_named(["html", "latex"])


def test_markdown_and_html_render_the_same_blocks() -> None:
    from parity.reports.html import render_html

    blocks = report_blocks(ReportData(FITS, REFERENCE_FITS, COMPARISONS, CHECKS, "t <1>"))
    md, html = render_markdown(blocks), render_html(blocks)
    assert md.startswith("# t \\<1\\>") and "<title>t &lt;1&gt;</title>" in html
    tables = sum(1 for line in md.splitlines() if line.startswith("|---"))
    assert tables == html.count("<table>") > 3


def test_figures_are_indexed_colour_pngs(written: dict[str, Path]) -> None:
    """Every figure is written with a palette (PNG colour type 3), which keeps the HTML
    report, where each is embedded, a fraction of the size of RGBA figures."""
    for path in written["figures"].glob("*.png"):
        assert path.read_bytes()[25] == 3, path.name


def test_a_factor_with_hundreds_of_levels_draws_its_two_ends(tmp_path: Path) -> None:
    from PIL import Image as Picture

    from parity.reports.caterpillar import SHOWN_LEVELS, draw_caterpillar, shown_levels
    from parity.schema import GroupEffect

    levels = [f"s{i:03d}" for i in range(300)]
    fits = [replace(make_fit(engine, shift=shift), group_effects=tuple(
        GroupEffect("subject", level, "(Intercept)", i + shift, 0.5)
        for i, level in enumerate(levels))) for engine, shift in (("lme4", 0.0),
                                                                   ("statsmodels", 0.1))]
    keys, labels = shown_levels(levels)
    assert len(keys) == SHOWN_LEVELS + 1
    assert keys[:2] == ["s000", "s001"] and keys[-1] == "s299"
    assert labels[SHOWN_LEVELS // 2] == f"… {300 - SHOWN_LEVELS} levels between …"
    assert shown_levels(levels[:SHOWN_LEVELS]) == (levels[:SHOWN_LEVELS],) * 2
    path = draw_caterpillar(tmp_path / "many.png", "m", "subject", fits)
    with Picture.open(path) as drawn:
        width, height = drawn.size
    assert height < 2000  # 41 rows, not 300
    assert path.stat().st_size < 150_000


def test_text_tables_are_aligned_and_painted_after_padding() -> None:
    from parity.reports.text import format_table, num, sig

    text = format_table(["a", "bb"], [["xyz", "1"], ["q", "22"]],
                        paint=lambda cell, row, col: f"<{cell}>" if (row, col) == (1, 1) else cell)
    assert text.splitlines() == ["a    bb", "---  --", "xyz  1", "q    <22>"]
    assert (num(0.0001234), num(12.345), num(None), num(float("nan"))) == \
        ("0.00012", "12.35", "–", "–")
    assert (sig(1234567.0), sig(2, 3), sig(None), sig("x", missing="—")) == \
        ("1.23457e+06", "2", "–", "—")


def test_the_analysts_formula_is_shown_as_written_and_as_read(tmp_path: Path) -> None:
    """The report keeps the analyst's text and adds parity's reading where it is spelled
    otherwise; a formula read as written (but for spaces) is shown once."""
    written_text = "log(Reaction)~poly(Days,2)+(1|Subject)"
    read = "log(Reaction) ~ 1 + poly(Days, 2) + (1 | Subject)"
    fits = [make_fit("lme4", model="t", formula=written_text), make_fit("lme4", model="plain")]
    meta = {"models": [{"model": "t", "formula": written_text, "engine_formula": read},
                       {"model": "plain", "formula": FORMULA,
                        "engine_formula": FORMULA.replace(" ", "")},
                       {"model": "odd", "engine_formula": 3}]}
    paths = write_reports(tmp_path, RunResults(tuple(fits), meta=meta), formats=FORMATS[:1])
    text = paths["markdown"].read_text()
    assert f"`{written_text}`; read as `{read}`" in text
    assert "read as `frequency" not in text
