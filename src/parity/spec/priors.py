"""Priors as data: the Bayesian engines' priors, named by class, from a TOML file, a
models.toml's `[priors]` table or a Python mapping.

A Bayesian–frequentist gap is often the prior's doing, and the only way to ask is to
refit under other priors. Every Bayesian engine translates the same document, records
the priors its built model holds, and refuses up front a prior it cannot express, by
name. Without a document the engines keep Bambi's own defaults, as before.

    [intercept]             # the intercept: Normal(mu, sigma) or StudentT(nu, mu, sigma)
    dist = "Normal"
    mu = 200
    sigma = 50

    [fixed]                 # every fixed-effect term ...
    dist = "Normal"
    mu = 0
    sigma = 100
    [fixed.gender]          # ... but `gender`, as the formula writes the term
    dist = "Normal"
    mu = 0
    sigma = 20

    [sd]                    # every group SD: HalfNormal(sigma), HalfStudentT(nu, sigma)
    dist = "HalfNormal"     # or Exponential(lam)
    sigma = 50
    [sd.subject]            # the SDs of `( … | subject)`; `[sd."attitude|subject"]` one
    dist = "HalfNormal"
    sigma = 5

    [residual]              # the residual SD of a Gaussian model, as `sd`
    dist = "HalfNormal"
    sigma = 50

    [lkj]                   # the LKJ prior of correlated blocks (the pymc engine's)
    eta = 2

A document is held by :class:`parity.settings.Settings` as canonical JSON, so that the
fit cache keys on it and the record shows it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.errors import UsageError
from parity.spec.spec import ModelSpec
from parity.spec.toml_files import read_toml

# The distributions of each class, with their parameters in order.
LOCATION = {"Normal": ("mu", "sigma"), "StudentT": ("nu", "mu", "sigma")}
SCALE = {"HalfNormal": ("sigma",), "HalfStudentT": ("nu", "sigma"), "Exponential": ("lam",)}
CLASSES = ("intercept", "fixed", "sd", "residual", "lkj")
_POSITIVE = ("sigma", "nu", "lam", "eta")


@dataclass(frozen=True)
class Prior:
    """One prior: a distribution and its parameters, in the distribution's order."""

    dist: str
    params: tuple[tuple[str, float], ...]

    @property
    def args(self) -> dict[str, float]:
        return dict(self.params)

    def text(self) -> str:
        """As Bambi prints a prior: `HalfNormal(sigma: 5.0)`."""
        return f"{self.dist}({', '.join(f'{k}: {v:g}' for k, v in self.params)})"


@dataclass(frozen=True)
class Priors:
    """A priors document: each class's prior (None: the engine's default), the
    per-term ones by name (fixed-effect terms as the formula writes them; SD blocks by
    grouping factor or `term|factor`), and the LKJ η."""

    intercept: Prior | None = None
    fixed: Prior | None = None
    fixed_terms: tuple[tuple[str, Prior], ...] = ()
    sd: Prior | None = None
    sd_terms: tuple[tuple[str, Prior], ...] = ()
    residual: Prior | None = None
    lkj_eta: float | None = None

    def fixed_prior(self, term: str) -> Prior | None:
        return dict(self.fixed_terms).get(term, self.fixed)

    def sd_prior(self, term: str, group: str) -> Prior | None:
        """The SD prior of `term` (`1` for the intercept) in `( … | group)`."""
        named = dict(self.sd_terms)
        return named.get(f"{term}|{group}", named.get(group, self.sd))

    def to_json(self) -> str:
        """Canonical JSON (sorted, no spaces): the same document, the same text."""
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":"))

    def document(self) -> dict[str, Any]:
        """The document as it would be written (TOML's layout, as a mapping)."""
        def one(p: Prior) -> dict[str, Any]:
            return {"dist": p.dist, **p.args}

        doc: dict[str, Any] = {}
        if self.intercept:
            doc["intercept"] = one(self.intercept)
        for name, base, named in (("fixed", self.fixed, self.fixed_terms),
                                  ("sd", self.sd, self.sd_terms)):
            table: dict[str, Any] = one(base) if base else {}
            table.update({k: one(p) for k, p in named})
            if table:
                doc[name] = table
        if self.residual:
            doc["residual"] = one(self.residual)
        if self.lkj_eta is not None:
            doc["lkj"] = {"eta": self.lkj_eta}
        return doc


def _prior(table: Any, where: str, dists: Mapping[str, tuple[str, ...]]) -> Prior:
    if not isinstance(table, Mapping):
        raise UsageError(f"{where} must be a table with dist and its parameters")
    dist = table.get("dist")
    if not isinstance(dist, str) or dist not in dists:
        raise UsageError(f"{where}: dist must be one of {', '.join(dists)}, not {dist!r}")
    names = dists[dist]
    extra = sorted(set(table) - {"dist", *names})
    if extra:
        raise UsageError(f"{where}: {dist} takes {', '.join(names)}, not {extra[0]}")
    params = []
    for name in names:
        value = table.get(name)
        if value is None:
            raise UsageError(f"{where}: {dist} needs {name}")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise UsageError(f"{where}: {name} must be a finite number, not {value!r}")
        if name in _POSITIVE and value <= 0:
            raise UsageError(f"{where}: {name} must be above 0, not {value!r}")
        params.append((name, float(value)))
    return Prior(str(dist), tuple(params))


def _split(table: Any, where: str, dists: Mapping[str, tuple[str, ...]]
           ) -> tuple[Prior | None, tuple[tuple[str, Prior], ...]]:
    """A `[fixed]` or `[sd]` table: its own prior (for every term) and its sub-tables."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where} must be a table")
    named = tuple((str(k), _prior(v, f"{where}.{k}", dists))
                  for k, v in sorted(table.items()) if isinstance(v, Mapping))
    own = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    return (_prior(own, where, dists) if own else None), named


def parse_priors(doc: Any, source: str = "priors") -> Priors:
    """A priors document checked, or a one-line UsageError naming where it is wrong
    (`priors.toml: [sd.subject]: sigma must be above 0, not -1`)."""
    if not isinstance(doc, Mapping):
        raise UsageError(f"{source}: priors must be a table of {', '.join(CLASSES)}")
    unknown = sorted(set(doc) - set(CLASSES))
    if unknown:
        raise UsageError(f"{source}: unknown prior class {unknown[0]!r} (known: "
                         f"{', '.join(CLASSES)})")
    fixed, fixed_terms = _split(doc.get("fixed", {}), f"{source}: [fixed]", LOCATION)
    sd, sd_terms = _split(doc.get("sd", {}), f"{source}: [sd]", SCALE)
    eta = None
    if "lkj" in doc:
        lkj = doc["lkj"]
        if not isinstance(lkj, Mapping) or set(lkj) != {"eta"}:
            raise UsageError(f"{source}: [lkj] takes eta only")
        eta = _prior({"dist": "LKJ", **lkj}, f"{source}: [lkj]", {"LKJ": ("eta",)}).args["eta"]
    return Priors(
        intercept=(_prior(doc["intercept"], f"{source}: [intercept]", LOCATION)
                   if "intercept" in doc else None),
        fixed=fixed, fixed_terms=fixed_terms, sd=sd, sd_terms=sd_terms,
        residual=(_prior(doc["residual"], f"{source}: [residual]", SCALE)
                  if "residual" in doc else None),
        lkj_eta=eta)


def load_priors(path: str | Path) -> Priors:
    """A priors TOML file, checked; one-line UsageErrors for a missing or malformed one."""
    return parse_priors(read_toml(path, "priors"), str(path))


def priors_of(text: str | None) -> Priors | None:
    """The document a Settings holds (canonical JSON), or None for the defaults."""
    return None if text is None else parse_priors(json.loads(text))


def priors_problem(value: Any) -> str | None:
    """Settings' check of its `priors`: None or a priors document's canonical JSON."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a priors document (canonical JSON) or None"
    try:
        priors_of(value)
    except (ValueError, UsageError) as exc:
        return f"is not a priors document ({exc})"
    return None


def check_names(priors: Priors | None, specs: Sequence[ModelSpec],
                source: str = "priors") -> None:
    """A one-line UsageError for a per-term prior that names nothing in any of the run's
    models (a typo would otherwise leave that term at its default without a word)."""
    if priors is None:
        return
    fixed = {t.label for s in specs for t in s.fixed}
    for name, _ in priors.fixed_terms:
        if name not in fixed:
            raise UsageError(f"{source}: [fixed.{name}] names no fixed-effect term of the "
                             f"models (their terms: {', '.join(sorted(fixed)) or 'none'})")
    blocks = {b.group_label for s in specs for b in s.random}
    terms = {f"{n}|{b.group_label}" for s in specs for b in s.random
             for n in (["1"] if b.intercept else []) + [t.label for t in b.terms]}
    for name, _ in priors.sd_terms:
        if name not in blocks | terms:
            raise UsageError(f"{source}: [sd.\"{name}\"] names no grouping factor or "
                             f"term|factor of the models (they have: "
                             f"{', '.join(sorted(blocks | terms)) or 'none'})")
