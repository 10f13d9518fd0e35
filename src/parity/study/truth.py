"""The truth a study's replicates are drawn from: lme4's fit of the original data (its
fixed effects, SDs, correlations and residual SD), looked up by the labels comparison rows
use (`genderM`, `sd(subject: (Intercept))`).

A binomial or Poisson truth (glmer's Laplace fit) has fixed effects and SDs on the link
scale and no residual SD: the family's variance follows from its mean, so its components
are the grouping factors' only, and no study row compares a residual SD."""

from __future__ import annotations

from dataclasses import dataclass

from parity.errors import UsageError
from parity.schema import Fit, VarianceComponent


@dataclass(frozen=True)
class Truth:
    fixed: dict[str, float]
    components: tuple[VarianceComponent, ...]
    # Where the values come from: lme4's fit here, or a recorded lme4 reference.
    source: str

    def value(self, quantity: str, term: str) -> float | None:
        """The true value of a study row's quantity and term, or None (a parameter the
        truth does not have, as a correlation of a model fitted with independent ones)."""
        if quantity == "estimate":
            return self.fixed.get(term)
        for v in self.components:
            if v.kind == quantity and v.label == term:
                return v.estimate
        return None

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "fixed_effects": dict(self.fixed),
                "components": {v.label: v.estimate for v in self.components}}


def truth_from(fit: Fit) -> Truth:
    """lme4's fit as the truth; a fit that did not run is a usage error naming why."""
    if fit.status != "ok":
        raise UsageError(f"no lme4 fit of the original data to take the truth from "
                         f"({fit.status}: {' '.join(str(fit.reason).split())})")
    source = ("recorded lme4 reference" if fit.is_recorded
              else f"lme4 {fit.provenance.engine_version} fit of the original data")
    return Truth(fixed={f.term: f.estimate for f in fit.fixed_effects},
                 components=tuple(fit.variance_components), source=source)
