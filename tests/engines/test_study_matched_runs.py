"""A study of crossed_slopes compares like with like (issue 25, item 2): statsmodels'
independent random coefficients are judged against lme4's matched-structure refit
(`lme4:independent`), never against lme4's correlated fit, and the calibrated tolerances
do not learn the difference between the two structures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import r_missing
from parity.compare.tolerances import MAX_LOOSENING, default_policy, load_policy, rule_loosening

dask_missing = None if importlib.util.find_spec("distributed") else \
    "dask.distributed is not installed (pip install 'parity[study]')"


@pytest.mark.skipif(r_missing() is not None, reason=str(r_missing()))
@pytest.mark.skipif(dask_missing is not None, reason=str(dask_missing))
def test_crossed_slopes_study_judges_statsmodels_against_the_matched_refit(
        tmp_path: Path) -> None:
    out = tmp_path / "study"
    done = subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                           "crossed_slopes", "--groups", "6", "--replicates", "2",
                           "--engines", "lme4,statsmodels", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert (out / "study.json").is_file(), done.stderr
    doc = json.loads((out / "study.json").read_text())
    # The matched refits were fitted, in batches of their own.
    batches = sorted(p.name for p in (out / "study.batches").iterdir())
    assert any(n.endswith("-lme4-independent.json") for n in batches), batches
    assert any(n.endswith("-lme4.json") for n in batches), batches
    table = {t["engine"]: t for t in doc["fits"]}
    assert table["lme4:independent"]["ok"] >= 1
    assert doc["matched_reference"] == "lme4:independent"
    # statsmodels' rows are judged against the matched refit, never lme4's correlated fit.
    rows = [r for r in doc["rows"] if r["engine"] == "statsmodels"]
    assert rows
    judged = {r["judged_against"] for r in rows if r["verdict"] is not None}
    assert judged <= {"lme4:independent", None} and "lme4:independent" in judged
    assert not any(r["judged_against"] == "lme4" for r in rows)
    # A row that does not agree says why.
    assert all(r["reason"] for r in rows if r["verdict"] not in ("agree", None))
    # Calibration learned from the matched rows only.
    assert set(doc["calibrated_from"]["used"]) <= {"statsmodels vs lme4:independent"}
    assert all(d["reference"] == "lme4:independent" for d in doc["differences"])
    # The frequentist estimate rule is not loosened by the structures' difference.
    text = (out / "tolerances.calibrated.toml").read_text()
    assert "# Learned from " in text and "# Left out " in text
    if "[frequentist-frequentist.estimate]" in text:
        pair = ("frequentist", "frequentist", "estimate")
        rule = load_policy(out / "tolerances.calibrated.toml",
                           project=Path("/nonexistent")).rule(*pair)
        assert rule_loosening(rule, default_policy().rule(*pair)) < MAX_LOOSENING, text
