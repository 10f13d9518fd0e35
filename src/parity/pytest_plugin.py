"""pytest plugin: the `parity_check` fixture, the `parity` marker, and a session summary.

An analyst's suite calls `parity_check(formula, data, ...)` (or `assert_parity`) in its
tests; defaults come from the test's `@pytest.mark.parity(...)`, then the command line
(`--parity-engines`, `--parity-reference`, and `--parity-draws`, `-tune`, `-chains`,
`-seed`, `-target-accept`: the sampler options of `parity run`), so one suite can be run
quickly on a laptop and with full sampler settings in CI; a marker's
`quantities=["conclusion"]` limits its test's checks to those rows. At the end of the
session a "parity" section lists every call: which test, which formula, the counts, and
whether it passed.

The plugin may be loaded twice (an entry point and `-p`, or a module imported under two
names): options, the marker and the session reporter are each set up once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from parity.settings import OPTION_SETTINGS, Settings

if TYPE_CHECKING:
    from parity.schema import Comparison
    from parity.testing import ParityCall

# The session reporter is registered as a plugin under this name, once per config.
REPORTER = "parity-session-reporter"
MARKER = ("parity(engines=..., reference=..., **settings): defaults for the parity_check "
          "fixture (engines, reference, rtol, atol, quantities, draws, tune, chains, "
          "seed, ...)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "parity: engines against each other")
    try:
        group.addoption("--parity-engines", default="statsmodels,bambi",
                        help="engines checked by parity_check (comma-separated; "
                             "default: statsmodels,bambi)")
    except ValueError:  # the plugin was loaded twice: the options are there already
        return
    group.addoption("--parity-reference", default="lme4",
                    help="the reference engine of parity_check (default: lme4)")
    defaults = Settings()
    for name in OPTION_SETTINGS:  # the options `parity run` takes, typed as their defaults
        default = getattr(defaults, name)
        flag = f"--parity-{name.replace('_', '-')}"
        if isinstance(default, bool):
            group.addoption(flag, action="store_const", const=True, default=None,
                            help=f"{name} for parity_check")
        else:
            group.addoption(flag, type=type(default), default=None,
                            help=f"{name} for parity_check (default: {default})")


class _Reporter:
    """Collects each assert_parity call made during the session, under its test id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ParityCall]] = []
        self.current = "(outside a test)"

    def record(self, call: ParityCall) -> None:
        self.calls.append((self.current, call))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self.current = item.nodeid
        try:
            return (yield)
        finally:
            self.current = "(outside a test)"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.calls:
            return
        from parity.compare.diff import format_table

        rows = [[test, call.formula, f"{', '.join(call.engines)} vs {call.reference}",
                 str(call.agree), str(call.disagree), str(call.not_comparable),
                 "PASS" if call.passed else "FAIL"] for test, call in self.calls]
        terminalreporter.write_sep("=", "parity")
        table = format_table(["test", "formula", "engines", "agree", "disagree",
                              "not comparable", "result"], rows)
        for line in table.splitlines():
            terminalreporter.write_line(line)
        for test, call in self.calls:
            if call.error and not call.passed and call.disagree == 0:
                terminalreporter.write_line(f"{test}: {call.error}")

    def pytest_unconfigure(self) -> None:
        from parity.testing import CALL_HOOKS

        if self.record in CALL_HOOKS:
            CALL_HOOKS.remove(self.record)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(REPORTER):
        return
    # parity.testing imports no numerical library (pandas is imported on use), so
    # loading it in every pytest run of an environment costs milliseconds.
    from parity.testing import CALL_HOOKS

    config.addinivalue_line("markers", MARKER)
    reporter = _Reporter()
    CALL_HOOKS.append(reporter.record)
    config.pluginmanager.register(reporter, REPORTER)


def _engines(value: Any) -> tuple[str, ...]:
    from parity.testing import engine_names

    return engine_names(value, "parity_check")


def check_defaults(config: pytest.Config, marker: pytest.Mark | None) -> dict[str, Any]:
    """Keyword defaults for assert_parity: the options, overridden by the marker's."""
    defaults: dict[str, Any] = {}
    engines = config.getoption("parity_engines", default=None)
    if engines:
        defaults["engines"] = _engines(engines)
    reference = config.getoption("parity_reference", default=None)
    if reference:
        defaults["reference"] = reference
    for name in OPTION_SETTINGS:
        value = config.getoption(f"parity_{name}", default=None)
        if value is not None:
            defaults[name] = value
    if marker is not None:
        if marker.args:
            raise TypeError("@pytest.mark.parity takes keyword arguments only")
        defaults.update(marker.kwargs)
        if "engines" in marker.kwargs:
            defaults["engines"] = _engines(marker.kwargs["engines"])
    return defaults


@pytest.fixture
def parity_check(request: pytest.FixtureRequest) -> Callable[..., list[Comparison]]:
    """`assert_parity` with defaults from `@pytest.mark.parity(...)`, then the
    `--parity-*` options; arguments given in the call win over both."""
    from parity.testing import assert_parity, run_check

    defaults = check_defaults(request.config, request.node.get_closest_marker("parity"))

    def check(formula: str, data: Any, categorical: Iterable[str] | None = None,
              engines: str | Sequence[str] | None = None, reference: str | None = None,
              rtol: float | None = None, atol: float | None = None,
              quantities: str | Iterable[str] | None = None,
              **sampler_settings: Any) -> list[Comparison]:
        given = {"engines": engines, "reference": reference, "rtol": rtol, "atol": atol,
                 "quantities": quantities}
        kwargs = {**defaults, **{k: v for k, v in given.items() if v is not None},
                  **sampler_settings}
        return run_check("parity_check", formula, data, categorical, **kwargs)

    check.__doc__ = assert_parity.__doc__
    return check
