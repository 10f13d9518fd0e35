"""The comparison done by hand: the seed notebook extended to three engines.

This is the baseline `parity run` is measured against (benchmarks/bench.py). It is written
the way an analyst would: one process, one model after another, each library called with
its own formula, Bambi through numpyro with the seed's settings (4 chains x 4000
iterations), statsmodels through its formula API, lme4 through rpy2 in the same process.
It prints one line per fit and nothing is compared or written: the benchmark measures the
fitting work that parity replaces.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

MODELS = [
    "frequency ~ gender + attitude",
    "frequency ~ 0 + attitude + gender",
    "frequency ~ gender * attitude",
    "frequency ~ gender + attitude + (1 | subject)",
    "frequency ~ gender + attitude + (attitude | subject)",
    "frequency ~ gender + attitude + (attitude | subject) + (attitude | scenario)",
]


def main(csv: str, draws: int = 2000, tune: int = 2000, chains: int = 4) -> None:
    import bambi as bmb
    import pandas as pd
    import rpy2.robjects as ro
    import statsmodels.formula.api as smf
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    df = pd.read_csv(csv).dropna().reset_index(drop=True)
    for col in ("subject", "gender", "scenario", "attitude"):
        df[col] = df[col].astype(str).astype("category")
    ro.r("suppressPackageStartupMessages(library(lme4))")
    with localconverter(ro.default_converter + pandas2ri.converter):
        ro.globalenv["d"] = df

    for formula in MODELS:
        t0 = time.perf_counter()
        # lme4
        fn = "lmer" if "|" in formula else "lm"
        ro.r(f"m <- {fn}({formula}, data = d); est <- if (inherits(m, 'lm')) coef(m) else fixef(m)")
        # statsmodels
        if "|" not in formula:
            smf.ols(formula, df).fit()
        elif "scenario" in formula:
            df["one"] = 1
            smf.mixedlm("frequency ~ gender + attitude", df, groups="one", re_formula="0",
                        vc_formula={"subject": "0 + C(subject)",
                                    "subject_pol": "0 + C(subject):attitude",
                                    "scenario": "0 + C(scenario)",
                                    "scenario_pol": "0 + C(scenario):attitude"}).fit(reml=True)
        else:
            re = "~attitude" if "(attitude |" in formula else "~1"
            smf.mixedlm("frequency ~ gender + attitude", df, groups="subject",
                        re_formula=re).fit(reml=True)
        # Bambi, the seed's settings
        model = bmb.Model(formula, df)
        kwargs = {"nuts_sampler": "numpyro"} if bmb.__version__.startswith("0.15") \
            else {"inference_method": "numpyro"}
        model.fit(draws=draws, tune=tune, chains=chains, target_accept=0.95, random_seed=42,
                  progressbar=False, **kwargs)
        print(f"{formula}: {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"total {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    default_csv = here.parent / "src" / "parity" / "data" / "politeness_data.csv"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default_csv),
         *(int(a) for a in sys.argv[2:5]))
