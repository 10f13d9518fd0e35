"""brms as a second, independent Bayesian implementation: with one priors document that
sets every prior, brms's `(x | g)` samples the pymc engine's model and its `(x || g)`
Bambi's, so their rows are held to Monte-Carlo error alone, on sleepstudy and on the
politeness subject_slope model; and a prior that parity mistranslates for brms (each group
SD's scale passed as its reciprocal) makes that check fail, saying what it means.

The compiled Stan programs are cached by their code (two here: the correlated and the
independent block, shared by both data sets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import engine_missing, need
from parity.api import Run
from parity.compare.rules import compare_pair
from parity.compare.tolerances import load_policy
from parity.engines import engine_kind
from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness
from parity.schema import Fit, fit_from_dict

# Every class the models have, so that each engine samples under exactly these priors.
PRIORS: dict[str, Any] = {
    "sleepstudy": {"intercept": {"dist": "Normal", "mu": 250, "sigma": 50},
                   "fixed": {"dist": "Normal", "mu": 0, "sigma": 20},
                   "sd": {"dist": "HalfNormal", "sigma": 30},
                   "residual": {"dist": "HalfNormal", "sigma": 40}, "lkj": {"eta": 2}},
    "politeness": {"intercept": {"dist": "Normal", "mu": 200, "sigma": 100},
                   "fixed": {"dist": "Normal", "mu": 0, "sigma": 100},
                   "sd": {"dist": "HalfNormal", "sigma": 50},
                   "residual": {"dist": "HalfNormal", "sigma": 50}, "lkj": {"eta": 2}},
}
FORMULAS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days || Subject)"),
    "politeness": ("frequency ~ gender + attitude + (attitude | subject)",
                   "frequency ~ gender + attitude + (attitude || subject)"),
}
SAMPLER = {"draws": 1000, "tune": 1000, "chains": 2, "seed": 7}
# What two samplers of one model hold to Monte-Carlo error (interval ends have no MCSE).
MATCHED = ("estimate", "std_error", "sd", "corr", "group_effect")


def _need(*engines: str) -> None:
    for engine in engines:
        reason = engine_missing(engine)
        if reason:
            pytest.skip(f"{engine}: {reason}")


def _frame(name: str) -> tuple[pd.DataFrame, list[str]]:
    if name == "politeness":
        return politeness(), list(POLITENESS_CATEGORICAL)
    need("R")
    from parity.inputs.r_datasets import load_r_dataset

    return load_r_dataset("lme4::sleepstudy").frame, ["Subject"]


@pytest.fixture(scope="module", params=list(FORMULAS))
def matched_run(request: pytest.FixtureRequest) -> tuple[str, dict[str, Run]]:
    """brms with the pymc engine on a correlated model, and with Bambi on its `||` twin."""
    _need("brms", "pymc", "bambi")
    import parity

    name = request.param
    frame, categorical = _frame(name)
    runs = {model: parity.run({model: formula}, frame, categorical, engines=["brms", other],
                              cache=False, priors=PRIORS[name], **SAMPLER)
            for model, formula, other in zip(("correlated", "independent"), FORMULAS[name],
                                             ("pymc", "bambi"), strict=True)}
    return name, runs


def _fit(run: Run, model: str, engine: str) -> Fit:
    fit = next(f for f in run.results.fits if f.model == model and f.engine == engine)
    assert fit.status == "ok", (engine, model, fit.status, fit.reason)
    return fit


@pytest.mark.r
@pytest.mark.bambi
@pytest.mark.brms
@pytest.mark.parametrize(("model", "pair"), [
    ("correlated", ("pymc", "brms")), ("independent", ("bambi", "brms"))])
def test_brms_agrees_with_the_same_model_within_monte_carlo_error(
        matched_run: tuple[str, dict[str, Run]], model: str, pair: tuple[str, str]) -> None:
    name, runs = matched_run
    run = runs[model]
    fits = {e: _fit(run, model, e) for e in pair}
    # Each engine recorded the same prior for every parameter, read from its model.
    sets = [fits[e].provenance.settings["prior_set"] for e in pair]
    assert sets[0] == sets[1], sets
    assert sets[0]["residual"] == f"HalfNormal(sigma: {PRIORS[name]['residual']['sigma']})"
    brms = fits["brms"]
    assert brms.structure == fits[pair[0]].structure
    assert brms.provenance.settings["ran"]["chains"] == SAMPLER["chains"]
    assert brms.diagnostics.divergences == 0
    rows = [c for c in run.results.comparisons if c.model == model
            and {c.engine, c.reference} == set(pair) and c.quantity in MATCHED]
    assert len(rows) >= 10, rows
    bad = [c for c in rows if c.verdict != "agree"]
    assert not bad, bad
    # Held to Monte-Carlo error alone: 4 MCSE of the gap, not the Bayesian pair's rule.
    days = next(c for c in rows if c.quantity == "estimate" and c.term != "(Intercept)")
    a, b = (fits[e].fixed(days.term) for e in pair)
    assert a is not None and b is not None and a.mcse and b.mcse
    assert days.tolerance == pytest.approx(4 * (a.mcse**2 + b.mcse**2) ** 0.5, rel=1e-9)


MISTRANSLATE = """
import copy, json, sys
from parity.engines.brms import BrmsEngine
from parity.rows.prepare import prepare
from parity.schema import fit_to_dict
from parity.settings import Settings
from parity.spec.models import make_model
from parity.spec.priors import parse_priors
import pandas as pd


class Mistranslated(BrmsEngine):
    # Each group SD's HalfNormal scale handed to Stan as its reciprocal (a precision).
    def r_priors(self, resolved):
        wrong = copy.deepcopy(resolved)
        for entry in wrong["sd"]:
            entry["prior"]["args"]["sigma"] = 1.0 / entry["prior"]["args"]["sigma"]
        return json.dumps(wrong)


if __name__ == "__main__":
    frame_path, formula, categorical, priors, settings, out = sys.argv[1:]
    model = make_model("independent", formula, json.loads(categorical))
    frame = pd.read_pickle(frame_path)
    data = prepare(frame, model.spec, model.categorical)
    fit = Mistranslated().fit(model, data, Settings(
        priors=parse_priors(json.loads(priors)).to_json(), **json.loads(settings)))
    with open(out, "w") as handle:
        json.dump(fit_to_dict(fit), handle)
"""


@pytest.mark.r
@pytest.mark.bambi
@pytest.mark.brms
def test_a_mistranslated_prior_fails_the_cross_implementation_check(
        matched_run: tuple[str, dict[str, Run]], tmp_path: Path) -> None:
    name, runs = matched_run
    if name != "sleepstudy":
        pytest.skip("shown once, on sleepstudy")
    bambi = _fit(runs["independent"], "independent", "bambi")
    frame, categorical = _frame(name)
    frame.to_pickle(tmp_path / "frame.pkl")
    script = tmp_path / "mistranslate.py"
    script.write_text(MISTRANSLATE)
    out = tmp_path / "fit.json"
    subprocess.run([sys.executable, str(script), str(tmp_path / "frame.pkl"),
                    FORMULAS[name][1], json.dumps(categorical), json.dumps(PRIORS[name]),
                    json.dumps(SAMPLER), str(out)], check=True, timeout=600)
    wrong = fit_from_dict(json.loads(out.read_text()))
    assert wrong.status == "ok", wrong.reason
    # The record says what parity meant to ask, so the two look like the same model ...
    assert wrong.provenance.settings["prior_set"] == bambi.provenance.settings["prior_set"]
    rows = compare_pair(wrong, bambi, load_policy(), engine_kind)
    sds = [c for c in rows if c.quantity == "sd" and c.group == "Subject"]
    assert sds and all(c.verdict == "disagree" for c in sds), sds
    # ... and the gap says that one of them, or parity's translation, is wrong.
    for c in sds:
        assert "brms and bambi sample the same model under the same priors" in str(c.reason)
        assert "parity's translation of the model or its priors" in str(c.reason)
        assert "MCSE" in str(c.reason)
