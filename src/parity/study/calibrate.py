"""Tolerances calibrated from a study's replicates, written in tolerances.toml's layout
(`parity run --tolerances tolerances.calibrated.toml` reads it).

For each pair of engine kinds and each quantity, the calibrated rule is the policy's rule
scaled by the smallest factor c under which the stated share of the replicates' rows
(99% by default) would agree: each row needs c_i = |difference| / its tolerance under the
policy, and c is the order statistic that leaves that share at or below it. Scaling the
whole rule keeps its form (relative, absolute, and in units of the posterior SD, as the
policy defines each pair), so the calibrated file means "the same rule, as tight as these
replicates allow".

It learns only from like-with-like rows: an engine against the reference model of the
same covariance structure (statsmodels' or Bambi's independent coefficients against
`lme4:independent`, never against lme4's correlated fit), both fits converged. Rows that
are not comparable (a boundary fit), rows whose structures differ, rows of an unconverged
fit and the reference against its own matched refit say nothing about a tolerance and
are left out (:func:`left_out_because`); the file's comments say which rows it learned
from and how many were left out, and why. A rule looser than parity's default by more
than `MAX_LOOSENING` is marked: `parity run` refuses the file without
--allow-loose-tolerances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from parity.compare.tolerances import (
    ALLOW_LOOSE_FLAG,
    MAX_LOOSENING,
    Policy,
    Rule,
    default_policy,
    pair_key,
    rule_loosening,
)
from parity.schema import Comparison, Fit

# Why a comparison row is not learned from (the calibrated file's comments count them).
STRUCTURES_DIFFER = ("structures differ (an engine's independent random coefficients "
                     "against the reference's correlated fit)")
UNCONVERGED = "a fit did not converge"
NOT_COMPARABLE = "not comparable (a boundary fit, or a value one fit lacks)"
SELF_REFIT = "the reference against its own matched-structure refit"
NO_TOLERANCE = "no tolerance to scale (no value, or a zero tolerance)"


@dataclass(frozen=True)
class Scaled:
    """One row's need: its pair of kinds, its engines, and |difference| / tolerance."""

    pair: str
    engines: str
    quantity: str
    ratio: float


@dataclass(frozen=True)
class Calibrated:
    pair: str
    quantity: str
    factor: float
    rule: Rule
    n: int
    engines: tuple[str, ...]
    # How many times looser than parity's default rule (rule_loosening).
    loosening: float = 1.0


@dataclass
class Tally:
    """What a calibration learned from: rows used per `engine vs reference`, rows left
    out per reason."""

    used: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    def use(self, engines: str) -> None:
        self.used[engines] = self.used.get(engines, 0) + 1

    def leave_out(self, why: str) -> None:
        self.left_out[why] = self.left_out.get(why, 0) + 1


def structures_differ(fit: Fit, ref: Fit) -> bool:
    """Whether two fits estimate different covariance structures for a grouping factor
    both name (independent coefficients against correlated ones)."""
    return any(fit.structure.get(g) != s for g, s in ref.structure.items()
               if g in fit.structure)


def left_out_because(comparison: Comparison, fit: Fit, ref: Fit) -> str | None:
    """Why a comparison row of `fit` against `ref` says nothing about a tolerance, or
    None for a row to learn from."""
    c = comparison
    if c.self_refit:
        return SELF_REFIT
    if structures_differ(fit, ref):
        return STRUCTURES_DIFFER
    if fit.status != "ok" or ref.status != "ok" or c.verdict == "unconverged" \
            or c.unconverged:
        return UNCONVERGED
    if c.verdict == "not_comparable":
        return NOT_COMPARABLE
    return None


def scaled(comparison: Comparison, kind: str, reference_kind: str) -> Scaled | None:
    """The row's |difference| in units of the tolerance the policy gave it, or None for
    a row that says nothing about a tolerance."""
    c = comparison
    if c.verdict not in ("agree", "disagree") or c.value is None \
            or c.reference_value is None or c.tolerance is None:
        return None
    diff = abs(c.value - c.reference_value)
    if c.tolerance <= 0 and diff > 0:
        return None
    ratio = diff / c.tolerance if c.tolerance > 0 else 0.0
    return Scaled(pair_key(kind, reference_kind), f"{c.engine} vs {c.reference}",
                  c.quantity, ratio)


def _order_statistic(values: Sequence[float], share: float) -> float:
    """The smallest value v of `values` with at least `share` of them <= v."""
    ordered = sorted(values)
    k = max(1, math.ceil(share * len(ordered)))
    return ordered[k - 1]


def calibrate(rows: Sequence[Scaled], policy: Policy, share: float,
              defaults: Policy | None = None) -> list[Calibrated]:
    """Per pair and quantity, the policy's rule scaled to let `share` of `rows` agree,
    with how far it loosens parity's default rule (`defaults`, loaded if not given)."""
    defaults = defaults or default_policy()
    grouped: dict[tuple[str, str], list[Scaled]] = {}
    for r in rows:
        grouped.setdefault((r.pair, r.quantity), []).append(r)
    out: list[Calibrated] = []
    for (pair, quantity), rs in sorted(grouped.items()):
        if (pair, quantity) not in policy.rules:
            continue
        base = policy.rules[(pair, quantity)]
        factor = _order_statistic([r.ratio for r in rs], share)
        rule = Rule(rtol=base.rtol * factor, atol=base.atol * factor,
                    sd_mult=base.sd_mult * factor)
        default = defaults.rules.get((pair, quantity), base)
        out.append(Calibrated(pair, quantity, factor, rule, len(rs),
                              tuple(sorted({r.engines for r in rs})),
                              rule_loosening(rule, default)))
    return out


def _number(x: float) -> str:
    return f"{x:.6g}" if x else "0.0"


def _counts(counts: dict[str, int]) -> str:
    return "; ".join(f"{n} {what}" for what, n in sorted(counts.items(),
                                                         key=lambda kv: (-kv[1], kv[0])))


def calibrated_toml(calibrated: Sequence[Calibrated], share: float, design: str,
                    tally: Tally | None = None) -> str:
    """The calibrated rules as a tolerance file, with what they rest on in comments: the
    rows learned from (engines against which reference, how many), the rows left out
    and why, and each rule's factor over parity's default, marked where `parity run`
    refuses it without --allow-loose-tolerances."""
    lines = [
        "# Tolerances calibrated by `parity study`: each rule is parity's rule for the pair",
        f"# and quantity, scaled so that {share:.1%} of the study's replicate rows agree.",
        f"# Design: {design}.",
        "# Learned only from rows comparing fits of the same covariance structure (an",
        "# engine fitting independent random coefficients against lme4:independent), both",
        "# fits converged.",
    ]
    if tally is not None:
        used = sum(tally.used.values())
        lines.append(f"# Learned from {used} rows: {_counts(tally.used) or 'none'}.")
        out = sum(tally.left_out.values())
        lines.append(f"# Left out {out} rows" + (f": {_counts(tally.left_out)}." if out
                                                 else "."))
    loose = [c for c in calibrated if c.loosening > MAX_LOOSENING]
    lines += [
        "# These rules measure this study's designs and replicates, not what a verdict",
        "# should tolerate: a rule loosened to pass replicates that reach another optimum",
        "# passes what a verdict exists to flag. Read the factors below before using it",
        "# with: parity run --tolerances tolerances.calibrated.toml",
    ]
    if loose:
        lines += [
            f"# {len(loose)} rule(s) loosen parity's default by more than "
            f"{MAX_LOOSENING:g}x: parity run refuses",
            f"# this file unless given {ALLOW_LOOSE_FLAG}.",
        ]
    lines.append("")
    for c in calibrated:
        mark = (f"; LOOSER than parity's default by more than {MAX_LOOSENING:g}x "
                f"(parity run refuses it without {ALLOW_LOOSE_FLAG})"
                if c.loosening > MAX_LOOSENING else "")
        lines += [
            f"# {c.n} rows ({', '.join(c.engines)}); factor {c.factor:.4g} of the default"
            + mark,
            f"[{c.pair}.{c.quantity}]",
            f"rtol = {_number(c.rule.rtol)}",
            f"atol = {_number(c.rule.atol)}",
            f"sd_mult = {_number(c.rule.sd_mult)}",
            "",
        ]
    return "\n".join(lines)
