"""The nlme engine: `r_scripts/nlme_fit.R` (R's `nlme::lme`, and `nlme::gls` for a model
without grouping terms) through the R bridge (:mod:`parity.engines.rbridge`).

A third frequentist opinion on lme4's Gaussian model, from the package lme4 grew out of:
the same REML or ML likelihood, maximised by nlminb over nlme's own parameterisation
(log-Cholesky) rather than lme4's profiled deviance and BOBYQA. nlme nests its grouping
factors, so crossed factors and the binomial and Poisson families are refused by its
registry row (`parity.registry`), with the reasons, and the other engines run.
"""

from __future__ import annotations

from parity.engines.rbridge import RScriptEngine


class NlmeEngine(RScriptEngine):
    """nlme (`lme()` with `method` REML or ML; `gls()` without grouping terms)."""

    name = "nlme"
    function = "parity_nlme_fit"
    label = "nlme"
    # nlminb over a smooth criterion with nlme's analytic gradient stops at the same
    # point however the data are presented, to this (the invariance suite's cases).
    invariance_rtol = 1e-6
