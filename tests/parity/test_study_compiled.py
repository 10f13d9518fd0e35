"""A study's Bambi fit, compiled once, is `parity run`'s Bambi fit: on the seed data at
the default settings the two agree within Monte-Carlo error, every number of the record.
A compiled fit then samples another response without compiling again."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import bambi_missing
from parity.inputs.seed import politeness
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings


@pytest.mark.skipif(bambi_missing() is not None, reason=str(bambi_missing()))
# subject_slope's slope SD sits near zero: its funnel leaves few effective draws and some
# divergent transitions in both fits, so the posterior SDs of the coefficients carry
# more Monte-Carlo error (measured: 8.4 vs 9.7 for attitudepol at the default settings).
@pytest.mark.parametrize("model, se_rel", [("subject_intercept", 0.1),
                                           ("subject_slope", 0.2)])
def test_compiled_bambi_equals_parity_runs_bambi(
        model: str, se_rel: float, seed_fits: dict[tuple[str, str], Fit],
        seed_models_by_name: dict) -> None:
    from parity.engines.compiled_fits import CompiledBambi

    m = seed_models_by_name[model]
    data = prepare(politeness(), m.spec, m.categorical)
    settings = Settings()
    compiled = CompiledBambi(m, data, settings)
    fit = compiled.fit(data.frame[m.spec.response].to_numpy(float), settings.seed)
    run = seed_fits[(model, "bambi")]
    assert fit.status == "ok", fit.reason
    assert fit.provenance.settings["ran"]["compiled_once"] is True
    assert fit.provenance.settings["ran"]["draws"] == settings.draws
    assert [f.term for f in fit.fixed_effects] == [f.term for f in run.fixed_effects]
    for a, b in zip(fit.fixed_effects, run.fixed_effects, strict=True):
        assert abs(a.estimate - b.estimate) < 0.1 * b.std_error, a.term
        assert a.std_error == pytest.approx(b.std_error, rel=se_rel), a.term
    assert [v.label for v in fit.variance_components] == \
        [v.label for v in run.variance_components]
    for a, b in zip(fit.variance_components, run.variance_components, strict=True):
        assert abs(a.estimate - b.estimate) < 0.15 * b.std_error, a.label
    assert fit.provenance.settings["priors"] == run.provenance.settings["priors"]
    assert len(fit.group_effects) == len(run.group_effects)
    # Another response of the same design: a new posterior from the same compiled sampler.
    other = compiled.fit(data.frame[m.spec.response].to_numpy(float) + 50.0, 1)
    assert compiled.sampler.runs == 2
    assert other.fixed_effects[0].estimate == pytest.approx(
        fit.fixed_effects[0].estimate + 50.0, abs=0.25 * fit.fixed_effects[0].std_error)
    assert np.isfinite([f.estimate for f in other.fixed_effects]).all()


@pytest.mark.skipif(bambi_missing() is not None, reason=str(bambi_missing()))
def test_compiled_pymc_keeps_lme4s_correlation_and_reuses_its_sampler(
        seed_models_by_name: dict) -> None:
    """The pymc engine compiled once: its record has the correlation Bambi lacks, and a
    second response is sampled by the same compiled sampler."""
    from parity.engines.compiled_fits import CompiledPymc

    m = seed_models_by_name["subject_slope"]
    data = prepare(politeness(), m.spec, m.categorical)
    compiled = CompiledPymc(m, data, Settings(draws=150, tune=150, chains=2))
    y = data.frame[m.spec.response].to_numpy(float)
    first, second = compiled.fit(y, 1), compiled.fit(y[::-1].copy(), 2)
    assert first.status == second.status == "ok", (first.reason, second.reason)
    assert compiled.sampler.runs == 2
    assert any(v.kind == "corr" for v in first.variance_components)
    assert first.structure == {"subject": "correlated"}
    assert first.fixed_effects[0].estimate != second.fixed_effects[0].estimate
