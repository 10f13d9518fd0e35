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


# --- Broken input of every kind (issue: "clear errors") ---------------------------------

GOOD = "y,x,g,c,s\n" + "".join(
    f"{i % 7 + 0.5 * i},{i % 5},g{i % 4},k,{i % 3}\n" for i in range(24))


def files(tmp: Path) -> None:
    (tmp / "d.csv").write_text(GOOD)
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text("y,x\n")
    (tmp / "binary.csv").write_bytes(b"y,x\n\xff\xfe\x00\x81,\x92\n")
    (tmp / "adir.csv").mkdir()
    (tmp / "text.csv").write_text("y,x\n" + "".join(f"v{i},{i}\n" for i in range(10)))
    (tmp / "few.csv").write_text("y,x,g\n1,1,a\n2,2,b\n3,3,c\n4,4,d\n")
    (tmp / "dots.csv").write_text("Reaction.Time,Days\n" + "".join(
        f"{i * 1.5},{i}\n" for i in range(10)))
    (tmp / "semi.csv").write_text("y;x\n1;2\n3;4\n")
    (tmp / "sigma.csv").write_text("y,sigma\n" + "".join(f"{i},{i % 3}\n" for i in range(9)))
    (tmp / "bad.toml").write_text('data = "d.csv"\ndrwas = 3\n[models]\nm = "y ~ x"\n')


BROKEN = [
    # file missing or unreadable, empty
    (["--data", "{tmp}/nope.csv", "--formula", "y ~ x"], "not found"),
    (["--data", "{tmp}/adir.csv", "--formula", "y ~ x"], "is not a file"),
    (["--data", "{tmp}/binary.csv", "--formula", "y ~ x"], "not a readable CSV"),
    (["--data", "{tmp}/empty.csv", "--formula", "y ~ x"], "is empty"),
    (["--data", "{tmp}/header.csv", "--formula", "y ~ x"], "has no rows"),
    (["--data", "{tmp}/semi.csv", "--formula", "y ~ x"], "separated by ';'"),
    # columns
    (["--data", "{tmp}/d.csv", "--formula", "y ~ nosuch"], "'nosuch' not in the data"),
    (["--data", "{tmp}/text.csv", "--formula", "y ~ x"], "'y' is not numeric"),
    (["--data", "{tmp}/d.csv", "--formula", "y ~ x + c"], "'c' has only one level"),
    (["--data", "{tmp}/d.csv", "--formula", "y ~ x", "--categorical", "nosuch"],
     "categorical column(s) 'nosuch' not in the data"),
    (["--data", "{tmp}/dots.csv", "--formula", "Reaction.Time ~ Days"],
     "'Reaction.Time' (rename it, e.g. to 'Reaction_Time')"),
    # too few rows or groups
    (["--data", "{tmp}/few.csv", "--formula", "y ~ x + g"], "4 complete rows for 5"),
    (["--data", "{tmp}/few.csv", "--formula", "y ~ x + (1 | g)"], "4 levels for 4"),
    (["--data", "{tmp}/d.csv", "--formula", "y ~ x + (1 | c)"],
     "grouping factor 'c' has only one level"),
    (["--data", "{tmp}/d.csv", "--formula", "y ~ g:s", "--categorical", "s"],
     "combinations of the columns"),
    # models an engine cannot express
    (["--data", "{tmp}/sigma.csv", "--formula", "y ~ sigma"], "Bambi cannot fit"),
    (["--data", "{tmp}/d.csv", "--formula", "y ~ 0 + (1 | g)"], "no fixed terms"),
    # options
    (["--data", "{tmp}/d.csv", "--formula", "y ~ x", "--draws", "0"], "--draws must be"),
    (["--data", "{tmp}/d.csv", "--r-dataset", "lme4::cbpp", "--formula", "y ~ x"],
     "not both"),
    (["--r-dataset", "lme4", "--formula", "y ~ x"], "not PKG::NAME"),
    (["--r-dataset", "lme4::cbpp;system('touch {tmp}/pwned')", "--formula", "y ~ x"],
     "not PKG::NAME"),
    (["--r-dataset", "lme4::cbpp"], "need at least one --formula"),
    (["--config", "{tmp}/nope.toml"], "not found"),
    (["--config", "{tmp}/bad.toml"], "unknown key(s) 'drwas'"),
    (["--config", "{tmp}/bad.toml", "--models", "other"], "unknown key(s)"),
]


@pytest.mark.parametrize(("args", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_broken_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    files(tmp_path)
    out = tmp_path / "o"
    proc = run_cli("run", "--out", str(out),
                   *[a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("parity: error: ")
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "nothing is written for input that cannot run"
    assert not (tmp_path / "pwned").exists()


INJECTIONS = [
    "frequency ~ gender + system('touch {marker}')",
    "frequency ~ gender + `system('touch {marker}')`",
    "frequency ~ gender + __import__('os').system('touch {marker}')",
    "frequency ~ gender + I(system('touch {marker}'))",
    "frequency ~ gender + eval(parse(text = \"system('touch {marker}')\"))",
    "frequency ~ gender + (1 | subject) + file.create('{marker}')",
    "frequency ~ gender + (1 | `system('touch {marker}')`)",
    "frequency ~ gender + x$system('touch {marker}')",
]


@pytest.mark.parametrize("formula", INJECTIONS)
@pytest.mark.parametrize("source", ["data", "config"])
def test_injection_is_refused_and_nothing_runs(tmp_path: Path, formula: str,
                                               source: str) -> None:
    """Refused by the grammar before any data is read or engine started: the marker
    the formula would create is never created, and the output directory (created by
    the first fit) never appears."""
    from parity.inputs.seed import politeness_path

    marker = tmp_path / "ran"
    text = formula.format(marker=marker)
    out = tmp_path / "o"
    if source == "data":
        args = ["--data", politeness_path(), "--formula", text]
    else:
        config = tmp_path / "m.toml"
        config.write_text(f"data = '''{politeness_path()}'''\n[models]\nm = '''{text}'''\n")
        args = ["--config", str(config)]
    proc = run_cli("run", "--out", str(out), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "formula:" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert not out.exists()


def test_config_runs_with_options_overriding_it(tmp_path: Path) -> None:
    """--models picks among the config's models, --engines replaces its engines."""
    (tmp_path / "d.csv").write_text(GOOD)
    (tmp_path / "m.toml").write_text(
        'data = "d.csv"\ncategorical = ["s"]\nengines = ["lme4", "bambi"]\n'
        '[models]\nplain = "y ~ x"\nwith_s = "y ~ x + s"\n[sampler]\ndraws = 10\n')
    out = tmp_path / "o"
    proc = run_cli("run", "--config", str(tmp_path / "m.toml"), "--models", "with_s",
                   "--engines", "statsmodels", "--draws", "12", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    import json

    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is True
    assert [(f["model"], f["engine"]) for f in doc["fits"]] == [("with_s", "statsmodels")]
    assert doc["models"][0]["categorical"] == ["s"]
    assert doc["settings"]["draws"] == 12
    assert [f["term"] for f in doc["fits"][0]["fixed_effects"]] == ["(Intercept)", "x", "s1",
                                                                   "s2"]
    assert not (out / "results.partial.json").exists()


def test_ml_and_reml_together_are_refused(tmp_path: Path) -> None:
    proc = run_cli("run", "--out", str(tmp_path / "o"), "--ml", "--reml")
    assert proc.returncode == 2
    assert "not allowed with argument" in proc.stderr and "Traceback" not in proc.stderr


def test_the_criterion_comes_from_the_option_then_the_config(tmp_path: Path) -> None:
    import argparse

    from parity.cli import build_parser
    from parity.inputs.request import merged_settings, option_settings
    from parity.inputs.resolve import Inputs

    def reml(argv: list[str], config: bool | None) -> bool:
        args = build_parser().parse_args(["run", "--out", str(tmp_path), *argv])
        assert isinstance(args, argparse.Namespace)
        inputs = Inputs(frame=None, models=[], source="", reml=config)  # type: ignore[arg-type]
        return merged_settings(inputs, option_settings(args)).reml

    assert reml([], None) is True
    assert reml(["--ml"], None) is False
    assert reml([], False) is False
    assert reml(["--reml"], False) is True
    assert reml(["--ml"], True) is False
