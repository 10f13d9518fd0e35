"""The progress display: a line per finished fit in logs, redrawn lines on a terminal,
nothing when quiet."""

from __future__ import annotations

import io

from parity.pipeline.progress import Progress
from parity.schema import Fit, Provenance


def fit(model: str, engine: str, status: str = "ok") -> Fit:
    return Fit(model=model, formula="y ~ x", engine=engine, status=status,  # type: ignore[arg-type]
               reason=None, n_obs=1, n_dropped=0,
               provenance=Provenance("1", None, {}, 2.5))


def test_log_mode_prints_a_line_per_finished_fit() -> None:
    out = io.StringIO()
    with Progress(out, live=False) as p:
        p.start("m1", "lme4", False, None)
        p.start("m1", "bambi", True, None)
        p.done(fit("m1", "lme4"))
        p.done(fit("m1", "bambi"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "m1" in lines[0] and "lme4" in lines[0] and "ok" in lines[0] and "2.5 s" in lines[0]
    assert "ok (cache)" in lines[1]


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with Progress(out, quiet=True) as p:
        p.start("m1", "lme4", False, None)
        p.done(fit("m1", "lme4", "failed"))
    assert out.getvalue() == ""


def test_live_mode_redraws_in_place() -> None:
    out = io.StringIO()
    with Progress(out, live=True) as p:
        p.start("m1", "bambi", False, lambda: True)
        p._draw()
        p.done(fit("m1", "bambi"))
    text = out.getvalue()
    assert "running" in text and "\x1b[1F" in text and text.rstrip().endswith("2.5 s")
