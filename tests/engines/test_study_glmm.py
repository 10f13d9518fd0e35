"""A study's binomial and Poisson draws against lme4's own `simulate()` of the same glmer
fit: cbpp's binomial counts out of its herd sizes, a 0/1 response, grouseticks' Poisson
counts, and a Poisson model with an offset. Row means, row variances and the covariance
of rows of one group agree within sampling error (5 standard errors, the errors from the
draws themselves)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import r_missing
from parity.rows.prepare import PreparedData, prepare
from parity.spec.models import Model, make_model
from parity.study.simulate import simulate
from parity.study.truth import Truth, truth_from

ROOT = Path(__file__).resolve().parents[2]
NSIM = 2000

pytestmark = pytest.mark.skipif(r_missing() is not None, reason=str(r_missing()))


def _models() -> dict[str, tuple[Model, str]]:
    """name -> (model, the lme4 dataset its rows come from)."""
    return {
        "cbpp_binomial": (make_model("cbpp_binomial", "incidence ~ period + (1 | herd)",
                                     ["period", "herd"], family="binomial", trials="size"),
                          "lme4::cbpp"),
        "cbpp_poisson_offset": (make_model(
            "cbpp_poisson_offset", "incidence ~ period + offset(log(size)) + (1 | herd)",
            ["period", "herd"], family="poisson"), "lme4::cbpp"),
        "grouseticks_poisson": (make_model("grouseticks_poisson", "TICKS ~ YEAR + (1 | BROOD)",
                                           ["YEAR", "BROOD"], family="poisson"),
                                "lme4::grouseticks"),
        "grouseticks_bernoulli": (make_model("grouseticks_bernoulli",
                                             "infested ~ YEAR + (1 | BROOD)",
                                             ["YEAR", "BROOD"], family="binomial"),
                                  "lme4::grouseticks"),
    }


@pytest.fixture(scope="module")
def truths() -> dict[str, tuple[Model, PreparedData, Truth]]:
    """Each model's prepared rows and lme4's fit of them (one worker for all four)."""
    from parity.inputs.r_datasets import load_r_dataset
    from parity.pipeline.workers import fit_many
    from parity.settings import Settings

    frames: dict[str, pd.DataFrame] = {}
    jobs = []
    for m, source in _models().values():
        if source not in frames:
            frames[source] = load_r_dataset(source).frame
        frame = frames[source]
        if "TICKS" in frame:
            frame = frame.assign(infested=(frame["TICKS"] > 0).astype(float))
        jobs.append((m, prepare(frame, m.spec, m.categorical, m.family, m.trials)))
    fits = fit_many("lme4", jobs, Settings())
    return {m.name: (m, d, truth_from(f)) for (m, d), f in zip(jobs, fits, strict=True)}


def _lme4_draws(tmp: Path, m: Model, data: PreparedData) -> np.ndarray:
    """lme4's simulate() of its glmer fit of the prepared rows, (nsim, rows)."""
    csv, out = tmp / f"{m.name}.csv", tmp / f"{m.name}-sims.csv"
    data.frame.to_csv(csv, index=False)
    args = [f"family={m.family}", f"categorical={','.join(data.levels)}"]
    if m.trials:
        args.append(f"trials={m.trials}")
    subprocess.run(["Rscript", str(ROOT / "r_scripts" / "simulate.R"), str(csv),
                    m.spec.lme4_formula(), str(NSIM), "11", str(out), *args],
                   check=True, capture_output=True, text=True)
    return np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2).T


def _se_of_mean(x: np.ndarray) -> np.ndarray:
    return np.asarray(x.std(0) / np.sqrt(len(x)))


def _cov_and_se(x: np.ndarray, i: int, j: int) -> tuple[float, float]:
    prod = (x[:, i] - x[:, i].mean()) * (x[:, j] - x[:, j].mean())
    return float(prod.mean()), float(prod.std() / np.sqrt(len(x)))


def same_moments(r: np.ndarray, py: np.ndarray, group: np.ndarray) -> dict[str, Any]:
    """The largest |difference| / standard error of the row means, the row variances
    and the covariances of pairs of rows of one group (up to 40 pairs), and the mean
    within-group covariance of each side."""
    z_mean = np.abs(r.mean(0) - py.mean(0)) / (np.hypot(_se_of_mean(r), _se_of_mean(py))
                                                + 1e-12)
    sq_r, sq_py = (r - r.mean(0)) ** 2, (py - py.mean(0)) ** 2
    z_var = np.abs(r.var(0) - py.var(0)) / (np.hypot(_se_of_mean(sq_r), _se_of_mean(sq_py))
                                             + 1e-12)
    pairs = []
    for label in dict.fromkeys(group):
        rows = np.flatnonzero(group == label)
        if len(rows) > 1:
            pairs.append((int(rows[0]), int(rows[1])))
    z_cov, covs = [], []
    for i, j in pairs[:40]:
        (a, sa), (b, sb) = _cov_and_se(r, i, j), _cov_and_se(py, i, j)
        z_cov.append(abs(a - b) / (np.hypot(sa, sb) + 1e-12))
        covs.append((a, b))
    return {"mean": float(z_mean.max()), "var": float(z_var.max()),
            "cov": float(max(z_cov)), "pairs": len(z_cov),
            "cov_lme4": float(np.mean([a for a, _ in covs])),
            "cov_parity": float(np.mean([b for _, b in covs]))}


@pytest.mark.parametrize("name", list(_models()))
def test_glmm_draws_have_the_moments_of_lme4_simulate(
        name: str, truths: dict[str, tuple[Model, PreparedData, Truth]],
        tmp_path: Path) -> None:
    m, data, truth = truths[name]
    assert not any(v.group == "Residual" for v in truth.components)  # no residual SD
    r = _lme4_draws(tmp_path, m, data)
    rng = np.random.default_rng(3)
    py = np.array([simulate(m, data, truth, rng) for _ in range(NSIM)])
    assert r.shape == py.shape == (NSIM, data.n_obs)
    assert np.all(py == np.round(py)) and py.min() >= 0
    if m.trials:
        assert np.all(py <= data.frame[m.trials].to_numpy())
        assert np.all(r <= data.frame[m.trials].to_numpy())
    group = data.frame[m.spec.random[0].group[0]].astype(str).to_numpy()
    z = same_moments(r, py, group)
    assert z["mean"] < 5 and z["var"] < 5 and z["cov"] < 5, z
    # The group effects are drawn on both sides: rows of one group covary.
    assert z["pairs"] >= 10 and z["cov_lme4"] > 0 and z["cov_parity"] > 0, z


def test_a_binomial_study_of_cbpp_gives_coverage_with_its_monte_carlo_error(
        tmp_path: Path) -> None:
    """`parity study` of cbpp's binomial GLMM end to end (lme4 and glmmTMB): every
    replicate fitted, coverage and agree rates with their Monte-Carlo SEs, and lme4's
    SD carrying glmer's own profile interval."""
    import json
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "parity.cli", "study", "--r-dataset", "lme4::cbpp",
         "--formula", "incidence ~ period + (1 | herd)", "--family", "binomial",
         "--trials", "size", "--categorical", "period,herd", "--groups", "15",
         "--replicates", "4", "--engines", "lme4,glmmtmb", "--workers", "1", "--quiet",
         "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "s" / "study.json").read_text())
    assert doc["model"]["family"] == "binomial"
    assert {(f["engine"], f["ok"] + f["unconverged"]) for f in doc["fits"]} == \
        {("lme4", 4), ("glmmtmb", 4)}
    fixed = [s for s in doc["summary"] if s["quantity"] == "estimate"]
    assert {s["term"] for s in fixed} >= {"(Intercept)", "period2", "period3", "period4"}
    for s in fixed:
        assert 0 <= s["coverage"] <= 1 and s["coverage_mcse"] is not None
        assert s["coverage_lower"] <= s["coverage"] <= s["coverage_upper"]
    glmmtmb = [s for s in doc["summary"] if s["engine"] == "glmmtmb"]
    assert glmmtmb and all(s["agree_rate_mcse"] is not None for s in glmmtmb)
    sd = [r for r in doc["rows"] if r["engine"] == "lme4" and r["quantity"] == "sd"]
    assert sd and all(r["group"] == "herd" for r in sd)  # no residual SD in a GLMM
    assert any(r["covered"] is not None for r in sd)  # glmer's profile interval
