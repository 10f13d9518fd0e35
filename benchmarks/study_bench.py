"""Benchmark: `parity study` throughput (Bambi fits per minute) against a loop of
`parity run`, one run per replicate, at the same sampler settings.

The loop is what an analyst would write without `parity study`: simulate a replicate,
write it to a CSV, `parity run --engines bambi --no-cache` on it. The study fits the same
number of replicates of the seed's `subject_intercept` design with lme4 (its reference,
whose fits take milliseconds) and Bambi, on a LocalCluster of 1 and of 2 workers. Each
is timed end to end (process start, imports, compilation, sampling, writing). This is a
benchmark, not a test: nothing asserts.

    .venv/bin/python benchmarks/study_bench.py --loop 6 --replicates 24 --draws 500 \
        --tune 500 --json benchmarks/study_results.json

`--target` measures the study's speed goal instead: `subject_intercept` at 24 groups,
lme4, statsmodels and Bambi (500/500 draws, 4 chains) on every core, `--replicates` of
them (1,000 for the goal: at most 15 minutes on 2 cores), beside a loop of `parity run`
over `--loop` replicates with the same engines, extrapolated to as many replicates. It
writes the wall time, the peak memory of the largest process, and the breakdown by
engine: each engine's recorded fit seconds, the worker seconds its batches held (the
difference is what a batch costs beyond fitting), its compilations.

    .venv/bin/python benchmarks/study_bench.py --target --replicates 1000 --loop 3 \
        --json benchmarks/study_target.json

`--sd-intervals none` runs it without lme4's SD profile intervals, so that the two runs
side by side say what the profile costs and what coverage it buys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMULA = "frequency ~ gender + attitude + (1 | subject)"


def _replicates(n: int) -> list[Path]:
    """n replicate CSVs drawn from lme4's fit of the seed data, as the study draws them."""
    from parity.inputs.seed import politeness, seed_models
    from parity.rows.prepare import prepare
    from parity.settings import Settings
    from parity.study.simulate import replicate_rng, simulate
    from parity.study.tasks import fit_in_child
    from parity.study.truth import truth_from

    m = {x.name: x for x in seed_models()}["subject_intercept"]
    data = prepare(politeness(), m.spec, m.categorical)
    truth = truth_from(fit_in_child("lme4", m, [data], Settings())[0])
    tmp = Path(tempfile.mkdtemp(prefix="parity-bench-"))
    paths = []
    for r in range(n):
        frame = data.frame.copy()
        frame["frequency"] = simulate(m, data, truth, replicate_rng(42, 6, r))
        path = tmp / f"rep{r}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def loop(n: int, draws: int, tune: int) -> tuple[float, dict]:
    """Seconds for n `parity run`s, and how much of it Bambi's fits took (compilation
    and sampling, as each run's results.json records it)."""
    start = time.perf_counter()
    fit_seconds = 0.0
    for path in _replicates(n):
        subprocess.run([sys.executable, "-m", "parity.cli", "run", "--data", str(path),
                        "--formula", FORMULA, "--categorical", "subject,gender,attitude",
                        "--engines", "bambi", "--no-cache", "--quiet", "--draws", str(draws),
                        "--tune", str(tune), "--out", str(path.with_suffix(""))],
                       capture_output=True, check=False)
        doc = json.loads((path.with_suffix("") / "results.json").read_text())
        fit_seconds += sum(f["provenance"]["seconds"] for f in doc["fits"]
                           if f["engine"] == "bambi")
    total = time.perf_counter() - start
    return total, {"bambi_fit_seconds_total": fit_seconds,
                   "other_seconds": total - fit_seconds}


def study(n: int, workers: int, draws: int, tune: int) -> tuple[float, dict]:
    out = Path(tempfile.mkdtemp(prefix="parity-bench-study-"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                    "subject_intercept", "--groups", "6", "--replicates", str(n),
                    "--engines", "lme4,bambi", "--workers", str(workers), "--draws",
                    str(draws), "--tune", str(tune), "--quiet", "--out", str(out)],
                   capture_output=True, check=True)
    seconds = time.perf_counter() - start
    doc = json.loads((out / "study.json").read_text())
    bambi = next(f for f in doc["fits"] if f["engine"] == "bambi")
    lme4 = next(f for f in doc["fits"] if f["engine"] == "lme4")
    return seconds, {"bambi_fit_seconds_median": bambi["seconds_median"],
                     "bambi_fit_seconds_total": bambi["seconds_total"],
                     "bambi_compiled": bambi["compiled"],
                     "bambi_compile_seconds_estimate": bambi["seconds_compile_estimate"],
                     "lme4_fit_seconds_total": lme4["seconds_total"],
                     "batches": doc["scheduler"]["fitted_batches"],
                     "workers": doc["scheduler"]["workers"]}


TARGET_ENGINES = "lme4,statsmodels,bambi"


def target(n: int, loop_n: int, draws: int, tune: int, sd_intervals: str = "profile") -> dict:
    """The speed goal's study, and the loop it replaces, with the breakdown by engine,
    and what lme4's SD profile intervals bought: each SD's coverage (none without them)."""
    out = Path(tempfile.mkdtemp(prefix="parity-bench-target-"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                           "subject_intercept", "--groups", "24", "--replicates", str(n),
                           "--engines", TARGET_ENGINES, "--draws", str(draws), "--tune",
                           str(tune), "--chains", "4", "--sd-intervals", sd_intervals,
                           "--out", str(out)],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    if done.returncode != 0:
        raise SystemExit(f"the study failed ({done.returncode}): {done.stderr[-2000:]}")
    doc = json.loads((out / "study.json").read_text())
    held = doc["scheduler"].get("batch_seconds", {})
    engines = {}
    for f in doc["fits"]:
        engines[f["engine"]] = {
            "fits": f["ok"] + f.get("unconverged", 0) + f["failed"],
            "unconverged": f.get("unconverged", 0), "failed": f["failed"],
            "fit_seconds_total": f["seconds_total"], "fit_seconds_median": f["seconds_median"],
            "compiled": f["compiled"], "compile_seconds_estimate": f["seconds_compile_estimate"],
            "batch_seconds": held.get(f["engine"]),
            "outside_fits_seconds": (None if held.get(f["engine"]) is None
                                     else round(held[f["engine"]] - f["seconds_total"], 3)),
        }
    sd_coverage = {f"{s['engine']} sd({s['term']}|{s['group']})": s["coverage"]
                   for s in doc["summary"] if s["quantity"] == "sd"}
    result = {"replicates": n, "groups": 24, "engines": TARGET_ENGINES,
              "sd_intervals": sd_intervals, "sd_coverage": sd_coverage,
              "workers": doc["scheduler"]["workers"], "seconds": round(seconds, 1),
              "minutes": round(seconds / 60, 2), "goal_minutes": 15 * n / 1000,
              "peak_rss_gib_largest_process": round(peak, 3), "by_engine": engines,
              "study_seconds_in_json": doc.get("seconds")}
    if loop_n:
        paths = _replicates(loop_n)
        begin = time.perf_counter()
        for path in paths:
            subprocess.run([sys.executable, "-m", "parity.cli", "run", "--data", str(path),
                            "--formula", FORMULA, "--categorical", "subject,gender,attitude",
                            "--engines", TARGET_ENGINES, "--no-cache", "--quiet",
                            "--draws", str(draws), "--tune", str(tune), "--chains", "4",
                            "--out", str(path.with_suffix(""))],
                           capture_output=True, check=False)
        per = (time.perf_counter() - begin) / loop_n
        result["loop"] = {"replicates": loop_n, "seconds_per_replicate": round(per, 2),
                          "note": "the seed's 6-subject design (the loop has no designs)",
                          "extrapolated_minutes": round(per * n / 60, 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", type=int, default=6, help="replicates for the loop")
    parser.add_argument("--replicates", type=int, default=24, help="replicates per study")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--target", action="store_true",
                        help="the speed goal: 24 groups, lme4, statsmodels and Bambi")
    parser.add_argument("--sd-intervals", choices=("profile", "none"), default="profile",
                        help="the study's --sd-intervals (lme4's SD profile, or none)")
    args = parser.parse_args()
    if args.target:
        got = {"machine": platform.platform(), "cores": os.cpu_count(),
               "draws": args.draws, "tune": args.tune,
               **target(args.replicates, args.loop, args.draws, args.tune,
                          args.sd_intervals)}
        print(json.dumps(got, indent=1))
        if args.json:
            args.json.write_text(json.dumps(got, indent=2) + "\n")
        return
    results: dict = {"machine": platform.platform(), "draws": args.draws, "tune": args.tune}
    t, detail = loop(args.loop, args.draws, args.tune)
    results["loop"] = {"replicates": args.loop, "seconds": t,
                       "fits_per_minute": 60 * args.loop / t, **detail}
    for workers in (1, 2):
        t, detail = study(args.replicates, workers, args.draws, args.tune)
        results[f"study_{workers}_workers"] = {
            "replicates": args.replicates, "seconds": t,
            "fits_per_minute": 60 * args.replicates / t, **detail,
            "speedup_over_loop": (60 * args.replicates / t) / results["loop"]["fits_per_minute"]}
    print(f"{'':22s}{'seconds':>9s}{'fits/min':>10s}{'× loop':>8s}")
    for name in ("loop", "study_1_workers", "study_2_workers"):
        r = results[name]
        print(f"{name:22s}{r['seconds']:9.1f}{r['fits_per_minute']:10.1f}"
              f"{r.get('speedup_over_loop', 1.0):8.2f}")
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
