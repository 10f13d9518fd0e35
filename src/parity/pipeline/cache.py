"""A cache of fits, keyed by everything that determines a fit's numbers.

Analysts rerun parity whenever data, a formula, a tolerance or an environment changes; only
what changed should be refitted. A key is the SHA-256 of: the engine, the model as the
engine sees it (rendered formula), the hash of the rows and coding, the settings that
matter to that engine, the versions of the engine's stack, and parity's own version and
source hash (with the R code's hash for an R engine). Entries are JSON files written
atomically; an entry that does not parse, or whose stored key material differs from the
request, is ignored and refitted, never trusted. Lookups happen in the main process, so a
warm rerun starts no worker, no R and no JAX.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from parity import __version__
from parity.atomic import write_text_atomic
from parity.engines import all_r_packages, engine_info
from parity.environment import CACHE_ENV, cache_dir, package_versions
from parity.reports.figure_cache import FigureCache
from parity.rows.prepare import PreparedData
from parity.schema import Fit, fit_from_dict, fit_to_dict
from parity.settings import Settings
from parity.spec.models import Model

ENV_DIR = CACHE_ENV
FORMAT = 2  # 2: entries carry a checksum of their value


def _r_stamp(rscript: str) -> dict[str, Any]:
    """What identifies the installed R without starting it: the Rscript binary's real
    path and modification time, and those of the DESCRIPTION files of every R engine's
    packages (the registry's `r_packages`) in R's usual library folders (an install or
    upgrade of one rewrites its DESCRIPTION)."""
    real = Path(rscript).resolve()
    stamp: dict[str, Any] = {"rscript": str(real), "mtime_ns": real.stat().st_mtime_ns}
    home = Path(os.environ.get("R_HOME") or real.parent.parent / "lib" / "R")
    libs = [home / "library", home / "site-library", Path("/usr/lib/R/site-library"),
            Path("/usr/lib/R/library"), Path("/usr/local/lib/R/site-library")]
    for pkg in all_r_packages():
        for lib in libs:
            desc = lib / pkg / "DESCRIPTION"
            if desc.is_file():
                stamp[f"{pkg}:{desc}"] = desc.stat().st_mtime_ns
    return stamp


@cache
def r_fingerprint() -> str | None:
    """R's version and those of every R engine's packages (`none` for one not
    installed), or None without R: then R engines' results are not cached (recorded
    references are used). Asking Rscript takes about 0.2 s, so the answer is
    kept in the cache folder under the R installation's stamp (:func:`_r_stamp`), and a
    warm rerun starts no R at all."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    try:
        stamp = _r_stamp(rscript)
    except OSError:
        return None
    packages = all_r_packages()
    # 3: the packages are the registry's, named in the file
    stored = cache_dir() / "r-fingerprint.3.json"
    try:
        doc = json.loads(stored.read_text(encoding="utf-8")) if stored.is_file() else None
        if isinstance(doc, dict) and doc.get("stamp") == stamp and \
                doc.get("packages") == list(packages) and isinstance(doc.get("fingerprint"), str):
            return str(doc["fingerprint"])
    except (OSError, ValueError):
        pass
    names = ", ".join(f'"{p}"' for p in packages)
    code = (f'cat(R.version.string, sapply(c({names}), function(p) '
            'if (requireNamespace(p, quietly = TRUE)) as.character(packageVersion(p)) '
            'else "none"), sep = "|")')
    try:
        out = subprocess.run([rscript, "--vanilla", "-e", code], capture_output=True,
                             text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    fingerprint = out.stdout.strip() or None
    if fingerprint is not None:
        with contextlib.suppress(OSError):  # an unwritable cache costs 0.2 s next time
            write_text_atomic(stored, json.dumps({"stamp": stamp, "packages": list(packages),
                                                  "fingerprint": fingerprint}))
    return fingerprint


@cache
def code_fingerprint() -> str:
    """SHA-256 of parity's own Python source. A fix to how parity prepares data or reads
    an engine's results changes numbers without changing the version string, and a cache
    keyed on the version alone would hand back the old, wrong fit."""
    root = Path(__file__).resolve().parents[1]  # the package, not pipeline/
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key_material(engine: str, model: Model, data: PreparedData,
                 settings: Settings) -> dict[str, Any] | None:
    """What a fit's numbers depend on, or None when this fit must not be cached."""
    info = engine_info(engine)
    material: dict[str, Any] = {
        "format": FORMAT,
        "parity": __version__,
        "code": code_fingerprint(),
        "engine": engine,
        "formula": model.spec.lme4_formula(),
        "family": [model.family, model.trials],
        "weights": model.weights,  # the offset is in the formula
        "data": data.digest(),
        "settings": {k: getattr(settings, k) for k in info.settings},
        "stack": package_versions(info.stack),
    }
    if info.r_scripts:
        from parity.engines.rscripts import forced_recorded, r_code_sha256

        fingerprint = r_fingerprint()
        if fingerprint is None or forced_recorded():
            return None
        material["r"] = fingerprint
        material["r_code"] = r_code_sha256(info.r_scripts)
    return material


def _checksum(value: Any) -> str:
    """SHA-256 of a value's canonical JSON: an entry edited or truncated into other valid
    JSON no longer matches it."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# The statuses a cached fit may have. An unconverged fit is what the same inputs give
# again (the key holds the data, settings and versions), so a rerun reads it back rather
# than repeating a fit that will not converge; its status is no verdict in itself: every
# fit, cached or not, is vetted again under the run's own trust rule before it is compared.
_KEPT = ("ok", "unconverged")


def _has_numbers(fit: Fit) -> bool:
    """Finite fixed effects and SDs, at least one of each kind the fit claims."""
    if not fit.fixed_effects:
        return False
    finite = all(math.isfinite(f.estimate) and math.isfinite(f.std_error)
                 for f in fit.fixed_effects)
    return finite and all(math.isfinite(v.estimate) for v in fit.variance_components
                          if v.kind == "sd")


def _key(material: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class FitCache:
    """Fits stored under `root/fits/`; `enabled=False` makes every lookup a miss."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_dir()
        self.enabled = enabled

    def _path(self, material: dict[str, Any]) -> Path:
        return self.root / "fits" / f"{_key(material)}.json"

    def _read(self, material: dict[str, Any]) -> Any | None:
        """The stored value for `material`, or None for anything but a well-formed entry
        of this very key whose checksum holds. Only a regular file is opened (a FIFO
        would block the run); a foreign, corrupt or truncated entry is a miss."""
        path = self._path(material)
        try:
            if not path.is_file():
                return None
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("material") != material:
            return None
        value = entry.get("value")
        if entry.get("sha256") != _checksum(value):
            return None
        return value

    def _write(self, material: dict[str, Any], value: Any) -> None:
        entry = {"material": material, "value": value, "sha256": _checksum(value)}
        try:
            write_text_atomic(self._path(material), json.dumps(entry, allow_nan=False))
        except (OSError, ValueError):
            return  # a cache that cannot be written only costs time

    def get(self, material: dict[str, Any] | None) -> Fit | None:
        """The cached fit for `material`, marked as from the cache, or None."""
        if not self.enabled or material is None:
            return None
        value = self._read(material)
        if not isinstance(value, dict):
            return None
        try:
            fit = fit_from_dict(value)
        except Exception:  # not a well-formed fit: refit, never a crash
            return None
        if (fit.status not in _KEPT or fit.engine != material["engine"]
                or not _has_numbers(fit)):
            return None
        settings = dict(fit.provenance.settings)
        settings.pop("draws_file", None)  # the draws belong to the run that saved them
        settings["cache"] = {"hit": True, "key": self._path(material).stem}
        return replace(fit, provenance=replace(fit.provenance, settings=settings,
                                               source="cache"))

    def put(self, material: dict[str, Any] | None, fit: Fit) -> None:
        """Store a fit with numbers, converged or not; failures (which may be passing:
        a worker that died, a timeout) and recorded references are not cached."""
        if (not self.enabled or material is None or fit.status not in _KEPT
                or fit.is_recorded):
            return
        self._write(material, fit_to_dict(fit))

    def get_value(self, material: dict[str, Any]) -> dict[str, Any] | None:
        """A cached JSON object (an optimum check's evaluation), or None."""
        if not self.enabled:
            return None
        value = self._read(material)
        return value if isinstance(value, dict) else None

    def put_value(self, material: dict[str, Any], value: dict[str, Any]) -> None:
        if self.enabled:
            self._write(material, value)

    def figures(self) -> FigureCache:
        """The figures' cache beside the fits (`root/figures/`; none when disabled),
        keyed by parity's source and the drawing libraries' versions as well as by what
        each figure draws (:mod:`parity.reports.figure_cache`)."""
        if not self.enabled:
            return FigureCache()
        versions = package_versions(("matplotlib", "pillow"))
        return FigureCache(self.root / "figures",
                           f"{code_fingerprint()} {json.dumps(versions, sort_keys=True)}")

    def jax_dir(self) -> Path:
        """Where JAX keeps its persistent compilation cache."""
        return self.root / "jax"
