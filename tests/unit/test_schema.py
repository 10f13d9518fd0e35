"""results.json: the field names analysts rely on, the round trip, the atomic write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    Provenance,
    VarianceComponent,
    fit_from_dict,
    fit_to_dict,
    results_document,
    write_json_atomic,
)


def sample_fit() -> Fit:
    return Fit(
        model="m", formula="y ~ x", engine="lme4", status="ok", reason=None, n_obs=10,
        n_dropped=1,
        fixed_effects=(FixedEffect("(Intercept)", 1.0, 0.5, 0.0, 2.0),),
        variance_components=(VarianceComponent("g", "(Intercept)", None, "sd", 2.0),
                             VarianceComponent("Residual", None, None, "sd", float("nan"))),
        diagnostics=Diagnostics(converged=True, singular=False, warnings=("w",)),
        provenance=Provenance("1.1-31", "R 4.2.2", {"reml": True}, 0.1),
    )


def test_contract_fields() -> None:
    doc = results_document([sample_fit()])
    assert doc["schema_version"] == 1
    assert doc["comparisons"] == []
    fit = doc["fits"][0]
    for key in ("model", "formula", "engine", "status", "reason", "n_obs", "n_dropped",
                "fixed_effects", "variance_components", "diagnostics", "provenance"):
        assert key in fit
    assert set(fit["fixed_effects"][0]) >= {"term", "estimate", "std_error", "lower", "upper"}
    assert set(fit["variance_components"][0]) >= {"group", "term", "term2", "kind", "estimate"}
    assert set(fit["diagnostics"]) >= {"converged", "singular", "warnings", "r_hat_max",
                                       "ess_bulk_min", "divergences"}
    assert set(fit["provenance"]) >= {"engine_version", "r_version", "settings", "seconds"}
    assert fit["variance_components"][1]["estimate"] is None  # NaN is not JSON


def test_round_trip() -> None:
    fit = sample_fit()
    back = fit_from_dict(json.loads(json.dumps(fit_to_dict(fit))))
    assert back.fixed_effects == fit.fixed_effects
    assert back.diagnostics == fit.diagnostics
    assert back.component("g", "(Intercept)") == fit.variance_components[0]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
