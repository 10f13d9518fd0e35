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
