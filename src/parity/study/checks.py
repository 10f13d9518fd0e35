"""A study's options checked before anything is fitted."""

from __future__ import annotations

from parity.errors import UsageError
from parity.registry import engine_kind, rows
from parity.study.options import StudyOptions


def check_options(options: StudyOptions) -> None:
    if not options.groups:
        raise UsageError("--groups names no design")
    if options.replicates < 1:
        raise UsageError("--replicates must be at least 1")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if options.batch_size is not None and options.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not 0 < options.quantile <= 1:
        raise UsageError("--calibrate-quantile must be in (0, 1]")
    if options.reference not in options.engines:
        raise UsageError(f"the reference engine {options.reference!r} is not among "
                         f"--engines ({', '.join(options.engines)})")
    if engine_kind(options.reference) != "frequentist":
        frequentist = ", ".join(r.name for r in rows() if r.kind == "frequentist")
        raise UsageError(f"the reference engine must be frequentist ({frequentist}), not "
                         f"{options.reference!r}: verdicts are against a "
                         "maximum-likelihood fit")
    if options.workers is not None and options.scheduler is not None:
        raise UsageError("--workers sizes a local cluster; an existing cluster "
                         "(--scheduler) has its own workers")
