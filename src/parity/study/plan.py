"""A study's tasks: each design's replicates drawn, and cut into batches per engine; and,
where the model has correlated random coefficients that some engines fit as independent
ones, batches of the reference engine's matched-structure refit (`lme4:independent`),
as `parity run` refits it, so that each engine is judged against the model it fitted."""

from __future__ import annotations

from collections.abc import Sequence

from parity.pipeline.matched import INDEPENDENT, independent_variant
from parity.registry import engine_info, engine_with_role
from parity.spec.models import Model
from parity.study.design import Design
from parity.study.options import StudyOptions
from parity.study.simulate import replicate_rng, replicate_seed, simulate
from parity.study.tasks import Batch
from parity.study.truth import Truth


def batch_size(options: StudyOptions, workers: int) -> int:
    """Replicates per task of an engine fitted in the worker: enough tasks to keep every
    worker busy (about two each), at most 25 per task."""
    if options.batch_size is not None:
        return options.batch_size
    return max(1, min(25, -(-options.replicates // max(1, 2 * workers))))


def r_batch_size(options: StudyOptions, size: int) -> int:
    """Replicates per task of an R engine: its fits take milliseconds and each task
    starts one R, so a design's replicates go in as few tasks as the study's own batches
    allow (a multiple of `size`, at most 100 replicates)."""
    if options.batch_size is not None:
        return options.batch_size
    return size * max(1, min(options.replicates, 100) // size)


def plan(model: Model, designs: Sequence[Design], truth: Truth, options: StudyOptions,
          size: int) -> list[Batch]:
    settings = options.settings
    r_size = r_batch_size(options, size)
    refitter = engine_with_role("refitter", options.engines)
    matched = refitter is not None and refitter == options.reference \
        and len(options.engines) > 1
    profile = options.sd_intervals == "profile"
    batches: list[Batch] = []
    for d in designs:
        ys = [simulate(model, d.data, truth, replicate_rng(settings.seed, d.groups, r))
              for r in range(options.replicates)]
        seeds = [replicate_seed(settings.seed, d.groups, r) for r in range(options.replicates)]
        for engine in options.engines:
            n = r_size if engine_info(engine).embeds_r else size
            for index, start in enumerate(range(0, options.replicates, n)):
                reps = tuple(range(start, min(start + n, options.replicates)))
                batches.append(Batch(d.groups, index, engine, reps,
                                     tuple(ys[r] for r in reps),
                                     tuple(seeds[r] for r in reps), sd_intervals=profile))
        if matched and independent_variant(model, d.data) is not None:
            assert refitter is not None
            n = r_size if engine_info(refitter).embeds_r else size
            for index, start in enumerate(range(0, options.replicates, n)):
                reps = tuple(range(start, min(start + n, options.replicates)))
                batches.append(Batch(d.groups, index, refitter, reps,
                                     tuple(ys[r] for r in reps),
                                     tuple(seeds[r] for r in reps), INDEPENDENT,
                                     sd_intervals=False))
    return interleaved(batches, options.engines)


def interleaved(batches: Sequence[Batch], engines: Sequence[str]) -> list[Batch]:
    """The batches in the order they are submitted: design by design, and within a
    design by first replicate, every engine's batch of those replicates side by side.
    Engine after engine would hold every worker with lme4's batches before Bambi's began,
    so the replicates would complete only at the end and the machine would idle while
    the last engine's batches ran alone."""
    designs = list(dict.fromkeys(b.groups for b in batches))
    return sorted(batches, key=lambda b: (designs.index(b.groups), b.replicates[0],
                                          engines.index(b.engine)
                                          if b.engine in engines else len(engines)))
