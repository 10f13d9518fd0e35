"""The nlme engine (R's nlme::lme) against lme4 on lme4's own sleepstudy, through the
command line and the workers, and what its registry row refuses.

nlme maximises the same REML (or ML) likelihood as lme4 over another parameterisation
with another optimiser, so on a regular model the two must agree to the frequentist
tolerances. Measured on `Reaction ~ Days + (Days | Subject)`, REML (ML): fixed effects
equal to 1e-14 (the design is balanced), SEs 1.2e-5 (1.8e-5) apart relative, SDs 1.7e-5
(2.6e-5), the correlation 1.3e-5 (1.1e-5) absolute, conditional modes 3.4e-5 (4.6e-5)
of their conditional SD, the log-likelihood 6e-10 (1.2e-8). The bounds below are four
to ten times those gaps, so a change in either engine that moves them shows here before
it moves a verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from conftest import engine_missing
from parity.compare.tolerances import load_policy
from parity.engines import engine_info
from parity.inputs.r_datasets import RDataset, load_r_dataset
from parity.pipeline.job import compare_outcome
from parity.pipeline.workers import Outcome, run_models
from parity.schema import Comparison, Fit
from parity.settings import Settings
from parity.spec.models import make_model
from support import by_design  # type: ignore[import-not-found]

pytestmark = pytest.mark.r

FORMULA = "Reaction ~ Days + (Days | Subject)"
# Relative (SEs, SDs) or absolute (correlations, log-likelihood) gaps, and conditional
# modes in units of their conditional SD: about ten times what was measured.
BOUNDS = {"std_error": 2e-4, "sd": 2e-4, "corr": 2e-4, "group_effect": 2e-4,
          "loglik": 1e-6}


def need_nlme() -> None:
    for engine in ("lme4", "nlme"):
        reason = engine_missing(engine)
        if reason:
            pytest.skip(f"{engine}: {reason}")


@cache
def sleepstudy() -> RDataset:
    return load_r_dataset("lme4::sleepstudy")


@cache
def outcome(reml: bool) -> tuple[Outcome, tuple[Comparison, ...]]:
    data = sleepstudy()
    models = [make_model("sleep", FORMULA, tuple(data.factors))]
    result = run_models(models, data.frame, ["lme4", "nlme"], Settings(reml=reml))
    return result, tuple(compare_outcome(result, load_policy(project=Path("/nonexistent"))))


def _fits(result: Outcome) -> dict[str, Fit]:
    return {f.engine: f for f in result.fits}


def gaps(nlme: Fit, lme4: Fit) -> dict[str, float]:
    """The largest gap of each quantity between the two fits (see BOUNDS for units)."""
    out = {"estimate": max(abs(a.estimate - b.estimate) / abs(b.estimate)
                           for a, b in zip(nlme.fixed_effects, lme4.fixed_effects,
                                           strict=True)),
           "std_error": max(abs(a.std_error - b.std_error) / b.std_error
                            for a, b in zip(nlme.fixed_effects, lme4.fixed_effects,
                                            strict=True))}
    sd, corr = 0.0, 0.0
    for v in nlme.variance_components:
        ref = lme4.component(v.group, v.term, v.term2)
        assert ref is not None, v
        if v.kind == "sd":
            sd = max(sd, abs(v.estimate - ref.estimate) / ref.estimate)
        else:
            corr = max(corr, abs(v.estimate - ref.estimate))
    ref_effects = {(g.group, g.level, g.term): g for g in lme4.group_effects}
    effects = [abs(g.estimate - ref_effects[(g.group, g.level, g.term)].estimate)
               / (ref_effects[(g.group, g.level, g.term)].std_error or 1.0)
               for g in nlme.group_effects]
    out.update(sd=sd, corr=corr, group_effect=max(effects),
               loglik=abs(nlme.fit_statistics["loglik"] - lme4.fit_statistics["loglik"]))
    return out



@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_nlme_agrees_with_lme4_on_sleepstudy(reml: bool) -> None:
    need_nlme()
    result, rows = outcome(reml)
    fits = _fits(result)
    nlme, lme4 = fits["nlme"], fits["lme4"]
    assert nlme.status == "ok" and lme4.status == "ok", (nlme.reason, lme4.reason)
    assert not nlme.is_recorded and not lme4.is_recorded
    assert nlme.criterion == lme4.criterion == ("REML" if reml else "ML")
    assert nlme.structure == lme4.structure == {"Subject": "correlated"}
    assert nlme.provenance.engine_version == nlme.provenance.versions["nlme"]
    mine = [r for r in rows if r.engine == "nlme" and r.reference == "lme4"]
    assert {r.quantity for r in mine} >= {"estimate", "std_error", "sd", "corr",
                                          "group_effect", "loglik"}
    assert [r for r in mine if r.verdict != "agree" and not by_design(r.quantity, r.verdict,
                                                                       r.reason)] == []
    assert {r.quantity for r in mine} >= {"estimate", "lower", "df", "conclusion"}
    measured = gaps(nlme, lme4)
    assert measured["estimate"] < 1e-8, measured
    for quantity, bound in BOUNDS.items():
        assert measured[quantity] < bound, (quantity, measured)
    # lme4, the judge, finds nlme's solution at its own optimum.
    [check] = [c for c in result.optimum_checks if c.engine == "nlme"]
    assert check.better == "tie" and abs(check.difference) < 1e-6, check


def test_the_command_line_run_agrees(tmp_path: Path) -> None:
    """`parity run --r-dataset lme4::sleepstudy --engines lme4,nlme`, as an analyst runs it."""
    need_nlme()
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "parity.cli", "run", "--r-dataset", "lme4::sleepstudy",
         "--formula", FORMULA, "--engines", "lme4,nlme", "--out", str(out), "--no-cache",
         "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    rows = [r for r in doc["comparisons"] if r["engine"] == "nlme"]
    assert rows and all(r["verdict"] == "agree" or by_design(r["quantity"], r["verdict"],
                                                               r["reason"]) for r in rows), \
        [r for r in rows if r["verdict"] != "agree"]


@pytest.mark.parametrize(("formula", "family", "capability"), [
    ("Reaction ~ Days + (1 | Subject) + (1 | Days)", "gaussian", "crossed"),
    ("Reaction ~ Days + (1 | Subject)", "poisson", None),
])
def test_what_nlme_does_not_fit_is_refused_with_the_registry_reason(
        formula: str, family: str, capability: str | None) -> None:
    """Crossed factors and other families never reach R: the fit is `unsupported`, with
    the reason the registry row gives, and lme4 still runs."""
    need_nlme()
    data = sleepstudy()
    frame = data.frame.assign(Reaction=data.frame["Reaction"].round())
    model = make_model("m", formula, tuple(data.factors), family=family)
    result = run_models([model], frame, ["lme4", "nlme"], Settings())
    fits = _fits(result)
    assert fits["lme4"].status == "ok"
    nlme = fits["nlme"]
    assert nlme.status == "unsupported"
    info = engine_info("nlme")
    expected = info.cannot_do(capability) if capability else info.family_problem(family)
    assert expected and nlme.reason == expected


def test_nested_factors_are_fitted_under_lme4s_names() -> None:
    """`(1 | a/b)`, which parity writes as lme4's `(1 | a) + (1 | a:b)`, is lme's
    `random = list(a = ~ 1, b = ~ 1)`: the components, group effects and their levels
    come back under lme4's names, and agree with lme4's."""
    need_nlme()
    data = sleepstudy()
    frame = data.frame.assign(Half=(data.frame["Days"] >= 5).map({True: "late",
                                                                   False: "early"}))
    model = make_model("nested", "Reaction ~ Days + (1 | Subject/Half)",
                       (*data.factors, "Half"))
    result = run_models([model], frame, ["lme4", "nlme"], Settings())
    fits = _fits(result)
    nlme, lme4 = fits["nlme"], fits["lme4"]
    assert nlme.status == "ok", nlme.reason
    assert nlme.structure == lme4.structure
    assert {(g.group, g.level, g.term) for g in nlme.group_effects} == \
        {(g.group, g.level, g.term) for g in lme4.group_effects}
    measured = gaps(nlme, lme4)
    for quantity in ("sd", "std_error", "loglik"):
        assert measured[quantity] < 1e-3, (quantity, measured)
