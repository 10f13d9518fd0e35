"""Recorded references: the results of the R engines (lme4, glmmTMB) stored with their
provenance, for machines where R cannot be installed.

Like statsmodels' lme4 fixtures, a record keeps what is needed to regenerate and to trust
it: the hash of the rows and coding the model saw, the formula as lme4 received it, the R,
lme4 and Matrix versions, the hash of the R code that produced it, and the settings. A
record is used only when all of these that define the fit match; the result is marked
`source: recorded` in results.json and in every report.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from parity import boundary
from parity.atomic import write_text_atomic
from parity.errors import DataError, UsageError
from parity.processes import quiet_spawn
from parity.rows.prepare import PreparedData
from parity.schema import SCHEMA_VERSION, Fit, fit_from_dict, fit_to_dict
from parity.settings import Settings
from parity.spec.models import Model

KIND = "parity-lme4-reference"
ENV_DIRS = "PARITY_REFERENCES"


def shipped_dir() -> Path:
    return Path(str(resources.files("parity") / "data" / "references"))


def search_dirs() -> list[Path]:
    """Directories named in $PARITY_REFERENCES (os.pathsep-separated), then the shipped ones."""
    extra = [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    return extra + [shipped_dir()]


def _r_code_hash(engine: str) -> str:
    from parity.engines import engine_info
    from parity.engines.rscripts import r_code_sha256

    return r_code_sha256(engine_info(engine).r_scripts)


# The key's entries that say how the record's tests and intervals were found, not which
# fit it is: a record of the same fit under other ones is skipped with the reason.
PUBLISHED_KEYS = ("interval", "ddf", "profile")


def _key(model: Model, data: PreparedData, settings: Settings,
         engine: str = "lme4") -> dict[str, Any]:
    """What a record must match. lme4's records (the first kind) name no engine. An
    engine whose registry row takes `ddf` (lme4) is keyed on it for a Gaussian mixed
    model, the only one lmerTest's df apply to, and on `profile` for any mixed model."""
    from parity.engines import engine_info

    key: dict[str, Any] = {
        "engine_formula": model.spec.lme4_formula(),
        "data_sha256": data.digest(),
        "reml": settings.reml,
        "interval": settings.interval,
    }
    taken = engine_info(engine).settings
    mixed = model.spec.is_mixed
    if "ddf" in taken and mixed and model.gaussian:
        key["ddf"] = settings.ddf
    if "profile" in taken and mixed:
        key["profile"] = settings.profile
    if not model.gaussian:  # Gaussian records (the first kind) name no family
        key.update(family=model.family, trials=model.trials, nagq=settings.nagq)
    if model.weights is not None:  # unweighted records name no weights; an offset is in
        key["weights"] = model.weights  # the engine formula
    return key if engine == "lme4" else {**key, "engine": engine}


def _other_fit(doc: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether a record is of another model, data set or fit than `key` names (its
    interval, ddf and profile aside: :func:`_published_mismatch`)."""
    return any(doc.get(k) != v for k, v in key.items() if k not in PUBLISHED_KEYS)


def _published_mismatch(doc: dict[str, Any], key: dict[str, Any]) -> str | None:
    """Why a record of this very fit cannot stand in for it: its intervals or tests were
    found at another level or by another method than the run asks (`interval 0.94, this
    run asks 0.95`), or were recorded before the setting was kept. None when they match."""
    said = []
    for k in PUBLISHED_KEYS:
        if k in key and doc.get(k) != key[k]:
            recorded = "not recorded" if k not in doc else f"{doc[k]!r}"
            said.append(f"{k} {recorded}, this run asks {key[k]!r}")
    if not said:
        return None
    return ("its tests and intervals were recorded under other settings ("
            + "; ".join(said) + "); re-record it with `parity record`")


def recordable(engine: str) -> bool:
    """Engines that run R, and so may be missing where parity runs: lme4, glmmtmb."""
    from parity.engines import engine_info

    return bool(engine_info(engine).r_scripts)


def _missing_here(engines: tuple[str, ...]) -> dict[str, str]:
    """Each engine's own `missing()`, in the process that calls it."""
    from parity.engines import load_engine

    reasons = {name: load_engine(name).missing() for name in engines}
    return {name: why for name, why in reasons.items() if why}


def not_live(engines: Sequence[str]) -> dict[str, str]:
    """Why each engine in `engines` cannot fit live here, by the engine's own
    `missing()` (no rpy2 or R, the R package glmmTMB absent, PARITY_LME4=recorded): a
    record needs a live fit, and a run without one would fall back on a record. Asked
    in a spawned process, as the fits are: importing rpy2 embeds R and takes over
    SIGINT, which the calling process must not have done to it."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=quiet_spawn()) as pool:
            return pool.submit(_missing_here, tuple(engines)).result()
    except BrokenProcessPool:
        return {name: "the process that starts R to check for it died" for name in engines}


def make_record(model: Model, data: PreparedData, settings: Settings, fit: Fit,
                variant: str | None = None) -> dict[str, Any]:
    """A record of one live fit of an R engine."""
    # An unconverged fit is recorded as it is, status and reason with it: read back, it
    # is vetted again and its rows say it did not converge, as a live fit's would.
    if not recordable(fit.engine) or not fit.has_numbers or fit.provenance.source != "fit":
        raise DataError(f"only a live fit with numbers of an R engine can be recorded "
                        f"({model.name}, {fit.engine})")
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "model": model.name,
        "formula": model.formula,
        "variant": variant,
        **_key(model, data, settings, fit.engine),
        "r_code_sha256": _r_code_hash(fit.engine),
        "versions": dict(fit.provenance.versions),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fit": fit_to_dict(fit),
    }


def record_name(model_name: str, variant: str | None, reml: bool = True,
                engine: str = "lme4") -> str:
    """`m1.json`, `m1.independent.json` (lme4); another engine's record names it
    (`m1.glmmtmb.json`), and an ML fit's ends in `.ml.json`, so that the records of one
    model by several engines and criteria live side by side."""
    parts = [model_name, *([variant] if variant else []),
             *([] if engine == "lme4" else [engine]), *([] if reml else ["ml"])]
    return ".".join(parts) + ".json"


def check_overwrite(directory: Path, model: Model, data: PreparedData, settings: Settings,
                    variant: str | None, engine: str = "lme4") -> None:
    """Refuse to replace a record of other data or another model under the same name
    (`m1.json` of one data set by `m1.json` of the next): the next run would silently
    skip lme4 for the first. Re-recording the same model and data is allowed, under
    other interval, ddf or profile settings too."""
    path = Path(directory) / record_name(model.name, variant, settings.reml, engine)
    if not path.exists():
        return
    doc = _load(path)
    key = _key(model, data, settings, engine)
    # Re-recording under another interval, ddf or profile replaces the record.
    if doc is None or _other_fit(doc, key):
        what = "is not a parity record" if doc is None else "records another model or data"
        raise UsageError(f"{str(path)!r} {what}; record into another directory, or remove "
                         "it first")


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    path = Path(directory) / record_name(record["model"], record["variant"],
                                         bool(record.get("reml", True)),
                                         str(record.get("engine", "lme4")))
    return write_text_atomic(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        if not path.is_file():
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an unreadable record is not trusted, only ignored
    return doc if isinstance(doc, dict) and doc.get("kind") == KIND else None


MANIFEST = "MANIFEST.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(directory: Path) -> Path:
    """SHA-256 of every record in `directory`, so that a record edited after it was
    written (by hand, or by a broken copy) is known and skipped."""
    directory = Path(directory)
    hashes = {p.name: file_sha256(p) for p in sorted(directory.glob("*.json"))
              if p.name != MANIFEST and _load(p) is not None}
    return write_text_atomic(directory / MANIFEST,
                             json.dumps({"kind": f"{KIND}-manifest", "sha256": hashes},
                                        indent=2) + "\n")


def _manifest(directory: Path) -> dict[str, str] | None:
    try:
        doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        hashes = doc["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return hashes if isinstance(hashes, dict) else None


def _usable(path: Path, doc: dict[str, Any] | None,
            manifest: dict[str, str] | None, engine: str = "lme4"
            ) -> tuple[Fit | None, str | None]:
    """The record's fit, or why it cannot be used (None, None: not a record at all)."""
    if doc is None:
        return None, "not a readable parity record"
    if manifest is not None and manifest.get(path.name) != file_sha256(path):
        return None, f"its content does not match {MANIFEST}"
    raw = doc.get("fit")
    if not isinstance(raw, dict):
        return None, "it holds no fit"
    try:
        fit = fit_from_dict(raw)
    except Exception as exc:  # a malformed record: skipped, never fatal
        return None, f"its fit is malformed ({type(exc).__name__}: {exc})"
    if not recordable(fit.engine) or not fit.has_numbers:
        return None, (f"it is a {fit.engine!r} fit with status {fit.status!r}, not a "
                      "fit with numbers of an R engine")
    if fit.engine != engine or doc.get("engine", "lme4") != engine:
        return None, None  # another engine's record: not this engine's to use
    return fit, None


def find_recorded(model: Model, data: PreparedData, settings: Settings,
                  engine: str = "lme4") -> Fit | None:
    """The recorded fit of `engine` whose formula, data hash and settings match, or None.

    Records that cannot be used (unreadable, malformed, not an R engine's, edited since
    the manifest) are skipped; each is named in `skipped_records()` and in the warnings of
    the fit that is returned, so one bad file never fails every fit of the engine. The
    fit names its R package (`settings["recorded"]["package"]`), so that a report says
    whose numbers were recorded (glmmTMB's version is not lme4's)."""
    key = _key(model, data, settings, engine)
    _SKIPPED.clear()
    for directory in search_dirs():
        if not directory.is_dir():
            continue
        manifest = _manifest(directory)
        for path in sorted(directory.glob("*.json")):
            if path.name == MANIFEST:
                continue
            doc = _load(path)
            fit, why = _usable(path, doc, manifest, engine)
            if why is not None:
                _SKIPPED.append(f"skipped recorded reference {str(path)!r}: {why}")
                continue
            if fit is None:
                continue
            assert doc is not None
            if _other_fit(doc, key):
                continue  # another model, data set or fit: not this one's record
            why = _published_mismatch(doc, key)
            if why is not None:
                _SKIPPED.append(f"skipped recorded reference {str(path)!r}: {why}")
                continue
            settings_out = dict(fit.provenance.settings)
            settings_out["recorded"] = {
                "path": str(path), "recorded_at": doc.get("recorded_at"),
                "data_sha256": doc["data_sha256"], "r_code_sha256": doc.get("r_code_sha256"),
                "package": r_package(fit),
            }
            # A record keeps lme4's isSingular(); the boundary rule is today's.
            diagnostics = replace(fit.diagnostics, singular=boundary.singular(
                fit.variance_components, fit.diagnostics.singular),
                warnings=fit.diagnostics.warnings + tuple(_SKIPPED))
            return replace(
                fit, model=model.name, formula=model.formula, diagnostics=diagnostics,
                provenance=replace(fit.provenance, settings=settings_out, seconds=0.0,
                                   source="recorded"),
            )
    return None


def r_package(fit: Fit) -> str:
    """The R package whose numbers a fit of an R engine holds (`glmmTMB` for engine
    glmmtmb): the key of its recorded versions that spells the engine's name."""
    return next((k for k in fit.provenance.versions if k.lower() == fit.engine.lower()),
                fit.engine)


_SKIPPED: list[str] = []


def skipped_records() -> list[str]:
    """The records the last search skipped, and why."""
    return list(_SKIPPED)
