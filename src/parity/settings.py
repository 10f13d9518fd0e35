"""Run settings shared by every engine (sampler settings matter to the Bayesian ones only).

Each :class:`Settings` field carries its own range in its metadata (`check`), and
:meth:`Settings.check` is the one range check: the CLI's options, a models.toml,
`parity.run`, `assert_parity` and the pytest plugin all build a `Settings` and call it,
so one value is refused alike, with the same words, whichever way it came in. Each
caller only says how a refusal names the setting there (`--draws`, `parity.run(): draws`,
`models.toml [sampler] draws`), through a :data:`Say`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from parity.errors import UsageError

# 0.9999999999999999 is below 1, yet an interval's quantile at it is infinite.
MAX_PROBABILITY = 0.999999
# lme4 refuses more adaptive Gauss-Hermite points than this.
MAX_NAGQ = 25

Check = Callable[[Any], "str | None"]
# What a setting is for: the sampler (and the interval, a models.toml's [sampler] keys),
# the fit's criterion, or where output goes.
Group = Literal["sampler", "fit", "output", "prior"]


def _whole(low: int, high: int | None = None, note: str = "") -> Check:
    """A whole number in [low, high]; bool is refused though Python counts it an int."""
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if high is not None and not low <= value <= high:
            return f"must be from {low}{note} to {high}"
        if value < low:
            return f"must be at least {low}"
        return None
    return check


def _probability(value: Any) -> str | None:
    """A share strictly inside (0, 1), capped where its normal quantile stays finite."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "must be a number"
    if not math.isfinite(value) or not 0 < value <= MAX_PROBABILITY:
        return f"must be above 0 and at most {MAX_PROBABILITY}"
    return None


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


# How lme4's fixed-effect t-tests find their denominator degrees of freedom (lmerTest's
# `ddf`): Satterthwaite's approximation, or Kenward and Roger's (through pbkrtest); or
# none, Wald-z tests, where lmerTest's numerical derivatives of the deviance would cost
# as much as the fit (InstEval: 31 s beside lmer's 36 s) and the df would be large.
DDF_METHODS = ("satterthwaite", "kenward-roger", "none")


def _ddf(value: Any) -> str | None:
    return None if value in DDF_METHODS else f"must be one of {', '.join(DDF_METHODS)}"


def _priors_json(value: Any) -> str | None:
    """A priors document as parity.spec.priors writes it (canonical JSON of a table), or
    None for the engines' defaults; the document itself was checked as it was read."""
    if value is None:
        return None
    try:
        ok = isinstance(value, str) and isinstance(json.loads(value), dict)
    except ValueError:
        ok = False
    return None if ok else "must be a priors document or None"


def _folder_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a folder or None"


def _setting(default: Any, check: Check, group: Group, option: bool = False) -> Any:
    """A Settings field with its range check, its group, and whether `parity run` and
    `parity study` take it as an option of its own name (`--target-accept`)."""
    return field(default=default, metadata={"check": check, "group": group,
                                            "option": option})


@dataclass(frozen=True)
class Settings:
    """Defaults are the seed notebook's sampler settings.

    `interval` is the coverage of every engine's interval (Wald-t or Wald-z for the
    frequentist engines, profile likelihood with `profile`, the equal-tailed posterior
    interval for the Bayesian ones), one level for all, so intervals are comparable; 0.95
    by default, as analysts publish them. `ddf` is how lme4's Gaussian mixed models find
    the degrees of freedom of their t-tests (lmerTest's Satterthwaite, or Kenward-Roger
    through pbkrtest, which adjusts REML fits only). `profile` asks lme4 for
    profile-likelihood intervals of its fixed effects and variance components in place
    of Wald intervals: exact under the likelihood, and slower.
    """

    draws: int = _setting(2000, _whole(1), "sampler", option=True)
    tune: int = _setting(2000, _whole(1), "sampler", option=True)
    chains: int = _setting(4, _whole(1), "sampler", option=True)
    target_accept: float = _setting(0.95, _probability, "sampler", option=True)
    seed: int = _setting(42, _whole(0), "sampler", option=True)
    interval: float = _setting(0.95, _probability, "sampler", option=True)
    reml: bool = _setting(True, _flag, "fit")
    # glmer's nAGQ for a GLMM: 1 the Laplace approximation; more, adaptive Gauss-Hermite
    # quadrature points, only where lme4 allows it (one scalar random-effect term); 0
    # lme4's fast criterion (fixed effects from the PIRLS step), for any GLMM.
    nagq: int = _setting(1, _whole(0, MAX_NAGQ, " (nAGQ = 0)"), "fit")
    # The draws folder (`<out>/draws`) where engines with posterior draws write them
    # (NetCDF, `<model>.<engine>.nc`), or None to keep none. A fit records its file
    # relative to the folder above it (the run's output folder, which holds
    # results.json), so the output folder can be moved. It changes no number, so no
    # cache key holds it; a fit asked to save its draws is sampled afresh rather than
    # read from the cache.
    save_draws: str | None = _setting(None, _folder_or_none, "output")
    ddf: str = _setting("satterthwaite", _ddf, "fit", option=True)
    profile: bool = _setting(False, _flag, "fit", option=True)
    # The Bayesian engines' priors (parity.spec.priors, `--priors FILE`) as canonical
    # JSON, or None for Bambi's defaults. The fit cache keys on it.
    priors: str | None = _setting(None, _priors_json, "prior")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self) -> list[tuple[str, Any, str]]:
        """(field, value, what is wrong) of every field out of its range, in field order."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            problem = f.metadata["check"](value)
            if problem:
                out.append((f.name, value, problem))
        if not out and self.ddf == "kenward-roger" and not self.reml:
            out.append(("ddf", self.ddf, "kenward-roger adjusts REML fits only (pbkrtest); "
                        "use satterthwaite with maximum likelihood"))
        return out

    def check(self, say: Say | None = None) -> Settings:
        """These settings, or a one-line UsageError for the first field out of its range,
        worded by `say` (by default `draws must be at least 1`)."""
        problems = self.problems()
        if problems:
            raise UsageError((say or plain)(*problems[0]))
        return self


# How a refusal names a setting where it came in: (field, value, problem) -> message.
Say = Callable[[str, Any, str], str]


def plain(name: str, value: Any, problem: str) -> str:
    return f"{name} {problem}"


def as_option(name: str, value: Any, problem: str) -> str:
    """The CLI's words: `--target-accept must be above 0 and at most 0.999999`."""
    return f"--{name.replace('_', '-')} {problem}"


def in_call(caller: str) -> Say:
    """A Python call's words, naming the call and the value:
    `parity.run(): nagq must be from 0 (nAGQ = 0) to 25, not 26`."""
    def say(name: str, value: Any, problem: str) -> str:
        return f"{caller}(): {name} {problem}, not {value!r}"
    return say


SETTING_NAMES = tuple(f.name for f in fields(Settings))
# One check per Settings field, read from its metadata.
SETTING_CHECKS: dict[str, Check] = {f.name: f.metadata["check"] for f in fields(Settings)}
# A models.toml's [sampler] keys.
SAMPLER_KEYS = tuple(f.name for f in fields(Settings) if f.metadata["group"] == "sampler")
# The settings `parity run` and `parity study` take as options of their own name.
OPTION_SETTINGS = tuple(f.name for f in fields(Settings) if f.metadata["option"])


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the Settings field `name` ("must be ..."), or
    None; the caller prefixes where the value came from (`--draws`, `parity.run(): ...`)."""
    if name not in SETTING_CHECKS:
        raise KeyError(f"{name!r} is not a parity setting (known: {', '.join(SETTING_NAMES)})")
    return SETTING_CHECKS[name](value)


def tolerance_problem(value: Any) -> str | None:
    """What is wrong with an rtol or atol, or None: NaN or a negative tolerance would
    fail every row, and an infinite one would pass every row without comparing."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        return "must be a finite number >= 0"
    return None
