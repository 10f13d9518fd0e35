"""Calibration of statsmodels' memory estimate (`parity.engines.cost`) against measured peaks.

statsmodels' MixedLM fits crossed grouping factors as variance components of one
all-rows group, over a dense random-effects design of rows x (the levels of every
crossed factor). This script simulates data shaped like lme4's InstEval (students and
lecturers crossed, lecturers nested in 14 departments, the levels scaled with the rows),
fits `y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)` by ML with parity's statsmodels
engine, one size per fresh process, and measures the peak resident memory the fit adds
(Linux: VmHWM after resetting it through /proc/self/clear_refs, less VmRSS before the
fit) and its wall time, beside what `StatsmodelsEngine.cost` estimates. Nothing asserts.

    PYTHONPATH=src .venv/bin/python benchmarks/cost_calibration.py --rows 2000,5000,10000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd

# lme4::InstEval: 73,421 rows, 2,972 students, 1,128 lecturers, 14 departments.
INSTEVAL = {"rows": 73_421, "s": 2_972, "d": 1_128, "dept": 14}
FORMULA = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"


def simulate(rows: int, seed: int = 1) -> pd.DataFrame:
    """InstEval's shape at `rows` rows: students and lecturers crossed, in proportion."""
    rng = np.random.default_rng(seed)
    n_s = max(2, round(rows * INSTEVAL["s"] / INSTEVAL["rows"]))
    n_d = max(2, round(rows * INSTEVAL["d"] / INSTEVAL["rows"]))
    s = rng.integers(n_s, size=rows)
    d = rng.integers(n_d, size=rows)
    dept_of_d = rng.integers(INSTEVAL["dept"], size=n_d)
    service = rng.integers(2, size=rows)
    y = (3.2 + 0.3 * rng.standard_normal(n_s)[s] + 0.5 * rng.standard_normal(n_d)[d]
         + 0.1 * rng.standard_normal(INSTEVAL["dept"])[dept_of_d[d]] - 0.07 * service
         + 1.2 * rng.standard_normal(rows))
    return pd.DataFrame({"y": y, "service": service.astype(str),
                         "s": [f"s{i}" for i in s], "d": [f"d{i}" for i in d],
                         "dept": [f"p{i}" for i in dept_of_d[d]]})


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(rows: int) -> dict[str, float]:
    """One fit at `rows` rows in this process: estimate, measured peak, seconds."""
    from parity.engines.statsmodels import StatsmodelsEngine
    from parity.rows.dims import design_dims
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.spec.models import make_model

    model = make_model("insteval", FORMULA, categorical=["service", "s", "d", "dept"])
    data = prepare(simulate(rows), model.spec, model.categorical)
    settings = Settings(reml=False)
    engine = StatsmodelsEngine()
    dims = design_dims(model, data)
    cost = engine.cost(model, dims, settings)
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
        fh.write("5")
    start = time.perf_counter()
    fit = engine.fit(model, data, settings)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") - before
    return {"rows": rows, "columns": sum(dims.levels.values()), "status": fit.status,
            "estimate_bytes": cost.memory_bytes or 0, "measured_bytes": peak,
            "estimate_seconds": cost.seconds or 0.0, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,5000,10000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    print(f"{'rows':>7} {'columns':>7} {'estimate MB':>12} {'measured MB':>12} {'error':>7} "
          f"{'est. s':>7} {'s':>7}")
    for rows in (int(r) for r in args.rows.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(rows)], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        err = (r["estimate_bytes"] - r["measured_bytes"]) / r["measured_bytes"]
        print(f"{r['rows']:>7} {r['columns']:>7} {r['estimate_bytes'] / 1e6:>12.1f} "
              f"{r['measured_bytes'] / 1e6:>12.1f} {err:>+7.0%} "
              f"{r['estimate_seconds']:>7.1f} {r['seconds']:>7.1f}")


if __name__ == "__main__":
    main()
