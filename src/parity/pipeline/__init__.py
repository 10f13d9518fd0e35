"""The pipeline of a run: plan the fits, run them in worker processes (cache, progress,
partial results, interrupts), compare, write results and reports."""

from __future__ import annotations

from parity.pipeline.job import JobResult, compare_outcome, record_job, run_job
from parity.pipeline.workers import Outcome, run_models

__all__ = ["JobResult", "Outcome", "compare_outcome", "record_job", "run_job", "run_models"]
