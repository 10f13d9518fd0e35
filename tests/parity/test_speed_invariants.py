"""Speed must not change numbers: cached, parallel and sequential runs give the same fits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import need
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.cache import FitCache
from parity.pipeline.workers import run_models
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import select

SMALL = Settings(draws=200, tune=200, chains=2, seed=11)


def numbers(fits: list[Fit]) -> list[tuple[object, ...]]:
    return [(f.model, f.label, f.status, f.fixed_effects, f.variance_components,
             f.diagnostics) for f in fits]


@pytest.mark.r
def test_a_warm_rerun_reads_every_fit_from_the_cache_with_the_same_numbers(
        tmp_path: Path) -> None:
    need("R")  # lme4 results are cached only when live R made them
    models = select(seed_models(), ["subject_intercept", "subject_slope"])
    cache = FitCache(tmp_path)
    cold = run_models(models, politeness(), ["lme4", "statsmodels"], Settings(), cache=cache)
    warm = run_models(models, politeness(), ["lme4", "statsmodels"], Settings(), cache=cache)
    assert not any(f.from_cache for f in cold.fits)
    assert all(f.from_cache for f in warm.fits + warm.reference_fits)
    assert numbers(warm.fits) == numbers(cold.fits)
    assert numbers(warm.reference_fits) == numbers(cold.reference_fits)
    assert warm.optimum_checks == cold.optimum_checks


def test_corrupt_or_foreign_entries_are_refitted(tmp_path: Path) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    first = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits
    entries = sorted((tmp_path / "fits").glob("*.json"))
    assert len(entries) == 1
    entries[0].write_text("{ not json")
    again = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits
    assert not again[0].from_cache and numbers(again) == numbers(first)
    entry = json.loads(entries[0].read_text())
    entry["material"]["data"] = "someone else's data"
    entries[0].write_text(json.dumps(entry))
    third = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits
    assert not third[0].from_cache


def test_a_change_of_settings_or_data_misses(tmp_path: Path) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache)
    other = run_models(models, politeness(), ["statsmodels"], Settings(interval=0.9),
                       cache=cache).fits
    assert not other[0].from_cache
    changed = politeness()
    changed.loc[3, "frequency"] += 0.5
    assert not run_models(models, changed, ["statsmodels"], Settings(),
                          cache=cache).fits[0].from_cache
    disabled = FitCache(tmp_path, enabled=False)
    assert not run_models(models, politeness(), ["statsmodels"], Settings(),
                          cache=disabled).fits[0].from_cache


@pytest.mark.bambi
def test_parallel_and_sequential_bambi_give_identical_draws() -> None:
    """Models fitted side by side in two workers or one after another in one: the same
    draws. (Chains run on parallel host devices are compiled differently from chains run
    in sequence, so that switch is held fixed: parity always runs them in parallel.)"""
    need("bambi")
    models = select(seed_models(), ["additive", "subject_intercept"])
    # about identical draws, not convergence: a few draws will do
    few = replace(SMALL, draws=60, tune=60)
    sequential = run_models(models, politeness(), ["bambi"], few, jobs=1).fits
    parallel = run_models(models, politeness(), ["bambi"], few, jobs=2).fits
    assert all(f.has_numbers for f in sequential + parallel)
    assert [f.status for f in parallel] == [f.status for f in sequential]
    assert [f.fixed_effects for f in parallel] == [f.fixed_effects for f in sequential]
    assert [f.variance_components for f in parallel] == \
        [f.variance_components for f in sequential]
    assert [f.provenance.settings["ran"]["host_devices"] for f in parallel] == [2, 2]


@pytest.mark.bambi
def test_chains_in_sequence_when_asked() -> None:
    need("bambi")
    models = select(seed_models(), ["additive"])
    (fit,) = run_models(models, politeness(), ["bambi"], SMALL, parallel_chains=False).fits
    assert fit.has_numbers and fit.provenance.settings["ran"]["host_devices"] == 1
