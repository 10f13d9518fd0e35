"""Recorded lme4 references: lme4's results stored with their provenance, for machines
where R cannot be installed.

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
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from parity import boundary
from parity.atomic import write_text_atomic
from parity.data import PreparedData
from parity.errors import DataError
from parity.models import Model
from parity.schema import Fit, fit_from_dict, fit_to_dict
from parity.settings import Settings

KIND = "parity-lme4-reference"
ENV_DIRS = "PARITY_REFERENCES"


def shipped_dir() -> Path:
    return Path(str(resources.files("parity") / "data" / "references"))


def search_dirs() -> list[Path]:
    """Directories named in $PARITY_REFERENCES (os.pathsep-separated), then the shipped ones."""
    extra = [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    return extra + [shipped_dir()]


def _r_code_hash() -> str:
    from parity.engines.lme4 import r_script_path

    return hashlib.sha256(r_script_path().read_bytes()).hexdigest()


def _key(model: Model, data: PreparedData, settings: Settings) -> dict[str, Any]:
    return {
        "engine_formula": model.spec.lme4_formula(),
        "data_sha256": data.digest(),
        "reml": settings.reml,
        "interval": settings.interval,
    }


def make_record(model: Model, data: PreparedData, settings: Settings, fit: Fit,
                variant: str | None = None) -> dict[str, Any]:
    """A record of one live lme4 fit."""
    if fit.engine != "lme4" or fit.status != "ok" or fit.provenance.settings.get("source"):
        raise DataError(f"only a live, successful lme4 fit can be recorded ({model.name})")
    return {
        "kind": KIND,
        "schema_version": 1,
        "model": model.name,
        "formula": model.formula,
        "variant": variant,
        **_key(model, data, settings),
        "r_code_sha256": _r_code_hash(),
        "versions": dict(fit.provenance.versions),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fit": fit_to_dict(fit),
    }


def record_name(model_name: str, variant: str | None) -> str:
    return f"{model_name}.{variant}.json" if variant else f"{model_name}.json"


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    path = Path(directory) / record_name(record["model"], record["variant"])
    return write_text_atomic(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an unreadable record is not trusted, only ignored
    return doc if isinstance(doc, dict) and doc.get("kind") == KIND else None


def find_recorded(model: Model, data: PreparedData, settings: Settings) -> Fit | None:
    """The recorded lme4 fit whose formula, data hash and settings match, or None."""
    key = _key(model, data, settings)
    for directory in search_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            doc = _load(path)
            if doc is None or any(doc.get(k) != v for k, v in key.items()):
                continue
            fit = fit_from_dict(doc["fit"])
            settings_out = dict(fit.provenance.settings)
            settings_out["source"] = "recorded"
            settings_out["recorded"] = {
                "path": str(path), "recorded_at": doc.get("recorded_at"),
                "data_sha256": doc["data_sha256"], "r_code_sha256": doc.get("r_code_sha256"),
            }
            # A record keeps lme4's isSingular(); the boundary rule is today's.
            diagnostics = replace(fit.diagnostics, singular=boundary.singular(
                fit.variance_components, fit.diagnostics.singular))
            return replace(
                fit, model=model.name, formula=model.formula, diagnostics=diagnostics,
                provenance=replace(fit.provenance, settings=settings_out, seconds=0.0),
            )
    return None
