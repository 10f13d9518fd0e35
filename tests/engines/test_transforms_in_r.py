"""Transformed formulas: lme4 through parity (parity computes the columns) equals R's
lmer given the analyst's own text, names and numbers; statsmodels fits the same columns."""

from __future__ import annotations

import json
import subprocess
from functools import cache

import pytest

from conftest import need
from parity.inputs.r_datasets import load_r_dataset
from parity.pipeline.workers import Outcome, run_models
from parity.settings import Settings
from parity.spec.models import make_model

pytestmark = pytest.mark.r

FORMULAS = {
    "log_poly": "log(Reaction) ~ poly(Days, 2) + (1 | Subject)",
    "scale_I": "Reaction ~ scale(Days) + I(Days^2) + (Days | Subject)",
    "sqrt_exp": "sqrt(Reaction) ~ exp(Days/10) + (1 | Subject)",
}

# lmer on the text as typed: R evaluates the transforms itself.
DIRECT_R = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
m <- lmer(as.formula(commandArgs(trailingOnly = TRUE)[[1]]), data = lme4::sleepstudy)
vc <- as.data.frame(VarCorr(m))
cat(toJSON(list(terms = names(fixef(m)), est = unname(fixef(m)),
                se = unname(sqrt(diag(as.matrix(vcov(m))))),
                grp = vc$grp, var1 = vc$var1, var2 = vc$var2, sdcor = vc$sdcor),
           digits = NA, na = "null"))
"""


@cache
def outcome() -> Outcome:
    data = load_r_dataset("lme4::sleepstudy")
    models = [make_model(n, f, tuple(data.factors)) for n, f in FORMULAS.items()]
    return run_models(models, data.frame, ["lme4", "statsmodels"], Settings())


def direct(formula: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["Rscript", "-e", DIRECT_R, formula], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_lme4_through_parity_equals_lmer_on_the_written_text(name: str) -> None:
    need("R")
    fit = next(f for f in outcome().fits if f.model == name and f.engine == "lme4")
    assert fit.status == "ok", fit.reason
    ref = direct(FORMULAS[name])
    assert [fe.term for fe in fit.fixed_effects] == ref["terms"]
    for fe, est, se in zip(fit.fixed_effects, ref["est"], ref["se"], strict=True):
        assert fe.estimate == pytest.approx(est, rel=1e-6)
        assert fe.std_error == pytest.approx(se, rel=1e-6)
    ours = {(v.group, v.term, v.term2): v.estimate for v in fit.variance_components}
    for grp, var1, var2, sdcor in zip(ref["grp"], ref["var1"], ref["var2"], ref["sdcor"],
                                      strict=True):
        key = (grp, var1, var2)
        assert ours[key] == pytest.approx(sdcor, rel=1e-6), key


@pytest.mark.parametrize("name", list(FORMULAS))
def test_statsmodels_fits_the_same_columns(name: str) -> None:
    fits = {f.engine: f for f in outcome().fits if f.model == name}
    assert fits["statsmodels"].status == "ok", fits["statsmodels"].reason
    lme4 = {fe.term: fe.estimate for fe in fits["lme4"].fixed_effects}
    sm = {fe.term: fe.estimate for fe in fits["statsmodels"].fixed_effects}
    assert sm.keys() == lme4.keys()
    for term, est in lme4.items():
        assert sm[term] == pytest.approx(est, rel=1e-4, abs=1e-6), term
