"""A fit's names as the analyst wrote them.

Engines are given a transformed column under a safe alias (see
:class:`parity.spec.spec.ModelSpec`); every fit, whichever engine made it, is renamed
here, once, so that records, comparisons and reports say `log(Reaction)` and
`poly(Days, 2)1`, as lme4 on the analyst's own text does.
"""

from __future__ import annotations

from dataclasses import replace

from parity.schema import Fit
from parity.spec.spec import ModelSpec


def written_names(fit: Fit, spec: ModelSpec) -> Fit:
    """`fit` with every alias in its term names, engine formula and priors replaced by
    the lme4 name of the column it stands for."""
    if not spec.derived:
        return fit

    def name(text: str | None) -> str | None:
        return None if text is None else spec.rename(text)

    settings = dict(fit.provenance.settings)
    if isinstance(settings.get("priors"), dict):  # a Bayesian engine's priors, by term
        settings["priors"] = {spec.rename(str(k)): v for k, v in settings["priors"].items()}
    return replace(
        fit,
        provenance=replace(fit.provenance, settings=settings),
        fixed_effects=tuple(replace(f, term=spec.rename(f.term)) for f in fit.fixed_effects),
        variance_components=tuple(replace(v, term=name(v.term), term2=name(v.term2))
                                  for v in fit.variance_components),
        group_effects=tuple(replace(g, term=spec.rename(g.term)) for g in fit.group_effects),
        engine_formula=name(fit.engine_formula),
    )
