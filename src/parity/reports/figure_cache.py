"""Figures kept by the hash of what they draw, so that an unchanged rerun draws nothing.

Drawing is most of a warm rerun's time: every fit comes from the fit cache in
milliseconds, and then matplotlib lays out each model's figure, its agreement figure and
its group-effect figures again (seconds each, for the same pictures). Each figure here is
keyed by the SHA-256 of its kind, its inputs (the fits or comparison rows it draws, as
their records), and the code that draws it (parity's source and matplotlib's version,
the `salt`); a figure whose key is stored is copied instead of drawn.

Nothing read back is trusted: a stored PNG is used only when its bytes hash to what was
written beside it and begin as a PNG does; anything else is drawn again (and stored
again). The cache is a convenience: a folder that cannot be read or written costs the
drawing, never the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.atomic import write_bytes_atomic
from parity.schema import Comparison, Fit, fit_to_dict

FORMAT = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fits_material(fits: Sequence[Fit]) -> list[dict[str, Any]]:
    """The records a figure of `fits` is drawn from: each fit but its provenance (where
    the fit came from and how long it took), which no figure draws and which differs
    between a fit and the same fit read back from the fit cache."""
    return [{k: v for k, v in fit_to_dict(f).items() if k != "provenance"} for f in fits]


def comparisons_material(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """The records a figure of comparison rows is drawn from."""
    return [dataclasses.asdict(c) for c in comparisons]


@dataclass(frozen=True)
class FigureCache:
    """Figures stored under `root` (None: every figure is drawn), keyed with `salt`
    (what identifies the drawing code)."""

    root: Path | None = None
    salt: str = ""

    def key(self, kind: str, material: Any) -> str:
        text = json.dumps({"format": FORMAT, "kind": kind, "salt": self.salt,
                           "material": material}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def drawn(self, path: Path, kind: str, material: Callable[[], Any],
              draw: Callable[[Path], Path]) -> Path:
        """`path`, copied from the cache when a figure of `kind` was drawn from the same
        `material()` before, else drawn by `draw(path)` and stored."""
        if self.root is None:
            return draw(path)
        key = self.key(kind, material())
        if self._fetch(key, path):
            return path
        written = draw(path)
        with contextlib.suppress(OSError):
            self._keep(key, written)
        return written

    def _entry(self, key: str) -> tuple[Path, Path]:
        assert self.root is not None
        folder = self.root / key[:2]
        return folder / f"{key}.png", folder / f"{key}.json"

    def _fetch(self, key: str, path: Path) -> bool:
        png, note = self._entry(key)
        try:
            stored = json.loads(note.read_text(encoding="utf-8"))
            data = png.read_bytes()
        except (OSError, ValueError):
            return False
        if (not isinstance(stored, dict) or stored.get("format") != FORMAT
                or stored.get("key") != key or not data.startswith(PNG_SIGNATURE)
                or stored.get("sha256") != hashlib.sha256(data).hexdigest()):
            return False
        try:
            write_bytes_atomic(path, data)
        except OSError:
            return False
        return True

    def _keep(self, key: str, written: Path) -> None:
        png, note = self._entry(key)
        data = written.read_bytes()
        write_bytes_atomic(png, data)
        write_bytes_atomic(note, json.dumps({"format": FORMAT, "key": key,
                                       "sha256": hashlib.sha256(data).hexdigest()}).encode())


__all__ = ["FigureCache", "comparisons_material", "fits_material"]
