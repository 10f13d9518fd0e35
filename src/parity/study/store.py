"""Each batch's fits on disk as soon as it finishes, so that a study that is stopped and
run again refits nothing that finished, and gives the same numbers.

A batch file holds the key of what was fitted (model, design rows, responses, seeds,
settings, engine, parity's version): a rerun that would fit something else (other
settings, another truth) does not reuse it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from parity import __version__
from parity.schema import Fit, fit_from_dict, fit_to_dict, write_json_atomic
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.tasks import Batch

BATCHES_DIR = "study.batches"


def batch_key(batch: Batch, model: Model, design_digest: str, settings: Settings) -> str:
    h = hashlib.sha256()
    for part in (__version__, model.name, model.formula, repr(model.categorical),
                 model.family, design_digest, repr(sorted(settings.as_dict().items())),
                 batch.label, repr(batch.replicates), repr(batch.seeds)):
        h.update(part.encode())
        h.update(b"\0")
    for y in batch.responses:
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


class BatchStore:
    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / BATCHES_DIR

    def path(self, batch: Batch) -> Path:
        return self.dir / f"{batch.name}.json"

    def load(self, batch: Batch, key: str) -> list[Fit] | None:
        """The batch's fits if it finished before with the same key, else None."""
        path = self.path(batch)
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if doc.get("key") != key:
            return None
        try:
            return [fit_from_dict(d) for d in doc["fits"]]
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, batch: Batch, key: str, fits: list[Fit]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(batch)
        write_json_atomic(path, {"key": key, "groups": batch.groups,
                                 "replicates": list(batch.replicates),
                                 "engine": batch.label,
                                 "fits": [fit_to_dict(f) for f in fits]})
        return path
