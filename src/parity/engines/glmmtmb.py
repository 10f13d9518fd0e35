"""The glmmTMB engine: `r_scripts/glmmtmb_fit.R` through the R bridge
(:mod:`parity.engines.rbridge`).

A second frequentist opinion on lme4's model: the same likelihood, reached through TMB's
Laplace approximation and nlminb rather than lme4's profiled deviance and BOBYQA. It
runs in the R worker beside lme4, reports under lme4's names, and its solution is judged
by lme4's criterion like any other frequentist engine's. `(x || g)` is glmmTMB's
`diag(x | g)`, which, unlike lme4's `||`, also makes a factor's columns independent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.engines.cost import GLMMTMB_BYTES_PER_NONZERO, Cost, sparse_cost
from parity.engines.rbridge import RScriptEngine

if TYPE_CHECKING:
    from parity.rows.dims import DesignDims
    from parity.settings import Settings
    from parity.spec.models import Model


class GlmmTMBEngine(RScriptEngine):
    """glmmTMB (`glmmTMB()` with `REML` as asked; a GLMM by Laplace ML)."""

    name = "glmmtmb"
    function = "parity_glmmtmb_fit"
    label = "glmmTMB"
    # TMB's exact gradients let nlminb stop at the same point however the data are
    # presented: the invariance cases (regular fits, every transformation) hold to 1e-6,
    # far tighter than lme4's derivative-free BOBYQA.
    invariance_rtol = 1e-6

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """glmmTMB's design is sparse too, its AD tape larger per nonzero than lme4's."""
        return sparse_cost(dims, GLMMTMB_BYTES_PER_NONZERO)
