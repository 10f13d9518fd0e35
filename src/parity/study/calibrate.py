"""Tolerances calibrated from a study's replicates, written in tolerances.toml's layout
(`parity run --tolerances tolerances.calibrated.toml` reads it).

For each pair of engine kinds and each quantity, the calibrated rule is the policy's rule
scaled by the smallest factor c under which the stated share of the replicates' rows
(99% by default) would agree: each row needs c_i = |difference| / its tolerance under the
policy, and c is the order statistic that leaves that share at or below it. Scaling the
whole rule keeps its form (relative, absolute, and in units of the posterior SD, as the
policy defines each pair), so the calibrated file means "the same rule, as tight as these
replicates allow". Rows that are not comparable (a boundary fit, structures that differ)
say nothing about a tolerance and are left out; the count of rows used is in the comments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from parity.compare.tolerances import Policy, Rule, pair_key
from parity.schema import Comparison


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


def calibrate(rows: Sequence[Scaled], policy: Policy, share: float) -> list[Calibrated]:
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
        out.append(Calibrated(pair, quantity, factor, rule, len(rs),
                              tuple(sorted({r.engines for r in rs}))))
    return out


def _number(x: float) -> str:
    return f"{x:.6g}" if x else "0.0"


def calibrated_toml(calibrated: Sequence[Calibrated], share: float, design: str) -> str:
    """The calibrated rules as a tolerance file, with what they rest on in comments."""
    lines = [
        "# Tolerances calibrated by `parity study`: each rule is parity's rule for the pair",
        f"# and quantity, scaled so that {share:.1%} of the study's replicate rows agree.",
        f"# Design: {design}.",
        "# Use: parity run --tolerances tolerances.calibrated.toml",
        "",
    ]
    for c in calibrated:
        lines += [
            f"# {c.n} rows ({', '.join(c.engines)}); factor {c.factor:.4g} of the default",
            f"[{c.pair}.{c.quantity}]",
            f"rtol = {_number(c.rule.rtol)}",
            f"atol = {_number(c.rule.atol)}",
            f"sd_mult = {_number(c.rule.sd_mult)}",
            "",
        ]
    return "\n".join(lines)
