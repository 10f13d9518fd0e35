"""Benchmark: lme4's InstEval (73,421 rows, 2,972 students crossed with 1,128 lecturers)
end to end, each step's wall time and peak memory, and parity's overhead over the same
fits in plain R.

Steps, each in a fresh process (one fit cache, in a temporary folder, for all of them):

1. plain Rscript: lmer's own fit, then what parity adds to it in R (ranef with
   conditional variances, lmerTest's Satterthwaite tests), and glmmTMB's fit and ranef;
2. `parity run --engines E` for each engine alone (lme4 with its default Satterthwaite
   df and with `--ddf none`): the wall time, the peak memory of the process tree, the
   fit's own seconds and status (a refusal's reason);
3. `parity run --engines lme4,glmmtmb,statsmodels,bambi`, the fits read from the cache
   of step 2 (statsmodels and Bambi refused from their estimates), the figures drawn:
   the comparison and report step; then once more with the figures cached too.

The JSON (`--json`, default benchmarks/insteval.json) holds every number, so that two
commits can be compared side by side. A benchmark, not a test: nothing asserts. It needs
R with lme4, lmerTest and glmmTMB, and takes about 10 minutes on 2 cores.

    .venv/bin/python benchmarks/insteval_bench.py --json benchmarks/insteval.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import measure  # noqa: E402  (a sibling script, not a package)

FORMULA = "y ~ 1 + service + (1|s) + (1|d) + (1|dept)"

# The same fits in plain R, timed step by step (elapsed seconds).
PLAIN_R = r"""
t <- function() proc.time()[["elapsed"]]
t0 <- t(); suppressPackageStartupMessages({library(lme4); library(glmmTMB)}); t1 <- t()
d <- lme4::InstEval
f <- y ~ 1 + service + (1|s) + (1|d) + (1|dept)
fit <- lmer(f, data = d, REML = FALSE); t2 <- t()
re <- as.data.frame(ranef(fit, condVar = TRUE)); t3 <- t()
m <- lmerTest::as_lmerModLmerTest(fit)
co <- summary(m, ddf = "Satterthwaite")$coefficients; t4 <- t()
tmb <- glmmTMB(f, data = d, REML = FALSE); t5 <- t()
tre <- as.data.frame(ranef(tmb, condVar = TRUE)); t6 <- t()
cat(jsonlite::toJSON(list(load_s = t1 - t0, lmer_fit_s = t2 - t1, lmer_ranef_s = t3 - t2,
  lmer_satterthwaite_s = t4 - t3, glmmtmb_fit_s = t5 - t4, glmmtmb_ranef_s = t6 - t5,
  lmer_deviance = unname(deviance(fit))), auto_unbox = TRUE, digits = NA))
"""


def parity_step(parity: str, engines: str, out: Path, env: dict[str, str],
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One `parity run` on InstEval: its wall and peak memory, and each fit's own record."""
    cmd = [parity, "run", "--quiet", "--r-dataset", "lme4::InstEval", "--formula", FORMULA,
           "--ml", "--engines", engines, "--out", str(out), *extra]
    wall, peak = measure(cmd, env, ok=(0, 1))
    doc = json.loads((out / "results.json").read_text())
    fits = [{"engine": f["engine"], "status": f["status"], "reason": f.get("reason"),
             "fit_s": f["provenance"]["seconds"], "source": f["provenance"].get("source")}
            for f in doc["fits"]]
    step = {"engines": engines, "options": list(extra), "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak / 2**20, 1), "fits": fits,
            "comparison_rows": len(doc.get("comparisons", []))}
    print(f"{engines:36} {' '.join(extra):12} {wall:8.1f} s {peak / 2**20:8.0f} MB  "
          + ", ".join(f"{f['engine']} {f['status']} {f['fit_s']:.1f} s" for f in fits),
          file=sys.stderr, flush=True)
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=HERE / "insteval.json")
    ap.add_argument("--parity", default=str(Path(sys.executable).with_name("parity")))
    args = ap.parse_args()

    start = time.perf_counter()
    proc = subprocess.run(["Rscript", "-e", PLAIN_R], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"plain R failed: {proc.stderr[-2000:]}")
    plain = {k: round(v, 3) for k, v in json.loads(proc.stdout).items()}
    plain["wall_s"] = round(time.perf_counter() - start, 2)
    print(f"plain R: {plain}", file=sys.stderr, flush=True)

    steps: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PARITY_CACHE_DIR=str(Path(tmp) / "cache"))
        for name, engines, extra in (
                ("lme4", "lme4", ()), ("lme4 --ddf none", "lme4", ("--ddf", "none")),
                ("glmmtmb", "glmmtmb", ()), ("statsmodels", "statsmodels", ()),
                ("bambi", "bambi", ())):
            steps[name] = parity_step(args.parity, engines, Path(tmp) / name.replace(" ", ""),
                                      env, extra)
        every = "lme4,glmmtmb,statsmodels,bambi"
        steps["report, figures drawn"] = parity_step(args.parity, every, Path(tmp) / "all",
                                                     env)
        steps["report, figures cached"] = parity_step(args.parity, every,
                                                      Path(tmp) / "again", env)

    def fit_s(step: str, engine: str) -> float:
        return next(f["fit_s"] for f in steps[step]["fits"] if f["engine"] == engine)

    lmer = plain["lmer_fit_s"]
    overhead = {
        "lme4_plain_fit_s": lmer,
        "lme4_parity_fit_s": fit_s("lme4", "lme4"),
        "lme4_parity_fit_s_ddf_none": fit_s("lme4 --ddf none", "lme4"),
        "lme4_overhead": round(fit_s("lme4", "lme4") / lmer - 1, 3),
        "lme4_overhead_ddf_none": round(fit_s("lme4 --ddf none", "lme4") / lmer - 1, 3),
        "lme4_ranef_share": round(plain["lmer_ranef_s"] / lmer, 3),
        "lme4_satterthwaite_share": round(plain["lmer_satterthwaite_s"] / lmer, 3),
        "glmmtmb_plain_fit_s": plain["glmmtmb_fit_s"],
        "glmmtmb_parity_fit_s": fit_s("glmmtmb", "glmmtmb"),
        "glmmtmb_overhead": round(fit_s("glmmtmb", "glmmtmb") / plain["glmmtmb_fit_s"] - 1, 3),
        "glmmtmb_ranef_share": round(plain["glmmtmb_ranef_s"] / plain["glmmtmb_fit_s"], 3),
    }
    print(json.dumps(overhead, indent=1), file=sys.stderr)
    args.json.write_text(json.dumps({
        "data": "lme4::InstEval", "formula": FORMULA, "criterion": "ML",
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "machine": platform.machine(), "plain_r": plain, "parity": steps,
        "overhead": overhead}, indent=2) + "\n")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
