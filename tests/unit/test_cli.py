"""Bad input: one line, a non-zero exit code, no traceback, nothing fitted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parity.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--out", "{tmp}/o", "--data", "{tmp}/nope.csv", "--formula", "y ~ x"],
         "not found"),
        (["run", "--out", "{tmp}/o", "--formula", "y ~ x"], "--formula needs --data"),
        (["run", "--out", "{tmp}/o", "--models", "nosuch"], "unknown model"),
        (["run", "--out", "{tmp}/o", "--engines", "spss"], "unknown engine"),
        (["run", "--out", "{tmp}/o", "--data", "{tmp}/d.csv",
          "--formula", "y ~ x + system('touch {tmp}/pwned')"], "formula:"),
        (["run", "--out", "{tmp}/o", "--data", "{tmp}/d.csv", "--formula", "y ~ z"],
         "'z' not in the data"),
        (["run", "--out", "{tmp}/o", "--data", "{tmp}/empty.csv", "--formula", "y ~ x"],
         "is empty"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "d.csv").write_text("y,x\n1,2\n2,3\n3,5\n")
    (tmp_path / "empty.csv").write_text("")
    proc = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "o" / "results.json").exists()


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = run_cli("--debug", "run", "--out", str(tmp_path), "--models", "nosuch")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_help_is_quick_and_imports_no_engine() -> None:
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys, parity.cli\n"
         "try:\n    parity.cli.main(['--help'])\nexcept SystemExit: pass\n"
         "print(sorted(m for m in ('jax', 'bambi', 'rpy2', 'statsmodels') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.stdout.strip().endswith("[]")


def test_main_returns_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", "x", "--models", "nosuch"]) == 2
    assert "unknown model" in capsys.readouterr().err
