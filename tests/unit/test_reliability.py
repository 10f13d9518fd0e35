"""Regression tests of the hostile pass (issue: reliability) that need no engine.

Each builds its hostile input in a tmp dir; each failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from parity.errors import DataError, UsageError
from parity.settings import setting_problem


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def one_line_exit_2(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


# 4. Two coefficients with one name -----------------------------------------------------------

def test_coefficient_name_clash_is_refused_naming_both_sources() -> None:
    from parity.rows.prepare import prepare
    from parity.spec.grammar import parse_formula

    frame = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6, 7, 8],
                          "a": ["b0", "b1"] * 4, "ab": ["0", "0", "1", "1"] * 2})
    with pytest.raises(DataError, match=r"'ab1' \(a = 'b1' and ab = '1'\)"):
        prepare(frame, parse_formula("y ~ a + ab"), ["ab"])


# 7. The output directory: a lock, and no leftovers --------------------------------------

def test_a_held_output_directory_is_refused(tmp_path: Path) -> None:
    from parity.pipeline.outdir import claimed

    with claimed(tmp_path), pytest.raises(UsageError, match="another parity run"), \
            claimed(tmp_path):
        pass
    with claimed(tmp_path):  # released when the first run ended
        pass


def test_a_new_run_removes_the_old_runs_reports(tmp_path: Path) -> None:
    from parity.pipeline.outdir import claimed

    for name in ("results.json", "comparison.md", "comparison.html", "comparison.csv"):
        (tmp_path / name).write_text("old")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "old_model.png").write_bytes(b"png")
    (tmp_path / "draws").mkdir()
    (tmp_path / "draws" / "old_model.bambi.nc").write_bytes(b"nc")
    (tmp_path / "notes.txt").write_text("mine")
    with claimed(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".parity.lock", "draws", "figures",
                                                         "notes.txt"]
    assert not list((tmp_path / "figures").iterdir())
    assert not list((tmp_path / "draws").iterdir())


def test_a_second_cli_run_on_a_locked_directory_exits_2(tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".parity.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        result = cli("run", "--models", "additive", "--engines", "statsmodels", "--no-cache",
                     "--quiet", "--out", str(out))
    one_line_exit_2(result, "another parity run")


# 8. `parity record` never replaces a record of other data ---------------------------------

def test_record_refuses_to_overwrite_another_datasets_record(tmp_path: Path) -> None:
    from parity.engines.recorded import check_overwrite, record_name
    from parity.inputs.seed import politeness
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.spec.models import make_model

    model = make_model("m1", "frequency ~ gender", ["gender"])
    data = prepare(politeness(), model.spec, model.categorical)
    (tmp_path / record_name("m1", None)).write_text(json.dumps({
        "kind": "parity-lme4-reference", "engine_formula": "y ~ 1 + x",
        "data_sha256": "another data set", "reml": True, "interval": 0.94}))
    with pytest.raises(UsageError, match="records another model or data"):
        check_overwrite(tmp_path, model, data, Settings(), None)
    check_overwrite(tmp_path, make_model("m2", "frequency ~ gender", ["gender"]), data,
                    Settings(), None)  # another name: nothing to overwrite


# 9. Recorded references: bad records skipped, only lme4's, a manifest -------------------

def _reference_env(tmp_path: Path, files: dict[str, object]) -> Path:
    refs = tmp_path / "refs"
    refs.mkdir()
    for name, content in files.items():
        (refs / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return refs


def test_bad_records_are_skipped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from parity.engines.recorded import find_recorded, shipped_dir, skipped_records
    from parity.inputs.seed import politeness, seed_models
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.spec.models import select

    good = json.loads((shipped_dir() / "additive.json").read_text())
    not_lme4 = json.loads(json.dumps(good))
    not_lme4["fit"]["engine"] = "statsmodels"
    no_fit = {k: v for k, v in good.items() if k != "fit"}
    refs = _reference_env(tmp_path, {"a_garbage.json": "{ not json",
                                     "b_statsmodels.json": not_lme4, "c_nofit.json": no_fit})
    monkeypatch.setenv("PARITY_REFERENCES", str(refs))
    (model,) = select(seed_models(), ["additive"])
    data = prepare(politeness(), model.spec, model.categorical)
    fit = find_recorded(model, data, Settings())
    assert fit is not None and fit.engine == "lme4"
    assert fit.provenance.settings["recorded"]["path"].endswith("additive.json")
    skipped = " ".join(skipped_records())
    assert "a_garbage.json" in skipped and "b_statsmodels.json" in skipped
    assert "c_nofit.json" in skipped
    assert any("b_statsmodels.json" in w for w in fit.diagnostics.warnings)


def test_shipped_references_match_their_manifest() -> None:
    from parity.engines.recorded import MANIFEST, file_sha256, shipped_dir

    manifest = json.loads((shipped_dir() / MANIFEST).read_text())["sha256"]
    records = sorted(p.name for p in shipped_dir().glob("*.json") if p.name != MANIFEST)
    assert sorted(manifest) == records
    for name, digest in manifest.items():
        assert file_sha256(shipped_dir() / name) == digest, name


def test_an_edited_record_fails_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    import shutil

    from parity.engines.recorded import find_recorded, shipped_dir, write_manifest
    from parity.inputs.seed import politeness, seed_models
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.spec.models import select

    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(shipped_dir() / "additive.json", refs / "mine.json")
    write_manifest(refs)
    doc = json.loads((refs / "mine.json").read_text())
    doc["fit"]["fixed_effects"][0]["estimate"] += 1.0
    (refs / "mine.json").write_text(json.dumps(doc))
    monkeypatch.setenv("PARITY_REFERENCES", str(refs))
    (model,) = select(seed_models(), ["additive"])
    fit = find_recorded(model, prepare(politeness(), model.spec, model.categorical),
                        Settings())
    assert fit is not None and not fit.provenance.settings["recorded"]["path"].endswith(
        "mine.json")


# 13. `parity diff` on malformed input: exit 2, one line ---------------------------------

@pytest.mark.parametrize("doc", [
    {"schema_version": 1, "fits": [1, 2]},
    {"schema_version": 1, "fits": [{"model": "m", "formula": "y ~ x", "engine": "lme4",
                                    "status": "ok", "provenance": "text"}]},
    {"schema_version": 1, "fits": [], "comparisons": [7]},
    {"schema_version": 1, "complete": False, "fits": []},
])
def test_diff_of_malformed_results_exits_2(tmp_path: Path, doc: dict[str, object]) -> None:
    good = {"schema_version": 1, "fits": [], "comparisons": []}
    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(doc))
    one_line_exit_2(cli("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")))


def test_diff_of_deeply_nested_json_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "b.json").write_text(json.dumps({"schema_version": 1, "fits": []}))
    one_line_exit_2(cli("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")))


# 14. Bad paths are found before any fit --------------------------------------------------

def test_out_that_is_a_file_or_under_one_exits_2_before_fitting(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    for out in (file, file / "sub"):
        start = time.perf_counter()
        result = cli("run", "--models", "additive", "--engines", "statsmodels", "--quiet",
                     "--no-cache", "--out", str(out))
        one_line_exit_2(result, "--out")
        assert time.perf_counter() - start < 60
    one_line_exit_2(cli("record", "--models", "additive", "--out", str(file)), "--out")


def test_tolerances_that_is_a_directory_exits_2(tmp_path: Path) -> None:
    one_line_exit_2(cli("run", "--models", "additive", "--engines", "statsmodels",
                        "--tolerances", str(tmp_path), "--out", str(tmp_path / "o")),
                    "is a directory")


@pytest.mark.parametrize("text, needle", [('tool = "x"\n', "must be a table"),
                                          ("[tool.parity]\ntolerence = 1\n", "unknown key")])
def test_bad_pyproject_exits_2(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    one_line_exit_2(cli("run", "--models", "additive", "--engines", "statsmodels",
                        "--out", str(tmp_path / "o"), cwd=tmp_path), needle)


# 15. Settings and options ------------------------------------------------------------------

def test_interval_too_close_to_one_is_refused() -> None:
    assert setting_problem("interval", 0.9999999999999999) is not None
    assert setting_problem("interval", float("nan")) is not None
    assert setting_problem("interval", 0.94) is None


def test_nan_tolerance_is_refused(tmp_path: Path) -> None:
    from parity.compare.tolerances import load_policy

    bad = tmp_path / "t.toml"
    bad.write_text("[frequentist-frequentist.estimate]\nrtol = nan\n")
    with pytest.raises(UsageError, match="finite"):
        load_policy(bad, project=tmp_path / "none.toml")


def test_a_repeated_engine_is_refused(tmp_path: Path) -> None:
    one_line_exit_2(cli("run", "--models", "additive", "--engines", "lme4,lme4",
                        "--out", str(tmp_path)), "more than once")


@pytest.mark.parametrize("kwargs", [{"draws": -5}, {"chains": 0}, {"interval": 2}])
def test_assert_parity_checks_its_settings(kwargs: dict[str, object]) -> None:
    from parity.testing import settings_from

    with pytest.raises(UsageError, match=next(iter(kwargs))):
        settings_from(kwargs)


def test_draws_that_cannot_fit_in_memory_are_refused() -> None:
    from parity.engines.limits import check_memory
    from parity.inputs.seed import politeness, seed_models
    from parity.settings import Settings

    with pytest.raises(UsageError, match="GiB"):
        check_memory(seed_models(), politeness(), ["bambi"], Settings(draws=100_000_000))
    check_memory(seed_models(), politeness(), ["bambi"], Settings())


# 17. Workers ignore Ctrl-C (the parent stops them) ------------------------------------------

def test_workers_ignore_sigint() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from parity.pipeline.workers import _init_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(None, 1)) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN


# 6. Orphans: a worker dies with its parent --------------------------------------------------

def test_a_worker_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, time\n"
        "from parity.pipeline.workers import _Pools\n"
        "if __name__ == '__main__':\n"
        "    pools = _Pools(1, None, 1)\n"
        "    pid = pools.get('statsmodels').submit(os.getpid).result()\n"
        "    print(pid, flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return False
        return state not in ("Z", "X")

    deadline = time.monotonic() + 15
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(worker), "the worker outlived its parent"


# 18. A warm rerun starts no Rscript ---------------------------------------------------------

def test_r_fingerprint_is_read_from_disk_on_a_warm_run(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from parity.pipeline import cache

    fake = tmp_path / "bin" / "Rscript"
    fake.parent.mkdir()
    calls = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho run >> {calls}\nprintf 'R 9|1.0|1.0'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    for _ in range(3):
        cache.r_fingerprint.cache_clear()
        assert cache.r_fingerprint() == "R 9|1.0|1.0"
    assert calls.read_text().count("run") == 1
    os.utime(fake, ns=(time.time_ns(), time.time_ns() + 10**9))  # R reinstalled
    cache.r_fingerprint.cache_clear()
    cache.r_fingerprint()
    assert calls.read_text().count("run") == 2
    cache.r_fingerprint.cache_clear()


# Decisions: a run that compared nothing; no file content in errors ------------------------

def test_errors_never_quote_the_first_line_of_a_non_csv(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:TOPSECRET:0:0:root:/root:/bin/bash\nline2\n")
    out = cli("run", "--data", str(secret), "--formula", "y ~ x", "--engines", "statsmodels",
              "--out", str(tmp_path / "o"))
    one_line_exit_2(out)
    assert "TOPSECRET" not in out.stderr


def test_nothing_compared_is_not_success(tmp_path: Path) -> None:
    """lme4 forced to recorded references, none matching: lme4 is skipped, statsmodels
    has nothing to be compared with, and the exit code says so."""
    data = tmp_path / "d.csv"
    pd.DataFrame({"y": [1.0, 2.5, 2.9, 4.2, 5.1, 6.3], "x": [1.0, 2, 3, 4, 5, 6]}).to_csv(
        data, index=False)
    env = {**os.environ, "PARITY_LME4": "recorded"}
    out = subprocess.run([sys.executable, "-m", "parity.cli", "run", "--data", str(data),
                          "--formula", "y ~ x", "--engines", "lme4,statsmodels", "--quiet",
                          "--no-cache", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "nothing was compared" in out.stderr and "lme4" in out.stderr


def test_draws_that_cannot_be_saved_leave_the_fit_standing(tmp_path: Path) -> None:
    """Nothing computed is lost: a NetCDF writer that fails costs the draws file only,
    with a warning that says why, and Run.idata repeats it."""
    from parity.api import Run
    from parity.engines.bambi import _save_draws
    from parity.schema import Fit, RunResults
    from parity.settings import Settings

    class NoWriter:
        def to_netcdf(self, path: str) -> None:
            raise ValueError("none of the suitable backend libraries are installed")

    fit = Fit(model="m1", formula="y ~ x", engine="bambi", status="ok", reason=None,
              n_obs=10, n_dropped=0)
    kept = _save_draws(fit, NoWriter(), Settings(save_draws=str(tmp_path)))
    assert kept.status == "ok" and "draws_file" not in kept.provenance.settings
    assert any("draws not saved" in w and "backend" in w for w in kept.diagnostics.warnings)
    with pytest.raises(DataError, match="draws not saved"):
        Run(RunResults((kept,))).idata("m1")
