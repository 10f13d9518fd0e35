"""The study's progress line: fits per engine, and an ETA that prices each engine's fits
left at what that engine's fits have cost (a replicate-count ETA said 90 minutes when 15
were left, as lme4's cheap fits finished long before Bambi's)."""

from __future__ import annotations

import io

import pytest

from parity.study import progress as progress_module
from parity.study.progress import StudyProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", c)
    return c


def test_eta_prices_each_engines_fits_at_its_own_cost(clock: Clock) -> None:
    out = io.StringIO()
    p = StudyProgress({"lme4": 1000, "bambi": 1000}, {}, quiet=False, stream=out)
    # Two workers, 100 s of wall: lme4 finished 1000 fits (0.1 s each), Bambi 100 (1.9 s).
    clock.now += 100
    p.add("lme4", 1000, 100.0)
    p.add("bambi", 100, 190.0)
    eta = p.eta()
    assert eta is not None
    # 900 Bambi fits at 1.9 worker-seconds each, at 2.9 worker-seconds per wall second.
    assert eta == pytest.approx(900 * 1.9 / 2.9, rel=1e-9)
    # The replicate count would say 10% done; the fits say 55%.
    assert "1100/2000 fits (55%" in p.text()
    assert "lme4 1000/1000" in p.text() and "bambi 100/1000" in p.text()


def test_an_engine_without_a_finished_batch_is_priced_at_the_mean(clock: Clock) -> None:
    p = StudyProgress({"lme4": 10, "statsmodels": 10}, {}, quiet=True)
    clock.now += 10
    p.add("lme4", 10, 10.0)
    assert p.eta() == pytest.approx(10 * 1.0 / 1.0)


def test_resumed_fits_count_as_done_but_not_as_measured_cost(clock: Clock) -> None:
    p = StudyProgress({"lme4": 10, "bambi": 10}, {"lme4": 10}, quiet=True)
    assert p.fits_done == 10 and p.eta() is None
    clock.now += 5
    p.add("bambi", 5, 10.0)
    assert p.eta() == pytest.approx(5 * 2.0 / 2.0)


def test_log_mode_prints_a_line_per_tenth_and_quiet_prints_nothing(clock: Clock) -> None:
    out = io.StringIO()
    p = StudyProgress({"lme4": 10}, {}, quiet=False, stream=out)
    for _ in range(10):
        clock.now += 1
        p.add("lme4", 1, 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("study: 10/10 fits (100%")
    quiet = io.StringIO()
    q = StudyProgress({"lme4": 10}, {}, quiet=True, stream=quiet)
    q.add("lme4", 10, 1.0)
    assert quiet.getvalue() == ""
