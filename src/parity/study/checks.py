"""A study's options checked before anything is fitted.

A study's options are those of `parity run` and then some, and they are checked by the
same code where they are the same (each engine's refusals, the nAGQ lme4 can take, the
memory the draws need: parity.pipeline.job's checks), so that a study never fits the
truth, or plans thousands of replicates, before a bad option is refused. What only a
study has (groups, replicates) is bounded by the memory the study holds: every design's
rows, every replicate's response, and every fit, all in the client's memory at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from parity.errors import UsageError
from parity.pipeline.job import check_expressible, check_memory
from parity.registry import engine_kind, rows
from parity.rows.prepare import PreparedData
from parity.spec.models import Model
from parity.study.cluster import local_workers
from parity.study.design import Design, study_factor
from parity.study.options import StudyOptions
from parity.study.simulate import check_drawable

# Bytes a design's row costs beyond its responses: the expanded frame, its filtered and
# categorical copies and the prepared one (four copies of a row), as pandas holds them.
FRAME_COPIES = 4
# Bytes one fit of one replicate holds in the client (its record and its study rows),
# with room to spare: a study keeps every fit until it is compared.
FIT_BYTES = 16 * 1024


def check_options(options: StudyOptions) -> None:
    if not options.groups:
        raise UsageError("--groups names no design")
    twice = sorted({g for g in options.groups if options.groups.count(g) > 1})
    if twice:
        raise UsageError(f"--groups names {', '.join(map(str, twice))} twice; each design "
                         "once")
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
    if options.sd_intervals not in ("profile", "none"):
        raise UsageError(f"--sd-intervals is profile or none, not {options.sd_intervals!r}")
    if options.workers is not None and options.scheduler is not None:
        raise UsageError("--workers sizes a local cluster; an existing cluster "
                         "(--scheduler) has its own workers")


def check_model(model: Model, options: StudyOptions) -> None:
    """What `parity run` would refuse of this model with these engines and settings
    (a column Bambi cannot take, `--nagq 5` on a Gaussian model), refused as it would,
    before the truth is fitted."""
    check_drawable(model)  # a family and link the study can draw, no prior weights
    study_factor(model)  # a mixed model with a one-column grouping factor
    check_expressible([model], options.engines, options.settings)


def design_rows(original: PreparedData, factor: str, groups: int) -> int:
    """The rows of the design with `groups` groups (:func:`parity.study.design.make_design`
    keeps whole copies of the groups, then the first of one more copy), counted without
    building it."""
    labels = [str(x) for x in (original.levels.get(factor)
                               or pd.unique(original.frame[factor].astype(str)))]
    counts = original.frame[factor].astype(str).value_counts()
    sizes = [int(counts.get(label, 0)) for label in labels]
    whole, rest = divmod(groups, len(labels))
    return whole * sum(sizes) + sum(sizes[:rest])


def available_memory() -> int | None:
    """Physical memory in bytes, as `parity run`'s memory check reads it (None where the
    system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def study_bytes(model: Model, original: PreparedData, options: StudyOptions) -> int:
    """About the memory a study holds in its client: each design's rows (as frames) and
    responses (8 bytes a row per replicate), and each engine's fit of each replicate."""
    factor = study_factor(model)
    n_rows = max(1, original.n_obs)
    row_bytes = int(original.frame.memory_usage(deep=True).sum()) // n_rows + 1
    fits = options.replicates * len(options.engines) * FIT_BYTES
    return sum(design_rows(original, factor, g) * (FRAME_COPIES * row_bytes
                                                   + 8 * options.replicates) + fits
               for g in options.groups)


def check_size(model: Model, original: PreparedData, options: StudyOptions) -> None:
    """Refuse, before any design is built or replicate drawn, a study whose designs,
    responses and fits need more than half of this machine's memory
    (`--groups 100000000` or `--replicates 1000000000` would otherwise plan for hours,
    or until the memory is gone, with no progress line)."""
    total = available_memory()
    if total is None:
        return
    need = study_bytes(model, original, options)
    if need > total // 2:
        factor = study_factor(model)
        biggest = max(options.groups)
        raise UsageError(
            f"the study would hold about {need / 2**30:.1f} GiB (designs of up to "
            f"{design_rows(original, factor, biggest)} rows at {biggest} groups, "
            f"{options.replicates} replicates of each, and every fit), more than half of "
            f"this machine's {total / 2**30:.1f} GiB; ask for fewer --groups or "
            "--replicates")


def check_draws(model: Model, designs: Sequence[Design], options: StudyOptions) -> None:
    """`parity run`'s memory check of the draws, for the largest design: a local cluster
    fits one model per worker at a time, all on this machine (an existing cluster's
    workers are on their own machines: one at a time is checked against this one's)."""
    if not designs:
        return
    largest = max(designs, key=lambda d: d.n_obs)
    jobs = 1 if options.scheduler is not None else local_workers(options)
    # check_memory counts at most one fit per model at a time: one model per worker.
    check_memory([model] * jobs, largest.data.frame, options.engines, options.settings,
                 jobs)
