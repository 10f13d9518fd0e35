"""`assert_parity`: one line in an analyst's own test suite.

Like scikit-learn's `check_estimator`, the whole comparison runs behind one call, and a
failure names what an analyst needs to act on: the term, the two engines, both numbers,
the gap and the tolerance it broke. Each call is also reported to `CALL_HOOKS`, which the
pytest plugin uses for its end-of-session summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.compare.diff import format_table
from parity.errors import UsageError
from parity.schema import Comparison
from parity.settings import SAMPLER_KEYS, Settings, in_call, tolerance_problem

if TYPE_CHECKING:  # pandas is imported on use, so loading the pytest plugin stays cheap
    import pandas as pd

# The settings taken as keyword arguments: a models.toml's [sampler] keys and lme4's
# quadrature points, lme4's df method and its profile intervals (`reml` is a parameter of
# its own; `save_draws` is `keep_draws`).
SAMPLER_SETTINGS = (*SAMPLER_KEYS, "nagq", "ddf", "profile")

# The quantities whose rows assert_parity checks unless told otherwise: every one but the
# interval ends and the t-test's df. Those of different methods differ by design (a
# Wald-z interval against a Satterthwaite t one, a z-test's missing df against lmerTest's),
# and the conclusion row says whether that changes what an analyst concludes; pass
# `quantities=` to assert them too.
DEFAULT_QUANTITIES: tuple[str, ...] = ("estimate", "std_error", "sd", "corr",
                                       "group_effect", "loglik", "conclusion")


@dataclass(frozen=True)
class ParityCall:
    """What one assert_parity call found (for the pytest summary)."""

    formula: str
    engines: tuple[str, ...]
    reference: str
    agree: int
    disagree: int
    not_comparable: int
    passed: bool
    error: str | None = None


class ParityFitError(AssertionError):
    """A fit asked for did not run (failed, skipped, unsupported); the message says why."""


# Called with each finished call, passed or not; the pytest plugin appends a collector.
CALL_HOOKS: list[Callable[[ParityCall], None]] = []


def settings_from(sampler_settings: dict[str, Any], reml: bool = True,
                  caller: str = "assert_parity") -> Settings:
    """Settings from keyword arguments; a misspelt one is an error, never ignored.
    `reml=False` fits the frequentist engines by maximum likelihood. Errors name
    `caller`, the function the analyst called."""
    unknown = sorted(set(sampler_settings) - set(SAMPLER_SETTINGS))
    if unknown:
        raise TypeError(f"{caller}() got unknown sampler setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(SAMPLER_SETTINGS)}")
    return Settings(**sampler_settings, reml=reml).check(in_call(caller))


def check_tolerances(rtol: Any, atol: Any, caller: str = "assert_parity") -> None:
    """rtol/atol as the tolerance policy takes them: finite and >= 0 (None: the policy's)."""
    for key, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            _check(caller, key, value, tolerance_problem(value))


def _check(caller: str, key: str, value: Any, problem: str | None) -> None:
    """One line in the words of :func:`parity.settings.in_call`, naming the call."""
    if problem:
        raise UsageError(in_call(caller)(key, value, problem))


def engine_names(engines: str | Iterable[str], caller: str = "assert_parity") -> tuple[str, ...]:
    """Engine names from a list, or from one string: a name, or names separated by commas
    as `--engines` takes them (a string is never split into its characters)."""
    if isinstance(engines, str):
        names = tuple(p.strip() for p in engines.split(",") if p.strip())
        if not names:
            raise UsageError(f"{caller}(): engines={engines!r} names no engine")
        return names
    names = tuple(engines)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise UsageError(f"{caller}(): engines must be engine names (strings), "
                         f"not {bad[0]!r}")
    return names


def quantity_names(quantities: str | Iterable[str] | None,
                   caller: str = "assert_parity") -> tuple[str, ...]:
    """The quantities whose rows are checked: one name, a list of them, or None for
    :data:`DEFAULT_QUANTITIES`; a name parity does not know is a UsageError naming the
    ones it does."""
    from parity.compare.quantities import QUANTITY_SPECS

    if quantities is None:
        return DEFAULT_QUANTITIES
    names = (quantities,) if isinstance(quantities, str) else tuple(quantities)
    known = ", ".join(QUANTITY_SPECS)
    bad = [q for q in names if not isinstance(q, str) or q not in QUANTITY_SPECS]
    if bad:
        raise UsageError(f"{caller}(): unknown quantity {bad[0]!r} in quantities=; "
                         f"known: {known}")
    if not names:
        raise UsageError(f"{caller}(): quantities= names no quantity; known: {known}")
    return tuple(dict.fromkeys(names))


def _cell(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def disagreement_table(rows: Sequence[Comparison]) -> str:
    """The failing rows, one per line, aligned for a terminal."""
    lines = []
    for r in rows:
        gap = (abs(r.value - r.reference_value)
               if r.value is not None and r.reference_value is not None else None)
        lines.append([f"{r.model} / {r.term}", f"{r.engine} vs {r.reference}", r.quantity,
                      _cell(r.value), _cell(r.reference_value), _cell(gap),
                      _cell(r.tolerance), r.reason or ""])
    return format_table(["model / term", "engines", "quantity", "value", "reference",
                         "|difference|", "tolerance", "reason"], lines)


def assert_parity(
    formula: str,
    data: pd.DataFrame | str | Path,
    categorical: Iterable[str] | None = None,
    engines: str | Sequence[str] = ("statsmodels", "bambi"),
    reference: str = "lme4",
    rtol: float | None = None,
    atol: float | None = None,
    reml: bool = True,
    family: str = "gaussian",
    trials: str | None = None,
    weights: str | None = None,
    quantities: str | Iterable[str] | None = None,
    **sampler_settings: Any,
) -> list[Comparison]:
    """Fit `formula` with `reference` and `engines`; return the comparison rows of each
    engine against the reference, or raise AssertionError listing the rows that disagree.

    `rtol`/`atol` replace the policy's tolerance on estimates (for every pair of engine
    kinds). Rows against the matched-structure refit (`lme4:independent`) count as rows
    against the reference. A fit that did not run is a failure, with its reason; a bad
    formula, file or engine name raises parity's own UsageError. `reml=False` compares
    maximum-likelihood fits (lme4's `REML = FALSE`); Bayesian engines are unaffected.
    `family` ("binomial", "poisson") and `trials` fit a GLM(M), compared on its link scale;
    `weights` names a column of prior weights (an engine without them fails the check
    with its reason).

    `quantities` limits the rows checked, and returned, to some quantities (one name or
    a list: "estimate", "std_error", "sd", "corr", "group_effect", "loglik", "lower",
    "upper", "df", "conclusion"): `quantities="conclusion"` asserts that the engines
    reach the same conclusions, whatever their SEs. By default every quantity is checked
    but the interval ends and df (:data:`DEFAULT_QUANTITIES`), which differ by design
    between methods; the conclusion rows say whether that matters.
    """
    return run_check("assert_parity", formula, data, categorical, engines, reference, rtol,
                     atol, reml, family, trials, weights, quantities, **sampler_settings)


def run_check(caller: str, formula: str, data: pd.DataFrame | str | Path,
              categorical: Iterable[str] | None = None,
              engines: str | Sequence[str] = ("statsmodels", "bambi"),
              reference: str = "lme4", rtol: float | None = None,
              atol: float | None = None, reml: bool = True, family: str = "gaussian",
              trials: str | None = None, weights: str | None = None,
              quantities: str | Iterable[str] | None = None,
              **sampler_settings: Any) -> list[Comparison]:
    """assert_parity's work, with its errors naming `caller` (the pytest plugin's
    `parity_check` calls it too, so that its mistakes are reported under its own name)."""
    names = engine_names(engines, caller)
    chosen = quantity_names(quantities, caller)
    counts = {"agree": 0, "disagree": 0, "not_comparable": 0}

    def record(passed: bool, error: str | None = None) -> None:
        call = ParityCall(formula, names, reference, counts["agree"], counts["disagree"],
                          counts["not_comparable"], passed, error)
        for hook in list(CALL_HOOKS):
            hook(call)

    try:
        check_tolerances(rtol, atol, caller)
        rows = _compare(formula, data, categorical, names, reference, rtol, atol,
                        settings_from(sampler_settings, reml, caller), family, trials,
                        weights)
    except Exception as exc:  # every failed call appears in the summary, then propagates
        record(False, " ".join(str(exc).split()) or type(exc).__name__)
        raise
    compared = bool(rows)
    rows = [r for r in rows if r.quantity in chosen]
    for r in rows:
        counts[r.verdict] += 1
    message = _failure(formula, names, reference, rows,
                       chosen if compared and quantities is not None else None)
    record(message is None, message)
    if message is not None:
        raise AssertionError(message)
    return rows


def _compare(formula: str, data: pd.DataFrame | str | Path, categorical: Iterable[str] | None,
             engines: tuple[str, ...], reference: str, rtol: float | None, atol: float | None,
             settings: Settings, family: str = "gaussian",
             trials: str | None = None, weights: str | None = None) -> list[Comparison]:
    """The rows of `engines` against `reference`; AssertionError when a fit did not run."""
    from parity.compare.tolerances import load_policy
    from parity.inputs.request import python_request
    from parity.pipeline.job import execute

    policy = load_policy()
    if rtol is not None or atol is not None:
        policy = policy.with_override("estimate", rtol, atol)
    request = python_request([("assert_parity", formula)], data, tuple(categorical or ()),
                             tuple(dict.fromkeys((reference, *engines))), settings, policy,
                             family, trials, weights)
    # The one pipeline, with the CLI's up-front checks (Bambi's reserved names, memory).
    results = execute(request.models, request.frame, request.engines, request.settings,
                      request.policy)
    not_ok = [f for f in results.fits if f.status != "ok"]
    if not_ok:
        raise ParityFitError(f"parity: not every fit ran for {formula!r}:\n" + "\n".join(
            f"  {f.engine}: {f.status}: {f.reason or 'no reason recorded'}" for f in not_ok))
    refs = {reference, f"{reference}:independent"}
    return [r for r in results.comparisons if r.engine in engines and r.reference in refs]


def _failure(formula: str, engines: tuple[str, ...], reference: str,
             rows: Sequence[Comparison],
             quantities: tuple[str, ...] | None = None) -> str | None:
    """The failure message, or None; `quantities` where rows were compared but limited
    to some (none of which the fits have: say which were asked for)."""
    if not rows:
        if quantities is not None:
            return (f"parity: nothing was compared for {formula!r}: no rows of "
                    f"{', '.join(quantities)} of {', '.join(engines)} against {reference}")
        return (f"parity: nothing was compared for {formula!r}: no rows of "
                f"{', '.join(engines)} against {reference} (only frequentist engines serve "
                "as references)")
    bad = [r for r in rows if r.verdict == "disagree"
           or (r.verdict == "not_comparable" and not r.reason)]
    if not bad:
        return None
    return (f"parity: {len(bad)} of {len(rows)} comparisons disagree for {formula!r} "
            f"({', '.join(engines)} vs {reference}):\n{disagreement_table(bad)}")


__all__ = ["CALL_HOOKS", "DEFAULT_QUANTITIES", "ParityCall", "ParityFitError", "assert_parity",
           "check_tolerances", "disagreement_table", "engine_names", "quantity_names",
           "run_check", "settings_from"]
