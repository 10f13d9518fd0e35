"""The Python API for notebooks: `parity.run`, `Run`, `parity.load`, and the shipped
notebook, executed so that it cannot rot."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import parity
from conftest import need
from parity.errors import DataError, FormulaError, UsageError
from parity.inputs import politeness
from parity.schema import Fit, RunResults
from parity.settings import Settings

CATS = ["subject", "gender", "scenario", "attitude"]
MODELS = {"additive": "frequency ~ gender + attitude",
          "subject_intercept": "frequency ~ gender + attitude + (1 | subject)"}


@pytest.fixture(scope="module")
def run() -> parity.Run:
    need("lme4")  # live R, or the shipped recorded references
    return parity.run(MODELS, politeness(), CATS, engines=["lme4", "statsmodels"], cache=False)


def test_run_gives_dataframes_and_a_matrix(run: parity.Run) -> None:
    fits = run.fits
    assert list(fits["model"]) == ["additive", "additive", "subject_intercept",
                                   "subject_intercept"]
    assert set(fits["status"]) == {"ok"}
    comparisons = run.comparisons
    assert len(comparisons) == len(run.results.comparisons) > 0
    # statsmodels reproduces lme4 here; only the mixed model's intervals are of different
    # methods (Wald-z against lme4's Satterthwaite t), set apart with their reason
    apart = comparisons[comparisons["verdict"] != "agree"]
    assert set(apart["verdict"]) == {"not_comparable"}
    assert set(apart["quantity"]) == {"lower", "upper"}
    assert set(apart["model"]) == {"subject_intercept"}
    assert apart["reason"].str.contains("different methods").all()
    matrix = run.matrix()
    assert list(matrix.index) == ["additive", "subject_intercept", "all models"]
    assert list(matrix.columns) == ["statsmodels vs lme4", "conclusions"]
    assert "agree" in run._repr_html_() and "<table" in run._repr_html_()
    estimates = run.estimates
    assert {"(Intercept)", "genderM", "attitudepol"} <= set(estimates["term"])
    effects = run.group_effects
    six = effects[(effects["model"] == "subject_intercept") & (effects["engine"] == "lme4")]
    assert len(six) == 6 and set(six["term"]) == {"(Intercept)"}
    assert set(run.fits["criterion"]) == {"OLS", "REML"}


def test_tidy_is_broom_mixed_s_layout_of_real_fits(run: parity.Run) -> None:
    """What an analyst sets beside `broom.mixed::tidy(fit, effects = c("fixed",
    "ran_pars", "ran_vals"))`: lme4's Satterthwaite tests, statsmodels' z-tests."""
    from parity.api import TIDY_COLUMNS

    table = run.tidy()
    assert list(table.columns) == TIDY_COLUMNS
    mixed = table[(table["model"] == "subject_intercept") & (table["engine"] == "lme4")]
    assert list(mixed["effect"]) == ["fixed"] * 3 + ["ran_pars"] * 2 + ["ran_vals"] * 6
    pars = mixed[mixed["effect"] == "ran_pars"]
    assert list(zip(pars["group"], pars["term"], strict=True)) == [
        ("subject", "sd__(Intercept)"), ("Residual", "sd__Observation")]
    fixed = table[table["effect"] == "fixed"].set_index(["model", "engine", "term"])
    lme4 = fixed.loc[("subject_intercept", "lme4", "genderM")]
    statsmodels = fixed.loc[("subject_intercept", "statsmodels", "genderM")]
    assert lme4["df"] > 0 and 0 < lme4["p.value"] < 1 and lme4["conf.low"] < lme4["estimate"]
    assert math.isnan(statsmodels["df"]) and 0 < statsmodels["p.value"] < 1  # a z-test
    assert lme4["estimate"] == pytest.approx(statsmodels["estimate"], rel=1e-4)
    comparisons = run.comparisons
    assert list(comparisons.columns[-3:]) == ["unconverged", "terms", "label"]
    se = comparisons[(comparisons["quantity"] == "std_error")
                     & (comparisons["term"] == "genderM")]
    assert set(se["label"]) == {"SE(genderM)"} and set(se["terms"]) == {("genderM",)}


def test_report_writes_the_cli_files_and_load_reads_them_back(run: parity.Run,
                                                              tmp_path: Path) -> None:
    paths = run.report(tmp_path)
    for kind in ("results", "markdown", "html", "csv"):
        assert paths[kind].is_file(), kind
    again = parity.load(tmp_path)
    assert again.results == run.results
    assert again.verdicts() == run.verdicts()
    assert parity.load(run.to_json(tmp_path / "copy.json")).results == run.results


def test_bad_input_is_parity_error_before_fitting() -> None:
    with pytest.raises(FormulaError):
        parity.run("frequency ~ gender +", politeness(), CATS, engines=["statsmodels"])
    with pytest.raises(UsageError, match="draws"):
        parity.run("frequency ~ gender", politeness(), CATS, engines=["statsmodels"], draws=-1)
    with pytest.raises(UsageError, match="more than once"):
        parity.run("frequency ~ gender", politeness(), CATS,
                   engines=["statsmodels", "statsmodels"])


def test_the_shipped_notebook_runs() -> None:
    for module in ("nbclient", "nbformat", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (constraints/test.in installs it)")
    need("lme4")
    import nbclient
    import nbformat

    path = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "rows agree" in html and "statsmodels vs lme4" in html


@pytest.mark.bambi
def test_kept_draws_are_the_draws_that_were_compared(tmp_path: Path) -> None:
    """`keep_draws=True`: `Run.idata` gives the InferenceData the summaries came from,
    also after a round trip through results.json."""
    need("bambi")
    run = parity.run("frequency ~ gender + attitude", politeness(), CATS, engines=["bambi"],
                     keep_draws=True, cache=False, draws=100, tune=100, chains=1, seed=5)
    idata = run.idata("m1")
    draws = idata.posterior["Intercept"].values
    assert draws.shape == (1, 100)
    (fit,) = run.results.fits
    assert fit.fixed("(Intercept)").estimate == pytest.approx(float(draws.mean()), rel=1e-12)
    run.to_json(tmp_path / "results.json")
    again = parity.load(tmp_path / "results.json").idata("m1")
    assert (again.posterior["Intercept"].values == draws).all()
    without = parity.run("frequency ~ gender", politeness(), CATS, engines=["statsmodels"])
    with pytest.raises(KeyError):
        without.idata("m1")


@pytest.mark.parametrize("formulas", [{}, [], ()])
def test_no_models_is_a_usage_error_saying_what_a_model_is(formulas: object) -> None:
    """`parity.run({})` ran nothing and then failed with `KeyError: 'model'`."""
    with pytest.raises(UsageError, match=r"^parity\.run\(\): no models given; a model is a "
                                         r"formula string"):
        parity.run(formulas, politeness(), CATS, engines=["statsmodels"])  # type: ignore[arg-type]


@pytest.mark.parametrize("formulas", [{"m": 3}, {"m": ""}, [None], 42])
def test_a_model_that_is_not_a_formula_is_a_usage_error(formulas: object) -> None:
    with pytest.raises(UsageError, match="a model is a formula string"):
        parity.run(formulas, politeness(), CATS, engines=["statsmodels"])  # type: ignore[arg-type]


def test_an_empty_run_still_has_its_columns() -> None:
    empty = parity.Run(RunResults(()))
    assert empty.fits.empty and "model" in empty.fits.columns
    assert empty.estimates.empty and "term" in empty.estimates.columns


def test_engines_as_one_string_are_names_not_characters() -> None:
    """`engines="lme4"` was split into characters ("unknown engine 'l'")."""
    for engines in ("nosuch", "statsmodels,nosuch", " statsmodels , nosuch "):
        with pytest.raises(UsageError, match="unknown engine 'nosuch'"):
            parity.run("frequency ~ gender", politeness(), CATS, engines=engines)
    with pytest.raises(UsageError, match="statsmodels named more than once"):
        parity.run("frequency ~ gender", politeness(), CATS, engines="statsmodels,statsmodels")


def _saved_draws(draws_dir: Path) -> tuple[Fit, np.ndarray]:
    """A Fit whose draws were saved as an engine saves them (`_save_draws`), from a tiny
    posterior made of numbers rather than sampled, and those numbers."""
    import arviz

    from parity.engines.bambi import _save_draws

    values = np.arange(12.0).reshape(2, 6)
    try:  # ArviZ 0.x takes the groups as keywords, ArviZ 1 as one mapping
        idata = arviz.from_dict(posterior={"Intercept": values})
    except TypeError:
        idata = arviz.from_dict({"posterior": {"Intercept": values}})
    fit = Fit(model="m1", formula="y ~ x", engine="bambi", status="ok", reason=None,
              n_obs=10, n_dropped=0)
    return _save_draws(fit, idata, Settings(save_draws=str(draws_dir))), values


def test_saved_draws_move_with_their_output_folder(tmp_path: Path) -> None:
    """Draws are recorded relative to the run's output folder, so `Run.idata` opens them
    after the folder (results.json and draws/) has been moved."""
    out = tmp_path / "out"
    fit, values = _saved_draws(out / "draws")
    assert fit.provenance.settings["draws_file"] == "draws/m1.bambi.nc"
    RunResults((fit,)).write(out / "results.json")
    moved = shutil.move(str(out), str(tmp_path / "elsewhere" / "moved"))
    for where in (Path(moved), Path(moved) / "results.json"):
        idata = parity.load(where).idata("m1")
        assert (idata.posterior["Intercept"].values == values).all()
    shutil.rmtree(Path(moved) / "draws")
    with pytest.raises(DataError, match="m1.bambi.nc' is missing"):
        parity.load(moved).idata("m1")


def test_results_written_elsewhere_still_find_their_draws(tmp_path: Path) -> None:
    """`Run.to_json` outside the run's folder names the draws absolutely; inside it,
    relative to the new results.json; an older results.json's absolute path still reads."""
    from dataclasses import replace

    out = tmp_path / "out"
    fit, values = _saved_draws(out / "draws")
    run = parity.Run(RunResults((fit,)), base=out)
    run.to_json(tmp_path / "copy" / "results.json")
    again = parity.load(tmp_path / "copy")
    assert Path(again.results.fits[0].provenance.settings["draws_file"]).is_absolute()
    assert (again.idata("m1").posterior["Intercept"].values == values).all()
    run.to_json(out / "results.json")
    assert parity.load(out).results.fits[0].provenance.settings["draws_file"] == \
        "draws/m1.bambi.nc"
    old = replace(fit, provenance=replace(fit.provenance, settings={
        "draws_file": str((out / "draws" / "m1.bambi.nc").resolve())}))
    RunResults((old,)).write(tmp_path / "old.json")
    assert (parity.load(tmp_path / "old.json").idata("m1").posterior["Intercept"].values
            == values).all()


@pytest.mark.r
def test_nagq_reaches_lme4_through_parity_run() -> None:
    """nagq above 1 was refused by parity.run as a probability; it reaches glmer's nAGQ,
    and the fit records its criterion as lme4 names it."""
    need("R")
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(12), 8)
    x = rng.normal(size=groups.size)
    eta = -0.3 + 0.8 * x + rng.normal(scale=0.7, size=12)[groups]
    frame = pd.DataFrame({"y": (rng.random(groups.size) < 1 / (1 + np.exp(-eta))).astype(int),
                          "x": x, "g": [f"g{i}" for i in groups]})
    run = parity.run("y ~ x + (1 | g)", frame, ["g"], engines=["lme4"], family="binomial",
                     nagq=5, cache=False)
    laplace = parity.run("y ~ x + (1 | g)", frame, ["g"], engines=["lme4"],
                         family="binomial", cache=False)
    [fit], [base] = run.results.fits, laplace.results.fits
    assert (fit.status, fit.criterion, base.criterion) == ("ok", "AGQ(5)", "Laplace")
    assert run.results.meta["settings"]["nagq"] == 5
    assert fit.fixed_effects[1].estimate != base.fixed_effects[1].estimate
