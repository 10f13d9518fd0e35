"""The study's pieces that need no engine: designs, the simulation's moments, seeds,
the summary and the calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parity.compare.tolerances import load_policy
from parity.errors import UsageError
from parity.inputs.seed import politeness, seed_models
from parity.rows.prepare import prepare
from parity.schema import Comparison, VarianceComponent
from parity.study.calibrate import calibrate, calibrated_toml, scaled
from parity.study.design import make_design
from parity.study.simulate import replicate_rng, replicate_seed, simulate
from parity.study.tables import StudyRow, summarize
from parity.study.truth import Truth

MODELS = {m.name: m for m in seed_models()}


def _original(name: str = "subject_intercept"):
    m = MODELS[name]
    return m, prepare(politeness(), m.spec, m.categorical, m.family, m.trials)


TRUTH = Truth(
    fixed={"(Intercept)": 250.0, "genderM": -100.0, "attitudepol": -20.0},
    components=(VarianceComponent("subject", "(Intercept)", None, "sd", 25.0),
                VarianceComponent("subject", "attitudepol", None, "sd", 10.0),
                VarianceComponent("subject", "(Intercept)", "attitudepol", "corr", -0.5),
                VarianceComponent("Residual", None, None, "sd", 30.0)),
    source="test")


def test_design_with_the_original_number_of_groups_is_the_original_rows() -> None:
    m, data = _original()
    d = make_design(m, data, 6)
    assert d.data.frame.reset_index(drop=True).equals(data.frame.reset_index(drop=True))


@pytest.mark.parametrize("groups", [4, 12, 14])
def test_designs_repeat_the_within_group_design_under_new_ids(groups: int) -> None:
    m, data = _original()
    d = make_design(m, data, groups)
    frame = d.data.frame
    assert frame["subject"].nunique() == groups == len(d.data.levels["subject"])
    sizes = data.frame.groupby("subject").size().to_dict()
    for label, rows in frame.groupby("subject"):
        assert len(rows) == sizes[str(label).split("~")[0]]
    assert set(frame["attitude"]) == set(data.frame["attitude"])


def test_a_design_needs_two_groups() -> None:
    m, data = _original()
    with pytest.raises(UsageError, match="at least 2 groups"):
        make_design(m, data, 1)


def test_simulated_moments_match_the_model() -> None:
    """Row means are Xβ; a row's variance is sd_int² + sd_slope² x² + 2 corr … + σ²; two
    rows of one subject covary by the random effects only, of two subjects not at all."""
    m, data = _original("subject_slope")
    rng = np.random.default_rng(7)
    ys = np.array([simulate(m, data, TRUTH, rng) for _ in range(6000)])
    frame = data.frame
    pol = (frame["attitude"] == "pol").to_numpy(float)
    male = (frame["gender"] == "M").to_numpy(float)
    mean = 250 - 100 * male - 20 * pol
    se = np.sqrt(25**2 + 10**2 + 30**2) / np.sqrt(len(ys))
    assert np.all(np.abs(ys.mean(0) - mean) < 5 * se)
    var = 25**2 + pol * (10**2 + 2 * -0.5 * 25 * 10) + 30**2
    assert np.allclose(ys.var(0), var, rtol=0.12)
    subj = frame["subject"].to_numpy()
    i = 0
    j = next(k for k in range(1, len(frame)) if subj[k] == subj[0] and pol[k] == pol[0])
    other = next(k for k in range(len(frame)) if subj[k] != subj[0])
    cov = np.cov(ys[:, i], ys[:, j])[0, 1]
    assert abs(cov - (25**2 + pol[0] * (10**2 - 25 * 10))) < 60
    assert abs(np.cov(ys[:, i], ys[:, other])[0, 1]) < 60


def test_replicates_are_reproducible_and_distinct() -> None:
    m, data = _original()
    a = simulate(m, data, TRUTH, replicate_rng(1, 6, 0))
    b = simulate(m, data, TRUTH, replicate_rng(1, 6, 0))
    c = simulate(m, data, TRUTH, replicate_rng(1, 6, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert replicate_seed(1, 6, 0) == replicate_seed(1, 6, 0) != replicate_seed(1, 6, 1)


def _row(engine: str, estimate: float, lower: float | None, upper: float | None,
         verdict: str | None, replicate: int = 0) -> StudyRow:
    covered = None if lower is None else bool(lower <= 10.0 <= upper)
    return StudyRow(6, replicate, engine, "estimate", "x", None, estimate, 1.0, lower, upper,
                    10.0, covered, verdict, False, None)


def test_summary_gives_bias_rmse_coverage_and_rates() -> None:
    rows = [_row("bambi", 11.0, 9.0, 12.0, "agree", 0), _row("bambi", 8.0, 8.5, 9.5,
                                                            "disagree", 1),
            _row("lme4", 10.0, None, None, "reference")]
    out = {s["engine"]: s for s in summarize(rows, [])}
    assert out["bambi"]["bias"] == pytest.approx(-0.5)
    assert out["bambi"]["rmse"] == pytest.approx(np.sqrt((1 + 4) / 2))
    assert out["bambi"]["coverage"] == 0.5 and out["bambi"]["n"] == 2
    assert out["bambi"]["agree_rate"] == 0.5
    assert out["lme4"]["coverage"] is None and out["lme4"]["agree_rate"] is None


def test_calibration_is_the_smallest_scaled_rule_that_lets_the_share_agree(
        tmp_path: Path) -> None:
    policy = load_policy(project=Path("/nonexistent"))
    rule = policy.rule("bayesian", "frequentist", "estimate")
    comparisons = [Comparison("m", "bambi", "lme4", "estimate", "x", 10.0 + d, 10.0,
                              rule.tolerance(10.0, 1.0), "agree", None)
                   for d in np.linspace(0.01, 1.0, 100)]
    needs = [s for c in comparisons if (s := scaled(c, "bayesian", "frequentist"))]
    [cal] = calibrate(needs, policy, 0.99)
    tol = cal.rule.tolerance(10.0, 1.0)
    share = np.mean([abs(c.value - c.reference_value) <= tol + 1e-12 for c in comparisons])
    assert share >= 0.99
    assert np.mean([abs(c.value - c.reference_value) <= 0.98 * tol
                    for c in comparisons]) < 0.99
    path = tmp_path / "cal.toml"
    path.write_text(calibrated_toml([cal], 0.99, "test design"))
    loaded = load_policy(path, project=Path("/nonexistent"))
    assert loaded.rule("bayesian", "frequentist", "estimate").sd_mult == \
        pytest.approx(cal.rule.sd_mult, rel=1e-5)
