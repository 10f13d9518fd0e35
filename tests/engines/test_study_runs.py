"""`parity study` end to end, with real engines on a real Dask cluster, and its
simulation against lme4's own `simulate()`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import bambi_missing, r_missing
from parity.compare.tolerances import load_policy
from parity.inputs.seed import politeness, politeness_path, seed_models
from parity.rows.prepare import prepare
from parity.study.simulate import simulate
from parity.study.truth import truth_from

ROOT = Path(__file__).resolve().parents[2]
dask_missing = None if importlib.util.find_spec("distributed") else \
    "dask.distributed is not installed (pip install 'parity[study]')"


def _study(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                           "subject_intercept", "--out", str(out), "--quiet", *extra],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.skipif(r_missing() is not None, reason=str(r_missing()))
def test_numpy_simulation_has_the_moments_of_lme4_simulate(tmp_path: Path) -> None:
    """The same model drawn 3000 times by lme4's simulate() and by parity's simulation:
    row means and the covariance of two rows of one subject agree within sampling error."""
    m = {x.name: x for x in seed_models()}["subject_slope"]
    data = prepare(politeness(), m.spec, m.categorical)
    out = tmp_path / "sims.csv"
    subprocess.run(["Rscript", str(ROOT / "r_scripts" / "simulate.R"), politeness_path(),
                    m.formula, "3000", "11", str(out)], check=True, capture_output=True)
    r = np.loadtxt(out, delimiter=",", skiprows=1).T  # (nsim, rows)
    from parity.pipeline.workers import fit_many

    [fit] = fit_many("lme4", [(m, data)], __import__("parity.settings").settings.Settings())
    truth = truth_from(fit)
    rng = np.random.default_rng(3)
    py = np.array([simulate(m, data, truth, rng) for _ in range(3000)])
    assert r.shape == py.shape
    sd = py.std(0)
    assert np.all(np.abs(r.mean(0) - py.mean(0)) < 5 * sd * np.sqrt(2 / 3000))
    assert np.allclose(r.var(0), py.var(0), rtol=0.15)
    subj = data.frame["subject"].to_numpy()
    pairs = [(i, j) for i in range(0, len(subj), 7) for j in range(i + 1, len(subj), 5)
             if subj[i] == subj[j]][:10]
    for i, j in pairs:
        a, b = np.cov(r[:, i], r[:, j])[0, 1], np.cov(py[:, i], py[:, j])[0, 1]
        assert abs(a - b) < 0.15 * np.sqrt(r[:, i].var() * r[:, j].var()) + 1e-9


@pytest.mark.skipif(dask_missing is not None, reason=str(dask_missing))
@pytest.mark.skipif(r_missing() is not None, reason=str(r_missing()))
@pytest.mark.skipif(bambi_missing() is not None, reason=str(bambi_missing()))
def test_study_writes_its_outputs_and_a_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "study"
    args = ("--groups", "6,12", "--replicates", "2", "--engines", "lme4,statsmodels,bambi",
            "--draws", "100", "--tune", "100", "--chains", "2", "--workers", "2")
    first = _study(out, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    for name in ("study.json", "study.md", "study.html", "tolerances.calibrated.toml",
                 "figures/coverage.png", "figures/bias.png", "figures/differences.png"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "study.json").read_text())
    assert doc["scheduler"]["kind"] == "LocalCluster" and doc["scheduler"]["workers"] == 2
    assert doc["scheduler"]["fitted_batches"] > 0 == doc["scheduler"]["resumed_batches"]
    # The worker seconds each engine's batches held, beside its fits' own seconds.
    held = doc["scheduler"]["batch_seconds"]
    assert set(held) == {"lme4", "statsmodels", "bambi"} and min(held.values()) > 0
    for f in doc["fits"]:
        assert f["seconds_total"] <= held[f["engine"]] * 1.05 + 0.5
    fields = {"groups", "replicate", "engine", "quantity", "term", "group", "estimate",
              "uncertainty", "lower", "upper", "truth", "covered", "verdict"}
    assert fields <= set(doc["rows"][0])
    assert {r["engine"] for r in doc["rows"]} == {"lme4", "statsmodels", "bambi"}
    assert {(r["groups"], r["replicate"]) for r in doc["rows"]} == \
        {(g, k) for g in (6, 12) for k in range(2)}
    # The truth is lme4's fit of the seed data.
    from parity.pipeline.workers import fit_many
    from parity.settings import Settings

    m = {x.name: x for x in seed_models()}["subject_intercept"]
    [lme4] = fit_many("lme4", [(m, prepare(politeness(), m.spec, m.categorical))],
                      Settings())
    for fe in lme4.fixed_effects:
        assert doc["truth"]["fixed_effects"][fe.term] == pytest.approx(fe.estimate)
        truths = [r["truth"] for r in doc["rows"] if r["term"] == fe.term]
        assert truths and truths == pytest.approx([fe.estimate] * len(truths))
    for s in doc["summary"]:
        assert s["n"] == 2
        assert s["coverage"] is None or 0.0 <= s["coverage"] <= 1.0
    bambi = [r for r in doc["rows"] if r["engine"] == "bambi"]
    assert all(r["verdict"] in ("agree", "disagree", "not_comparable") for r in bambi)
    assert all(r["covered"] in (True, False) for r in bambi)
    # lme4's SDs carry profile-likelihood intervals; statsmodels' carry none.
    sds = [r for r in doc["rows"] if r["quantity"] == "sd"]
    assert all(r["covered"] in (True, False) for r in sds if r["engine"] == "lme4")
    assert all(r["covered"] is None for r in sds if r["engine"] == "statsmodels")
    # The calibrated tolerances are a tolerance file parity run accepts.
    load_policy(out / "tolerances.calibrated.toml", project=Path("/nonexistent"))

    second = _study(out, *args)
    assert second.returncode == 0, second.stderr[-2000:]
    again = json.loads((out / "study.json").read_text())
    assert again["scheduler"]["fitted_batches"] == 0
    assert again["scheduler"]["resumed_batches"] == doc["scheduler"]["fitted_batches"]
    assert again["rows"] == doc["rows"]


@pytest.mark.parametrize("args, message", [
    (("--groups", "1"), "at least 2 groups"),
    (("--replicates", "0"), "--replicates must be at least 1"),
    (("--groups", "6", "--engines", "statsmodels"), "reference engine 'lme4'"),
    (("--groups", "6", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"),
     "existing cluster"),
    (("--groups", "6", "--reference", "bambi"), "must be frequentist"),
    (("--groups", "6", "--model", "additive"), "no grouping factor"),
    # Checked by `parity run`'s own code (Settings.check, nagq_problem, check_memory),
    # and bounded before planning, each before the truth is fitted.
    (("--groups", "6", "--nagq", "-1"), "--nagq must be from 0"),
    (("--groups", "6", "--nagq", "5"), "--nagq 5: model subject_intercept is Gaussian"),
    (("--groups", "6", "--engines", "lme4,bambi", "--draws", "1000000000"),
     "the sampler settings need about"),
    (("--groups", "100000000",), "the study would hold about"),
    (("--groups", "6", "--replicates", "1000000000"), "the study would hold about"),
    (("--groups", ","), "--groups names no design"),
    (("--groups", "6,8,6"), "--groups names 6 twice"),
])
def test_bad_study_options_are_one_line_errors(tmp_path: Path, args: tuple[str, ...],
                                               message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI's own entry (`main`), in this process: each is refused before
    anything is fitted, so no engine or R starts here."""
    from parity.cli import main

    code = main(["study", "--model", "subject_intercept", "--out", str(tmp_path / "s"),
                 "--quiet", *args])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("parity:")]
    assert len(lines) == 1 and message in lines[0], stderr[-1000:]
    assert "Traceback" not in stderr
