"""The tolerance policy: data in a TOML file, not code.

Defaults ship in `parity/data/tolerances.toml` (with the reasoning for each number in its
comments); an analyst overrides parts of it in pyproject.toml under
`[tool.parity.tolerances]`, or with a file of the same layout passed as `--tolerances`.

A tolerance file that loosens any of parity's default rules by more than
`MAX_LOOSENING` (10×) is refused (:func:`check_loosening`) unless the analyst asks for it
(`parity run --allow-loose-tolerances`, `parity.run(allow_loose_tolerances=True)`): a rule
that loose passes what a verdict exists to flag, so it is used only on purpose.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from parity.compare.quantities import QUANTITY_SPECS
from parity.compare.trust import TrustRules
from parity.errors import UsageError
from parity.spec.family import family_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAIRS = ("frequentist-frequentist", "bayesian-frequentist", "bayesian-bayesian",
         "approximate-frequentist", "approximate-bayesian", "approximate-approximate")
# The quantities every pair compares, and those only some pairs do (a maximised
# log-likelihood exists for frequentist fits), as the quantity table says.
# An interval's ends follow the estimate's rule, and a conclusion is compared exactly:
# neither has a rule of its own.
_RULED = {q: s for q, s in QUANTITY_SPECS.items() if s.rule_of is None and not s.exact}
QUANTITIES = tuple(q for q, s in _RULED.items() if s.pairs is None)
PAIR_QUANTITIES: dict[str, tuple[str, ...]] = {
    pair: tuple(q for q, s in _RULED.items() if s.pairs is None or pair in s.pairs)
    for pair in PAIRS
    if any(s.pairs is not None and pair in s.pairs for s in _RULED.values())
}

PARTS = ("rtol", "atol", "sd_mult")
# Checks of one engine against itself, with the quantities each one judges.
CHECKS: dict[str, tuple[str, ...]] = {"self-consistency": ("estimate",)}
# Which fits are trusted (parity.compare.trust): the table and its parts.
TRUST = "trust"
TRUST_PARTS = ("r_hat_max", "ess_per_chain_min", "divergence_share_max", "scale_mult",
               "link_bound")
# Monte-Carlo error in the tolerances: a row with a Bayesian side widens by
# `mcse_mult` × the MCSE of its gap.
MONTE_CARLO = "monte-carlo"
MONTE_CARLO_PARTS = ("mcse_mult", "matched_mcse_mult")
# Rules for binomial and Poisson models, where they differ from the Gaussian ones: a table
# `[glmm.<pair>.<quantity>]` replaces `[<pair>.<quantity>]` for those families.
GLMM = "glmm"


# How far a tolerance file may loosen a default rule (its largest part's factor) before
# `parity run` refuses it without --allow-loose-tolerances.
MAX_LOOSENING = 10.0
ALLOW_LOOSE_FLAG = "--allow-loose-tolerances"


def _quantities(pair: str) -> tuple[str, ...]:
    return CHECKS.get(pair, PAIR_QUANTITIES.get(pair, QUANTITIES))


@dataclass(frozen=True)
class Rule:
    """tolerance = atol + rtol * |reference| + sd_mult * uncertainty."""

    rtol: float
    atol: float
    sd_mult: float

    def tolerance(self, reference: float, uncertainty: float | None) -> float:
        extra = self.sd_mult * uncertainty if uncertainty is not None else 0.0
        return self.atol + self.rtol * abs(reference) + extra


# The rule of a quantity compared exactly (a conclusion: the same or not).
EXACT = Rule(rtol=0.0, atol=0.0, sd_mult=0.0)


@dataclass(frozen=True)
class Policy:
    """Every rule of the tolerance file: per pair and quantity, the self-checks, which
    fits are trusted, and how far Monte-Carlo error widens a Bayesian row."""

    rules: dict[tuple[str, str], Rule]
    sources: tuple[str, ...]
    trust: TrustRules
    mcse_mult: float
    # Two posteriors of the same model under the same priors (a cross-implementation
    # check): their gap may be Monte-Carlo error only, this many MCSE of it.
    matched_mcse_mult: float = 4.0

    def rule(self, kind_a: str, kind_b: str, quantity: str,
             family: str = "gaussian") -> Rule:
        """The rule of a pair and quantity; a binomial or Poisson model's own rule where
        the policy has one (`[glmm.<pair>.<quantity>]`). An interval's ends follow their
        estimate's rule; a conclusion is compared exactly."""
        spec = QUANTITY_SPECS.get(quantity)
        if spec is not None and spec.exact:
            return EXACT
        if spec is not None and spec.rule_of is not None:
            quantity = spec.rule_of
        pair = pair_key(kind_a, kind_b)
        if not family_of(family).residual_sd and (f"{GLMM}.{pair}", quantity) in self.rules:
            return self.rules[(f"{GLMM}.{pair}", quantity)]
        return self.rules[(pair, quantity)]

    def check(self, name: str, quantity: str) -> Rule:
        """The rule of a self-check (`self-consistency`)."""
        return self.rules[(name, quantity)]

    def with_override(self, quantity: str, rtol: float | None, atol: float | None,
                      pair: str | None = None) -> Policy:
        """The policy with one quantity's rtol/atol replaced (for every pair, or one).

        The self-checks (`self-consistency`) keep their own rules: an analyst's tolerance
        between engines says nothing of how far an engine may contradict itself."""
        rules = dict(self.rules)
        for (p, q), r in self.rules.items():
            if p in CHECKS:
                continue
            if q == quantity and (pair is None or p == pair):
                rules[(p, q)] = Rule(
                    rtol=r.rtol if rtol is None else rtol,
                    atol=r.atol if atol is None else atol,
                    sd_mult=r.sd_mult if rtol is None and atol is None else 0.0,
                )
        return replace(self, rules=rules, sources=self.sources + (
            f"override {quantity}: rtol={rtol} atol={atol}",))


def pair_key(kind_a: str, kind_b: str) -> str:
    kinds = sorted((kind_a, kind_b))
    return f"{kinds[0]}-{kinds[1]}"


def _number(value: Any, where: str) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise UsageError(f"{where} must be a finite number >= 0")
    return float(value)


def _merge_flat(base: dict[str, Any], name: str, parts: Any, known: tuple[str, ...],
                source: str) -> None:
    """A table of named numbers (`[trust]`, `[monte-carlo]`), each checked."""
    if not isinstance(parts, dict):
        raise UsageError(f"{source}: [{name}] must be a table")
    for part, value in parts.items():
        if part not in known:
            raise UsageError(f"{source}: unknown part {part!r} in [{name}] (known: "
                             f"{', '.join(known)})")
        base.setdefault(name, {})[part] = _number(value, f"{source}: {name}.{part}")


def _merge(base: dict[str, Any], extra: dict[str, Any], source: str) -> None:
    for pair, quantities in extra.items():
        if pair in (TRUST, MONTE_CARLO):
            _merge_flat(base, pair, quantities,
                        TRUST_PARTS if pair == TRUST else MONTE_CARLO_PARTS, source)
            continue
        if pair == GLMM:
            if not isinstance(quantities, dict):
                raise UsageError(f"{source}: [{GLMM}] must be a table of pairs")
            nested: dict[str, Any] = {}
            _merge(nested, quantities, f"{source} [{GLMM}]")
            for p, qs in nested.items():
                for q, parts in qs.items():
                    base.setdefault(f"{GLMM}.{p}", {}).setdefault(q, {}).update(parts)
            continue
        if pair not in (*PAIRS, *CHECKS) or not isinstance(quantities, dict):
            raise UsageError(f"{source}: unknown tolerance pair {pair!r} (known: "
                             f"{', '.join((*PAIRS, *CHECKS, TRUST, MONTE_CARLO))})")
        for quantity, parts in quantities.items():
            if quantity not in _quantities(pair) or not isinstance(parts, dict):
                raise UsageError(f"{source}: unknown quantity {quantity!r} under {pair!r} "
                                 f"(known: {', '.join(_quantities(pair))})")
            for part, value in parts.items():
                if part not in PARTS:
                    raise UsageError(f"{source}: unknown part {part!r} in {pair}.{quantity} "
                                     f"(known: {', '.join(PARTS)})")
                base.setdefault(pair, {}).setdefault(quantity, {})[part] = _number(
                    value, f"{source}: {pair}.{quantity}.{part}")


# What parity reads from an analyst's pyproject.toml: [tool.parity.tolerances].
KNOWN_TOOL_KEYS = frozenset({"tolerances"})


def _table(doc: Any, key: str, where: str) -> dict[str, Any]:
    """`doc[key]` as a table ({} when absent); anything else is a usage error."""
    if not isinstance(doc, dict):
        raise UsageError(f"{where} is not a table")
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key!r} must be a table, not {type(value).__name__}")
    return value


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} not found") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {str(path)!r} is a directory, not a TOML file") from None
    except OSError as exc:
        raise UsageError(f"{what} {str(path)!r} cannot be read "
                         f"({exc.strerror or type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


def load_policy(file: Path | None = None, project: Path | None = None, *,
                overrides: dict[str, Any] | None = None,
                overrides_source: str = "overrides") -> Policy:
    """Defaults, then `[tool.parity.tolerances]` of `project` (a pyproject.toml; by default
    the one in the working directory, if any), then `overrides` (a table of the same
    layout, e.g. a models.toml's `[tolerances]`, named `overrides_source`), then `file`."""
    default_path = resources.files("parity") / "data" / "tolerances.toml"
    table: dict[str, Any] = {}
    _merge(table, tomllib.loads(default_path.read_text(encoding="utf-8")), "defaults")
    sources = ["parity defaults"]
    pyproject = project if project is not None else Path.cwd() / "pyproject.toml"
    if pyproject.is_file():
        tool = _table(_read_toml(pyproject, "pyproject"), "tool", str(pyproject))
        tool = _table(tool, "parity", f"{pyproject} [tool]")
        unknown = sorted(set(tool) - KNOWN_TOOL_KEYS)
        if unknown:
            raise UsageError(f"{pyproject}: unknown key(s) {', '.join(map(repr, unknown))} "
                             f"under [tool.parity] (known: {', '.join(sorted(KNOWN_TOOL_KEYS))})")
        if "tolerances" in tool:
            _merge(table, tool["tolerances"], f"{pyproject} [tool.parity.tolerances]")
            sources.append(str(pyproject))
    if overrides:
        _merge(table, overrides, overrides_source)
        sources.append(overrides_source)
    if file is not None:
        _merge(table, _read_toml(file, "tolerance file"), str(file))
        sources.append(str(file))
    rules: dict[tuple[str, str], Rule] = {}
    for pair in (*PAIRS, *CHECKS):
        for quantity in _quantities(pair):
            parts = table.get(pair, {}).get(quantity)
            if parts is None or set(parts) != set(PARTS):
                raise UsageError(f"tolerance policy lacks {pair}.{quantity} "
                                 f"(needs {', '.join(PARTS)})")
            rules[(pair, quantity)] = Rule(**parts)
    for pair in PAIRS:  # the GLMM rules the policy names, each complete
        for quantity in _quantities(pair):
            parts = table.get(f"{GLMM}.{pair}", {}).get(quantity)
            if parts is None:
                continue
            if set(parts) != set(PARTS):
                raise UsageError(f"tolerance policy's {GLMM}.{pair}.{quantity} needs "
                                 f"{', '.join(PARTS)}")
            rules[(f"{GLMM}.{pair}", quantity)] = Rule(**parts)
    trust = table.get(TRUST, {})
    mc = table.get(MONTE_CARLO, {})
    for name, have, need in ((TRUST, trust, TRUST_PARTS), (MONTE_CARLO, mc, MONTE_CARLO_PARTS)):
        if set(have) != set(need):
            raise UsageError(f"tolerance policy lacks [{name}] "
                             f"{', '.join(sorted(set(need) - set(have)))}")
    return Policy(rules, tuple(sources), TrustRules(**trust), mc["mcse_mult"],
                  mc["matched_mcse_mult"])


def default_policy() -> Policy:
    """parity's default policy alone (no pyproject.toml, no overrides)."""
    return load_policy(project=Path(os.devnull))


def rule_loosening(rule: Rule, default: Rule) -> float:
    """How many times looser `rule` is than `default`: the largest factor of its parts
    over the default's (infinite for a part the default holds at 0; below 1 when every
    part is tighter)."""
    factors = []
    for part in PARTS:
        new, old = getattr(rule, part), getattr(default, part)
        if old > 0:
            factors.append(new / old)
        elif new > 0:
            factors.append(math.inf)
    return max(factors, default=1.0)


def loosening(policy: Policy, defaults: Policy) -> dict[str, float]:
    """Each rule's loosening against the default's (`rule_loosening`), named as a
    tolerance file's table (`frequentist-frequentist.estimate`); a GLMM rule the defaults
    lack is measured against the Gaussian rule it replaces; `monte-carlo.mcse_mult` too."""
    out: dict[str, float] = {}
    for (pair, quantity), rule in sorted(policy.rules.items()):
        base = defaults.rules.get((pair, quantity))
        if base is None and pair.startswith(f"{GLMM}."):
            base = defaults.rules.get((pair.split(".", 1)[1], quantity))
        if base is not None:
            out[f"{pair}.{quantity}"] = rule_loosening(rule, base)
    out[f"{MONTE_CARLO}.mcse_mult"] = rule_loosening(
        Rule(0.0, 0.0, policy.mcse_mult), Rule(0.0, 0.0, defaults.mcse_mult))
    out[f"{MONTE_CARLO}.matched_mcse_mult"] = rule_loosening(
        Rule(0.0, 0.0, policy.matched_mcse_mult), Rule(0.0, 0.0, defaults.matched_mcse_mult))
    return out


def _times(factor: float) -> str:
    return "an unbounded factor (a part the default holds at 0)" if math.isinf(factor) \
        else f"{factor:.4g}x"


def check_loosening(file: Path | str | None, allow: bool = False,
                    how: str = ALLOW_LOOSE_FLAG, limit: float = MAX_LOOSENING) -> None:
    """Refuse (UsageError) a tolerance file that loosens a default rule more than `limit`
    times, naming the loosest rule and its factor, unless `allow`."""
    if file is None or allow:
        return
    nowhere = Path(os.devnull)
    found = loosening(load_policy(Path(file), project=nowhere), default_policy())
    loose = sorted(((f, name) for name, f in found.items() if f > limit), reverse=True)
    if not loose:
        return
    factor, name = loose[0]
    more = f" (and {len(loose) - 1} other rule(s))" if len(loose) > 1 else ""
    raise UsageError(f"tolerance file {str(file)!r} loosens parity's default rule {name} "
                     f"by {_times(factor)}{more}, more than the {limit:g}x parity accepts; "
                     f"use {how} to compare by it anyway")
