"""Without live R, the lme4 engine uses the recorded references, and says so everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity.inputs.seed import politeness, seed_models
from parity.pipeline.job import run_job
from parity.settings import Settings
from parity.spec.models import select


@pytest.fixture
def no_live_r(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARITY_LME4", "recorded")


def test_recorded_lme4_is_used_and_marked(no_live_r: None, tmp_path: Path) -> None:
    models = select(seed_models(), ["subject_intercept", "crossed_slopes"])
    result = run_job(models, politeness(), ["lme4", "statsmodels"], Settings(), tmp_path)
    doc = json.loads(result.results_path.read_text())
    lme4 = [f for f in doc["fits"] + doc["reference_fits"] if f["engine"] == "lme4"]
    assert len(lme4) == 3  # two models and the crossed model's matched-structure refit
    for f in lme4:
        assert f["status"] == "ok"
        assert f["provenance"]["source"] == "recorded"
    assert doc["optimum_checks"] == []  # needs live R: left out, not faked
    rows = [c for c in doc["comparisons"] if c["model"] == "subject_intercept"]
    # every row agrees but the interval ends, which statsmodels' Wald-z and lme4's
    # Wald-t on Satterthwaite df find by different methods
    assert rows and all(c["verdict"] == "agree" or (
        c["quantity"] in ("lower", "upper") and "are different methods" in c["reason"])
        for c in rows)
    assert {c["quantity"] for c in rows} >= {"estimate", "lower", "conclusion"}
    for kind in ("markdown", "html"):
        text = result.reports[kind].read_text()
        assert "Recorded lme4 numbers" in text
        assert "lme4 (recorded)" in text


def test_no_matching_record_is_skipped_with_a_way_out(no_live_r: None, tmp_path: Path) -> None:
    frame = politeness()
    frame["frequency"] = frame["frequency"] * 2.0
    models = select(seed_models(), ["additive"])
    result = run_job(models, frame, ["lme4", "statsmodels"], Settings(), tmp_path)
    (lme4,) = [f for f in result.fits if f.engine == "lme4"]
    assert lme4.status == "skipped"
    assert "parity record" in (lme4.reason or "")
    assert "apt" in (lme4.reason or "") or "make r-deps" in (lme4.reason or "")


def test_the_run_ends_with_the_matrix_unless_quiet(tmp_path: Path) -> None:
    """The verdicts reach the terminal: the summary matrix, then the paths; with
    --quiet, only the paths."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PARITY_LME4": "recorded"}  # the same whether R is here or not
    args = [sys.executable, "-m", "parity.cli", "run", "--models", "additive",
            "--engines", "lme4,statsmodels", "--no-cache"]
    out = subprocess.run([*args, "--quiet", "--out", str(tmp_path / "a")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("results: ")
    loud = subprocess.run([*args, "--out", str(tmp_path / "b")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr
    head, _, tail = loud.stdout.partition("results: ")
    assert "statsmodels vs lme4" in head and "all models" in head and "agree" in head
    assert "\033[" not in loud.stdout  # not a terminal: plain
    assert tail
