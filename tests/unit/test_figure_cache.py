"""The figures' cache: an unchanged rerun draws nothing, and nothing read back is trusted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_reports import CHECKS, COMPARISONS, FITS, REFERENCE_FITS, make_fit, run

from parity.reports import agreement, caterpillar
from parity.reports import figures as report_figures
from parity.reports.figure_cache import PNG_SIGNATURE, FigureCache
from parity.reports.write import write_reports
from parity.schema import GroupEffect

PNG = PNG_SIGNATURE + b"a figure"


def _counting(calls: list[Path]):
    def draw(path: Path) -> Path:
        calls.append(path)
        path.write_bytes(PNG + str(len(calls)).encode())
        return path
    return draw


def test_the_same_material_is_drawn_once(tmp_path: Path) -> None:
    cache, calls = FigureCache(tmp_path / "cache", "salt"), []
    first = cache.drawn(tmp_path / "a.png", "model:m", lambda: {"x": 1}, _counting(calls))
    second = cache.drawn(tmp_path / "b.png", "model:m", lambda: {"x": 1}, _counting(calls))
    assert len(calls) == 1 and first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("other", [
    ("model:m", {"x": 2}, "salt"),     # other records
    ("model:n", {"x": 1}, "salt"),     # another figure of the same records
    ("model:m", {"x": 1}, "pepper"),   # other drawing code
])
def test_anything_that_changes_the_picture_draws_it_again(
        tmp_path: Path, other: tuple[str, dict[str, int], str]) -> None:
    calls: list[Path] = []
    FigureCache(tmp_path / "c", "salt").drawn(tmp_path / "a.png", "model:m",
                                              lambda: {"x": 1}, _counting(calls))
    kind, material, salt = other
    FigureCache(tmp_path / "c", salt).drawn(tmp_path / "b.png", kind, lambda: material,
                                            _counting(calls))
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["png edited", "png truncated", "note edited",
                                    "note not json", "png missing"])
def test_a_damaged_entry_is_drawn_again(tmp_path: Path, damage: str) -> None:
    cache, calls = FigureCache(tmp_path / "c", "s"), []
    cache.drawn(tmp_path / "a.png", "k", lambda: 1, _counting(calls))
    [png] = (tmp_path / "c").rglob("*.png")
    note = png.with_suffix(".json")
    if damage == "png edited":
        png.write_bytes(PNG + b"other")
    elif damage == "png truncated":
        png.write_bytes(png.read_bytes()[:4])
    elif damage == "note edited":
        note.write_text(note.read_text().replace('"sha256": "', '"sha256": "0'))
    elif damage == "note not json":
        note.write_text("{")
    else:
        png.unlink()
    out = cache.drawn(tmp_path / "b.png", "k", lambda: 1, _counting(calls))
    assert len(calls) == 2 and out.read_bytes() == PNG + b"2"
    # and the entry is whole again
    assert cache.drawn(tmp_path / "c.png", "k", lambda: 1, _counting(calls)).read_bytes() \
        == PNG + b"2" and len(calls) == 2


def test_a_cache_that_cannot_be_written_costs_the_drawing_only(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls: list[Path] = []
    cache = FigureCache(blocker / "cache", "s")
    for name in ("a", "b"):
        cache.drawn(tmp_path / f"{name}.png", "k", lambda: 1, _counting(calls))
    assert len(calls) == 2 and (tmp_path / "b.png").read_bytes() == PNG + b"2"


def test_an_unchanged_rerun_of_the_reports_draws_no_figure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure of a run (each model's, the agreement figures, the group effects')
    comes back byte for byte from the cache, with every drawing function made to fail."""
    effects = tuple(GroupEffect("subject", f"F{k}", "(Intercept)", 3.0 * k - 6, 2.0)
                    for k in range(5))
    fits = [replace(f, group_effects=effects) if f.has_numbers else f for f in FITS]
    results = run(fits, COMPARISONS, REFERENCE_FITS, CHECKS)
    cache = FigureCache(tmp_path / "cache", "s")
    first = write_reports(tmp_path / "one", results, figure_cache=cache)
    drawn = sorted(p.name for p in first["figures"].glob("*.png"))
    assert any(".agreement." in n for n in drawn) and any(".ranef." in n for n in drawn)

    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("drawn again")

    monkeypatch.setattr(report_figures, "draw_model_figure", refuse)
    monkeypatch.setattr(agreement, "draw_agreement", refuse)
    monkeypatch.setattr(caterpillar, "draw_caterpillar", refuse)
    second = write_reports(tmp_path / "two", results, figure_cache=cache)
    assert sorted(p.name for p in second["figures"].glob("*.png")) == drawn
    for name in drawn:
        assert (first["figures"] / name).read_bytes() == \
            (second["figures"] / name).read_bytes(), name
    # A fit that moved redraws its model's figures, and only those.
    moved = [make_fit(f.engine, f.model, shift=1.0) if f is fits[0] else f for f in fits]
    again = report_figures.write_figures(tmp_path / "three", moved, REFERENCE_FITS, cache)
    assert list(again.errors) == [fits[0].model] and "drawn again" in again.errors[fits[0].model]
    assert set(again.paths) == {f.model for f in fits} - {fits[0].model}


def test_a_fit_read_back_from_the_fit_cache_draws_the_same_figure(tmp_path: Path) -> None:
    """A warm rerun's fits come from the fit cache: their provenance says so and keeps
    the first run's seconds, which no figure draws; their figures are copied, not drawn."""
    cache = FigureCache(tmp_path / "cache", "s")
    first = report_figures.write_figures(tmp_path / "one", FITS, REFERENCE_FITS, cache)
    assert not first.errors
    cached = [replace(f, provenance=replace(f.provenance, source="cache", seconds=123.0))
              for f in FITS]
    calls: list[Path] = []
    again = FigureCache(tmp_path / "cache", "s")
    for model in first.paths:
        mine = [f for f in [*cached, *REFERENCE_FITS] if f.model == model]
        again.drawn(tmp_path / "two" / f"{model}.png", f"model:{model}",
                    lambda mine=mine: report_figures.fits_material(mine), _counting(calls))
    assert calls == []
