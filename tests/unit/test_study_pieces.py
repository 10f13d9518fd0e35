"""The study's pieces that need no engine: designs, the simulation's moments, seeds,
the summary and the calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from parity.compare.tolerances import load_policy
from parity.errors import UsageError
from parity.inputs.seed import politeness, seed_models
from parity.rows.prepare import prepare
from parity.schema import Comparison, VarianceComponent
from parity.study.calibrate import calibrate, calibrated_toml, scaled
from parity.study.design import make_design
from parity.study.report import write_study
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


def _study_document(model: str = "subject_intercept") -> dict[str, Any]:
    """A study's document as `run_study` leaves it, for two designs and three engines."""
    engines = ["lme4", "statsmodels", "bambi"]
    terms = [("estimate", "(Intercept)", 256.7), ("sd", "sd(subject: (Intercept))", 24.6)]
    # Shares of 3 replicates, with their binomial MCSEs and 95% Wilson intervals.
    none = {"mcse": 0.0, "lower": 0.0, "upper": 0.5615}
    summary = [{"groups": g, "engine": e, "quantity": q, "term": t, "group": None,
                "truth": truth, "bias": 0.1 * g, "bias_mcse": 0.05, "rmse": 1.0 + g,
                "rmse_mcse": 0.2, "coverage": 2 / 3, "coverage_mcse": 0.2722,
                "coverage_lower": 0.2077, "coverage_upper": 0.9385, "n_intervals": 3,
                "agree_rate": None if e == "lme4" else 1.0, "n_verdicts": 3,
                **({} if e == "lme4" else
                   {"agree_rate_mcse": 0.0, "agree_rate_lower": 0.4385,
                    "agree_rate_upper": 1.0}),
                "singular_rate": 0.0, **{f"singular_rate_{k}": v for k, v in none.items()},
                "divergence_rate": 0.0 if e == "bambi" else None,
                "n_divergence": 3 if e == "bambi" else 0,
                **({f"divergence_rate_{k}": v for k, v in none.items()} if e == "bambi"
                   else {}), "n": 3}
               for g in (6, 12) for e in engines for q, t, truth in terms]
    differences = [{"groups": 6, "replicate": k, "engine": "bambi", "reference": "lme4",
                    "quantity": q, "term": t, "difference": 0.1 * k, "tolerance": 1.0,
                    "verdict": "agree"} for k in range(5) for q, t, _ in terms]
    return {
        "model": {"name": model, "formula": "frequency ~ gender + (1 | subject)"},
        "factor": "subject", "designs": [{"groups": 6}, {"groups": 12}], "replicates": 3,
        "engines": engines, "reference": "lme4", "interval": 0.94,
        "settings": {"draws": 100, "tune": 100, "chains": 2, "target_accept": 0.95},
        "priors": "Bambi's default priors", "calibrate_quantile": 0.99, "seconds": 12.0,
        "truth": {"source": "lme4 fit", "singular": False,
                  "fixed_effects": {"(Intercept)": 256.7},
                  "components": {"sd(subject: (Intercept))": 24.6}},
        "scheduler": {"kind": "LocalCluster", "address": "tcp://127.0.0.1:1", "workers": 2,
                      "fitted_batches": 4, "resumed_batches": 0},
        "fits": [{"groups": 6, "engine": e, "ok": 3, "failed": 0, "reasons": [],
                  "seconds_median": 0.5, "seconds_max": 1.0} for e in engines],
        "summary": summary, "differences": differences,
        "calibrated": [{"pair": "bayesian-frequentist", "quantity": "estimate",
                        "factor": 0.8, "rtol": None, "atol": 0.0, "sd_mult": 0.4, "n": 5}],
        "calibrated_toml": "# calibrated\n",
    }


def test_the_study_report_is_the_run_reports_blocks_in_every_format(tmp_path: Path) -> None:
    """study.md and study.html carry the same content; the HTML embeds every figure, so it
    is one self-contained file, and user text is escaped in both."""
    model = "a*b_<x>"
    paths = write_study(tmp_path, SimpleNamespace(document=_study_document(model)), None)
    assert {"json", "calibrated", "markdown", "html", "figure coverage", "figure bias",
            "figure differences"} <= set(paths)
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert [p.name for p in pngs] == ["bias.png", "coverage.png", "differences.png"]
    html = paths["html"].read_text("utf-8")
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert "src='figures/" not in html and 'src="figures/' not in html
    assert "<strong>bias</strong>" in html and "*bias*" not in html
    assert "<code>agree</code>" in html and "`agree`" not in html
    assert "<code>a*b_&lt;x&gt;</code>" in html and "<x>" not in html
    md = paths["markdown"].read_text("utf-8")
    assert "Model `a*b_<x>`" in md  # verbatim in a code span
    assert "**bias**" in md and "![coverage of each engine" in md
    assert "| groups | engine | parameter | truth |" in md
    assert ("| 12 | bambi | sd(subject: (Intercept)) | 24.6 | 1.2 ± 0.05 † | 13 ± 0.2 † "
            "| 0.67 ± 0.3 † | 1 (≥0.43) † | 0 (≤0.57) † | 0 (≤0.57) † | 3 |") in md
    assert "† fewer than 20 replicates: Monte-Carlo error too large to read as a finding." \
        in md
    assert "| bayesian-frequentist | estimate | 0.8 | — | 0 | 0.4 | 5 |" in md


def test_the_study_figures_are_drawn_without_pyplot(tmp_path: Path) -> None:
    """The figures go through the run report's Agg-canvas helpers: a child that writes a
    study report never imports pyplot or switches matplotlib's backend."""
    code = ("import json, sys; from types import SimpleNamespace; from pathlib import Path\n"
            "from parity.study.report import write_study\n"
            f"doc = json.loads(Path({str(tmp_path / 'doc.json')!r}).read_text())\n"
            f"write_study(Path({str(tmp_path)!r}), SimpleNamespace(document=doc), None)\n"
            "print('matplotlib.pyplot' in sys.modules)")
    (tmp_path / "doc.json").write_text(json.dumps(_study_document()))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    assert (tmp_path / "figures" / "differences.png").is_file()
