"""A study compares like with like (issue 25, item 2): the plan's matched-structure
batches (`lme4:independent`), each engine judged against the reference of its own
covariance structure, calibration that learns only from such rows of converged fits
(and says so), and `parity run`'s refusal of a tolerance file that loosens a default rule
more than `MAX_LOOSENING` times."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from parity.compare.tolerances import (
    MAX_LOOSENING,
    check_loosening,
    default_policy,
    load_policy,
    loosening,
    rule_loosening,
)
from parity.errors import UsageError
from parity.inputs.seed import politeness, seed_models
from parity.rows.prepare import prepare
from parity.schema import Comparison, Diagnostics, Fit, FixedEffect, Provenance, VarianceComponent
from parity.settings import Settings
from parity.study.assemble import assemble
from parity.study.calibrate import (
    NOT_COMPARABLE,
    SELF_REFIT,
    STRUCTURES_DIFFER,
    UNCONVERGED,
    Tally,
    calibrate,
    calibrated_toml,
    left_out_because,
    scaled,
)
from parity.study.design import make_design
from parity.study.options import StudyOptions
from parity.study.plan import plan
from parity.study.store import batch_key
from parity.study.tables import verdicts_against
from parity.study.truth import Truth

MODELS = {m.name: m for m in seed_models()}
NOWHERE = Path("/nonexistent")
GROUPS = ("subject", "scenario")


def _design(name: str, groups: int = 6):
    m = MODELS[name]
    data = prepare(politeness(), m.spec, m.categorical, m.family, m.trials)
    return m, make_design(m, data, groups)


def _components(correlated: bool, slope_sd: float = 10.0) -> tuple[VarianceComponent, ...]:
    out = []
    for g in GROUPS:
        out += [VarianceComponent(g, "(Intercept)", None, "sd", 25.0),
                VarianceComponent(g, "attitudepol", None, "sd", slope_sd)]
        if correlated:
            out.append(VarianceComponent(g, "(Intercept)", "attitudepol", "corr", -0.5))
    return (*out, VarianceComponent("Residual", None, None, "sd", 30.0))


TRUTH = Truth(fixed={"(Intercept)": 250.0, "genderM": -100.0, "attitudepol": -20.0},
              components=_components(True), source="test")


def _fit(engine: str, shift: float, correlated: bool, variant: str | None = None,
         status: str = "ok") -> Fit:
    """A fit of crossed_slopes: lme4's correlated, or independent coefficients."""
    m = MODELS["crossed_slopes"]
    fixed = (FixedEffect("(Intercept)", 250.0 + shift, 15.0, 220.0 + shift, 280.0 + shift),
             FixedEffect("genderM", -100.0 + shift, 20.0, -140.0 + shift, -60.0 + shift),
             FixedEffect("attitudepol", -20.0 + shift, 8.0, -36.0 + shift, -4.0 + shift))
    return Fit(model=m.name, formula=m.formula, engine=engine, status=status,  # type: ignore[arg-type]
               reason=None if status == "ok" else f"{engine} did not converge",
               n_obs=83, n_dropped=1, fixed_effects=fixed,
               variance_components=_components(correlated, 10.0 + shift),
               diagnostics=Diagnostics(converged=status == "ok", singular=False),
               provenance=Provenance("1", None, {}, 0.1),
               structure={g: "correlated" if correlated else "independent" for g in GROUPS},
               variant=variant)


def _options(engines: tuple[str, ...], replicates: int = 3) -> StudyOptions:
    return StudyOptions(groups=(6,), replicates=replicates, engines=engines,
                        settings=Settings(), out=NOWHERE)


# ---- The plan ---------------------------------------------------------------------------

def test_plan_adds_the_matched_refit_batches_where_the_model_has_correlations() -> None:
    m, d = _design("crossed_slopes")
    batches = plan(m, [d], TRUTH, _options(("lme4", "statsmodels")), 2)
    variants = [b for b in batches if b.variant is not None]
    assert variants and {b.engine for b in variants} == {"lme4"}
    assert {b.variant for b in variants} == {"independent"}
    assert {b.label for b in variants} == {"lme4:independent"}
    assert sorted(r for b in variants for r in b.replicates) == [0, 1, 2]
    names = [b.name for b in batches]
    assert len(set(names)) == len(names)
    assert all(b.name.endswith("-independent") for b in variants)
    plain = next(b for b in batches if b.engine == "lme4" and b.variant is None
                 and b.index == variants[0].index)
    # The same replicates and responses, fitted under another key.
    assert plain.replicates == variants[0].replicates
    digest = d.data.digest()
    assert batch_key(plain, m, digest, Settings()) != \
        batch_key(variants[0], m, digest, Settings())
    # lme4's SD profile is for its own fits, not for the refit it is compared with;
    # --sd-intervals none leaves it out of every batch.
    assert plain.sd_intervals and not any(b.sd_intervals for b in variants)
    none = replace(_options(("lme4", "statsmodels")), sd_intervals="none")
    assert not any(b.sd_intervals for b in plan(m, [d], TRUTH, none, 2))


def test_plan_has_no_matched_batches_without_correlations_or_a_refitter() -> None:
    m, d = _design("subject_intercept")
    truth = Truth(fixed=TRUTH.fixed, components=(
        VarianceComponent("subject", "(Intercept)", None, "sd", 25.0),
        VarianceComponent("Residual", None, None, "sd", 30.0)), source="test")
    assert all(b.variant is None
               for b in plan(m, [d], truth, _options(("lme4", "statsmodels")), 2))
    m, d = _design("crossed_slopes")
    # statsmodels as the reference: lme4 is no refitter of statsmodels' fits.
    options = replace(_options(("lme4", "statsmodels")), reference="statsmodels")
    assert all(b.variant is None for b in plan(m, [d], TRUTH, options, 2))
    assert all(b.variant is None for b in plan(m, [d], TRUTH, _options(("lme4",)), 2))


# ---- Assembly: like with like -----------------------------------------------------------

def _assembled(variant_status: str = "ok", statsmodels_status: str = "ok"):
    m, d = _design("crossed_slopes")
    options = _options(("lme4", "statsmodels"), replicates=2)
    fits: dict[tuple[int, int, str], Fit] = {}
    for r in range(2):
        # lme4's correlated fit is far from statsmodels' independent one; its matched
        # refit is within the frequentist tolerance of it.
        fits[(6, r, "lme4")] = _fit("lme4", 5.0, True)
        fits[(6, r, "statsmodels")] = _fit("statsmodels", 0.0, False,
                                           status=statsmodels_status if r == 1 else "ok")
        fits[(6, r, "lme4:independent")] = _fit(
            "lme4", 1e-7, False, "independent", variant_status if r == 0 else "ok")
    policy = load_policy(project=NOWHERE)
    return assemble(m, [d], TRUTH, fits[(6, 0, "lme4")], fits, options, policy, {})


def test_independent_engines_are_judged_against_the_matched_refit() -> None:
    result = _assembled()
    sm = [r for r in result.rows if r.engine == "statsmodels"]
    assert sm and {r.judged_against for r in sm} == {"lme4:independent"}
    assert {r.verdict for r in sm if r.quantity in ("estimate", "sd")} == {"agree"}
    assert all(r.reason for r in sm if r.verdict not in ("agree", None))
    assert {r.verdict for r in result.rows if r.engine == "lme4"} == {"reference"}
    # The matched refit is the reference's, not one of the study's engines.
    assert {r.engine for r in result.rows} == {"lme4", "statsmodels"}
    assert result.document["matched_reference"] == "lme4:independent"


def test_calibration_learns_only_from_matched_converged_rows() -> None:
    result = _assembled(statsmodels_status="unconverged")
    used = result.document["calibrated_from"]["used"]
    left = result.document["calibrated_from"]["left_out"]
    assert set(used) == {"statsmodels vs lme4:independent"}
    assert left[STRUCTURES_DIFFER] > 0 and left[UNCONVERGED] > 0
    assert {p["reference"] for p in result.document["differences"]} == {"lme4:independent"}
    for c in result.document["calibrated"]:
        assert c["engines"] == ["statsmodels vs lme4:independent"]
        assert c["loosening"] < MAX_LOOSENING  # the 5-unit gap to lme4 is never learned
    text = result.document["calibrated_toml"]
    n = sum(used.values())
    assert f"# Learned from {n} rows: {n} statsmodels vs lme4:independent." in text
    assert f"# Left out {sum(left.values())} rows: " in text
    assert "structures differ" in text and "did not converge" in text


def test_no_matched_refit_leaves_an_independent_fit_not_comparable_and_says_why() -> None:
    result = _assembled(variant_status="failed")
    rows = [r for r in result.rows if r.engine == "statsmodels" and r.replicate == 0]
    assert rows and {r.verdict for r in rows} == {"not_comparable"}
    assert {r.judged_against for r in rows} == {None}
    assert all("no matched-structure reference" in (r.reason or "") and
               "lme4:independent failed" in (r.reason or "") for r in rows)
    # Never judged against, nor learned from, lme4's correlated fit.
    assert "statsmodels vs lme4" not in result.document["calibrated_from"]["used"]
    # The failed refit is the reference's, not a failed fit of lme4 the engine.
    assert {s["failed_fits"] for s in result.document["summary"]
            if s["engine"] == "lme4"} == {0}


def test_verdicts_against_carry_the_reason_of_non_agree_rows() -> None:
    rows = [Comparison("m", "statsmodels", "lme4:independent", "estimate", "x", 1.0, 1.0,
                       0.1, "agree", "same"),
            Comparison("m", "statsmodels", "lme4:independent", "sd", "y", 1.0, 2.0, 0.1,
                       "disagree", "differs by 0.5 relative"),
            Comparison("m", "statsmodels", "lme4", "sd", "y", 1.0, 3.0, 0.1,
                       "disagree", "unlike")]
    assert verdicts_against(rows, "statsmodels", "lme4:independent") == {
        ("estimate", "x"): ("agree", None), ("sd", "y"): ("disagree",
                                                          "differs by 0.5 relative")}


def test_left_out_because_names_each_reason() -> None:
    sm, lme4 = _fit("statsmodels", 0.0, False), _fit("lme4", 0.0, True)
    refit = _fit("lme4", 0.0, False, "independent")
    row = Comparison("crossed_slopes", "statsmodels", "lme4", "estimate", "genderM",
                     -100.0, -100.0, 0.1, "agree", None)
    assert left_out_because(row, sm, lme4) == STRUCTURES_DIFFER
    matched = replace(row, reference="lme4:independent")
    assert left_out_because(matched, sm, refit) is None
    assert left_out_because(replace(matched, verdict="unconverged"), sm, refit) == UNCONVERGED
    assert left_out_because(matched, replace(sm, status="unconverged"), refit) == UNCONVERGED
    assert left_out_because(replace(matched, verdict="not_comparable"), sm, refit) == \
        NOT_COMPARABLE
    assert left_out_because(replace(row, engine="lme4:independent"), refit, lme4) == \
        SELF_REFIT


# ---- The calibrated file's comments -----------------------------------------------------

def _calibrated(gap: float):
    policy = load_policy(project=NOWHERE)
    rule = policy.rule("frequentist", "frequentist", "estimate")
    tol = rule.tolerance(100.0, 1.0)
    rows = [Comparison("m", "statsmodels", "lme4:independent", "estimate", "x",
                       100.0 + gap * tol, 100.0, tol, "disagree", "far")]
    needs = [s for c in rows if (s := scaled(c, "frequentist", "frequentist"))]
    return calibrate(needs, policy, 0.99)


def test_calibrated_file_marks_a_rule_run_would_refuse(tmp_path: Path) -> None:
    [cal] = _calibrated(50.0)
    assert cal.loosening == pytest.approx(50.0)
    tally = Tally({"statsmodels vs lme4:independent": 1}, {STRUCTURES_DIFFER: 3})
    text = calibrated_toml([cal], 0.99, "test design", tally)
    assert "# Learned from 1 rows: 1 statsmodels vs lme4:independent." in text
    assert f"# Left out 3 rows: 3 {STRUCTURES_DIFFER}." in text
    assert "parity run refuses" in text and "--allow-loose-tolerances" in text
    assert "LOOSER than parity's default by more than 10x" in text
    path = tmp_path / "cal.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"frequentist-frequentist\.estimate by 50x"):
        check_loosening(path)
    check_loosening(path, allow=True)
    [tight] = _calibrated(3.0)
    text = calibrated_toml([tight], 0.99, "test design", Tally())
    assert "refuses" not in text and "LOOSER" not in text
    path.write_text(text)
    check_loosening(path)


# ---- The refusal ------------------------------------------------------------------------

def test_loosening_is_the_largest_part_factor() -> None:
    defaults = default_policy()
    assert max(loosening(defaults, defaults).values()) == 1.0
    base = defaults.rule("frequentist", "frequentist", "estimate")
    assert rule_loosening(replace(base, rtol=base.rtol * 20), base) == pytest.approx(20.0)
    assert rule_loosening(replace(base, rtol=base.rtol / 2), base) == pytest.approx(1.0)
    assert math.isinf(rule_loosening(replace(base, atol=1e-3), base))  # default atol 0


def test_a_file_within_the_factor_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[frequentist-frequentist.estimate]\nrtol = 5e-5\n")
    check_loosening(path)
    check_loosening(None)


def _run_cli(tmp_path: Path, tolerances: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "d.csv"
    pd.DataFrame({"y": [1.0, 2.0, 3.5, 4.0, 5.5, 6.0], "x": [1, 2, 3, 4, 5, 6]}) \
        .to_csv(data, index=False)
    return subprocess.run([sys.executable, "-m", "parity.cli", "run", "--data", str(data),
                           "--formula", "y ~ x", "--engines", "statsmodels", "--tolerances",
                           str(tolerances), "--out", str(tmp_path / "o"), "--quiet",
                           "--no-cache", *extra],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_run_refuses_a_loose_file_in_one_line_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "loose.toml"
    path.write_text("[frequentist-frequentist.estimate]\nrtol = 0.05\n"
                    "[frequentist-frequentist.sd]\nrtol = 0.5\n")
    done = _run_cli(tmp_path, path)
    assert done.returncode == 2, done.stderr
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1
    assert "frequentist-frequentist.estimate by 5000x" in lines[0]
    assert "(and 1 other rule(s))" in lines[0] and "--allow-loose-tolerances" in lines[0]
    done = _run_cli(tmp_path, path, "--allow-loose-tolerances")
    assert done.returncode == 0, done.stderr


def test_the_python_api_refuses_a_loose_file_unless_allowed(tmp_path: Path) -> None:
    import parity

    path = tmp_path / "loose.toml"
    path.write_text("[frequentist-frequentist.std_error]\nrtol = 1.0\n")
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.5, 4.0, 5.5, 6.0], "x": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(UsageError, match="allow_loose_tolerances=True"):
        parity.run("y ~ x", frame, engines="statsmodels", tolerances=path, cache=False)
    with pytest.raises(UsageError, match="must be True or False"):
        parity.run("y ~ x", frame, engines="statsmodels", tolerances=path,
                   allow_loose_tolerances="yes")  # type: ignore[arg-type]


def test_the_fits_table_counts_unconverged_replicates_apart_from_failed_fits() -> None:
    """One statsmodels replicate in a thousand that does not converge is a finding of the
    study, counted as such; only a fit that failed to run makes the study exit 1."""
    from parity.study.assemble import _fit_table

    fits = {(6, 0, "statsmodels"): _fit("statsmodels", 0.0, False),
            (6, 1, "statsmodels"): _fit("statsmodels", 0.0, False, status="unconverged"),
            (6, 2, "statsmodels"): replace(_fit("statsmodels", 0.0, False),
                                           status="failed", reason="it raised")}
    [row] = _fit_table(fits)
    assert (row["ok"], row["unconverged"], row["failed"]) == (1, 1, 1)
    assert row["reasons"] == ["statsmodels did not converge", "it raised"]


def test_the_plan_interleaves_the_engines_batches_replicate_by_replicate() -> None:
    """Each engine's batch of the first replicates comes before any engine's batch of
    later ones, so that no engine holds every worker while the others wait (and the
    progress line moves for all of them)."""
    m, d = _design("subject_intercept")
    truth = Truth(fixed=TRUTH.fixed, components=(
        VarianceComponent("subject", "(Intercept)", None, "sd", 25.0),
        VarianceComponent("Residual", None, None, "sd", 30.0)), source="test")
    options = replace(_options(("lme4", "statsmodels", "bambi"), replicates=6), batch_size=2)
    batches = plan(m, [d], truth, options, 2)
    assert [(b.replicates[0], b.engine) for b in batches] == [
        (r, e) for r in (0, 2, 4) for e in ("lme4", "statsmodels", "bambi")]
