"""Recorded lme4 references: the shipped ones regenerate from live R, and a record is used
only where formula, data and settings match."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import SEED_NAMES, glmmtmb_missing, need
from parity.engines.recorded import find_recorded, record_name, shipped_dir
from parity.errors import UsageError
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.job import record_job
from parity.rows.prepare import prepare
from parity.settings import Settings
from parity.spec.models import make_model


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("R")
    out = tmp_path_factory.mktemp("records")
    engines = ["lme4"] if glmmtmb_missing() else ["lme4", "glmmtmb"]
    for reml in (True, False):
        record_job(seed_models(), politeness(), Settings(reml=reml), out, engines)
    return out


RECORDS = [record_name(n, v, reml, engine)
           for reml in (True, False)
           for engine in ("lme4", "glmmtmb")
           for n in SEED_NAMES
           for v in ((None, "independent") if engine == "lme4"
                     and n in ("subject_slope", "crossed_slopes") else (None,))]


@pytest.mark.r
@pytest.mark.parametrize("name", RECORDS)
def test_shipped_references_regenerate(name: str, regenerated: Path) -> None:
    if ".glmmtmb." in name and glmmtmb_missing():
        pytest.skip(f"glmmtmb: {glmmtmb_missing()}")
    shipped = json.loads((shipped_dir() / name).read_text())
    fresh = json.loads((regenerated / name).read_text())
    for key in ("engine_formula", "data_sha256", "reml", "interval", "r_code_sha256",
                "schema_version"):
        assert shipped[key] == fresh[key], f"{name}: {key} changed; rerun `parity record`"
    # A singular fit's criterion is flat along the boundary, and lme4's BOBYQA stops at a
    # point that depends on the last bits of its path: across R processes crossed_slopes
    # by ML moved 1.2e-8 relative. Regular fits reproduce to 1e-8.
    rel = 1e-6 if shipped["fit"]["diagnostics"]["singular"] else 1e-8
    for a, b in zip(shipped["fit"]["fixed_effects"], fresh["fit"]["fixed_effects"],
                    strict=True):
        assert a["term"] == b["term"]
        assert a["estimate"] == pytest.approx(b["estimate"], rel=rel)
        assert a["std_error"] == pytest.approx(b["std_error"], rel=rel)
    for a, b in zip(shipped["fit"]["variance_components"],
                    fresh["fit"]["variance_components"], strict=True):
        assert (a["group"], a["term"], a["term2"]) == (b["group"], b["term"], b["term2"])
        assert a["estimate"] == pytest.approx(b["estimate"], rel=rel, abs=1e-8)


def test_a_record_is_matched_by_formula_data_and_settings() -> None:
    model = make_model("mine", "frequency ~ gender + attitude", ["gender", "attitude"])
    data = prepare(politeness(), model.spec, model.categorical)
    fit = find_recorded(model, data, Settings())
    assert fit is not None and fit.is_recorded
    assert fit.model == "mine" and fit.fixed("genderM") is not None
    assert fit.provenance.settings["recorded"]["data_sha256"] == data.digest()
    # intervals at another level, or tests by another df rule, are another record
    assert find_recorded(model, data, Settings(interval=0.9)) is None
    changed = politeness()
    changed.loc[0, "frequency"] += 1.0
    assert find_recorded(model, prepare(changed, model.spec, model.categorical),
                         Settings()) is None
    other = make_model("x", "frequency ~ gender", ["gender"])
    assert find_recorded(other, prepare(politeness(), other.spec), Settings()) is None


def test_corrupt_or_foreign_records_are_ignored(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"kind": "something-else"}))
    monkeypatch.setenv("PARITY_REFERENCES", str(tmp_path))
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "x": [0.0, 1.0, 0.0, 2.0]})
    model = make_model("m", "y ~ x")
    assert find_recorded(model, prepare(frame, model.spec), Settings()) is None


def test_glmmtmb_records_are_found_for_glmmtmb_only() -> None:
    """One model's lme4 and glmmTMB records live side by side; each engine finds its own,
    and a criterion finds its own."""
    model = next(m for m in seed_models() if m.name == "subject_intercept")
    data = prepare(politeness(), model.spec, model.categorical)
    for engine in ("lme4", "glmmtmb"):
        for reml in (True, False):
            fit = find_recorded(model, data, Settings(reml=reml), engine=engine)
            assert fit is not None and fit.engine == engine
            assert fit.criterion == ("REML" if reml else "ML")
            assert fit.group_effects and fit.fixed_effects_cov


def test_a_recorded_fit_names_its_r_package_and_the_report_its_version() -> None:
    """The shipped records of lme4 and glmmTMB (no R needed): each fit names its own
    package, and the report names each with its own version, never glmmTMB's as lme4's."""
    from parity.reports.content import ReportData, report_blocks
    from parity.reports.markdown import render_markdown

    model = next(m for m in seed_models() if m.name == "subject_intercept")
    data = prepare(politeness(), model.spec, model.categorical)
    fits = [find_recorded(model, data, Settings(), engine=e) for e in ("lme4", "glmmtmb")]
    assert all(f is not None for f in fits)
    lme4, glmmtmb = (f for f in fits if f is not None)
    assert lme4.provenance.settings["recorded"]["package"] == "lme4"
    assert glmmtmb.provenance.settings["recorded"]["package"] == "glmmTMB"
    text = render_markdown(report_blocks(ReportData([lme4, glmmtmb])))
    note = next(line for line in text.splitlines() if line.startswith("**Recorded"))
    assert note.startswith("**Recorded lme4 and glmmTMB numbers:** R was not used")
    assert f"lme4 {lme4.provenance.engine_version})" in note
    assert f"glmmTMB {glmmtmb.provenance.engine_version})" in note
    assert f"lme4 {glmmtmb.provenance.engine_version}" not in note


def test_record_refuses_up_front_naming_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """With live R switched off, `parity record` is refused before anything is fitted
    or written, saying why for each engine (no engine is fitted: this needs no R)."""
    monkeypatch.setenv("PARITY_LME4", "recorded")
    out = tmp_path / "refs"
    with pytest.raises(UsageError) as info:
        record_job(seed_models()[:1], politeness(), Settings(), out, ("lme4", "glmmtmb"))
    message = str(info.value)
    assert "\n" not in message
    assert "cannot record lme4: PARITY_LME4=recorded" in message
    assert "cannot record glmmtmb: PARITY_LME4=recorded" in message
    assert not out.exists()
    from parity.cli import main

    assert main(["record", "--models", "additive", "--engines", "lme4,glmmtmb",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot record glmmtmb: PARITY_LME4=recorded" in err[0]
    assert not out.exists()


@pytest.mark.r
def test_record_without_glmmtmb_names_glmmtmb_not_r(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """R and lme4 present, the R package glmmTMB not (hidden from R's site library):
    the refusal names glmmTMB, says nothing of lme4, and comes before any fit."""
    need("R")
    if glmmtmb_missing():
        pytest.skip(f"glmmtmb: {glmmtmb_missing()}")
    site = tmp_path / "site-library"
    site.mkdir()
    libs = subprocess.run(["Rscript", "-e", "cat(.libPaths(), sep = '\\n')"],
                          capture_output=True, text=True, check=True).stdout.split()
    for lib in map(Path, libs):
        for package in lib.iterdir():
            if package.name != "glmmTMB" and not (site / package.name).exists():
                (site / package.name).symlink_to(package)
    monkeypatch.setenv("R_LIBS_SITE", str(site))
    monkeypatch.setenv("R_LIBS_USER", str(tmp_path / "no-user-library"))
    out = tmp_path / "refs"
    with pytest.raises(UsageError) as info:
        record_job(seed_models()[:1], politeness(), Settings(), out, ("lme4", "glmmtmb"))
    message = str(info.value)
    assert message.startswith("cannot record glmmtmb: the R package glmmTMB is not installed")
    assert "lme4" not in message and "needs R" not in message
    assert not out.exists()
