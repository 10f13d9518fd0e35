"""Each batch's fits on disk as soon as it finishes, so that a study that is stopped and
run again refits nothing that finished, and gives the same numbers.

A batch file holds the key of what was fitted (model, design rows, responses, seeds,
settings, engine, parity's version): a rerun that would fit something else (other
settings, another truth) does not reuse it, and says nothing, as that is what a changed
option means. A file whose key matches is still not trusted as it stands: it carries the
sha256 of its own content (key, design, replicates, engine and fits, as canonical JSON),
and a file that was edited or damaged, that holds the wrong number of fits or fits of
another engine, or that cannot be read, is refitted with a warning naming it and why,
rather than let an edited estimate or a `null` flow into study.json.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import __version__
from parity.errors import UsageError
from parity.pipeline.outdir import STUDY_BATCHES_DIR
from parity.schema import Fit, fit_from_dict, fit_to_dict, write_json_atomic
from parity.settings import Settings
from parity.spec.models import Model
from parity.study.tasks import Batch

BATCHES_DIR = STUDY_BATCHES_DIR
# The batch file's layout; a file of another layout is refitted, not read.
FORMAT = 2


def batch_key(batch: Batch, model: Model, design_digest: str, settings: Settings) -> str:
    h = hashlib.sha256()
    for part in (__version__, model.name, model.formula, repr(model.categorical),
                 model.family, design_digest, repr(sorted(settings.as_dict().items())),
                 batch.label, repr(batch.replicates), repr(batch.seeds),
                 repr(batch.sd_intervals)):
        h.update(part.encode())
        h.update(b"\0")
    for y in batch.responses:
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def checksum(content: dict[str, Any]) -> str:
    """The sha256 of a batch file's content as canonical JSON (sorted keys, no spaces):
    the same for the document written and the one read back, whatever the layout."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """What reading a batch file gave: its fits, or why it is refitted (`problem` is
    None when the file is absent or was written for another key: nothing to warn of)."""

    fits: list[Fit] | None
    problem: str | None = None


class BatchStore:
    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / BATCHES_DIR

    def refuse_a_file(self) -> None:
        """Refuse, before anything is fitted or cleared, a `study.batches` that is not a
        folder: otherwise every batch's save would fail after its fit."""
        if self.dir.exists() and not self.dir.is_dir():
            raise UsageError(f"{str(self.dir)!r} is a file, not the folder of a study's "
                             "batches; move it away or give another --out")

    def make(self) -> None:
        """The batch folder, created (once the output directory is claimed)."""
        self.refuse_a_file()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{str(self.dir)!r} cannot be created "
                             f"({exc.strerror or type(exc).__name__})") from None

    def path(self, batch: Batch) -> Path:
        return self.dir / f"{batch.name}.json"

    def load(self, batch: Batch, key: str) -> Loaded:
        """The batch's fits if it finished before with the same key and its file is
        whole, else why not."""
        path = self.path(batch)
        if not path.exists():
            return Loaded(None)
        if path.is_dir():
            return Loaded(None, "is a directory, not a batch file")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            return Loaded(None, f"cannot be read ({exc.strerror or type(exc).__name__})")
        except ValueError:  # not JSON, or not UTF-8
            return Loaded(None, "is not JSON")
        if not isinstance(doc, dict):
            return Loaded(None, "is not a batch file (not a JSON object)")
        if doc.get("key") != key:
            return Loaded(None)  # fitted for other options: refitted silently
        if not isinstance(doc.get("fits"), list) or not isinstance(doc.get("sha256"), str):
            return Loaded(None, "is not a batch file (no fits or no sha256)")
        content = {k: v for k, v in doc.items() if k != "sha256"}
        try:
            if checksum(content) != doc["sha256"]:
                return Loaded(None, "does not match its sha256 (edited or damaged)")
        except ValueError:
            return Loaded(None, "holds a number JSON does not allow")
        if doc.get("format") != FORMAT or doc.get("groups") != batch.groups \
                or doc.get("engine") != batch.engine \
                or doc.get("replicates") != list(batch.replicates):
            return Loaded(None, "names another design, engine or replicates than its key")
        if len(doc["fits"]) != len(batch.replicates):
            return Loaded(None, f"holds {len(doc['fits'])} fits for "
                                f"{len(batch.replicates)} replicates")
        try:
            fits = [fit_from_dict(d) for d in doc["fits"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return Loaded(None, f"holds a fit that cannot be read ({type(exc).__name__})")
        for f in fits:
            if f.engine != batch.engine:
                return Loaded(None, f"holds a fit by {f.engine!r}, not {batch.engine!r}")
            if f.status == "ok" and not all(math.isfinite(x.estimate)
                                            for x in f.fixed_effects):
                return Loaded(None, "holds an ok fit without an estimate")
        return Loaded(fits)

    def save(self, batch: Batch, key: str, fits: list[Fit]) -> str | None:
        """Write the batch's file; why it could not be written, or None. A failed save
        costs a rerun that batch's refit, never the study: its fits are in memory."""
        content = {"format": FORMAT, "key": key, "groups": batch.groups,
                   "replicates": list(batch.replicates), "engine": batch.engine,
                   "fits": [fit_to_dict(f) for f in fits]}
        try:
            # The checksum is of the JSON as read back, so NaN-free, ints as ints.
            content = json.loads(json.dumps(content, allow_nan=False))
            write_json_atomic(self.path(batch), {**content, "sha256": checksum(content)})
        except (OSError, ValueError) as exc:
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return f"{type(exc).__name__}: {what}"
        return None
