"""The reference case: the six politeness models, three engines, one answer per term."""

from __future__ import annotations

import pytest

from conftest import SEED_NAMES, available_engines, need
from parity.schema import Fit

SAME_MODEL = ["additive", "no_intercept", "interaction", "subject_intercept"]


def test_every_fit_ran(seed_fits: dict[tuple[str, str], Fit]) -> None:
    engines = available_engines()
    assert len(seed_fits) == len(SEED_NAMES) * len(engines)
    bad = {k: f.reason for k, f in seed_fits.items() if not f.has_numbers}
    assert not bad


@pytest.mark.parametrize("name", SEED_NAMES)
def test_same_rows_for_every_engine(name: str, seed_fits: dict[tuple[str, str], Fit]) -> None:
    rows = {(f.n_obs, f.n_dropped) for (m, _), f in seed_fits.items() if m == name}
    assert rows == {(83, 1)}


@pytest.mark.parametrize("name", SAME_MODEL)
def test_statsmodels_equals_lme4(name: str, seed_fits: dict[tuple[str, str], Fit]) -> None:
    need("lme4")
    sm, r = seed_fits[(name, "statsmodels")], seed_fits[(name, "lme4")]
    assert [f.term for f in sm.fixed_effects] == [f.term for f in r.fixed_effects]
    for a, b in zip(sm.fixed_effects, r.fixed_effects, strict=True):
        assert a.estimate == pytest.approx(b.estimate, rel=1e-4), a.term


@pytest.mark.bambi
@pytest.mark.parametrize("name", SEED_NAMES)
def test_bambi_means_within_quarter_sd_of_lme4(
    name: str, seed_fits: dict[tuple[str, str], Fit]
) -> None:
    need("lme4")
    need("bambi")
    b, r = seed_fits[(name, "bambi")], seed_fits[(name, "lme4")]
    for fe in r.fixed_effects:
        post = b.fixed(fe.term)
        assert post is not None, fe.term
        z = abs(post.estimate - fe.estimate) / post.std_error
        assert z <= 0.25, f"{fe.term}: {post.estimate:.2f} vs {fe.estimate:.2f} ({z:.2f} SD)"
