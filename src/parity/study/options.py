"""What a study is asked to do (:class:`StudyOptions`) and what it gives back
(:class:`StudyResult`): the records every stage of a study reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity.settings import Settings
from parity.study.calibrate import Scaled
from parity.study.tables import StudyRow


@dataclass(frozen=True)
class StudyOptions:
    groups: tuple[int, ...]
    replicates: int
    engines: tuple[str, ...]
    settings: Settings
    out: Path
    reference: str = "lme4"
    workers: int | None = None
    scheduler: str | None = None
    batch_size: int | None = None
    quantile: float = 0.99
    quiet: bool = False
    # lme4's profile-likelihood intervals of its SDs ("profile"), or none ("none"): the
    # profile costs about three times the fit itself (benchmarks/study_bench.py), and
    # buys lme4 an SD coverage (without it, lme4's SD rows have no interval).
    sd_intervals: str = "profile"


@dataclass
class StudyResult:
    document: dict[str, Any]
    rows: list[StudyRow]
    scaled: list[Scaled] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
