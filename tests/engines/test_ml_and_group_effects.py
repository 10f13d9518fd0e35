"""ML fits, group effects and likelihoods: lme4 through parity against lme4 run directly
and against its published sleepstudy fit, and statsmodels against lme4 on both criteria."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import need
from parity.api import Run
from parity.schema import SCHEMA_VERSION, Fit
from support import by_design  # type: ignore[import-not-found]

FORMULA = "Reaction ~ Days + (Days | Subject)"

# lme4 on its own: the ML or REML fit, its likelihood statistics and ranef(condVar = TRUE).
DIRECT_R = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
reml <- commandArgs(trailingOnly = TRUE)[[1]] == "REML"
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = reml)
re <- as.data.frame(ranef(m, condVar = TRUE))
cat(toJSON(list(fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
                vcov = as.matrix(vcov(m)), sdcor = as.data.frame(VarCorr(m))$sdcor,
                loglik = as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m),
                level = as.character(re$grp), term = as.character(re$term),
                condval = re$condval, condsd = re$condsd),
           auto_unbox = TRUE, digits = NA))
"""


def _direct(criterion: str, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    script = tmp_path / "direct.R"
    script.write_text(DIRECT_R)
    out = subprocess.run(["Rscript", str(script), criterion], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def runs(sleepstudy: pd.DataFrame) -> dict[str, Run]:
    import parity

    return {criterion: parity.run({"rs": FORMULA}, sleepstudy, categorical=["Subject"],
                                  engines=["lme4", "statsmodels"], cache=False,
                                  reml=criterion == "REML")
            for criterion in ("REML", "ML")}


CRITERIA = pytest.mark.parametrize("criterion", ["REML", "ML"])


def _fit(run: Run, engine: str) -> Fit:
    fit = next(f for f in run.results.fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


@pytest.mark.r
def test_ml_reproduces_the_published_fit(runs: dict[str, Run]) -> None:
    """lme4's sleepstudy fit with REML = FALSE, as published (to its printed digits)."""
    fit = _fit(runs["ML"], "lme4")
    assert fit.criterion == "ML"
    sds = {v.label: v.estimate for v in fit.variance_components}
    assert sds["sd(Subject: (Intercept))"] == pytest.approx(23.780, abs=5e-4)
    assert sds["sd(Subject: Days)"] == pytest.approx(5.717, abs=5e-4)
    assert sds["corr(Subject: (Intercept), Days)"] == pytest.approx(0.081, abs=5e-4)
    assert sds["sd(Residual)"] == pytest.approx(25.592, abs=5e-4)
    ses = {f.term: f.std_error for f in fit.fixed_effects}
    assert ses["(Intercept)"] == pytest.approx(6.632, abs=5e-4)
    assert ses["Days"] == pytest.approx(1.502, abs=5e-4)
    assert fit.fit_statistics["loglik"] == pytest.approx(-875.97, abs=5e-3)


@pytest.mark.r
@CRITERIA
def test_lme4_equals_lme4_run_directly(criterion: str, runs: dict[str, Run],
                                       tmp_path: Path) -> None:
    """Estimates, SEs, covariance, SDs and likelihoods to 1e-5; group effects to 1e-4."""
    fit = _fit(runs[criterion], "lme4")
    ref = _direct(criterion, tmp_path)
    assert fit.criterion == criterion
    for fe in fit.fixed_effects:
        assert fe.estimate == pytest.approx(ref["fixef"][fe.term], rel=1e-5)
        assert fe.std_error == pytest.approx(ref["se"][fe.term], rel=1e-5)
    flat = [x for row in fit.fixed_effects_cov for x in row]
    assert flat == pytest.approx([x for row in ref["vcov"] for x in row], rel=1e-5)
    assert [v.estimate for v in fit.variance_components] == pytest.approx(ref["sdcor"],
                                                                          rel=1e-5)
    for key in ("loglik", "aic", "bic"):
        assert fit.fit_statistics[key] == pytest.approx(ref[key], rel=1e-5)
    assert len(fit.group_effects) == len(ref["condval"]) == 36
    for level, term, value, sd in zip(ref["level"], ref["term"], ref["condval"],
                                      ref["condsd"], strict=True):
        g = fit.group_effect("Subject", level, term)
        assert g is not None, (level, term)
        assert g.estimate == pytest.approx(value, rel=1e-4, abs=1e-4)
        assert g.std_error == pytest.approx(sd, rel=1e-4)


@pytest.mark.r
@CRITERIA
def test_statsmodels_agrees_with_lme4_under_both_criteria(criterion: str,
                                                          runs: dict[str, Run]) -> None:
    """Every row agrees, the group effects and the log-likelihood included, and the
    optimum check judges statsmodels' solution by the criterion both fitted."""
    result = runs[criterion]
    sm = _fit(result, "statsmodels")
    assert sm.criterion == criterion
    rows = [c for c in result.results.comparisons if c.engine == "statsmodels"]
    quantities = {c.quantity for c in rows}
    assert {"group_effect", "loglik", "estimate", "sd", "corr"} <= quantities
    bad = [c for c in rows if c.verdict != "agree"
           and not by_design(c.quantity, c.verdict, c.reason)]
    assert not bad, bad
    effects = [c for c in rows if c.quantity == "group_effect"]
    assert len(effects) == 36 and all(c.level and c.group == "Subject" for c in effects)
    (check,) = result.results.optimum_checks
    assert check.criterion == criterion and check.objective == f"lme4 {criterion} log-likelihood"
    assert check.better == "tie"


@pytest.mark.r
def test_ml_and_reml_are_different_fits(sleepstudy: pd.DataFrame, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit cache keys on the criterion: an ML run after a REML run refits."""
    import parity

    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    fits = {}
    for reml in (True, False, True):
        r = parity.run(FORMULA, sleepstudy, categorical=["Subject"], engines=["lme4"],
                       reml=reml)
        fits.setdefault(reml, []).append(r.results.fits[0])
    (ml,) = fits[False]
    first, again = fits[True]
    assert ml.criterion == "ML" and first.criterion == again.criterion == "REML"
    assert ml.provenance.source == "fit"
    assert ml.variance_components[0].estimate != pytest.approx(
        first.variance_components[0].estimate, rel=1e-3)
    assert again.provenance.source == "cache"


@pytest.mark.r
def test_cli_ml_names_the_criterion_in_results_and_reports(tmp_path: Path) -> None:
    need("R")
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "parity.cli", "run", "--r-dataset", "lme4::sleepstudy",
         "--formula", FORMULA, "--engines", "lme4,statsmodels", "--ml", "--no-cache",
         "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert {f["criterion"] for f in doc["fits"]} == {"ML"}
    assert all(f["group_effects"] and f["fixed_effects_cov"] for f in doc["fits"])
    report = (out / "comparison.md").read_text()
    assert "fitted by ML (lme4 ML, statsmodels ML)" in report
    assert "### Group effects" in report and "### Likelihood" in report
    assert (out / "figures" / "m1.ranef.Subject.png").is_file()


@pytest.mark.r
def test_assert_parity_compares_ml_fits(sleepstudy: pd.DataFrame) -> None:
    from parity.errors import UsageError
    from parity.testing import assert_parity

    rows = assert_parity(FORMULA, sleepstudy, categorical=["Subject"],
                         engines=("statsmodels",), reml=False)
    assert any(r.quantity == "loglik" and r.term == "logLik (ML)" for r in rows)
    with pytest.raises(UsageError, match="reml must be True or False"):
        assert_parity(FORMULA, sleepstudy, engines=("statsmodels",), reml="no")  # type: ignore[arg-type]
