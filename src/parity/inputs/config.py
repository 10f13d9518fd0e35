"""Model files: `parity run --config models.toml`.

An analyst's comparison is worth keeping beside their data: which data set, which
columns are categorical, which models under which names, which engines, sampler
settings and tolerance overrides. The file is data, parsed with tomllib; every key is
checked (an unknown one is an error that names it, so a typo never silently falls back
to a default), and every formula is parsed by parity's grammar as the file is read.

    data = "sleep.csv"                # relative to this file; or:
    r_dataset = "lme4::sleepstudy"    # a data set shipped with an installed R package
    categorical = ["Subject"]
    engines = ["lme4", "statsmodels", "bambi"]

    reml = false                      # maximum likelihood (default: REML)

    [models]
    intercept = "Reaction ~ Days + (1 | Subject)"
    [models.herd]                     # a table for another family
    formula = "incidence ~ period + (1 | herd)"
    family = "binomial"               # gaussian (default), binomial, poisson
    trials = "size"                   # binomial counts out of this column
    weights = "w"                     # prior weights (lme4's `weights`), any family

    [sampler]                         # draws, tune, chains, seed, target_accept, interval
    draws = 1000

    priors = "priors.toml"            # the Bayesian engines' priors (parity.spec.priors),
                                      # relative to this file, or a [priors] table

    [tolerances.bayesian-frequentist.estimate]   # the layout of tolerances.toml
    sd_mult = 0.5
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity.engines import check_engines
from parity.errors import FormulaError, UsageError
from parity.inputs.r_datasets import parse_r_dataset
from parity.settings import SAMPLER_KEYS, Settings
from parity.spec.family import check_family
from parity.spec.grammar import parse_formula
from parity.spec.models import check_weights_name
from parity.spec.priors import load_priors, parse_priors
from parity.spec.toml_files import read_toml

TOP_KEYS = ("data", "r_dataset", "categorical", "engines", "models", "sampler", "tolerances",
            "reml", "priors")
# Model names become file names (figures/<model>.png, recorded references).
MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class RunConfig:
    """A parsed models.toml. `models` maps names to formulas (already checked)."""

    path: Path
    data: Path | None = None
    r_dataset: str | None = None
    categorical: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    # A model's family, trials and weights columns, where its table names them (else
    # gaussian, unweighted).
    families: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    engines: tuple[str, ...] | None = None
    sampler: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, Any] = field(default_factory=dict)
    reml: bool | None = None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of strings")
    return tuple(value)


def _unknown(keys: Any, known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known)})")


MODEL_KEYS = ("formula", "family", "trials", "weights")


def _models(table: Any, where: str
            ) -> tuple[dict[str, str], dict[str, tuple[str, str | None, str | None]]]:
    """Each model's formula, and the family, trials and weights of those given as
    tables."""
    if not isinstance(table, dict) or not table:
        raise UsageError(f"{where}: [models] must be a table of name = \"formula\" "
                         "with at least one model")
    formulas: dict[str, str] = {}
    families: dict[str, tuple[str, str | None, str | None]] = {}
    for name, entry in table.items():
        if not MODEL_NAME.fullmatch(name):
            raise UsageError(f"{where}: model name {name!r} is not an identifier "
                             "(letters, digits, _; starting with a letter)")
        if isinstance(entry, dict):
            _unknown(entry, MODEL_KEYS, f"{where} [models.{name}]")
            formula, family, trials, weights = (
                entry.get("formula"), entry.get("family", "gaussian"), entry.get("trials"),
                entry.get("weights"))
            if not isinstance(family, str) or not all(v is None or isinstance(v, str)
                                                      for v in (trials, weights)):
                raise UsageError(f"{where}: model {name!r}: family, trials and weights must "
                                 "be strings")
            try:
                check_family(family, trials)
                check_weights_name(weights)
            except UsageError as exc:
                raise UsageError(f"{where}: model {name!r}: {exc}") from None
            families[name] = (family, trials, weights)
        else:
            formula = entry
        if not isinstance(formula, str):
            raise UsageError(f"{where}: model {name!r} must be a formula string, or a table "
                             "with formula = \"...\"")
        try:
            parse_formula(formula)
        except FormulaError as exc:
            raise UsageError(f"{where}: model {name!r}: {exc}") from None
        formulas[name] = formula
    return formulas, families


def _settings(table: Any, reml: Any, where: str) -> dict[str, Any]:
    """The [sampler] table, its keys known and its values and `reml` checked as every
    way in checks them (:meth:`Settings.check`), in the file's words."""
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [sampler] must be a table")
    _unknown(table, SAMPLER_KEYS, f"{where} [sampler]")

    def say(name: str, value: Any, problem: str) -> str:
        if name in SAMPLER_KEYS:
            return f"{where} [sampler] {name} {problem}"
        return f"{where}: {name} {problem.replace('True or False', 'true or false')}"

    Settings(**table, **({} if reml is None else {"reml": reml})).check(say)
    return {k: float(v) if k in ("target_accept", "interval") else v for k, v in table.items()}


def load_config(path: Path) -> RunConfig:
    """Read and check a models.toml; a data path in it is relative to the file."""
    path = Path(path)
    where = str(path)
    doc = read_toml(path, "config")
    _unknown(doc, TOP_KEYS, where)
    if ("data" in doc) == ("r_dataset" in doc):
        raise UsageError(f"{where}: give exactly one of data = \"FILE.csv\" or "
                         "r_dataset = \"PKG::NAME\"")
    data = None
    if "data" in doc:
        if not isinstance(doc["data"], str) or not doc["data"]:
            raise UsageError(f"{where}: data must be a file name")
        data = path.parent / doc["data"]
    r_dataset = doc.get("r_dataset")
    if r_dataset is not None:
        if not isinstance(r_dataset, str):
            raise UsageError(f"{where}: r_dataset must be \"PKG::NAME\"")
        parse_r_dataset(r_dataset)
    engines = None
    if "engines" in doc:
        engines = check_engines(_strings(doc["engines"], f"{where}: engines"))
        if not engines:
            raise UsageError(f"{where}: engines is empty")
    tolerances = doc.get("tolerances", {})
    if not isinstance(tolerances, dict):
        raise UsageError(f"{where}: [tolerances] must be a table")
    models, families = _models(doc.get("models"), where)
    reml = doc.get("reml")
    sampler = _settings(doc.get("sampler", {}), reml, where)
    if "priors" in doc:  # a file beside this one, or the document as a table here
        given = doc["priors"]
        priors = (load_priors(path.parent / given) if isinstance(given, str)
                  else parse_priors(given, f"{where}: [priors]"))
        sampler["priors"] = priors.to_json()
    return RunConfig(
        path=path,
        reml=reml,
        data=data,
        r_dataset=r_dataset,
        categorical=_strings(doc.get("categorical", []), f"{where}: categorical"),
        models=models,
        families=families,
        engines=engines,
        sampler=sampler,
        tolerances=tolerances,
    )
