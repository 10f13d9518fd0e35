"""Data sets parity has never seen: lme4's own examples, loaded with --r-dataset, and
statsmodels reproducing lme4 on them wherever the two fit the same structure."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from conftest import need
from parity.compare.tolerances import load_policy
from parity.inputs.r_datasets import RDataset, load_r_dataset
from parity.pipeline.job import compare_outcome
from parity.pipeline.workers import Outcome, run_models
from parity.schema import Comparison
from parity.settings import Settings
from parity.spec.models import make_model
from support import by_design  # type: ignore[import-not-found]

pytestmark = pytest.mark.r

# Single grouping factor (correlated, as lme4 fits it) or random intercepts only: the
# structures statsmodels' MixedLM fits exactly as lme4 does.
MODELS: dict[str, list[tuple[str, str]]] = {
    "lme4::sleepstudy": [
        ("sleep_intercept", "Reaction ~ Days + (1 | Subject)"),
        ("sleep_slope", "Reaction ~ Days + (Days | Subject)"),
    ],
    "lme4::Penicillin": [
        ("plate", "diameter ~ 1 + (1 | plate)"),
        ("sample_fixed", "diameter ~ sample + (1 | plate)"),
        ("crossed_intercepts", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ],
    "lme4::cbpp": [
        # incidence is a count; a Gaussian model of it is only a test of the engines.
        ("herd_size", "incidence ~ period + size + (1 | herd)"),
        # lme4 finds the herd SD on its boundary (0) and statsmodels stops at a lower
        # REML optimum: a genuine disagreement, which the rows must explain.
        ("herd", "incidence ~ period + (1 | herd)"),
    ],
}
# Models where every statsmodels row (estimates, SEs, SDs, correlations) agrees with
# lme4's. In cbpp's herd_size the estimates and SDs agree but the SEs do not: the REML
# surface is flat there, and statsmodels' SEs come from the full likelihood's Hessian.
ALL_ROWS_AGREE = {"sleep_intercept", "sleep_slope", "plate", "sample_fixed",
                  "crossed_intercepts"}
GENUINE_DISAGREEMENT = {"herd"}


@cache
def dataset(name: str) -> RDataset:
    return load_r_dataset(name)


@cache
def outcome(name: str) -> tuple[Outcome, tuple[Comparison, ...]]:
    data = dataset(name)
    models = [make_model(n, f, tuple(data.factors)) for n, f in MODELS[name]]
    result = run_models(models, data.frame, ["lme4", "statsmodels"], Settings())
    rows = compare_outcome(result, load_policy(project=Path("/nonexistent")))
    return result, tuple(rows)


@pytest.mark.parametrize(
    ("name", "shape", "factors"),
    [
        ("lme4::sleepstudy", (180, 3), {"Subject": 18}),
        ("lme4::Penicillin", (144, 3), {"plate": 24, "sample": 6}),
        ("lme4::cbpp", (56, 4), {"herd": 15, "period": 4}),
    ],
)
def test_r_datasets_load_with_their_factors(name: str, shape: tuple[int, int],
                                            factors: dict[str, int]) -> None:
    need("R")
    data = dataset(name)
    assert data.frame.shape == shape
    assert {k: len(v) for k, v in data.factors.items()} == factors
    for column, levels in data.factors.items():
        assert list(data.frame[column].cat.categories) == list(levels)
    if name == "lme4::cbpp":  # R's order, not text order ("10" after "9")
        assert data.factors["herd"][:3] == ("1", "2", "3")
        assert data.factors["herd"][9] == "10"


CASES = [(name, model) for name, models in MODELS.items() for model, _ in models
         if model not in GENUINE_DISAGREEMENT]


def _rows(name: str, model: str) -> list[Comparison]:
    result, rows = outcome(name)
    fits = {f.engine: f for f in result.fits if f.model == model}
    assert fits["lme4"].status == "ok", fits["lme4"].reason
    assert not fits["lme4"].is_recorded, "a live lme4 fit, not a recorded reference"
    assert fits["statsmodels"].status == "ok", fits["statsmodels"].reason
    assert fits["statsmodels"].structure == fits["lme4"].structure
    mine = [r for r in rows if r.model == model and r.engine == "statsmodels"
            and r.reference == "lme4"]
    estimates = {r.term for r in mine if r.quantity == "estimate"}
    assert estimates == {f.term for f in fits["lme4"].fixed_effects}
    assert all(r.reason for r in mine if r.verdict != "agree")
    return mine


@pytest.mark.parametrize(("name", "model"), CASES, ids=[m for _, m in CASES])
def test_statsmodels_reproduces_lme4_estimates(name: str, model: str) -> None:
    need("R")
    rows = _rows(name, model)
    # where the SEs differ by design, so do the interval's ends (estimate ± q SE)
    checked = rows if model in ALL_ROWS_AGREE else [
        r for r in rows if r.quantity not in ("std_error", "lower", "upper")]
    bad = [(r.quantity, r.term, r.value, r.reference_value, r.tolerance, r.reason)
           for r in checked if r.verdict != "agree"
           and not by_design(r.quantity, r.verdict, r.reason)]
    assert not bad


def test_cbpp_herd_disagreement_is_explained() -> None:
    """Where statsmodels' optimizer stops short, parity says so rather than agreeing."""
    need("R")
    rows = _rows("lme4::cbpp", "herd")
    fixed = [r for r in rows if r.quantity == "estimate" and r.verdict == "disagree"]
    assert fixed, "expected statsmodels to stop at another optimum on this model"
    assert all("optimum" in (r.reason or "") for r in fixed)


def test_cbpp_names_are_lme4s() -> None:
    need("R")
    result, _ = outcome("lme4::cbpp")
    lme4 = next(f for f in result.fits if f.model == "herd" and f.engine == "lme4")
    assert [f.term for f in lme4.fixed_effects] == ["(Intercept)", "period2", "period3",
                                                    "period4"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_r_dataset_end_to_end(tmp_path: Path) -> None:
    need("R")
    proc = run_cli("run", "--r-dataset", "lme4::sleepstudy",
                   "--formula", "Reaction ~ Days + (Days | Subject)",
                   "--engines", "lme4,statsmodels", "--no-cache", "--quiet",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["complete"] is True
    assert doc["models"][0]["categorical"] == ["Subject"]
    assert {c["verdict"] for c in doc["comparisons"]
            if not by_design(c["quantity"], c["verdict"], c["reason"])} == {"agree"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lme4::nosuchdata", "has no data set 'nosuchdata'"),
        ("nosuchpackage::x", "'nosuchpackage' is not installed"),
        ("datasets::AirPassengers", "is not a data frame"),
    ],
)
def test_cli_r_dataset_errors_are_one_line(tmp_path: Path, spec: str, message: str) -> None:
    need("R")
    proc = run_cli("run", "--r-dataset", spec, "--formula", "y ~ x", "--out", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
