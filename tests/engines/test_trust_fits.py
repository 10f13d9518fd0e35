"""The trust rule on real fits that did not work: each is `failed` or `unconverged` with
its engine's reason, and no row against it says `agree` or `disagree`.

The cases are those of the hostile pass: statsmodels' variational fit diverging on
grouseticks, glmmTMB on an all-ones response, on a response equal to its trials, and on
perfectly separated data, and Bambi sampled far too briefly to converge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import bambi_missing, glmmtmb_missing, need
from parity.schema import RunResults
from support import misplaced_blame  # type: ignore[import-not-found]


def _run(tmp_path: Path, *args: str, cache: Path | None = None
         ) -> tuple[subprocess.CompletedProcess[str], RunResults]:
    """A run into `tmp_path/out`, with no cache, or with a cache of its own in `cache`."""
    out = tmp_path / "out"
    env = {**os.environ, "PARITY_CACHE_DIR": str(cache)} if cache else None
    proc = subprocess.run([sys.executable, "-m", "parity.cli", "run", *args,
                           *(() if cache else ("--no-cache",)), "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    results = RunResults.from_dict(json.loads((out / "results.json").read_text()))
    assert misplaced_blame(results.comparisons, [*results.fits, *results.reference_fits]) == []
    return proc, results


def _binomial_csv(path: Path, response: str) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = {"ones": np.ones(60, int), "trials": np.full(60, 5),
         "separated": (x > 0).astype(int)}[response]
    path.write_text("y,x,g,n\n" + "".join(f"{y[i]},{x[i]:.6f},g{i % 6},5\n"
                                          for i in range(60)))
    return path


def _untrusted(results: RunResults, engine: str) -> str:
    fit = next(f for f in results.fits if f.engine == engine)
    assert fit.status in ("failed", "unconverged"), (fit.status, fit.reason)
    assert fit.reason and "TypeError" not in fit.reason
    rows = [c for c in results.comparisons if engine in (c.engine, c.reference)]
    assert all(c.verdict == "not_comparable" for c in rows)
    return fit.reason


@pytest.mark.r
def test_a_diverged_statsmodels_fit_on_grouseticks_is_not_trusted(tmp_path: Path) -> None:
    need("R")
    proc, results = _run(tmp_path, "--r-dataset", "lme4::grouseticks", "--formula",
                         "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
                         "--family", "poisson", "--engines", "lme4,statsmodels")
    reason = _untrusted(results, "statsmodels")
    assert reason.startswith("statsmodels failed (")
    assert "mean-field" not in reason and "singular" not in reason
    lme4 = next(f for f in results.fits if f.engine == "lme4")
    assert lme4.status == "ok"
    assert proc.returncode == 1 and "failed: m1 / statsmodels" in proc.stderr


@pytest.mark.r
@pytest.mark.parametrize("response", ["ones", "separated"])
def test_glmmtmb_on_a_degenerate_binomial_response_is_not_trusted(
        tmp_path: Path, response: str) -> None:
    """An all-ones response (false convergence, SE 1e7 or more) and perfect separation
    (no SEs at all: once parity's own TypeError)."""
    reason = glmmtmb_missing()
    if reason:
        pytest.skip(f"glmmTMB: {reason}")
    data = _binomial_csv(tmp_path / "d.csv", response)
    _, results = _run(tmp_path, "--data", str(data), "--formula", "y ~ x + (1 | g)",
                      "--categorical", "g", "--family", "binomial",
                      "--engines", "glmmtmb,statsmodels")
    said = _untrusted(results, "glmmtmb")
    assert "glmmtmb failed" in said or "glmmtmb did not converge" in said


@pytest.mark.r
@pytest.mark.bambi
def test_glmmtmb_on_a_response_equal_to_its_trials_blames_no_prior(tmp_path: Path) -> None:
    reason = glmmtmb_missing() or bambi_missing()
    if reason:
        pytest.skip(reason)
    data = _binomial_csv(tmp_path / "d.csv", "trials")
    proc, results = _run(tmp_path, "--data", str(data), "--formula", "y ~ x + (1 | g)",
                         "--categorical", "g", "--family", "binomial", "--trials", "n",
                         "--engines", "glmmtmb,bambi", "--draws", "100", "--tune", "100",
                         "--chains", "2")
    _untrusted(results, "glmmtmb")
    assert not any("prior" in (c.reason or "") for c in results.comparisons)
    assert proc.returncode != 0


@pytest.mark.bambi
def test_a_bambi_run_too_short_to_converge_compares_nothing(tmp_path: Path) -> None:
    """`--draws 50 --tune 50`: R-hat and ESS fail, every row says so; asked to compare
    anyway, the rows are marked and counted apart."""
    need("bambi")
    need("lme4")
    cache = tmp_path / "cache"  # the second run reads both fits back, vetted again
    _, results = _run(tmp_path, "--models", "subject_intercept", "--engines", "lme4,bambi",
                      "--draws", "50", "--tune", "50", cache=cache)
    bambi = next(f for f in results.fits if f.engine == "bambi")
    assert bambi.status == "unconverged"
    assert bambi.reason and bambi.reason.startswith("bambi did not converge (")
    assert "ESS" in bambi.reason
    rows = [c for c in results.comparisons if "bambi" in (c.engine, c.reference)]
    assert rows and all(c.verdict == "not_comparable" and c.unconverged == ("bambi",)
                        for c in rows)
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "against fits that did not converge" in text
    _, asked = _run(tmp_path, "--models", "subject_intercept", "--engines", "lme4,bambi",
                    "--draws", "50", "--tune", "50", "--compare-unconverged", cache=cache)
    assert all(f.from_cache for f in asked.fits)
    marked = [c for c in asked.comparisons if "bambi" in (c.engine, c.reference)]
    assert any(c.verdict != "not_comparable" for c in marked)
    assert all(c.unconverged == ("bambi",) for c in marked)
