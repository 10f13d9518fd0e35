"""Up-front estimates of what a fit costs, and the refusals they make: the design's
dimensions, each engine's formula, and a fit refused with its numbers as the reason.
No engine library is needed: nothing here is fitted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity.cli import main
from parity.engines import ENGINE_NAMES, load_engine
from parity.engines.budget import (
    DEFAULT_MAX_MINUTES,
    MEMORY_ENV,
    Budget,
    cost_refusal,
    machine_budget,
    minutes_problem,
)
from parity.engines.cost import NO_ESTIMATE, sampler_cost
from parity.errors import UsageError
from parity.pipeline.workers import _Job, _refused
from parity.rows.dims import BlockDims, DesignDims, design_dims
from parity.rows.prepare import prepare
from parity.settings import Settings
from parity.spec.models import make_model

CROSSED = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"
# lme4::InstEval: 73,421 rows, 2,972 students crossed with 1,128 lecturers, 14 departments.
INSTEVAL = DesignDims(73_421, 2, (BlockDims("s", 2_972, 1), BlockDims("d", 1_128, 1),
                                  BlockDims("dept", 14, 1)), 73_421)
# Half of a 16 GiB machine: what check_memory's rule would give one fit there.
SIXTEEN_GIB = Budget(8 * 2**30, "half of this machine's 16.0 GiB")
# The engines that estimate their memory; the others make no estimate.
ESTIMATING = ("lme4", "glmmtmb", "statsmodels", "bambi", "pymc", "brms")


def crossed_frame(rows: int = 60, students: int = 12, lecturers: int = 5,
                  seed: int = 3) -> pd.DataFrame:
    """Students and lecturers crossed, lecturers nested in departments."""
    rng = np.random.default_rng(seed)
    s, d = np.arange(rows) % students, rng.permutation(np.arange(rows) % lecturers)
    return pd.DataFrame({"y": rng.normal(size=rows), "service": rng.integers(2, size=rows),
                         "s": [f"s{i}" for i in s], "d": [f"d{i}" for i in d],
                         "dept": [f"p{i % 2}" for i in d]})


def scaled(dims: DesignDims, rows: int = 1, levels: int = 1) -> DesignDims:
    """`dims` with `rows` times the rows and `levels` times each factor's levels."""
    return DesignDims(dims.n_obs * rows, dims.n_fixed,
                      tuple(BlockDims(b.group, b.levels * levels, b.columns)
                            for b in dims.blocks), dims.n_outcomes * rows)


def test_design_dims_of_a_crossed_frame() -> None:
    model = make_model("m", CROSSED, categorical=["service"])
    data = prepare(crossed_frame(), model.spec, model.categorical)
    dims = design_dims(model, data)
    assert (dims.n_obs, dims.n_fixed) == (60, 2)
    assert dims.levels == {"s": 12, "d": 5, "dept": 2}
    assert dims.random_columns == 19 and dims.block_columns == 3
    assert dims.grouping_factors == 3 and dims.n_outcomes == 60


def test_design_dims_count_a_slope_and_a_factor_s_contrasts() -> None:
    model = make_model("m", "y ~ service + (service | s) + (1 | s:d)",
                       categorical=["service"])
    data = prepare(crossed_frame(), model.spec, model.categorical)
    dims = design_dims(model, data)
    assert [(b.group, b.columns) for b in dims.blocks] == [("s", 2), ("s:d", 1)]
    assert dims.levels["s:d"] == len(data.frame[["s", "d"]].drop_duplicates())


@pytest.mark.parametrize("engine", ESTIMATING)
@pytest.mark.parametrize("grow", ["rows", "levels"])
def test_an_estimate_grows_with_the_design(engine: str, grow: str) -> None:
    small = scaled(INSTEVAL)
    big = scaled(INSTEVAL, rows=2) if grow == "rows" else scaled(INSTEVAL, levels=2)
    model = make_model("m", CROSSED)
    cost = load_engine(engine).cost
    before, after = cost(model, small, Settings()), cost(model, big, Settings())
    assert before.memory_bytes is not None and after.memory_bytes is not None
    if grow == "rows" or engine in ("statsmodels", "bambi", "pymc", "brms"):
        assert after.memory_bytes > before.memory_bytes
    else:  # a sparse design's nonzeros are its rows', whatever the levels
        assert after.memory_bytes == before.memory_bytes


@pytest.mark.parametrize("engine", ["bambi", "pymc"])
def test_a_sampler_s_estimate_grows_with_draws_and_chains(engine: str) -> None:
    model = make_model("m", CROSSED)
    cost = load_engine(engine).cost
    base = cost(model, INSTEVAL, Settings(draws=1000, chains=2)).memory_bytes
    more_draws = cost(model, INSTEVAL, Settings(draws=2000, chains=2)).memory_bytes
    more_chains = cost(model, INSTEVAL, Settings(draws=1000, chains=4)).memory_bytes
    assert base is not None and more_draws is not None and more_chains is not None
    assert more_draws > base and more_chains > base


def test_statsmodels_dense_design_grows_with_rows_times_levels() -> None:
    """Twice the rows and twice the levels: about four times the memory (dense), where
    lme4's sparse estimate only doubles."""
    model = make_model("m", CROSSED)
    sm, lme4 = load_engine("statsmodels"), load_engine("lme4")
    one, four = INSTEVAL, scaled(INSTEVAL, rows=2, levels=2)
    ratio = (sm.cost(model, four, Settings()).memory_bytes or 0) / (
        sm.cost(model, one, Settings()).memory_bytes or 1)
    assert 3.9 < ratio <= 4.0
    assert (lme4.cost(model, four, Settings()).memory_bytes
            == 2 * (lme4.cost(model, one, Settings()).memory_bytes or 0))


@pytest.mark.parametrize("engine", sorted(set(ENGINE_NAMES) - set(ESTIMATING)))
def test_an_engine_without_a_formula_makes_no_estimate_and_is_never_refused(
        engine: str) -> None:
    model = make_model("m", CROSSED)
    assert load_engine(engine).cost(model, INSTEVAL, Settings()) == NO_ESTIMATE
    assert cost_refusal(load_engine(engine), model, INSTEVAL, Settings(),
                        Budget(1, "one byte")) is None


@pytest.mark.parametrize(("engine", "chains", "refused"), [
    ("statsmodels", 4, True), ("lme4", 4, False), ("glmmtmb", 4, False),
    ("bambi", 4, True), ("bambi", 2, False)])
def test_insteval_s_memory_on_16_gib(engine: str, chains: int, refused: bool) -> None:
    """statsmodels' dense design is over 8 GiB, and so is Bambi with four chains (each
    holds its own 2.4 GB copy of the group indicators); two chains fit."""
    model = make_model("m", CROSSED)
    refusal = cost_refusal(load_engine(engine), model, INSTEVAL,
                           Settings(reml=False, chains=chains), SIXTEEN_GIB)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert "would need about" in refusal.reason
        assert not refusal.stops_run  # a row of the report, not an exit


def test_the_refusal_names_the_estimate_the_design_and_the_limit() -> None:
    model = make_model("m", CROSSED)
    refusal = cost_refusal(load_engine("statsmodels"), model, INSTEVAL, Settings(),
                           SIXTEEN_GIB)
    assert refusal is not None
    reason = refusal.reason
    assert reason.startswith("statsmodels would need about ")
    assert "GiB for a dense 73,421 × 4,114 random-effects design" in reason
    assert "more than half of this machine's 16.0 GiB" in reason
    need = float(reason.split("about ")[1].split(" GiB")[0])
    assert 20 < need < 30  # 11 copies of a 2.25 GiB design, and a little more


def test_a_small_model_is_never_refused_on_this_machine() -> None:
    model = make_model("m", CROSSED, categorical=["service"])
    data = prepare(crossed_frame(), model.spec, model.categorical)
    dims = design_dims(model, data)
    for engine in ENGINE_NAMES:
        assert cost_refusal(load_engine(engine), model, dims, Settings()) is None


def test_the_memory_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    monkeypatch.setenv(MEMORY_ENV, str(64 * 2**20))
    assert machine_budget() == Budget(64 * 2**20, f"the 64 MiB {MEMORY_ENV} allows",
                                      DEFAULT_MAX_MINUTES, default_minutes=True)
    monkeypatch.delenv(MEMORY_ENV)
    budget = machine_budget()
    assert budget.memory_bytes is None or "half of this machine's" in budget.source


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5e9"])
def test_a_malformed_memory_limit_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                   value: str) -> None:
    monkeypatch.setenv(MEMORY_ENV, value)
    with pytest.raises(UsageError, match=MEMORY_ENV):
        machine_budget()


def test_the_run_makes_a_refused_fit_unsupported_before_any_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's up-front refusals: statsmodels' fit becomes an `unsupported` row
    with the estimate as its reason; lme4's is left to fit."""
    monkeypatch.setenv(MEMORY_ENV, str(16 * 2**20))  # lme4 needs 3 MB, statsmodels 26
    model = make_model("m", CROSSED, categorical=["service"])
    data = prepare(crossed_frame(600, 120, 50), model.spec, model.categorical)
    jobs = [_Job(model, data, "lme4"), _Job(model, data, "statsmodels")]
    _refused(jobs, Settings())
    lme4, sm = jobs
    assert lme4.fit is None
    assert sm.fit is not None and sm.fit.status == "unsupported"
    assert sm.fit.reason is not None and "600 × 172 random-effects design" in sm.fit.reason
    assert f"the 16 MiB {MEMORY_ENV} allows" in sm.fit.reason


def test_the_run_refuses_a_fit_over_its_time_limit_up_front() -> None:
    model = make_model("m", CROSSED, categorical=["service"])
    data = prepare(crossed_frame(600, 120, 50), model.spec, model.categorical)
    jobs = [_Job(model, data, "lme4"), _Job(model, data, "statsmodels")]
    _refused(jobs, Settings(), Budget(None, minutes=0.01))  # statsmodels: about 3 s
    assert jobs[0].fit is None
    assert jobs[1].fit is not None and jobs[1].fit.status == "unsupported"
    assert "more than the 0.01-minute limit" in str(jobs[1].fit.reason)


@pytest.mark.parametrize(("engine", "refused"), [("statsmodels", True), ("lme4", False),
                                                 ("bambi", True)])
def test_a_time_limit_refuses_only_what_an_engine_estimates_longer(engine: str,
                                                                   refused: bool) -> None:
    """statsmodels' dense design and Bambi's sampler have time estimates, lme4 none;
    memory is not limited here."""
    model = make_model("m", CROSSED)
    refusal = cost_refusal(load_engine(engine), model, INSTEVAL, Settings(),
                           Budget(None, minutes=30))
    assert (refusal is not None) is refused
    if refusal is not None:
        assert "would take about" in refusal.reason
        assert "more than the 30-minute limit" in refusal.reason
        assert ("hours for a dense 73,421 × 4,114 random-effects design" in refusal.reason
                if engine == "statsmodels" else
                "× 4 chains of 4,121 parameters over 73,421 rows" in refusal.reason)
    assert cost_refusal(load_engine(engine), model, INSTEVAL, Settings(),
                        Budget(None)) is None  # a budget without minutes has no time limit


def test_a_run_s_time_limit_is_thirty_minutes_unless_asked_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    default, asked = machine_budget(), machine_budget(90)
    assert (default.minutes, default.default_minutes) == (DEFAULT_MAX_MINUTES, True) == (30, True)
    assert (asked.minutes, asked.default_minutes) == (90, False)
    model = make_model("m", CROSSED)
    refusal = cost_refusal(load_engine("bambi"), model, INSTEVAL, Settings(), default)
    assert refusal is not None
    assert "more than the default 30-minute limit a fit" in refusal.reason
    # The advice names a limit that would let it run.
    minutes = int(refusal.reason.split("--max-minutes ")[1].split()[0])
    assert cost_refusal(load_engine("bambi"), model, INSTEVAL, Settings(),
                        machine_budget(minutes)) is None


def test_bambi_s_time_grows_with_the_work_and_shrinks_with_the_cores() -> None:
    def seconds(dims: DesignDims, settings: Settings, cores: int = 2) -> float:
        t = sampler_cost(dims, settings, cores).seconds
        assert t is not None
        return t

    base = Settings(draws=500, tune=500, chains=4)
    t = seconds(INSTEVAL, base)
    assert seconds(INSTEVAL, replace(base, draws=1000)) > t
    assert seconds(INSTEVAL, replace(base, tune=1000)) > t
    assert seconds(scaled(INSTEVAL, rows=2), base) > t
    assert seconds(scaled(INSTEVAL, levels=2), base) > t
    assert seconds(INSTEVAL, base, cores=4) < t
    # Chains beyond the cores wait for one: 2 chains on 2 cores take about as long as 1.
    one, two = (seconds(INSTEVAL, replace(base, chains=c)) for c in (1, 2))
    assert 1.0 <= two / one < 1.2
    # A small model's fit is a matter of seconds, InstEval at the defaults of an hour.
    small = DesignDims(84, 3, (BlockDims("subject", 6, 1), BlockDims("scenario", 7, 1)))
    assert seconds(small, Settings()) < 60 < 30 * 60 < seconds(INSTEVAL, Settings())


def test_memory_is_asked_before_time() -> None:
    model = make_model("m", CROSSED)
    refusal = cost_refusal(load_engine("statsmodels"), model, INSTEVAL, Settings(),
                           Budget(8 * 2**30, "half of this machine's 16.0 GiB", minutes=1))
    assert refusal is not None and "would need about" in refusal.reason


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "10"])
def test_a_time_limit_is_a_number_of_minutes_above_zero(value: object) -> None:
    assert minutes_problem(value) == "must be a number of minutes above 0"
    assert minutes_problem(None) is None and minutes_problem(0.5) is None


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_parity_run_refuses_a_bad_max_minutes_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    code = main(["run", "--max-minutes", value, "--out", str(tmp_path),
                 "--engines", "statsmodels", "--models", "additive"])
    assert code == 2
    assert "--max-minutes must be a number of minutes above 0" in capsys.readouterr().err


def test_parity_run_api_refuses_a_bad_max_minutes() -> None:
    import parity

    with pytest.raises(UsageError, match="max_minutes must be a number of minutes above 0"):
        parity.run("y ~ 1 + (1 | s)", crossed_frame(), engines=["statsmodels"],
                   max_minutes=0)
