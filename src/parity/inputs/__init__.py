"""What a run reads, checked before anything is fitted: options, models.toml, CSV files,
R data sets and the shipped reference case, resolved into one request."""

from __future__ import annotations

from parity.inputs.request import RunRequest, resolve_request
from parity.inputs.resolve import Inputs, read_csv, resolve_inputs
from parity.inputs.seed import politeness, seed_models

__all__ = ["Inputs", "RunRequest", "politeness", "read_csv", "resolve_inputs",
           "resolve_request", "seed_models"]
