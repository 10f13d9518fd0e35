"""`parity study`: where the engines agree, answered by simulation.

A parametric bootstrap from lme4's fit of the analyst's data: replicates are simulated
with lme4's estimates as the truth, on designs with more (or fewer) levels of the first
grouping factor, every engine fits every replicate on Dask, and the study reports bias,
interval coverage and how often the verdicts agree, per design, and calibrates the
tolerance policy from the replicates.

Modules: `design` (the designs and their rows), `truth` (lme4's fit as the values to
recover), `simulate` (responses drawn from it), `tasks` and `child` (what a Dask worker runs),
`store` (batches persisted as they finish, for resuming), `tables` (rows, summary),
`calibrate` (the calibrated tolerances), `report` (study.md, study.html, figures) and
`run` (the orchestration: `options`, `checks`, `plan`, `cluster`, `progress` and
`assemble` hold its parts).
"""
