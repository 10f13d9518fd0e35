"""Models glmer accepts are models parity accepts: an observation-level random effect in a
Poisson model (lme4's grouseticks, one INDEX level per row), and a binomial response
stored as a two-level factor (lme4's VerbAgg `r2`, levels N and Y). Each is fitted
through parity and by glmer in plain R on the data as R holds it; the numbers must be
the same."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import engine_missing, need
from parity.schema import Fit

GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION)"
# Four of VerbAgg's 24 items (1264 rows): glmer on all 7584 takes long for a test. With
# six, glmer's gradient check sits at its tolerance (max|grad| 0.002047 against 0.002 with
# Debian's reference BLAS), so whether lme4 "converged" depends on the machine's BLAS;
# with four it converges with a scaled gradient of 1e-5 (and with 3, 5, 8, 9 or 10).
VERBAGG = "r2 ~ Anger + Gender + btype + (1 | id)"
VERBAGG_ITEMS = 4
RTOL = 1e-6
# glmer's grouseticks fit is not reproducible to 1e-6 in R itself: the same call on the
# same data, in fresh R sessions, stopped at intercepts 0.3727823 and 0.3728069 (6.6e-5
# apart, relative; the deviance 1e-3 apart), and on the data written to CSV and read
# back (as --r-dataset reads it: 15 significant digits) at 0.3727764. Its optimum is
# flat there; parity is held to glmer's own spread (Lme4Engine.invariance_rtol), and
# the log-likelihood to 0.005.
GROUSE_RTOL = 1e-3

# glmer in plain R on a data set as its package ships it (factors and all), the fixed
# effects and the SDs as JSON. Arguments: data set, formula, family, items to keep (0:
# all; VerbAgg's first items in R's level order).
_GLMER = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(lme4))
e <- new.env()
utils::data(list = args[[1]], package = "lme4", envir = e)
d <- get(args[[1]], envir = e)
k <- as.integer(args[[4]])
if (k > 0) d <- droplevels(d[d$item %in% levels(d$item)[seq_len(k)], ])
m <- glmer(stats::as.formula(args[[2]]), data = d, family = args[[3]])
vc <- as.data.frame(VarCorr(m))
cat(jsonlite::toJSON(list(fixed = as.list(fixef(m)),
                          sd = as.list(stats::setNames(vc$sdcor, vc$grp)),
                          loglik = as.numeric(logLik(m))),
                     auto_unbox = TRUE, digits = NA))
"""


def _glmer_in_r(dataset: str, formula: str, family: str, items: int = 0) -> dict:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("R: Rscript is not on PATH")
    out = subprocess.run([rscript, "--vanilla", "-e", _GLMER, dataset, formula,
                          family, str(items)], capture_output=True, text=True, timeout=120,
                         check=True)
    doc: dict = json.loads(out.stdout)
    return doc


def _fit(fits: tuple[Fit, ...], engine: str) -> Fit:
    fit = next(f for f in fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


def _same_as_r(fit: Fit, r: dict, rtol: float = RTOL, loglik_atol: float = 1e-6) -> None:
    """Every fixed effect and every SD of `fit` equals glmer's in R, to `rtol`
    relative, and the log-likelihood to `loglik_atol`."""
    assert [f.term for f in fit.fixed_effects] == list(r["fixed"])
    for term, value in r["fixed"].items():
        fe = fit.fixed(term)
        assert fe is not None and fe.estimate == pytest.approx(value, rel=rtol), term
    assert {v.group for v in fit.variance_components} == set(r["sd"])
    for v in fit.variance_components:
        assert v.estimate == pytest.approx(r["sd"][v.group], rel=rtol), v.label
    assert fit.fit_statistics["loglik"] == pytest.approx(r["loglik"], abs=loglik_atol)


@pytest.fixture(scope="module")
def grouse_fits() -> tuple[Fit, ...]:
    need("R")
    import parity
    from parity.inputs.r_datasets import load_r_dataset

    frame = load_r_dataset("lme4::grouseticks").frame
    engines = ["lme4"] + ([] if engine_missing("glmmtmb") else ["glmmtmb"])
    run = parity.run({"grouse": GROUSE}, frame, engines=engines, cache=False,
                     family="poisson")
    return run.results.fits


@pytest.mark.r
def test_observation_level_effect_fits_as_glmer_fits_it(grouse_fits: tuple[Fit, ...]) -> None:
    """403 rows, 403 INDEX levels: refused for lmer, accepted for glmer."""
    fit = _fit(grouse_fits, "lme4")
    assert fit.n_obs == 403 and fit.n_groups["INDEX"] == 403
    _same_as_r(fit, _glmer_in_r("grouseticks", GROUSE, "poisson"), GROUSE_RTOL, 5e-3)


@pytest.mark.r
def test_glmmtmb_fits_the_observation_level_effect(grouse_fits: tuple[Fit, ...]) -> None:
    if engine_missing("glmmtmb"):
        pytest.skip(f"glmmtmb: {engine_missing('glmmtmb')}")
    lme4, tmb = _fit(grouse_fits, "lme4"), _fit(grouse_fits, "glmmtmb")
    for v in tmb.variance_components:
        ref = lme4.component(v.group, v.term, v.term2)
        assert ref is not None and v.estimate == pytest.approx(ref.estimate, rel=1e-3)
    for f in tmb.fixed_effects:
        ref_f = lme4.fixed(f.term)
        assert ref_f is not None and f.estimate == pytest.approx(ref_f.estimate, rel=1e-3)


@pytest.mark.r
def test_two_level_factor_response_is_read_as_r_reads_it() -> None:
    """VerbAgg's r2 (levels N, Y): parity codes Y as 1 once, lme4 fits the 0/1 numbers,
    and glmer on the factor itself gives the same fit; the fit names the coding."""
    need("R")
    import parity
    from parity.inputs.r_datasets import load_r_dataset

    verbagg = load_r_dataset("lme4::VerbAgg").frame
    items = list(verbagg["item"].cat.categories[:VERBAGG_ITEMS])
    subset = verbagg[verbagg["item"].isin(items)].reset_index(drop=True)
    assert isinstance(subset["r2"].dtype, pd.CategoricalDtype)
    run = parity.run({"verbagg": VERBAGG}, subset, engines=["lme4"], cache=False,
                     family="binomial")
    fit = _fit(run.results.fits, "lme4")
    assert fit.n_obs == 316 * VERBAGG_ITEMS
    assert fit.provenance.settings["response"] == {"column": "r2", "failure": "N",
                                                   "success": "Y"}
    _same_as_r(fit, _glmer_in_r("VerbAgg", VERBAGG, "binomial", VERBAGG_ITEMS))
