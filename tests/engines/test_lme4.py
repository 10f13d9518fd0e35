"""lme4 through parity against lme4 on its own, and the R script run standalone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import SEED_NAMES, need
from parity.engines.lme4 import r_script_path
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness_path
from parity.schema import Fit
from parity.spec.models import Model

SINGULAR = {"subject_slope", "crossed_slopes"}

# lme4 called directly, without parity's R code: the independent reference.
DIRECT_R = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[[1]])
for (v in c("subject", "gender", "scenario", "attitude")) d[[v]] <- factor(d[[v]])
f <- as.formula(args[[2]])
mixed <- !is.null(findbars(f))
m <- if (mixed) lmer(f, data = d) else lm(f, data = d)
est <- if (mixed) fixef(m) else coef(m)
vc <- if (mixed) as.data.frame(VarCorr(m)) else data.frame(grp = "Residual", var1 = NA,
      var2 = NA, sdcor = sigma(m))
cat(toJSON(list(terms = names(est), est = unname(est),
                se = unname(sqrt(diag(as.matrix(vcov(m))))),
                grp = vc$grp, var1 = vc$var1, var2 = vc$var2, sdcor = vc$sdcor,
                singular = unbox(if (mixed) isSingular(m) else FALSE)),
           digits = NA, na = "null"))
"""


def direct_lme4(formula: str, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    script = tmp_path / "direct.R"
    script.write_text(DIRECT_R)
    out = subprocess.run(["Rscript", str(script), politeness_path(), formula],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.r
@pytest.mark.parametrize("name", SEED_NAMES)
def test_equals_lme4_run_directly(name: str, seed_fits: dict[tuple[str, str], Fit],
                                  seed_models_by_name: dict[str, Model],
                                  tmp_path: Path) -> None:
    need("R")
    fit = seed_fits[(name, "lme4")]
    assert fit.status == "ok", fit.reason
    ref = direct_lme4(seed_models_by_name[name].formula, tmp_path)
    assert [fe.term for fe in fit.fixed_effects] == ref["terms"]
    for fe, est, se in zip(fit.fixed_effects, ref["est"], ref["se"], strict=True):
        assert fe.estimate == pytest.approx(est, rel=1e-6)
        assert fe.std_error == pytest.approx(se, rel=1e-4)
    for grp, var1, var2, sdcor in zip(ref["grp"], ref["var1"], ref["var2"], ref["sdcor"],
                                      strict=True):
        term = None if grp == "Residual" else var1
        vc = fit.component(grp, term, var2)
        assert vc is not None, (grp, var1, var2)
        assert vc.estimate == pytest.approx(sdcor, rel=1e-4, abs=1e-6)
    assert fit.diagnostics.singular is ref["singular"]
    assert fit.diagnostics.singular is (name in SINGULAR)
    assert fit.n_obs == 83 and fit.n_dropped == 1
    assert fit.provenance.r_version and fit.provenance.engine_version


@pytest.mark.r
@pytest.mark.parametrize("name", SEED_NAMES)
def test_standalone_script_prints_the_same_numbers(
    name: str, seed_fits: dict[tuple[str, str], Fit], seed_models_by_name: dict[str, Model]
) -> None:
    need("R")
    model = seed_models_by_name[name]
    out = subprocess.run(
        ["Rscript", str(r_script_path()), politeness_path(), model.spec.lme4_formula(),
         ",".join(POLITENESS_CATEGORICAL)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    doc = json.loads(out.stdout)
    fit = seed_fits[(name, "lme4")]
    assert doc["n_obs"] == fit.n_obs and doc["n_dropped"] == fit.n_dropped
    assert [f["term"] for f in doc["fixed_effects"]] == [fe.term for fe in fit.fixed_effects]
    for row, fe in zip(doc["fixed_effects"], fit.fixed_effects, strict=True):
        for key in ("estimate", "std_error"):
            # R itself is not bit-reproducible on the singular crossed model: twelve runs
            # of this same Rscript command gave two results 2e-11 apart, so "the same
            # numbers" is held at 1e-8 (relative) for every model.
            assert row[key] == pytest.approx(getattr(fe, key), rel=1e-8)
        assert row["statistic"] == pytest.approx(fe.statistic, rel=1e-8)
        for key in ("lower", "upper", "df", "p_value"):
            # Satterthwaite's df is a numerical derivative at the optimum: on the singular
            # crossed model it turns those 2e-11 into up to 2.7e-5 in the df (6.07200
            # against 6.07216 in two runs of the same command) and in an interval's end.
            rel = 1e-3 if fit.diagnostics.singular else 1e-6
            assert row[key] == pytest.approx(getattr(fe, key), rel=rel)
        assert (row["df_method"], row["interval_method"]) == (fe.df_method,
                                                              fe.interval_method)
    assert len(doc["variance_components"]) == len(fit.variance_components)
    for row, vc in zip(doc["variance_components"], fit.variance_components, strict=True):
        assert (row["group"], row["term"], row["term2"]) == (vc.group, vc.term, vc.term2)
        assert row["estimate"] == pytest.approx(vc.estimate, rel=1e-8, abs=1e-8)
    assert doc["diagnostics"]["singular"] == fit.diagnostics.singular


@pytest.mark.r
@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("frequency ~ gender + system('touch {marker}')", "not allowed"),
        ("frequency ~ gender + I(system('touch {marker}'))", "not allowed"),
        ("frequency ~ gender + (1 | subject) + file.create('{marker}')", "not allowed"),
        ("frequency ~ gender + eval(parse(text = \"system('touch {marker}')\"))",
         "not allowed"),
        ("frequency ~ gender + subject$system('touch {marker}')", "not allowed"),
        ("frequency ~ gender + `system('touch {marker}')`", "not a column"),
        ("frequency ~ gender + (1 | `system('touch {marker}')`)", "not a column"),
    ],
)
def test_r_side_refuses_calls_too(formula: str, message: str, tmp_path: Path) -> None:
    """The second line of defence: the R script checks the parse tree itself."""
    need("R")
    marker = tmp_path / "ran"
    proc = subprocess.run(
        ["Rscript", str(r_script_path()), politeness_path(), formula.format(marker=marker)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not marker.exists()
