"""What a run reads, checked before anything is fitted: options, models.toml, CSV files,
R data sets and the shipped reference case."""

from __future__ import annotations

from parity.inputs.resolve import Inputs, read_csv, resolve_inputs
from parity.inputs.seed import politeness, seed_models

__all__ = ["Inputs", "politeness", "read_csv", "resolve_inputs", "seed_models"]
