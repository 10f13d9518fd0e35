"""The README's pointers into the test suite lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_every_test_file_the_readme_names_exists() -> None:
    """A reader who follows `tests/engines/test_x.py` from the README must find it: a
    renamed test module leaves the README pointing at nothing."""
    text = README.read_text(encoding="utf-8")
    paths = sorted(set(re.findall(r"tests/[\w/.-]+?\.py\b", text)))
    assert paths, "the README names no test file"
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, f"README.md names test files that do not exist: {missing}"


def test_every_bare_test_module_the_readme_names_exists() -> None:
    """Modules named without their folder (`test_contract.py`) exist under tests/."""
    text = README.read_text(encoding="utf-8")
    names = set(re.findall(r"(?<![\w/])(test_\w+\.py)\b", text))
    present = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    assert not names - present, f"README.md names missing test modules: {names - present}"
