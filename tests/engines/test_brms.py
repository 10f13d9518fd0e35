"""brms as a second, independent Bayesian implementation, on lme4's sleepstudy: with one
priors document that sets every prior, brms's `(x | g)` samples the pymc engine's model
and its `(x || g)` Bambi's, so their rows are held to Monte-Carlo error alone; a prior
that parity mistranslates for brms (each group SD's scale passed as its reciprocal) makes
that check fail, saying what it means; and a tight prior on sd(Subject) pulls brms's
posterior down, is flagged by its prior sensitivity and is recorded.

Two Stan programs are compiled (the correlated and the independent block) and cached by
their code: every prior's numbers are data, so the tight prior reuses the second. The
same check on the politeness subject_slope model, which shares both programs, is
measured rather than repeated here (docs/engines.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import engine_missing
from parity.api import Run
from parity.compare.rules import compare_pair
from parity.compare.tolerances import load_policy
from parity.engines import engine_kind
from parity.schema import Fit, fit_from_dict

# Every class the models have, so that each engine samples under exactly these priors.
PRIORS: dict[str, Any] = {"intercept": {"dist": "Normal", "mu": 250, "sigma": 50},
                          "fixed": {"dist": "Normal", "mu": 0, "sigma": 20},
                          "sd": {"dist": "HalfNormal", "sigma": 30},
                          "residual": {"dist": "HalfNormal", "sigma": 40}, "lkj": {"eta": 2}}
FORMULAS = {"correlated": "Reaction ~ Days + (Days | Subject)",
            "independent": "Reaction ~ Days + (Days || Subject)"}
SAMPLER = {"draws": 1000, "tune": 1000, "chains": 2, "seed": 7}
# What two samplers of one model hold to Monte-Carlo error (interval ends have no MCSE).
MATCHED = ("estimate", "std_error", "sd", "corr", "group_effect")


def _need(*engines: str) -> None:
    for engine in engines:
        reason = engine_missing(engine)
        if reason:
            pytest.skip(f"{engine}: {reason}")


@pytest.fixture(scope="module")
def matched_run(sleepstudy: pd.DataFrame) -> dict[str, Run]:
    """brms with the pymc engine on the correlated model, and with Bambi on its `||` twin."""
    _need("brms", "pymc", "bambi")
    import parity

    return {model: parity.run({model: FORMULAS[model]}, sleepstudy, ["Subject"],
                              engines=["brms", other], cache=False, priors=PRIORS, **SAMPLER)
            for model, other in (("correlated", "pymc"), ("independent", "bambi"))}


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
        matched_run: dict[str, Run], model: str, pair: tuple[str, str]) -> None:
    run = matched_run[model]
    fits = {e: _fit(run, model, e) for e in pair}
    # Each engine recorded the same prior for every parameter, read from its model.
    sets = [fits[e].provenance.settings["prior_set"] for e in pair]
    assert sets[0] == sets[1], sets
    assert sets[0]["residual"] == "HalfNormal(sigma: 40)"
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
        matched_run: dict[str, Run], sleepstudy: pd.DataFrame, tmp_path: Path) -> None:
    bambi = _fit(matched_run["independent"], "independent", "bambi")
    sleepstudy.to_pickle(tmp_path / "frame.pkl")
    script = tmp_path / "mistranslate.py"
    script.write_text(MISTRANSLATE)
    out = tmp_path / "fit.json"
    subprocess.run([sys.executable, str(script), str(tmp_path / "frame.pkl"),
                    FORMULAS["independent"], json.dumps(["Subject"]), json.dumps(PRIORS),
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


@pytest.mark.r
@pytest.mark.brms
def test_a_tight_sd_prior_pulls_brms_down_and_is_flagged(
        matched_run: dict[str, Run], sleepstudy: pd.DataFrame) -> None:
    """HalfNormal(2) on sd(Subject) (the rest as above: the cached `||` program): brms's
    posterior SD falls to less than half of what it was under HalfNormal(30) (the data's
    REML estimate is about 25), its prior sensitivity says
    prior-data conflict, the row against lme4 blames the prior, and the record holds the
    Stan statement and the prior in the shared vocabulary."""
    _need("brms", "lme4")
    import parity

    tight = {**PRIORS, "sd": {**PRIORS["sd"], "Subject": {"dist": "HalfNormal", "sigma": 2}}}
    run = parity.run({"independent": FORMULAS["independent"]}, sleepstudy, ["Subject"],
                     engines=["lme4", "brms"], cache=False, priors=tight, **SAMPLER)
    brms, lme4 = _fit(run, "independent", "brms"), _fit(run, "independent", "lme4")
    assert brms.provenance.settings["compiled"]["cached"] is True
    wide = _fit(matched_run["independent"], "independent", "brms")
    before, after = (f.component("Subject", "(Intercept)") for f in (wide, brms))
    data = lme4.component("Subject", "(Intercept)")
    assert before is not None and after is not None and data is not None
    assert data.estimate > 20 and before.estimate > 20, (data.estimate, before.estimate)
    assert after.estimate < before.estimate / 2, (before.estimate, after.estimate)
    assert after.prior_sensitivity is not None and after.prior_sensitivity > 0.05, after
    recorded = brms.provenance.settings["prior_set"]
    assert recorded["sd Subject (Intercept)"] == "HalfNormal(sigma: 2)", recorded
    assert recorded["residual"] == "HalfNormal(sigma: 40)", recorded
    assert brms.provenance.settings["priors"]["sd Subject Intercept"].startswith(
        "normal(0, 2)"), brms.provenance.settings["priors"]
    row = next(c for c in run.results.comparisons if c.engine == "brms"
               and c.reference == "lme4" and c.term == "sd(Subject: (Intercept))")
    assert row.verdict == "disagree"
    assert "brms' sd(Subject: (Intercept)) is prior-sensitive (" in str(row.reason)
    assert "the gap to lme4's comes from the prior" in str(row.reason)
