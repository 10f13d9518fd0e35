"""Regression tests of the hostile pass (issue: reliability), on real statsmodels fits.

Each builds its hostile file in a tmp dir; each failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity.engines.invariance import sleepstudy_like
from parity.errors import DataError
from parity.inputs.resolve import read_csv
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.cache import FitCache
from parity.pipeline.workers import run_models
from parity.settings import Settings
from parity.spec.models import make_model, select


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


# 1. Distinct group ids merge ---------------------------------------------------------------

def test_ids_01_and_1_stay_two_groups(tmp_path: Path) -> None:
    frame = sleepstudy_like()
    ids = {f"s{k:02d}": (f"{k:02d}" if k <= 9 else str(k - 9)) for k in range(1, 19)}
    frame["g"] = frame["g"].map(ids)  # 9 ids "01"…"09", 9 ids "1"…"9"
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    read = read_csv(path, ["g"])
    assert read["g"].nunique() == 18
    fit = run_models([make_model("m", "y ~ x + (1 | g)")], read, ["statsmodels"],
                     Settings()).fits[0]
    assert fit.status == "ok" and fit.n_groups == {"g": 18}


def test_long_ids_with_a_blank_cell_do_not_collapse(tmp_path: Path) -> None:
    frame = sleepstudy_like()
    base = 4_000_000_000_000_000
    frame["g"] = frame["g"].map({f"s{k:02d}": str(base + k) for k in range(1, 19)})
    frame.loc[5, "g"] = None
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    read = read_csv(path, ["g"])
    assert read["g"].dropna().nunique() == 18
    assert str(base + 1) in set(read["g"].dropna())


def test_numeric_text_levels_keep_the_numeric_reference() -> None:
    from parity.rows.prepare import level_order

    assert level_order(pd.Series(["10", "2", "1", "01"])) == ("01", "1", "2", "10")


# 2. The cache re-labels a stored fit for the run that asks ----------------------------

def test_cached_fit_takes_this_runs_model_name_and_formula(tmp_path: Path) -> None:
    cache = FitCache(tmp_path)
    a, b = "frequency ~ gender + attitude", "frequency ~ gender * attitude"
    cats = ("gender", "attitude")
    run_models([make_model("m1", a, cats), make_model("m2", b, cats)], politeness(),
               ["statsmodels"], Settings(), cache=cache)
    again = run_models([make_model("m1", b, cats)], politeness(), ["statsmodels"],
                       Settings(), cache=cache).fits
    assert again[0].from_cache
    assert (again[0].model, again[0].formula) == ("m1", b)
    assert [fe.term for fe in again[0].fixed_effects][-1] == "genderM:attitudepol"


# 5. The cache trusts nothing it cannot verify -----------------------------------------------

@pytest.mark.parametrize("content", ["null", "[]", "\"text\"", "{}",
                                     '{"material": null, "value": {}}'])
def test_cache_entries_that_are_not_fits_are_misses(tmp_path: Path, content: str) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache)
    (entry,) = (tmp_path / "fits").glob("*.json")
    entry.write_text(content)
    fit = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits[0]
    assert fit.status == "ok" and not fit.from_cache


def test_cache_entry_edited_into_valid_json_fails_its_checksum(tmp_path: Path) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    first = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits[0]
    (entry,) = (tmp_path / "fits").glob("*.json")
    doc = json.loads(entry.read_text())
    doc["value"]["fixed_effects"][0]["estimate"] += 1.0
    entry.write_text(json.dumps(doc))
    fit = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits[0]
    assert not fit.from_cache and fit.fixed_effects == first.fixed_effects


def test_cache_entry_with_nan_estimates_is_a_miss(tmp_path: Path) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache)
    (entry,) = (tmp_path / "fits").glob("*.json")
    doc = json.loads(entry.read_text())
    doc["value"]["fixed_effects"][0]["estimate"] = None
    from parity.pipeline.cache import _checksum

    doc["sha256"] = _checksum(doc["value"])  # a well-formed entry of a bad fit
    entry.write_text(json.dumps(doc))
    fit = run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache).fits[0]
    assert not fit.from_cache


def test_a_fifo_as_cache_entry_does_not_hang(tmp_path: Path) -> None:
    models = select(seed_models(), ["additive"])
    cache = FitCache(tmp_path)
    run_models(models, politeness(), ["statsmodels"], Settings(), cache=cache)
    (entry,) = (tmp_path / "fits").glob("*.json")
    entry.unlink()
    os.mkfifo(entry)
    code = ("from pathlib import Path; from parity.pipeline.cache import FitCache; "
            "from parity.pipeline.workers import run_models; "
            "from parity.spec.models import select; "
            "from parity.inputs.seed import politeness, seed_models; from parity.settings import "
            f"Settings; f = run_models(select(seed_models(), ['additive']), politeness(), "
            f"['statsmodels'], Settings(), cache=FitCache(Path({str(tmp_path)!r}))).fits[0];"
            " print(f.status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


# 11. Duplicate column names ------------------------------------------------------------

def test_a_repeated_column_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("y,Days,Days,g\n1,2,3,a\n2,3,4,b\n")
    with pytest.raises(DataError, match="more than one column named 'Days'"):
        read_csv(path)
    out = _cli("run", "--data", str(path), "--formula", "y ~ Days + (1|g)",
               "--engines", "statsmodels", "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "'Days'" in out.stderr and "Traceback" not in out.stderr


# 12. An "ok" fit without finite estimates --------------------------------------------------

def test_a_fit_without_finite_estimates_is_failed() -> None:
    frame = politeness()
    frame.loc[0, "frequency"] = 1e308
    fit = run_models(select(seed_models(), ["additive"]), frame, ["statsmodels"],
                     Settings()).fits[0]
    assert fit.status == "failed"
    assert "non-finite estimates" in (fit.reason or "") and "(Intercept)" in (fit.reason or "")
    assert not any(np.isfinite(fe.estimate) for fe in fit.fixed_effects)  # none kept


# 16. A stray text value in a numeric column --------------------------------------------

def test_stray_text_in_a_numeric_column_is_refused_naming_row_and_value(tmp_path: Path
                                                                        ) -> None:
    frame = sleepstudy_like()
    frame["x"] = frame["x"].astype(object)
    frame.loc[16, "x"] = "n/a?"
    with pytest.raises(DataError, match=r"row 17 is 'n/a\?'"):
        run_models([make_model("m", "y ~ x + (1 | g)")], frame, ["statsmodels"], Settings())
    # Declared categorical, it is a factor as asked.
    small = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                          "k": ["1", "2", "other", "1", "2", "other"]})
    run_models([make_model("m", "y ~ k", ["k"])], small, ["statsmodels"], Settings())


# 10. A factor level holding ", " ----------------------------------------------------------

@pytest.mark.bambi
def test_bambi_maps_levels_that_hold_a_comma() -> None:
    from conftest import need

    need("bambi")
    frame = politeness()
    frame["gender"] = frame["gender"].map({"F": "Smith, J", "M": "Doe, A"})
    model = make_model("m", "frequency ~ gender * attitude", ["gender", "attitude"])
    fit = run_models([model], frame, ["bambi"],
                     Settings(draws=100, tune=100, chains=1, seed=3)).fits[0]
    assert fit.has_numbers, fit.reason
    assert [fe.term for fe in fit.fixed_effects] == [
        "(Intercept)", "genderSmith, J", "attitudepol", "genderSmith, J:attitudepol"]


# 17. Ctrl-C: one line, no worker traceback --------------------------------------------

def test_ctrl_c_prints_no_worker_traceback(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "parity.cli", "run", "--engines", "lme4,statsmodels",
         "--no-cache", "--quiet", "--out", str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(4)  # workers started (R embedded, statsmodels imported), fits under way
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if proc.returncode == 130:
        assert err.strip().splitlines() == [line for line in err.strip().splitlines()
                                            if line.startswith("parity: interrupted")]
    else:
        assert proc.returncode == 0, err  # it finished before the signal
