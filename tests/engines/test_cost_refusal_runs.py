"""A fit refused for its estimated memory, through the whole pipeline: on a scaled-down
InstEval (students crossed with lecturers) under a small memory limit
(`PARITY_MEMORY_BYTES`), statsmodels' dense design is refused up front, with its
estimate in the reason and in the report, while lme4 fits and the run goes on."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import engine_missing
from parity.engines.budget import MEMORY_ENV

CROSSED = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"
# lme4 needs about 10 MB here, statsmodels about 66 MB.
LIMIT = 32 * 2**20


def insteval_like(rows: int = 2000, students: int = 200, lecturers: int = 80,
                  seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s, d = rng.integers(students, size=rows), rng.integers(lecturers, size=rows)
    dept = rng.integers(14, size=lecturers)[d]
    y = (3 + 0.3 * rng.standard_normal(students)[s] + 0.5 * rng.standard_normal(lecturers)[d]
         + 1.2 * rng.standard_normal(rows))
    return pd.DataFrame({"y": y, "service": rng.integers(2, size=rows),
                         "s": [f"s{i}" for i in s], "d": [f"d{i}" for i in d],
                         "dept": [f"p{i}" for i in dept]})


@pytest.mark.parametrize("engine", ["statsmodels"])
def test_a_dense_design_over_the_limit_is_a_row_while_lme4_fits(
        engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for needed in ("lme4", engine):
        reason = engine_missing(needed)
        if reason:
            pytest.skip(f"{needed}: {reason}")
    import parity

    monkeypatch.setenv(MEMORY_ENV, str(LIMIT))
    start = time.perf_counter()
    run = parity.run({"insteval": CROSSED}, insteval_like(),
                     categorical=["service", "s", "d", "dept"], engines=["lme4", engine],
                     cache=False, reml=False)
    seconds = time.perf_counter() - start
    fits = run.fits.set_index("engine")
    assert fits.loc["lme4", "status"] == "ok", fits.loc["lme4", "reason"]
    assert fits.loc[engine, "status"] == "unsupported"
    reason = str(fits.loc[engine, "reason"])
    assert reason.startswith(f"{engine} would need about ")
    assert "a dense 2,000 × 294 random-effects design" in reason
    assert f"more than the 32 MiB {MEMORY_ENV} allows" in reason
    assert seconds < 60  # nothing of statsmodels' ran; lme4's fit is seconds
    run.report(tmp_path)
    markdown = " ".join((tmp_path / "comparison.md").read_text().split())
    assert reason in markdown  # the Fits table says why


def test_the_insteval_command_at_small_scale_fits_refuses_and_summarises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`parity run --engines lme4,glmmtmb,statsmodels,bambi` on InstEval's shape: lme4 and
    glmmTMB fit, statsmodels and Bambi are refused up front (a row each, exit 0), and the
    report summarises each factor's 80 to 200 levels in one line per pair, with the full
    rows kept in comparison.csv."""
    for needed in ("lme4", "glmmtmb"):
        reason = engine_missing(needed)
        if reason:
            pytest.skip(f"{needed}: {reason}")
    from parity.cli import main

    csv = tmp_path / "insteval_like.csv"
    insteval_like().to_csv(csv, index=False)
    monkeypatch.setenv(MEMORY_ENV, str(LIMIT))  # Bambi's runtime alone is more
    out = tmp_path / "out"
    code = main(["run", "--quiet", "--data", str(csv), "--formula", CROSSED,
                 "--categorical", "service,s,d,dept", "--ml", "--no-cache",
                 "--engines", "lme4,glmmtmb,statsmodels,bambi", "--out", str(out)])
    assert code == 0
    frame = pd.read_csv(out / "comparison.csv")
    effects = frame[frame["quantity"] == "group_effect"]
    assert set(effects["engine"]) == {"glmmtmb"}  # against lme4; the refused have no rows
    levels = {"s": 200, "d": 80, "dept": 14}
    markdown = (out / "comparison.md").read_text()
    for group, n in levels.items():
        assert len(effects[effects["group"] == group]) == n
        line = next(r for r in markdown.splitlines()
                    if r.startswith(f"| glmmtmb vs lme4 | {group} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == cells[3] == str(n)  # levels and rows
        assert int(cells[4]) + int(cells[5]) + int(cells[6]) == n
    for engine, why in (("statsmodels", "statsmodels would need about"),
                        ("bambi", "bambi would need about")):
        assert why in " ".join(markdown.split()), engine
    assert markdown.count("| glmmtmb vs lme4 |") < 20  # a line per factor, not per level
