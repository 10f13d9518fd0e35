"""`parity study` on a real cluster (issue 25, "On a real cluster"): a scheduler and two
workers started as docs/study.md tells users to, a lost scheduler, a Ctrl-C, and batch
files edited between two runs. Real engines (lme4, statsmodels) throughout."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import r_missing

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"
dask_missing = None if importlib.util.find_spec("distributed") else \
    "dask.distributed is not installed (pip install 'parity[study]')"
cli_missing = None if DASK.exists() or shutil.which("dask") else \
    f"the `dask` command is not installed beside {sys.executable}"
_missing = dask_missing or r_missing()
needs_cluster = pytest.mark.skipif(_missing is not None, reason=str(_missing))
ARGS = ("--model", "subject_intercept", "--groups", "6,8", "--replicates", "3",
        "--engines", "lme4,statsmodels", "--quiet")


def _env() -> dict[str, str]:
    """This test's environment, with parity's source first on the path, so that the
    scheduler and workers import the parity under test (they unpickle its tasks)."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
                           if p)
    return {**os.environ, "PYTHONPATH": path}


def _study(out: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", "study", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=timeout,
                          env=_env())


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _cluster(tmp: Path, workers: int = 2) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """`dask scheduler` and `workers` × `dask worker` (one process, one thread each),
    as docs/study.md starts them; the address and the scheduler's process."""
    dask = str(DASK if DASK.exists() else shutil.which("dask"))
    file = tmp / "scheduler.json"
    procs: list[subprocess.Popen[Any]] = []
    logs = tmp / "cluster-logs"
    logs.mkdir()
    try:
        procs.append(subprocess.Popen(
            [dask, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file",
             str(file)], env=_env(), stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("w")))
        deadline = time.monotonic() + 60
        while not file.is_file() or not file.read_text().strip():
            assert procs[0].poll() is None, (logs / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler wrote no address"
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for k in range(workers):
            procs.append(subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(file), "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard"], env=_env(),
                stdout=subprocess.DEVNULL, stderr=(logs / f"worker{k}.log").open("w")))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, procs[0]
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _rows(out: Path) -> list[dict[str, Any]]:
    doc = json.loads((out / "study.json").read_text())
    assert doc["rows"]
    return list(doc["rows"])


@needs_cluster
@pytest.mark.skipif(cli_missing is not None, reason=str(cli_missing))
def test_a_study_on_a_started_cluster_equals_one_on_a_local_cluster(
        tmp_path: Path) -> None:
    # Without lme4's SD profile (--sd-intervals none), which test_study_runs.py's
    # LocalCluster study covers.
    args = (*ARGS, "--sd-intervals", "none")
    with _cluster(tmp_path) as (address, _scheduler):
        remote = _study(tmp_path / "remote", *args, "--scheduler", address)
    assert remote.returncode == 0, remote.stderr[-2000:]
    local = _study(tmp_path / "local", *args, "--workers", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    doc = json.loads((tmp_path / "remote" / "study.json").read_text())
    assert doc["scheduler"]["kind"] == "existing cluster"
    assert doc["scheduler"]["address"] == address and doc["scheduler"]["workers"] == 2
    # lme4 and statsmodels find the same optimum of the same replicate.
    rows = [r for r in doc["rows"] if r["engine"] == "statsmodels"]
    assert rows and all(r["verdict"] == "agree" for r in rows)
    # Without the profile lme4's SDs have no interval, and the report says so.
    assert doc["sd_intervals"] == "none"
    sds = [r for r in doc["rows"] if r["quantity"] == "sd" and r["engine"] == "lme4"]
    assert sds and all(r["covered"] is None and r["lower"] is None for r in sds)
    assert "--sd-intervals none" in (tmp_path / "remote" / "study.md").read_text()
    # The rows carry no timing: the same seed gives the same numbers on either cluster.
    assert _rows(tmp_path / "remote") == _rows(tmp_path / "local")
    assert {(r["groups"], r["replicate"]) for r in doc["rows"]} == \
        {(g, k) for g in (6, 8) for k in range(3)}


@needs_cluster
@pytest.mark.skipif(cli_missing is not None, reason=str(cli_missing))
def test_a_lost_scheduler_is_one_line_and_keeps_the_finished_batches(
        tmp_path: Path) -> None:
    out = tmp_path / "study"
    batches = out / "study.batches"
    with _cluster(tmp_path, workers=1) as (address, scheduler):
        err = (tmp_path / "stderr").open("w+")
        study = subprocess.Popen(
            [sys.executable, "-m", "parity.cli", "study", "--out", str(out),
             "--model", "subject_intercept", "--groups", "6,8,12", "--replicates", "20",
             "--batch-size", "1", "--engines", "lme4,statsmodels", "--quiet",
             "--scheduler", address], env=_env(), stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 300
            while not (batches.is_dir() and len(list(batches.glob("*.json"))) >= 2):
                assert study.poll() is None, (tmp_path / "stderr").read_text()
                assert time.monotonic() < deadline, "no batch finished"
                time.sleep(0.2)
            scheduler.kill()
            code = study.wait(timeout=180)
        finally:
            _stop(study)
    stderr = (tmp_path / "stderr").read_text()
    assert code == 1, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [x for x in stderr.splitlines() if x.startswith("parity:")]
    assert len(lines) == 1 and "stopped the study" in lines[0], stderr[-2000:]
    assert len(list(batches.glob("*.json"))) >= 2
    assert not (out / "study.json").exists()


def _as_a_shell_starts_it() -> None:
    """The study starts with SIGINT at its default and unblocked, as a shell starts a
    command: whatever this test process has done to SIGINT (an earlier test's embedded
    R or worker set-up) must not be inherited, or the study would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@needs_cluster
@pytest.mark.parametrize("marker, after", [("fitting lme4", 0.5), ("study: 0/", 0.3)],
                         ids=["while the truth is fitted", "as the workers fit"])
def test_ctrl_c_is_one_line_without_a_traceback(tmp_path: Path, marker: str,
                                                after: float) -> None:
    """SIGINT to the study's process group (as a terminal's Ctrl-C reaches the study and
    its Dask workers) `after` seconds after `marker` is on stderr. Before the fix, the
    workers each printed a KeyboardInterrupt traceback; a Ctrl-C in the seconds the
    workers start is ignored with them, so it is sent again if the study goes on."""
    err = (tmp_path / "stderr").open("w+")
    study = subprocess.Popen(
        [sys.executable, "-m", "parity.cli", "study", "--out", str(tmp_path / "s"),
         "--model", "subject_intercept", "--groups", "6,8", "--replicates", "20",
         "--engines", "lme4,statsmodels", "--workers", "2"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        preexec_fn=_as_a_shell_starts_it)
    try:
        deadline = time.monotonic() + 180
        while marker not in (tmp_path / "stderr").read_text():
            assert study.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(after)
        code = None
        for _ in range(3):
            os.killpg(study.pid, signal.SIGINT)
            try:
                code = study.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        time.sleep(2)  # what the workers print as they stop comes after the study's exit
    finally:
        if study.poll() is None:
            os.killpg(study.pid, signal.SIGKILL)
            study.wait()
    stderr = (tmp_path / "stderr").read_text()
    assert code == 130, (f"SIGINT here: {signal.getsignal(signal.SIGINT)}, blocked: "
                         f"{signal.pthread_sigmask(signal.SIG_BLOCK, set())}\n"
                         f"{stderr[-2000:]}")
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    lines = [x for x in stderr.splitlines() if x.startswith("parity:")]
    assert len(lines) == 1 and "interrupted" in lines[0], stderr[-2000:]


@needs_cluster
def test_edited_batch_files_are_refitted_and_stale_figures_cleared(tmp_path: Path) -> None:
    out = tmp_path / "study"
    args = (*ARGS, "--groups", "6", "--workers", "1", "--batch-size", "1")
    first = _study(out, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = _rows(out)
    batches = out / "study.batches"
    edited = batches / "g6-b0000-lme4.json"
    doc = json.loads(edited.read_text())
    doc["fits"][0]["fixed_effects"][0]["estimate"] = 0.0
    edited.write_text(json.dumps(doc))
    nulled = batches / "g6-b0001-statsmodels.json"
    doc = json.loads(nulled.read_text())
    doc["fits"][0]["fixed_effects"][0]["estimate"] = None
    nulled.write_text(json.dumps(doc))
    # A directory where a batch file goes: read as a refit, and its save then fails.
    (batches / "g6-b0002-lme4.json").unlink()
    (batches / "g6-b0002-lme4.json").mkdir()
    (out / "figures" / "differences.png").write_bytes(b"an older study's figure")

    second = _study(out, *args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    warnings = [x for x in second.stderr.splitlines() if x.startswith("study: warning:")]
    assert len(warnings) == 4, second.stderr  # shown with --quiet too
    assert any(str(edited) in w and "sha256" in w for w in warnings)
    assert any(str(nulled) in w and "sha256" in w for w in warnings)
    assert any("g6-b0002-lme4.json is a directory" in w for w in warnings)
    assert any("g6-b0002-lme4.json could not be saved" in w for w in warnings)
    again = json.loads((out / "study.json").read_text())
    assert again["scheduler"]["fitted_batches"] == 3
    assert again["scheduler"]["unsaved_batches"] == 1
    assert again["rows"] == rows  # the refits, not the edits
    assert not (out / "figures" / "differences.png").exists()
