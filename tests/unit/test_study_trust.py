"""A study's ownership of its output and its distrust of what it reads back (issue 25,
"Ownership and trust, as in `parity run`"): each test is a defect of the hostile pass,
which failed before its fix.

The batch files are real: statsmodels' fits of a replicate (statsmodels is a Python
engine, so no R is needed). The refusals run the `parity study` command, and each is
said before the truth is fitted, so none needs R either."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import engine_missing
from parity.errors import UsageError
from parity.inputs.seed import politeness, seed_models
from parity.pipeline.outdir import claimed, clear_study
from parity.rows.prepare import prepare
from parity.schema import Fit
from parity.settings import Settings
from parity.study.checks import design_rows
from parity.study.cluster import probe_scheduler
from parity.study.design import make_design, with_response
from parity.study.store import BatchStore, batch_key, checksum
from parity.study.tasks import Batch

MODEL = {m.name: m for m in seed_models()}["subject_intercept"]


def _study(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`parity study` without --quiet, so its stage lines show how far it got."""
    return subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                           "subject_intercept", "--engines", "lme4,statsmodels",
                           "--groups", "6", "--replicates", "2", "--workers", "1",
                           "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300)


def _refused_up_front(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [x for x in done.stderr.splitlines() if x.startswith("parity:")]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "fitting lme4" not in done.stderr  # refused before the truth fit


# 1. Ownership of --out -------------------------------------------------------------------

def test_an_out_that_is_a_file_is_refused_before_the_truth_fit(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("mine")
    _refused_up_front(_study(tmp_path / "f"), "is a file")
    assert (tmp_path / "f").read_text() == "mine"


def test_study_batches_that_is_a_file_is_refused_before_any_fit(tmp_path: Path) -> None:
    (tmp_path / "study.batches").write_text("mine")
    (tmp_path / "study.json").write_text("{}")
    _refused_up_front(_study(tmp_path), "not the folder of a study's batches")
    # Refused before the directory was claimed: nothing of the older study is cleared.
    assert (tmp_path / "study.json").read_text() == "{}"


def test_a_second_study_into_one_out_is_refused(tmp_path: Path) -> None:
    with claimed(tmp_path, clear=clear_study):  # the first study, still running
        done = _study(tmp_path)
    _refused_up_front(done, "is writing to")


def test_claiming_for_a_study_clears_an_older_study_but_keeps_its_batches(
        tmp_path: Path) -> None:
    older = ["study.json", "study.md", "study.html", "tolerances.calibrated.toml",
             "figures/coverage.png", "figures/bias.png", "figures/differences.png"]
    for name in [*older, "study.batches/g6-b0000-lme4.json", "figures/mine.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("old")
    with claimed(tmp_path, clear=clear_study):
        assert not [n for n in older if (tmp_path / n).exists()]
        assert (tmp_path / "study.batches/g6-b0000-lme4.json").read_text() == "old"
        assert (tmp_path / "figures/mine.txt").exists()  # not a file parity writes


# 2. Batch files: nothing read back is trusted without a check ------------------------------

@pytest.fixture(scope="module")
def batch() -> tuple[Batch, list[Fit], str]:
    """A real batch: statsmodels' fits of two replicates of the six-group design."""
    why = engine_missing("statsmodels")
    if why:
        pytest.skip(why)
    from parity.pipeline.workers import fit_one

    original = prepare(politeness(), MODEL.spec, MODEL.categorical, MODEL.family,
                       MODEL.trials)
    design = make_design(MODEL, original, 6)
    rng = np.random.default_rng(1)
    y0 = design.data.frame[MODEL.spec.response].to_numpy(dtype=float)
    ys = (y0, y0 + rng.normal(0, 5, len(y0)))
    b = Batch(6, 0, "statsmodels", (0, 1), ys, (11, 12))
    settings = Settings()
    fits = [fit_one("statsmodels", MODEL, with_response(design.data, "frequency", y),
                    settings) for y in ys]
    assert all(f.status == "ok" for f in fits), [f.reason for f in fits]
    return b, fits, batch_key(b, MODEL, design.data.digest(), settings)


def _resealed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with a checksum that matches its (edited) content: what a forger, or
    a bug writing the file, would leave; the checks past the checksum must catch it."""
    content = {k: v for k, v in doc.items() if k != "sha256"}
    return {**content, "sha256": checksum(content)}


def _edit_estimate(doc: dict[str, Any]) -> dict[str, Any]:
    doc["fits"][0]["fixed_effects"][0]["estimate"] += 1.0
    return doc


def _edit_status(doc: dict[str, Any]) -> dict[str, Any]:
    doc["fits"][1]["status"] = "failed"
    return doc


def _null_estimate(doc: dict[str, Any]) -> dict[str, Any]:
    doc["fits"][0]["fixed_effects"][1]["estimate"] = None
    return doc


TAMPERINGS = {
    "edited estimate": (_edit_estimate, "does not match its sha256"),
    "edited status": (_edit_status, "does not match its sha256"),
    "null estimate": (_null_estimate, "does not match its sha256"),
    "null estimate, resealed": (lambda d: _resealed(_null_estimate(d)),
                                "an ok fit without an estimate"),
    "a fit short, resealed": (lambda d: _resealed({**d, "fits": d["fits"][:1]}),
                              "holds 1 fits for 2 replicates"),
    "another engine's fit, resealed": (
        lambda d: _resealed({**d, "fits": [{**f, "engine": "lme4"} for f in d["fits"]]}),
        "holds a fit by 'lme4'"),
    "other replicates, resealed": (lambda d: _resealed({**d, "replicates": [5, 6]}),
                                   "another design, engine or replicates"),
    "a fit that is not a fit, resealed": (lambda d: _resealed({**d, "fits": [{}, {}]}),
                                          "a fit that cannot be read"),
    "no checksum": (lambda d: {k: v for k, v in d.items() if k != "sha256"},
                    "no fits or no sha256"),
    "a list": (lambda d: [d], "not a JSON object"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_batch_file_is_refitted_saying_why(
        tmp_path: Path, batch: tuple[Batch, list[Fit], str], name: str) -> None:
    b, fits, key = batch
    store = BatchStore(tmp_path)
    store.make()
    assert store.save(b, key, fits) is None
    loaded = store.load(b, key)
    assert loaded.problem is None and loaded.fits == fits  # a whole file is trusted
    edit, why = TAMPERINGS[name]
    doc = json.loads(store.path(b).read_text())
    store.path(b).write_text(json.dumps(edit(doc)))
    loaded = store.load(b, key)
    assert loaded.fits is None
    assert loaded.problem is not None and why in loaded.problem


def test_unreadable_batch_files_are_refitted_saying_why(
        tmp_path: Path, batch: tuple[Batch, list[Fit], str]) -> None:
    b, fits, key = batch
    store = BatchStore(tmp_path)
    store.make()
    store.path(b).write_bytes(b"\xff\xfe not json")
    assert store.load(b, key).problem == "is not JSON"
    store.path(b).unlink()
    store.path(b).mkdir()
    assert store.load(b, key).problem == "is a directory, not a batch file"


def test_a_batch_file_for_other_options_is_refitted_silently(
        tmp_path: Path, batch: tuple[Batch, list[Fit], str]) -> None:
    b, fits, key = batch
    store = BatchStore(tmp_path)
    store.make()
    store.save(b, key, fits)
    loaded = store.load(b, "another key")
    assert loaded.fits is None and loaded.problem is None
    assert store.load(b, key).fits == fits


def test_a_batch_with_sd_profiles_is_not_resumed_as_one_without(
        batch: tuple[Batch, list[Fit], str]) -> None:
    """--sd-intervals none and profile fit different things: neither resumes the other."""
    from dataclasses import replace

    b, _, key = batch
    design = make_design(MODEL, prepare(politeness(), MODEL.spec, MODEL.categorical), 6)
    other = batch_key(replace(b, sd_intervals=False), MODEL, design.data.digest(),
                      Settings())
    assert other != key


def test_a_save_that_fails_says_why_and_raises_nothing(
        tmp_path: Path, batch: tuple[Batch, list[Fit], str]) -> None:
    b, fits, key = batch
    store = BatchStore(tmp_path)
    store.make()
    store.path(b).mkdir()  # a directory where the file goes: the rename fails
    why = store.save(b, key, fits)
    assert why is not None and "Error" in why


# 3. Sizes bounded before planning ----------------------------------------------------------

@pytest.mark.parametrize("groups", [4, 6, 7, 12, 25, 50])
def test_design_rows_counts_the_rows_make_design_builds(groups: int) -> None:
    original = prepare(politeness(), MODEL.spec, MODEL.categorical, MODEL.family,
                       MODEL.trials)
    assert design_rows(original, "subject", groups) == \
        make_design(MODEL, original, groups).n_obs


# 4. --scheduler aimed at something that is not Dask ----------------------------------------

@contextmanager
def _server(reply: bytes | None) -> Iterator[str]:
    """A TCP server on localhost that answers every connection with `reply` (None: says
    nothing), and its address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            if reply is not None:
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


def test_a_service_that_answers_junk_is_not_a_scheduler() -> None:
    with _server(HTTP) as address, pytest.raises(UsageError, match="not as Dask does"):
        probe_scheduler(address, seconds=5)


def test_a_service_that_says_nothing_is_refused_within_the_time() -> None:
    with _server(None) as address:
        started = time.monotonic()
        with pytest.raises(UsageError, match=r"within 1s \(it accepted the connection"):
            probe_scheduler(address, seconds=1)
        assert time.monotonic() - started < 5


def test_a_closed_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed
    with pytest.raises(UsageError, match="no Dask scheduler answered"):
        probe_scheduler(f"tcp://127.0.0.1:{port}", seconds=2)


def test_a_junk_scheduler_is_one_line_before_the_truth_fit(tmp_path: Path) -> None:
    with _server(HTTP) as address:
        done = subprocess.run(
            [sys.executable, "-m", "parity.cli", "study", "--model", "subject_intercept",
             "--engines", "lme4,statsmodels", "--groups", "6", "--replicates", "2",
             "--scheduler", address, "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=120)
    _refused_up_front(done, f"no Dask scheduler answered at {address}")
    assert "MemoryError" not in done.stderr
