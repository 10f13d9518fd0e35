"""The Python API for notebooks: `parity.run`, `Run`, `parity.load`, and the shipped
notebook, executed so that it cannot rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import parity
from conftest import need
from parity.errors import FormulaError, UsageError
from parity.inputs import politeness

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
    assert set(comparisons["verdict"]) == {"agree"}  # statsmodels reproduces lme4 here
    matrix = run.matrix()
    assert list(matrix.index) == ["additive", "subject_intercept", "all models"]
    assert list(matrix.columns) == ["statsmodels vs lme4"]
    assert "agree" in run._repr_html_() and "<table" in run._repr_html_()
    estimates = run.estimates
    assert {"(Intercept)", "genderM", "attitudepol"} <= set(estimates["term"])
    effects = run.group_effects
    six = effects[(effects["model"] == "subject_intercept") & (effects["engine"] == "lme4")]
    assert len(six) == 6 and set(six["term"]) == {"(Intercept)"}
    assert set(run.fits["criterion"]) == {"OLS", "REML"}


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
