"""Whole runs through the command line: failed fits exit 1 and are kept, with their
reasons, and an interrupted run leaves no results.json or a complete one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest

from conftest import need
from parity.schema import Status


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "parity.cli", *args]


@pytest.mark.r
def test_failed_fits_exit_1_in_one_line_each_and_are_kept(tmp_path: Path) -> None:
    """A constant response: lme4 stops with an error, statsmodels returns NaN estimates
    without one. Both are recorded as failed, with their reasons, one line each."""
    need("R")
    data = tmp_path / "const.csv"
    data.write_text("y,x,g\n" + "".join(f"5,{i % 7},{'abcde'[i % 5]}\n" for i in range(30)))
    proc = subprocess.run(
        _cli("run", "--data", str(data), "--formula", "y ~ x + (1 | g)", "--engines",
             "lme4,statsmodels", "--no-cache", "--quiet", "--out", str(tmp_path / "o")),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 2 and failed[0].startswith("failed: m1 / lme4: ")
    assert failed[1].startswith("failed: m1 / statsmodels: statsmodels failed (")
    assert "non-finite estimates" in failed[1] or "no SE for" in failed[1]
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["complete"] is True
    assert {f["engine"]: f["status"] for f in doc["fits"]} == {"lme4": "failed",
                                                               "statsmodels": "failed"}


def _start(out: Path, log: Path) -> subprocess.Popen[bytes]:
    """A real run that takes a while (Bambi samples after the frequentist fits), in a
    session of its own so the test can clean up every process it started."""
    return subprocess.Popen(
        _cli("run", "--models", "additive,subject_intercept,subject_slope",
             "--engines", "lme4,statsmodels,bambi", "--draws", "300", "--tune", "300",
             "--chains", "2", "--no-cache", "--out", str(out)),
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)


def _wait_for_fits(proc: subprocess.Popen[bytes], partial: Path, n: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be interrupted")
        try:
            if len(json.loads(partial.read_text())["fits"]) >= n:
                return
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass  # not there yet (a reader never sees half a file: see the assert below)
        time.sleep(0.05)
    pytest.fail("no fits within 240 s")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _check_outputs(out: Path) -> dict[str, object]:
    results = out / "results.json"
    if results.exists():
        assert json.loads(results.read_text())["complete"] is True
    partial = out / "results.partial.json"
    doc = json.loads(partial.read_text())  # whole JSON, never half a file
    assert doc["complete"] is False
    # Every status a fit can have: which fits finish first depends on the machine's load
    # (statsmodels' subject_slope fit is `unconverged` wherever it runs).
    assert doc["fits"] and all(f["status"] in get_args(Status) for f in doc["fits"])
    return doc


@pytest.mark.bambi
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_killing_a_run_leaves_no_results_or_complete_ones(tmp_path: Path,
                                                          how: signal.Signals) -> None:
    need("bambi")
    out, log = tmp_path / "o", tmp_path / "stderr.txt"
    proc = _start(out, log)
    try:
        _wait_for_fits(proc, out / "results.partial.json", 3)
        proc.send_signal(how)
        code = proc.wait(timeout=120)
    finally:
        _stop_group(proc)
    stderr = log.read_text()
    assert not (out / "results.json").exists(), "the run was stopped before it finished"
    doc = _check_outputs(out)
    assert len(doc["fits"]) >= 3  # type: ignore[arg-type]
    if how == signal.SIGTERM:
        assert code == 143, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1].startswith("parity: interrupted; the fits so far")
    else:
        assert code == -signal.SIGKILL
