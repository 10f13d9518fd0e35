"""glmer's nAGQ through parity on lme4::cbpp: nAGQ = 0 gives plain R's numbers and records
its own criterion, and lme4 at another criterion than glmmTMB's Laplace is never said to
disagree with it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import engine_missing
from parity.schema import Fit

CBPP = "incidence ~ period + (1 | herd)"

# glmer(nAGQ = 0) in a plain R session, the numbers parity must give back.
PLAIN_R = """
suppressPackageStartupMessages(library(lme4))
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
           family = binomial, nAGQ = 0L)
cat(jsonlite::toJSON(list(fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
                          sd = attr(VarCorr(m)$herd, "stddev")[[1]],
                          loglik = as.numeric(logLik(m))), auto_unbox = TRUE, digits = NA))
"""


def _fit(fits: tuple[Fit, ...], engine: str) -> Fit:
    fit = next(f for f in fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


def _run(cbpp: pd.DataFrame, engines: list[str], nagq: int):  # type: ignore[no-untyped-def]
    import parity

    return parity.run({"cbpp": CBPP}, cbpp, categorical=["herd", "period"], engines=engines,
                      cache=False, family="binomial", trials="size", nagq=nagq)


@pytest.mark.r
def test_nagq0_is_plain_glmers_fit_under_its_own_criterion(cbpp: pd.DataFrame) -> None:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not on PATH (needed for plain R's glmer)")
    fit = _fit(_run(cbpp, ["lme4"], 0).results.fits, "lme4")
    assert fit.criterion == "nAGQ=0"
    assert fit.provenance.settings["method"] == "glmer binomial, nAGQ = 0"
    proc = subprocess.run(["Rscript", "-e", PLAIN_R], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    plain = json.loads(proc.stdout)
    for term, estimate in plain["fixef"].items():
        fe = fit.fixed(term)
        assert fe is not None, term
        assert fe.estimate == pytest.approx(estimate, rel=1e-8, abs=1e-10), term
        assert fe.std_error == pytest.approx(plain["se"][term], rel=1e-8), term
    (sd,) = fit.variance_components
    assert sd.estimate == pytest.approx(plain["sd"], rel=1e-8)
    assert fit.fit_statistics["loglik"] == pytest.approx(plain["loglik"], rel=1e-10)
    # Not the Laplace optimum: nAGQ = 0's intercept is -1.3605, Laplace's -1.3983.
    assert fit.fixed("(Intercept)").estimate == pytest.approx(-1.3605, abs=1e-3)  # type: ignore[union-attr]


@pytest.mark.r
@pytest.mark.parametrize(("nagq", "criterion", "apart"), [
    (25, "AGQ(25)", ("sd", "sd(herd: (Intercept))")),
    (0, "nAGQ=0", ("estimate", "(Intercept)")),
])
def test_lme4_at_another_criterion_never_disagrees_with_glmmtmb(
        cbpp: pd.DataFrame, nagq: int, criterion: str, apart: tuple[str, str]) -> None:
    """glmmTMB fits the Laplace approximation whatever nAGQ says, and records it; its
    herd SD (0.6423) against lme4's AGQ(25) 0.6475 was a `disagree` naming neither
    criterion. No optimum check judges an AGQ or nAGQ = 0 fit."""
    if engine_missing("glmmtmb"):
        pytest.skip(f"glmmtmb: {engine_missing('glmmtmb')}")
    run = _run(cbpp, ["lme4", "glmmtmb"], nagq)
    lme4, tmb = _fit(run.results.fits, "lme4"), _fit(run.results.fits, "glmmtmb")
    assert (lme4.criterion, tmb.criterion) == (criterion, "Laplace")
    rows = {(c.quantity, c.term): c for c in run.results.comparisons
            if (c.engine, c.reference) == ("glmmtmb", "lme4")}
    assert rows and not [c for c in rows.values() if c.verdict == "disagree"]
    assert all(criterion in (c.reason or "") and "Laplace" in (c.reason or "")
               for c in rows.values()), [c.reason for c in rows.values()]
    assert rows[apart].verdict == "not_comparable"
    assert rows[("loglik", f"logLik ({criterion})")].verdict == "not_comparable"
    assert not run.results.optimum_checks
