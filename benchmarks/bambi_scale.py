"""Benchmark: Bambi's time and memory as the data grow, beside parity's up-front
estimate of them (`parity.engines.cost.sampler_cost`).

One case a process (the peak memory is the fit worker's): the seed model, lme4's VerbAgg
(7,584 rows, 316 people crossed with 24 items, binomial), InstEval (73,421 rows, 2,972
students crossed with 1,128 lecturers) or `insteval:N` (N of its rows drawn at random),
at the sampler settings given. Prints one JSON line: the fit's wall and own seconds, the
leapfrog steps a draw (numpyro's `n_steps`), the peak resident memory of the worker, its
convergence, and the estimate. A benchmark, not a test: nothing asserts.
benchmarks/bambi_scale.json holds such lines for 2 cores.

    .venv/bin/python benchmarks/bambi_scale.py verbagg 200 200 2 >> bambi_scale.jsonl
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

import parity
from parity.inputs.r_datasets import load_r_dataset

CROSSED = "y ~ 1 + service + (1|s) + (1|d) + (1|dept)"


def case_data(case: str) -> tuple[pd.DataFrame, tuple[str, ...], str, str]:
    """The rows, categorical columns, formula and family of a case."""
    if case == "seed":
        from parity.inputs.seed import POLITENESS_CATEGORICAL, politeness

        return (politeness(), tuple(POLITENESS_CATEGORICAL),
                "frequency ~ gender + attitude + (1|subject) + (1|scenario)", "gaussian")
    if case == "verbagg":
        d = load_r_dataset("lme4::VerbAgg")
        return (d.frame, tuple(d.factors),
                "r2 ~ Anger + Gender + btype + situ + (1|id) + (1|item)", "binomial")
    d = load_r_dataset("lme4::InstEval")
    n = int(case.split(":")[1]) if ":" in case else len(d.frame)
    data = d.frame.sample(n=n, random_state=1) if n < len(d.frame) else d.frame
    return data, tuple(d.factors), CROSSED, "gaussian"


def estimate(formula: str, data: pd.DataFrame, categorical: tuple[str, ...], family: str,
             draws: int, tune: int, chains: int) -> dict[str, Any]:
    """parity's estimate of the same fit, made before anything is fitted."""
    from parity.engines import load_engine
    from parity.rows.dims import design_dims
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.spec.models import make_model

    model = make_model("m", formula, categorical=list(categorical), family=family)
    dims = design_dims(model, prepare(data, model.spec, model.categorical, family))
    cost = load_engine("bambi").cost(model, dims, Settings(draws=draws, tune=tune,
                                                             chains=chains))
    return {"estimate_s": cost.seconds, "estimate_mb": (cost.memory_bytes or 0) / 2**20}


def main() -> None:
    case = sys.argv[1]
    draws, tune, chains = (int(x) for x in sys.argv[2:5])
    data, categorical, formula, family = case_data(case)
    start = time.perf_counter()
    run = parity.run({"m": formula}, data, categorical, engines="bambi", family=family,
                     cache=False, keep_draws=True, draws=draws, tune=tune, chains=chains)
    wall = time.perf_counter() - start
    fit = run.results.fits[0]
    stats = run.idata("m", "bambi").sample_stats
    steps = int(np.asarray(stats["n_steps"]).sum())
    print(json.dumps({
        "case": case, "rows": len(data), "draws": draws, "tune": tune, "chains": chains,
        "status": fit.status, "reason": fit.reason, "wall_s": round(wall, 2),
        "fit_s": fit.provenance.seconds, "steps_post": steps,
        "steps_per_draw": steps / (draws * chains),
        "tree_depth_mean": float(np.asarray(stats["tree_depth"]).mean()),
        "rhat": fit.diagnostics.r_hat_max, "ess": fit.diagnostics.ess_bulk_min,
        "div": fit.diagnostics.divergences,
        "peak_worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        **estimate(formula, data, categorical, family, draws, tune, chains)}))


if __name__ == "__main__":  # parity's workers are spawned: they import this file
    main()
