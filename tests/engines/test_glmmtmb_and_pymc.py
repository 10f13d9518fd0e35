"""The opt-in engines: glmmTMB as a second frequentist opinion on lme4's model, and the
PyMC model with Bambi's priors and lme4's correlated covariance structure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import engine_missing
from parity.api import Run
from parity.schema import Fit
from support import by_design  # type: ignore[import-not-found]

FORMULA = "Reaction ~ Days + (Days | Subject)"
SLEEP_SAMPLER = {"draws": 500, "tune": 500, "chains": 4, "seed": 11}


def _need(engine: str) -> None:
    reason = engine_missing(engine)
    if reason:
        pytest.skip(f"{engine}: {reason}")


@pytest.fixture(scope="module")
def sleep_run(sleepstudy: pd.DataFrame) -> Run:
    """lme4, glmmTMB, Bambi and the PyMC engine; the samplers at a quarter of the
    default draws (enough for R-hat on 4 chains; the defaults are the seed suite's)."""
    import parity

    _need("glmmtmb")
    _need("pymc")
    return parity.run({"rs": FORMULA}, sleepstudy, categorical=["Subject"],
                      engines=["lme4", "glmmtmb", "bambi", "pymc"], cache=False,
                      **SLEEP_SAMPLER)


def _fit(run: Run, engine: str) -> Fit:
    fit = next(f for f in run.results.fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


@pytest.mark.r
def test_glmmtmb_equals_lme4_on_sleepstudy(sleep_run: Run) -> None:
    lme4, tmb = _fit(sleep_run, "lme4"), _fit(sleep_run, "glmmtmb")
    assert tmb.criterion == "REML" and tmb.structure == {"Subject": "correlated"}
    for fe in lme4.fixed_effects:
        other = tmb.fixed(fe.term)
        assert other is not None
        assert other.estimate == pytest.approx(fe.estimate, rel=1e-4)
        assert other.std_error == pytest.approx(fe.std_error, rel=1e-3)
    for vc in lme4.variance_components:
        other_vc = tmb.component(vc.group, vc.term, vc.term2)
        assert other_vc is not None, vc.label
        if vc.kind == "corr":
            assert other_vc.estimate == pytest.approx(vc.estimate, abs=2e-3)
        else:
            assert other_vc.estimate == pytest.approx(vc.estimate, rel=1e-3)
    rows = [c for c in sleep_run.results.comparisons
            if c.engine == "glmmtmb" and c.reference == "lme4"]
    assert rows and all(c.verdict == "agree" or by_design(c.quantity, c.verdict, c.reason)
                        for c in rows), [c for c in rows if c.verdict != "agree"]
    (check,) = [c for c in sleep_run.results.optimum_checks if c.engine == "glmmtmb"]
    assert check.better == "tie"


@pytest.mark.r
@pytest.mark.bambi
def test_pymc_converges_and_its_correlation_has_a_verdict(sleep_run: Run) -> None:
    fit = _fit(sleep_run, "pymc")
    d = fit.diagnostics
    assert d.r_hat_max is not None and d.r_hat_max < 1.01
    assert d.divergences == 0
    assert fit.structure == {"Subject": "correlated"}
    ran = fit.provenance.settings["ran"]
    assert (ran["chains"], ran["draws"], ran["tune"]) == (4, 500, 500)
    assert ran["sampler"] == "numpyro"
    (corr,) = [c for c in sleep_run.results.comparisons
               if c.engine == "pymc" and c.reference == "lme4" and c.quantity == "corr"]
    assert corr.verdict in ("agree", "disagree")
    # bambi against pymc: the same priors, one correlation apart; their SDs are compared.
    pair = [c for c in sleep_run.results.comparisons
            if c.engine == "pymc" and c.reference == "bambi"]
    sds = [c for c in pair if c.quantity == "sd" and c.group == "Subject"]
    assert len(sds) == 2 and all(c.verdict != "not_comparable" for c in sds)
    (bb_corr,) = [c for c in pair if c.quantity == "corr"]
    assert bb_corr.verdict == "not_comparable"


@pytest.mark.bambi
def test_pymc_uses_bambis_priors() -> None:
    """The fixed-effect, group SD and residual priors are read from Bambi's model of the
    same formula and data, so that the two engines differ only in the covariance."""
    _need("pymc")
    import bambi as bmb

    from parity.engines.bambi import bambi_formula
    from parity.engines.pymc_model import _Layout, _sigma, _terms
    from parity.inputs.seed import politeness, seed_models
    from parity.rows.prepare import prepare

    model = next(m for m in seed_models() if m.name == "crossed_slopes")
    data = prepare(politeness(), model.spec, model.categorical)
    bmodel = bmb.Model(bambi_formula(model.spec), data.frame, categorical=list(data.levels))
    layout = _Layout(model.spec, data, bmodel)
    terms = _terms(bmodel)
    assert layout.names == ["genderM", "attitudepol"]
    assert list(layout.beta_sigma) == [float(_sigma(terms["gender"].prior)),
                                       float(_sigma(terms["attitude"].prior))]
    assert layout.intercept_mu == pytest.approx(data.frame["frequency"].mean())
    subject = layout.blocks[0]
    assert subject["names"] == ["(Intercept)", "attitudepol"]
    assert list(subject["sd_sigma"]) == [float(_sigma(terms["1|subject"].prior)),
                                         float(_sigma(terms["attitude|subject"].prior))]


@pytest.mark.bambi
def test_lkj_prior_has_the_lkj_marginals() -> None:
    """Each correlation of a k x k LKJ(eta) matrix is 2 Beta(a, a) - 1 with
    a = eta - 1 + k/2, so its variance is 1 / (2 eta + k - 1): 1/6 for k = 3, eta = 2.
    The C-vine construction must give that, and unit diagonals."""
    _need("pymc")
    import pymc as pm

    from parity.engines.pymc_model import lkj_cholesky

    with pm.Model():
        chol = lkj_cholesky("t", 3, 2.0)
        corr = pm.Deterministic("corr", chol @ chol.T)
        draws = pm.draw(corr, draws=20000, random_seed=1)
    assert np.allclose(draws[:, range(3), range(3)], 1.0)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert draws[:, i, j].var() == pytest.approx(1 / 6, rel=0.05)
        assert abs(draws[:, i, j].mean()) < 0.02


@pytest.mark.r
@pytest.mark.bambi
def test_the_slope_models_run_with_all_five_engines(tmp_path: Path) -> None:
    """The CLI with every engine on the two seed models with correlations (the others
    are fitted by every engine in the contract suite and the seed fixture);
    subject_slope's report shows lme4's corr = 1 (on the boundary) beside pymc's
    posterior of the correlation."""
    _need("glmmtmb")
    _need("pymc")
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "parity.cli", "run", "--models", "subject_slope,crossed_slopes",
         "--engines", "lme4,glmmtmb,statsmodels,bambi,pymc", "--draws", "200", "--tune", "200",
         "--chains", "2", "--no-cache", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=1200)
    doc = json.loads((out / "results.json").read_text())
    status = {(f["model"], f["engine"]): f["status"] for f in doc["fits"]}
    assert len(status) == 10
    # glmmTMB's fits of the singular models stop at a non-positive-definite Hessian,
    # and at these small sampler settings a posterior may not converge: every fit has
    # numbers, and one that is not trusted says why.
    reasons = {(f["model"], f["engine"]): f["reason"] for f in doc["fits"]}
    assert all(s in ("ok", "unconverged") for s in status.values()), proc.stderr
    assert all(reasons[k].startswith(f"{k[1]} did not converge (")
               for k, s in status.items() if s == "unconverged")
    assert status[("subject_slope", "glmmtmb")] == "unconverged"
    assert proc.returncode == 0, proc.stderr
    rows = [c for c in doc["comparisons"] if c["model"] == "subject_slope"
            and c["engine"] == "pymc" and c["reference"] == "lme4" and c["quantity"] == "corr"]
    (corr,) = rows
    assert corr["verdict"] == "not_comparable"
    assert corr["reference_value"] == pytest.approx(1.0, abs=1e-3)
    report = (out / "comparison.md").read_text()
    if status[("subject_slope", "pymc")] == "ok":  # the boundary, beside the posterior
        assert "pymc's posterior: mean" in corr["reason"]
        assert "pymc's posterior: mean" in report
    else:  # nothing but the failure to converge explains the row
        assert corr["reason"] == reasons[("subject_slope", "pymc")]
        assert corr["unconverged"] == ["pymc"]
    assert (out / "figures" / "subject_slope.png").is_file()
