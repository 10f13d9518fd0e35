"""Binomial and Poisson mixed models: lme4's glmer through parity against its published cbpp
fit, the whole run from `--r-dataset lme4::cbpp`, and a crossed Poisson model by every
engine that can express it, each row with a verdict and a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import engine_missing
from parity.schema import Fit

CBPP = "incidence ~ period + (1 | herd)"


def poisson_crossed(seed: int = 7, subjects: int = 20, items: int = 15) -> pd.DataFrame:
    """Counts of subjects crossed with items: log E[y] = 0.5 + 0.3 x + u_subject + v_item."""
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(subjects), items)
    i = np.tile(np.arange(items), subjects)
    x = rng.normal(size=s.size)
    u, v = rng.normal(0, 0.5, subjects), rng.normal(0, 0.3, items)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + u[s] + v[i]))
    return pd.DataFrame({"y": y, "x": x, "subject": [f"s{k:02d}" for k in s],
                         "item": [f"i{k:02d}" for k in i]})


def _fit(fits: tuple[Fit, ...], engine: str) -> Fit:
    fit = next(f for f in fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


@pytest.mark.r
def test_lme4_reproduces_the_published_cbpp_fit(cbpp: pd.DataFrame) -> None:
    import parity

    run = parity.run({"cbpp": CBPP}, cbpp, categorical=["herd", "period"],
                     engines=["lme4", "statsmodels"], cache=False, family="binomial",
                     trials="size")
    fit = _fit(run.results.fits, "lme4")
    assert (fit.family, fit.link, fit.criterion) == ("binomial", "logit", "Laplace")
    published = {"(Intercept)": (-1.3983, 0.2312), "period2": (-0.9919, 0.3032),
                 "period3": (-1.1282, 0.3228), "period4": (-1.5797, 0.4220)}
    for term, (est, se) in published.items():
        fe = fit.fixed(term)
        assert fe is not None
        assert fe.estimate == pytest.approx(est, abs=5e-5)
        assert fe.std_error == pytest.approx(se, abs=5e-5)
    (sd,) = fit.variance_components  # no residual SD for a binomial model
    assert sd.label == "sd(herd: (Intercept))" and sd.estimate == pytest.approx(0.6421, abs=5e-5)
    assert len(fit.group_effects) == 15
    approx = _fit(run.results.fits, "statsmodels")
    assert approx.kind == "approximate" and approx.structure == {"herd": "independent"}
    rows = [c for c in run.results.comparisons if c.engine == "statsmodels"]
    assert rows and all(c.reason for c in rows if c.verdict != "agree")
    assert not any(c.term == "sd(Residual)" for c in run.results.comparisons)


@pytest.mark.r
def test_cbpp_from_the_r_dataset_end_to_end(tmp_path: Path) -> None:
    """`--r-dataset lme4::cbpp` with every frequentist engine and the Laplace optimum
    check; the report names the family and the link scale."""
    if engine_missing("glmmtmb"):
        pytest.skip(f"glmmtmb: {engine_missing('glmmtmb')}")
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "parity.cli", "run", "--r-dataset", "lme4::cbpp",
         "--formula", CBPP, "--family", "binomial", "--trials", "size",
         "--engines", "lme4,glmmtmb,statsmodels", "--no-cache", "--quiet",
         "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert {(f["engine"], f["family"], f["link"]) for f in doc["fits"]} == {
        ("lme4", "binomial", "logit"), ("glmmtmb", "binomial", "logit"),
        ("statsmodels", "binomial", "logit")}
    (check,) = doc["optimum_checks"]
    assert check["engine"] == "glmmtmb" and check["criterion"] == "Laplace"
    assert check["better"] == "tie"
    tmb = [c for c in doc["comparisons"] if c["engine"] == "glmmtmb"]
    assert tmb and all(c["verdict"] == "agree" for c in tmb), [
        c for c in tmb if c["verdict"] != "agree"]
    report = (out / "comparison.md").read_text()
    assert "link scale: logit" in report and "There is no residual SD" in report


@pytest.mark.r
@pytest.mark.bambi
def test_a_crossed_poisson_model_with_every_engine() -> None:
    """Every engine that can express it fits it; each comparison row has a verdict, and
    every row that does not agree a reason; the pymc engine says why it does not."""
    import parity

    engines = [e for e in ("lme4", "glmmtmb", "statsmodels", "bambi", "pymc")
               if not engine_missing(e)]
    run = parity.run({"counts": "y ~ x + (1 | subject) + (1 | item)"}, poisson_crossed(),
                     categorical=["subject", "item"], engines=engines, cache=False,
                     family="poisson", draws=500, tune=500, chains=2)
    status = {f.engine: f for f in run.results.fits}
    for engine in engines:
        fit = status[engine]
        if engine == "pymc":
            assert fit.status == "unsupported" and "Gaussian models only" in (fit.reason or "")
            continue
        # At the test's small sampler settings a posterior may be unconverged: its
        # numbers are still the engine's, and its rows say so.
        assert fit.has_numbers, (engine, fit.reason)
        assert fit.family == "poisson" and fit.link == "log"
        assert {v.group for v in fit.variance_components} == {"subject", "item"}
    rows = run.results.comparisons
    assert rows
    for c in rows:
        assert c.verdict in ("agree", "disagree", "not_comparable")
        assert c.verdict == "agree" or c.reason
    lme4 = status["lme4"]
    x = lme4.fixed("x")
    assert x is not None and x.estimate == pytest.approx(0.3, abs=0.1)
    if "glmmtmb" in engines:
        pair = [c for c in rows if (c.engine, c.reference) == ("glmmtmb", "lme4")]
        assert all(c.verdict == "agree" for c in pair), [c for c in pair if c.verdict != "agree"]
