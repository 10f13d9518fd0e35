"""The README's and the docs' pointers lead somewhere: files that exist, `parity`
commands and options the CLI has, `make` targets the Makefile defines."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from parity.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]

# Paths written from the repository root: these folders, and these files.
ROOT_DIRS = ("src", "tests", "docs", "r_scripts", "examples", "benchmarks", "constraints",
             ".ci")
ROOT_FILES = ("Makefile", "pyproject.toml", "tox.ini", "README.md")
# Folders whose files may be named without their folder (`lme4_fit.R`, `cache.py`).
NAMED_BY_BASENAME = ("src", "tests", "benchmarks", "r_scripts")

FENCE = re.compile(r"^[ \t]*(```|~~~)([^\n]*)\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.M)
_DIRS = "|".join(re.escape(d) for d in ROOT_DIRS)
ROOT_PATH = re.compile(r"(?<![\w./-])((?:" + _DIRS + r")/[\w./<>*-]*[\w>*/])")
BARE_FILE = re.compile(r"(?<![\w./<>*-])([A-Za-z_][\w]*\.(?:py|R))\b")
PARITY_CMD = re.compile(r"(?<![\w.-])parity[ \t]+(\S+)(.*)")
MAKE_CMD = re.compile(r"(?<![\w.$(-])make((?:[ \t]+\S+)*)")
OPTION = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")


def _read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _fences(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each fenced code block."""
    return [(m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def _code(text: str) -> list[str]:
    """Every piece of code a page shows: the lines of shell-like fenced blocks (a line
    continued with `\\` joined to the next, comments dropped) and every inline code span
    (a span broken over two lines read as one)."""
    pieces: list[str] = []
    for info, body in _fences(text):
        if info.split()[:1] and info.split()[0] not in ("sh", "bash", "shell", "console"):
            continue  # python, toml, text: no shell commands in them
        for line in body.replace("\\\n", " ").splitlines():
            pieces.append(re.sub(r"(^|\s)#.*$", "", line))
    pieces += [" ".join(m.group(1).split()) for m in INLINE.finditer(_prose(text))]
    return pieces


def _exists(path: str, base: Path) -> bool:
    """Whether `path` names a file or folder under `base`; `<placeholder>` and `*` parts
    must match at least one."""
    path = path.split("#", 1)[0].rstrip("/")
    if not path:
        return True
    pattern = re.sub(r"<[^<>/]*>", "*", path)
    if "*" in pattern:
        return any(base.glob(pattern))
    return (base / path).exists()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"`|\*\*|\*", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in HEADING.findall(_prose(_read(page)))}


def link_problems(text: str, page: Path) -> list[str]:
    """Relative Markdown links (and images) whose target, or whose #anchor, is missing."""
    problems = []
    for m in LINK.finditer(text):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        dest = page if not file_part else (page.parent / file_part).resolve()
        if not dest.exists():
            problems.append(f"link to a missing file: {target}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            problems.append(f"link to a missing heading: {target}")
    return problems


@cache
def _basenames() -> frozenset[str]:
    return frozenset(p.name for d in NAMED_BY_BASENAME for p in (ROOT / d).rglob("*")
                     if p.is_file())


def path_problems(text: str) -> list[str]:
    """Paths from the repository root (`src/parity/...`, `tests/...`, `r_scripts/...`),
    and files named alone (`test_contract.py`, `lme4_fit.R`), anywhere on a page (code,
    prose, the layout tree), that do not exist."""
    problems = []
    for path in ROOT_PATH.findall(text):
        if not _exists(path.split(":")[0], ROOT):
            problems.append(f"no such path: {path}")
    for name in BARE_FILE.findall(text):
        if name not in _basenames():
            problems.append(f"no such file: {name}")
    for code in INLINE.findall(_prose(text)):
        if code.strip() in ROOT_FILES and not (ROOT / code.strip()).is_file():
            problems.append(f"no such file: {code.strip()}")
    return sorted(set(problems))


@cache
def _cli() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The top-level options, and each subcommand's options, of the real parser."""
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return (frozenset(parser._option_string_actions),
            {name: frozenset(p._option_string_actions) for name, p in subs.choices.items()})


def _commands(text: str, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    for code in _code(text):
        code = re.sub(r'"[^"]*"|\'[^\']*\'', "VALUE", code)  # a formula's `|` is no pipe
        for part in re.split(r"[;|]|&&", code):
            m = pattern.search(part)
            if m:
                yield m


def cli_problems(text: str) -> list[str]:
    """`parity <subcommand> --option` shown anywhere in code: the subcommand must be one
    of the CLI's and every option one it takes (values and placeholders such as FILE,
    DIR and `...` are not checked)."""
    top, subs = _cli()
    problems = []
    for m in _commands(text, PARITY_CMD):
        word, rest = m.group(1), m.group(2)
        if word.startswith("-"):
            options, rest = top, f"{word} {rest}"
        elif word in subs:
            options = top | subs[word]
        else:
            problems.append(f"parity has no subcommand {word!r}: {m.group(0).strip()}")
            continue
        for option in OPTION.findall(rest):
            if option not in options:
                problems.append(f"parity {word} has no option {option}")
    return sorted(set(problems))


@cache
def _make_targets() -> frozenset[str]:
    makefile = _read(ROOT / "Makefile")
    return frozenset(t for line in re.findall(r"^([^\s#:=][^:=]*?):(?!=)", makefile, re.M)
                     for t in line.split())


def make_problems(text: str) -> list[str]:
    """`make <target>` shown anywhere in code names a target of the Makefile
    (`VAR=value` arguments aside)."""
    problems = []
    for m in _commands(text, MAKE_CMD):
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            words = m.group(1).split()
        for word in words:
            if "=" in word or word.startswith("-"):
                continue
            if not re.fullmatch(r"[\w.-]+", word):
                break  # prose after the command
            if word not in _make_targets():
                problems.append(f"the Makefile has no target {word!r}")
    return sorted(set(problems))


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_links_lead_to_files_and_headings(page: Path) -> None:
    """A link or image from the README or a docs page leads to a file that exists (and
    to a heading it has): a moved page or a renamed heading breaks it."""
    problems = link_problems(_read(page), page)
    assert not problems, f"{page.name}: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_paths_named_exist(page: Path) -> None:
    """`src/parity/...`, `tests/...`, `r_scripts/...`, `examples/...` and files named
    alone exist: a renamed module leaves the page pointing at nothing."""
    problems = path_problems(_read(page))
    assert not problems, f"{page.name}: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_parity_commands_use_real_subcommands_and_options(page: Path) -> None:
    """Every `parity <subcommand> --option` a page shows is one the CLI parses."""
    problems = cli_problems(_read(page))
    assert not problems, f"{page.name}: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_make_targets_exist(page: Path) -> None:
    """Every `make <target>` a page shows is a target of the Makefile."""
    problems = make_problems(_read(page))
    assert not problems, f"{page.name}: {problems}"


def test_readme_is_short_and_links_every_docs_page() -> None:
    """The README is the front page (at most 200 lines) and leads to every docs page."""
    text = _read(README)
    assert len(text.splitlines()) <= 200
    linked = {(README.parent / t).resolve() for t in LINK.findall(text)}
    missing = [str(p.relative_to(ROOT)) for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_every_test_file_the_docs_name_exists() -> None:
    """A reader who follows `tests/engines/test_x.py` from the docs must find it."""
    text = "\n".join(_read(p) for p in PAGES)
    paths = sorted(set(re.findall(r"tests/[\w/.-]+?\.py\b", text)))
    assert paths, "the docs name no test file"
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, f"the docs name test files that do not exist: {missing}"


def test_every_bare_test_module_the_docs_name_exists() -> None:
    """Modules named without their folder (`test_contract.py`) exist under tests/."""
    text = "\n".join(_read(p) for p in PAGES)
    names = set(re.findall(r"(?<![\w/])(test_\w+\.py)\b", text))
    present = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    assert not names - present, f"the docs name missing test modules: {names - present}"


# The checks themselves catch what they are for.
@pytest.mark.parametrize(("text", "found"), [
    pytest.param("```sh\nparity run --no-such-option --out DIR\n```",
                 "no option --no-such-option", id="unknown-option"),
    pytest.param("`parity run --models a --replicates 3`", "no option --replicates",
                 id="option-of-another-subcommand"),
    pytest.param("```sh\nparity run --data my.csv \\\n    --groups 6 --out DIR\n```",
                 "no option --groups", id="after-a-continued-line"),
    pytest.param("`parity frobnicate --out DIR`", "no subcommand 'frobnicate'",
                 id="unknown-subcommand"),
    pytest.param("`PARITY_REFERENCES=refs/ parity diff a b --nope`", "no option --nope",
                 id="after-an-environment-variable"),
    pytest.param('```sh\nparity run --formula "y ~ x + (1 | g)" --bogus --out DIR\n```',
                 "no option --bogus", id="after-a-formula-with-a-bar"),
    pytest.param("```\nparity study --model m --draw 10 --out DIR\n```", "no option --draw",
                 id="abbreviated-option"),
])
def test_the_cli_check_catches_wrong_commands(text: str, found: str) -> None:
    assert any(found in p for p in cli_problems(text)), cli_problems(text)


@pytest.mark.parametrize("text", [
    pytest.param("```sh\nparity run --out DIR   # with parity installed\n```",
                 id="comment"),
    pytest.param("```sh\n.venv/bin/parity study --model m --groups 6,12 "
                 "--scheduler tcp://HOST:8786 --out study/\n```", id="venv-path"),
    pytest.param("`parity record --engines lme4,glmmtmb --ml ... --out refs/`",
                 id="placeholder"),
    pytest.param("`parity diff A.json B.json --all`", id="positionals"),
    pytest.param("```python\nimport parity\nparity.run('y ~ x', frame)\n```", id="python"),
])
def test_the_cli_check_passes_right_commands(text: str) -> None:
    assert not cli_problems(text)


@pytest.mark.parametrize(("text", "found"), [
    pytest.param("see `src/parity/engines/nosuch.py`", "no such path", id="module"),
    pytest.param("```sh\nRscript r_scripts/nosuch_fit.R data.csv\n```", "no such path",
                 id="r-script"),
    pytest.param("the suite `test_nosuch.py`", "no such file", id="bare-name"),
    pytest.param("`tests/unit/test_nosuch.py`", "no such path", id="test-module"),
    pytest.param("`constraints/nosuch<XY>.txt`", "no such path", id="placeholder"),
])
def test_the_path_check_catches_missing_files(text: str, found: str) -> None:
    assert any(found in p for p in path_problems(text)), path_problems(text)


def test_the_path_check_passes_real_and_placeholder_paths() -> None:
    text = ("`src/parity/engines/lme4.py`, `r_scripts/<engine>_fit.R`, "
            "`constraints/py<version>.txt`, `lme4_fit.R`, `src/parity/data/references/`")
    assert not path_problems(text)


def test_the_link_check_catches_missing_targets() -> None:
    page = ROOT / "docs" / "engines.md"
    assert link_problems("[x](nosuch.md)", page)
    assert link_problems("![x](nosuch.png)", page)
    assert link_problems("[x](verdicts.md#no-such-heading)", page)
    assert not link_problems("[x](verdicts.md#verdicts) ![y](agreement.png)", page)


def test_the_make_check_catches_missing_targets() -> None:
    assert make_problems("`make nosuch`") == ["the Makefile has no target 'nosuch'"]
    assert not make_problems("```sh\nmake test TOX_ENVS=py310,py313\n```")
    assert not make_problems("`make lock` regenerates them; `make` installs it")
