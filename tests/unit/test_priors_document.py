"""Priors as data: the document's layout, its checks (one line naming where it is wrong),
its canonical form (the cache key), the names it may use, and every way it reaches a run
(--priors, a models.toml's `priors`, `parity.run(priors=...)`). Nothing is fitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parity.cli import main
from parity.errors import UsageError
from parity.inputs.config import load_config
from parity.settings import Settings
from parity.spec.models import make_model
from parity.spec.priors import Prior, check_names, load_priors, parse_priors, priors_of

DOC = """
[intercept]
dist = "Normal"
mu = 200
sigma = 50

[fixed]
dist = "Normal"
mu = 0
sigma = 100
[fixed.gender]
dist = "StudentT"
nu = 3
mu = 0
sigma = 20

[sd]
dist = "HalfNormal"
sigma = 50
[sd.subject]
dist = "HalfNormal"
sigma = 5
[sd."attitude|subject"]
dist = "Exponential"
lam = 0.1

[residual]
dist = "HalfStudentT"
nu = 4
sigma = 30

[lkj]
eta = 2
"""
FORMULA = "frequency ~ gender + attitude + (1 + attitude | subject) + (1 | scenario)"


@pytest.fixture()
def doc_file(tmp_path: Path) -> Path:
    path = tmp_path / "priors.toml"
    path.write_text(DOC)
    return path


def test_a_document_names_each_class_and_term(doc_file: Path) -> None:
    p = load_priors(doc_file)
    assert p.intercept == Prior("Normal", (("mu", 200.0), ("sigma", 50.0)))
    assert p.fixed_prior("gender") == Prior("StudentT", (("nu", 3.0), ("mu", 0.0),
                                                          ("sigma", 20.0)))
    assert p.fixed_prior("attitude") == p.fixed  # the class's prior for other terms
    assert p.sd_prior("1", "subject") == Prior("HalfNormal", (("sigma", 5.0),))
    assert p.sd_prior("attitude", "subject") == Prior("Exponential", (("lam", 0.1),))
    assert p.sd_prior("1", "scenario") == p.sd
    assert p.residual is not None and p.residual.text() == "HalfStudentT(nu: 4, sigma: 30)"
    assert p.lkj_eta == 2.0


def test_the_canonical_form_is_the_same_for_the_same_document(doc_file: Path) -> None:
    p = load_priors(doc_file)
    again = parse_priors(json.loads(p.to_json()))
    assert again == p and again.to_json() == p.to_json()
    assert priors_of(p.to_json()) == p and priors_of(None) is None
    # Written in another order, it is the same document.
    reordered = "\n".join(reversed(DOC.strip().split("\n\n")))
    other = doc_file.with_name("other.toml")
    other.write_text(reordered)
    assert load_priors(other).to_json() == p.to_json()
    assert Settings(priors=p.to_json()).check().priors == p.to_json()


@pytest.mark.parametrize(("doc", "message"), [
    ({"slope": {}}, "unknown prior class 'slope'"),
    ({"intercept": {"dist": "HalfNormal", "sigma": 1}},
     "[intercept]: dist must be one of Normal, StudentT, not 'HalfNormal'"),
    ({"sd": {"dist": "Normal", "mu": 0, "sigma": 1}},
     "[sd]: dist must be one of HalfNormal, HalfStudentT, Exponential, not 'Normal'"),
    ({"sd": {"subject": {"dist": "HalfNormal", "sigma": -1}}},
     "[sd].subject: sigma must be above 0, not -1"),
    ({"residual": {"dist": "HalfNormal"}}, "[residual]: HalfNormal needs sigma"),
    ({"residual": {"dist": "HalfNormal", "sigma": 1, "mu": 0}},
     "[residual]: HalfNormal takes sigma, not mu"),
    ({"fixed": {"dist": "Normal", "mu": "0", "sigma": 1}},
     "[fixed]: mu must be a finite number, not '0'"),
    ({"fixed": {"dist": "Normal", "mu": float("nan"), "sigma": 1}},
     "[fixed]: mu must be a finite number, not nan"),
    ({"fixed": {"dist": "Normal", "mu": True, "sigma": 1}},
     "[fixed]: mu must be a finite number, not True"),
    ({"lkj": {"eta": 0}}, "[lkj]: eta must be above 0, not 0"),
    ({"lkj": {"eta": 2, "k": 3}}, "[lkj] takes eta only"),
    ({"intercept": 3}, "[intercept] must be a table"),
])
def test_a_wrong_document_is_one_line_naming_the_place(doc: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_priors(doc, "p.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_per_term_prior_must_name_something_in_the_models() -> None:
    spec = make_model("m", FORMULA, ["subject", "gender", "attitude", "scenario"]).spec
    check_names(parse_priors({"fixed": {"gender": {"dist": "Normal", "mu": 0, "sigma": 1}},
                              "sd": {"attitude|subject": {"dist": "HalfNormal", "sigma": 1},
                                     "scenario": {"dist": "HalfNormal", "sigma": 1}}}),
                [spec])
    with pytest.raises(UsageError, match=r"\[fixed.genderM\] names no fixed-effect term"):
        check_names(parse_priors({"fixed": {"genderM": {"dist": "Normal", "mu": 0,
                                                        "sigma": 1}}}), [spec])
    with pytest.raises(UsageError, match="names no grouping factor or term|factor"):
        check_names(parse_priors({"sd": {"item": {"dist": "HalfNormal", "sigma": 1}}}),
                    [spec])


def test_a_models_toml_takes_a_priors_file_or_table(tmp_path: Path, doc_file: Path) -> None:
    (tmp_path / "d.csv").write_text("y,g\n1,a\n2,b\n")
    config = tmp_path / "models.toml"
    config.write_text('data = "d.csv"\npriors = "priors.toml"\n[models]\nm = "y ~ 1 + (1|g)"\n')
    assert load_config(config).sampler["priors"] == load_priors(doc_file).to_json()
    config.write_text('data = "d.csv"\n[models]\nm = "y ~ 1 + (1|g)"\n'
                      '[priors.sd.g]\ndist = "HalfNormal"\nsigma = 3\n')
    stored = priors_of(load_config(config).sampler["priors"])
    assert stored is not None and stored.sd_prior("1", "g") == Prior("HalfNormal",
                                                                     (("sigma", 3.0),))
    config.write_text('data = "d.csv"\n[models]\nm = "y ~ 1 + (1|g)"\n'
                      '[priors.sd.g]\ndist = "HalfNormal"\nsigma = 0\n')
    with pytest.raises(UsageError, match=r"\[priors\]: \[sd\].g: sigma must be above 0"):
        load_config(config)


@pytest.mark.parametrize(("content", "message"), [
    (None, "priors file '{path}' not found"),
    ("[sd\n", "priors file '{path}' is not valid TOML"),
    ('[sd.subjct]\ndist = "HalfNormal"\nsigma = 1\n', "names no grouping factor"),
])
def test_parity_run_refuses_a_bad_priors_file_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
        message: str) -> None:
    path = tmp_path / "priors.toml"
    if content is not None:
        path.write_text(content)
    code = main(["run", "--priors", str(path), "--engines", "lme4", "--models",
                 "subject_intercept", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message.format(path=path) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_the_python_api_takes_a_mapping_and_checks_it() -> None:
    import parity

    with pytest.raises(UsageError, match=r"parity.run\(priors=...\): \[sd\]"):
        parity.run("y ~ 1 + (1|g)", "nowhere.csv", engines="bambi",
                   priors={"sd": {"dist": "Normal", "mu": 0, "sigma": 1}})
