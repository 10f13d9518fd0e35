"""The study summary's Monte-Carlo errors (Morris, White and Crowther 2019; rsimsum's
conventions), checked against values computed by hand, and how the report shows them:
"± MCSE" in the tables, a share of 0 or 1 with its Wilson bound, a number on too few
replicates marked as no finding."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from parity.study.report import write_study
from parity.study.tables import (
    MIN_REPLICATES,
    StudyRow,
    error_summary,
    share_mcse,
    share_summary,
    summarize,
    wilson,
)

Z2 = 1.959963984540054 ** 2


def test_coverage_mcse_is_binomial() -> None:
    """0.9 of 100 → sqrt(0.9 · 0.1 / 100) = 0.03."""
    assert share_mcse(0.9, 100) == pytest.approx(0.03)
    s = share_summary("coverage", [1.0] * 90 + [0.0] * 10)
    assert s["coverage"] == pytest.approx(0.9)
    assert s["coverage_mcse"] == pytest.approx(0.03)
    assert share_mcse(None, 0) is None and share_mcse(0.5, 0) is None


def test_bias_empse_and_rmse_mcse_by_hand() -> None:
    """Estimates 9, 10, 12, 13 of 10: errors −1, 0, 2, 3, bias 1; var(θ̂) = 10/3 (n − 1),
    so MCSE(bias) = sqrt(10/3/4) and empSE = sqrt(10/3) with MCSE empSE/sqrt(6);
    MSE = 14/4 = 3.5, Σ((θ̂ − θ)² − MSE)² = 2.5² + 3.5² + 0.5² + 5.5² = 49, so
    MCSE(MSE) = sqrt(49/12) and MCSE(RMSE) = MCSE(MSE)/(2 sqrt(3.5))."""
    s = error_summary([9.0, 10.0, 12.0, 13.0], 10.0)
    assert s["bias"] == pytest.approx(1.0)
    assert s["bias_mcse"] == pytest.approx(math.sqrt(10 / 3 / 4))
    assert s["empse"] == pytest.approx(math.sqrt(10 / 3))
    assert s["empse_mcse"] == pytest.approx(math.sqrt(10 / 3) / math.sqrt(6))
    assert s["rmse"] == pytest.approx(math.sqrt(3.5))
    assert s["rmse_mcse"] == pytest.approx(math.sqrt(49 / 12) / (2 * math.sqrt(3.5)))


def test_one_estimate_has_no_monte_carlo_error_and_no_truth_no_bias() -> None:
    one = error_summary([11.0], 10.0)
    assert one["bias"] == pytest.approx(1.0) and one["rmse"] == pytest.approx(1.0)
    assert one["bias_mcse"] is None and one["rmse_mcse"] is None and one["empse"] is None
    untrue = error_summary([1.0, 3.0], None)
    assert untrue["bias"] is None and untrue["rmse"] is None
    assert untrue["empse"] == pytest.approx(math.sqrt(2.0))
    exact = error_summary([10.0, 10.0], 10.0)
    assert exact["rmse"] == 0.0 and exact["rmse_mcse"] == 0.0


def test_wilson_interval_is_informative_at_zero_and_one() -> None:
    """At p = 0 the interval is [0, z²/(n + z²)], at p = 1 [n/(n + z²), 1], where the
    binomial MCSE is 0; inside, it matches the textbook 9 of 10 → (0.596, 0.982)."""
    n = 20
    assert share_mcse(0.0, n) == 0.0 and share_mcse(1.0, n) == 0.0
    lo, hi = wilson(0.0, n)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(Z2 / (n + Z2))
    lo, hi = wilson(1.0, n)
    assert lo == pytest.approx(n / (n + Z2)) and hi == pytest.approx(1.0)
    lo, hi = wilson(0.9, 10)
    assert lo == pytest.approx(0.5958, abs=1e-4) and hi == pytest.approx(0.9821, abs=1e-4)
    assert wilson(None, 0) == (None, None)
    s = share_summary("singular_rate", [0.0] * 4)
    assert s["singular_rate_upper"] == pytest.approx(Z2 / (4 + Z2))


def _rows(groups: int, n: int, engine: str = "bambi") -> list[StudyRow]:
    """`n` replicates of one parameter (truth 10): estimates 10 ± 1 alternately, every
    interval but the first covering, every verdict agree, no divergences."""
    return [StudyRow(groups=groups, replicate=k, engine=engine, quantity="estimate",
                     term="x", group=None, estimate=10.0 + (-1) ** k, uncertainty=1.0,
                     lower=8.0 if k else 11.5, upper=12.0, truth=10.0,
                     covered=k != 0, verdict="agree", singular=False, divergences=0)
            for k in range(n)]


def test_summary_carries_every_monte_carlo_error() -> None:
    [s] = summarize(_rows(6, 25), [])
    for key in ("bias_mcse", "coverage_mcse", "coverage_lower", "coverage_upper",
                "agree_rate_mcse", "empse", "empse_mcse", "rmse_mcse",
                "singular_rate_mcse", "divergence_rate_mcse"):
        assert s[key] is not None, key
    assert s["coverage"] == pytest.approx(24 / 25)
    assert s["coverage_mcse"] == pytest.approx(math.sqrt(0.96 * 0.04 / 25))
    assert s["coverage_lower"] < 0.96 < s["coverage_upper"] <= 1.0
    assert s["agree_rate"] == 1.0 and s["agree_rate_mcse"] == 0.0
    assert s["agree_rate_lower"] == pytest.approx(25 / (25 + Z2))
    assert s["singular_rate"] == 0.0 and s["divergence_rate_upper"] == \
        pytest.approx(Z2 / (25 + Z2))
    assert s["n_intervals"] == s["n_verdicts"] == s["n_divergence"] == s["n"] == 25
    assert s["rmse"] == pytest.approx(1.0) and s["rmse_mcse"] == 0.0  # every error is ±1


def _document(summary: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": {"name": "m", "formula": "y ~ 1 + (1 | g)"}, "factor": "g",
        "designs": [{"groups": g} for g in sorted({s["groups"] for s in summary})],
        "replicates": 25, "engines": ["bambi"], "reference": "lme4", "interval": 0.95,
        "settings": {"draws": 100, "tune": 100, "chains": 2, "target_accept": 0.95},
        "priors": "default", "calibrate_quantile": 0.99, "seconds": 1.0,
        "truth": {"source": "test", "singular": False, "fixed_effects": {"x": 10.0},
                  "components": {}},
        "scheduler": {"kind": "LocalCluster", "address": "tcp://127.0.0.1:1", "workers": 1,
                      "fitted_batches": 1, "resumed_batches": 0},
        "fits": [], "summary": summary, "differences": [], "calibrated": [],
        "calibrated_toml": "",
    }


def test_the_tables_show_plus_minus_and_mark_a_small_design(tmp_path: Path) -> None:
    """25 replicates: "0.96 ± 0.04" and no mark; 4 replicates: every number marked †, and
    the footnote says it is no finding; an all-agree share shows its Wilson bound."""
    summary = summarize(_rows(6, 4) + _rows(12, 25), [])
    paths = write_study(tmp_path, SimpleNamespace(document=_document(summary)), None)
    md = paths["markdown"].read_text("utf-8")
    big = next(line for line in md.splitlines() if line.startswith("| 12 | bambi |"))
    small = next(line for line in md.splitlines() if line.startswith("| 6 | bambi |"))
    assert "| 0.96 ± 0.04 |" in big and "| 1 (≥0.86) |" in big and "| 0 (≤0.14) |" in big
    assert "| 0.04 ± 0.2 |" in big  # bias 1/25, MCSE sqrt(var/25) ≈ 0.2
    assert "†" not in big
    assert "| 0.75 ± 0.2 † |" in small and "| 1 (≥0.51) † |" in small
    assert small.count("†") == 6  # bias, RMSE and four shares
    assert (f"† fewer than {MIN_REPLICATES} replicates: Monte-Carlo error too large to "
            "read as a finding.") in md
    html = paths["html"].read_text("utf-8")
    assert "0.96 ± 0.04" in html and "0.75 ± 0.2 †" in html
    assert {"figure coverage", "figure bias"} <= set(paths)


def test_no_footnote_when_every_number_rests_on_enough_replicates(tmp_path: Path) -> None:
    summary = summarize(_rows(12, MIN_REPLICATES), [])
    paths = write_study(tmp_path, SimpleNamespace(document=_document(summary)), None)
    md = paths["markdown"].read_text("utf-8")
    assert "†" not in md.split("## Per design")[1]
    assert (tmp_path / "figures" / "coverage.png").is_file()
