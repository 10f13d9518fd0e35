"""statsmodels: OLS for fixed-only models, MixedLM (REML) for models with grouping terms.

statsmodels receives design matrices built by :mod:`parity.design` (R's coding and
names), not a formula. MixedLM can fit a full covariance matrix only for the random
terms of a single grouping factor; any other structure (crossed or nested factors,
`||`, several blocks) is fitted as independent variance components, and the fit records
that its structure differs from lme4's.
"""

from __future__ import annotations

import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from parity.data import PreparedData
from parity.design import build_design
from parity.engines.base import Engine, EngineKind, status_fit
from parity.environment import package_versions
from parity.models import Model
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    Provenance,
    VarianceComponent,
    structure_of,
)
from parity.settings import Settings
from parity.spec import RandomTerm

# lme4's isSingular() tolerance on the relative covariance factor, applied to MixedLM's
# estimates so "singular" means the same for both engines.
SINGULAR_TOL = 1e-4


def _group_labels(frame: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
    labels = frame[group[0]].astype(str)
    for g in group[1:]:
        labels = labels + ":" + frame[g].astype(str)
    return labels.to_numpy()


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {w.message}", None)
    return tuple(seen)


class StatsmodelsEngine(Engine):
    name = "statsmodels"
    kind: EngineKind = "frequentist"

    def missing(self) -> str | None:
        try:
            import statsmodels  # noqa: F401
        except ImportError as exc:
            return f"statsmodels is not installed ({exc})"
        return None

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if model.spec.is_mixed:
                    parts = self._mixed(model, data, settings)
                else:
                    parts = self._ols(model, data, settings)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return status_fit(self.name, model, data, "failed",
                              f"statsmodels: {type(exc).__name__}: {exc}", settings,
                              time.perf_counter() - start)
        fixed, components, converged, singular, method, structure, fit_stats = parts
        return Fit(
            model=model.name,
            formula=model.formula,
            engine=self.name,
            status="ok",
            reason=None,
            n_obs=data.n_obs,
            n_dropped=data.n_dropped,
            fixed_effects=fixed,
            variance_components=components,
            diagnostics=Diagnostics(converged=converged, singular=singular,
                                    warnings=_messages(caught)),
            provenance=Provenance(
                engine_version=version("statsmodels"),
                r_version=None,
                settings={"method": method, "reml": settings.reml,
                          "interval": settings.interval},
                seconds=time.perf_counter() - start,
                versions=package_versions(("statsmodels", "numpy", "scipy", "pandas")),
            ),
            engine_formula=method,
            structure=structure,
            fit_statistics=fit_stats,
        )

    @staticmethod
    def _fixed(names: tuple[str, ...], est: np.ndarray, se: np.ndarray,
               crit: float) -> tuple[FixedEffect, ...]:
        return tuple(
            FixedEffect(n, float(e), float(s), float(e - crit * s), float(e + crit * s))
            for n, e, s in zip(names, est, se, strict=True)
        )

    def _ols(self, model: Model, data: PreparedData, settings: Settings) -> Any:
        import statsmodels.api as sm

        spec = model.spec
        X = build_design(data.frame, spec.fixed, spec.intercept, data.levels)
        y = data.frame[spec.response].to_numpy(dtype=float)
        res = sm.OLS(y, X.matrix).fit()
        crit = float(stats.t.ppf(1 - (1 - settings.interval) / 2, res.df_resid))
        fixed = self._fixed(X.names, np.asarray(res.params), np.asarray(res.bse), crit)
        resid = VarianceComponent("Residual", None, None, "sd", float(np.sqrt(res.scale)))
        return (fixed, (resid,), True, False, "OLS", {}, {"loglik": float(res.llf)})

    def _mixed(self, model: Model, data: PreparedData, settings: Settings) -> Any:
        from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

        spec = model.spec
        frame = data.frame
        X = build_design(frame, spec.fixed, spec.intercept, data.levels)
        y = frame[spec.response].to_numpy(dtype=float)
        n = len(frame)
        blocks = spec.random
        designs = [build_design(frame, b.terms, b.intercept, data.levels) for b in blocks]
        single = len(blocks) == 1 and blocks[0].correlated
        if single:
            block, re = blocks[0], designs[0]
            groups = _group_labels(frame, block.group)
            mod = MixedLM(y, X.matrix, groups=groups, exog_re=re.matrix)
            method = "MixedLM (correlated random effects)"
        else:
            same_group = len({b.group for b in blocks}) == 1
            groups = _group_labels(frame, blocks[0].group) if same_group else np.ones(n)
            vc_names: list[str] = []
            mats: list[list[np.ndarray]] = []
            colnames: list[list[str]] = []
            uniq = list(dict.fromkeys(groups))
            for b, d in zip(blocks, designs, strict=True):
                labels = _group_labels(frame, b.group)
                levels = list(dict.fromkeys(labels))
                for j, term in enumerate(d.names):
                    vc_names.append(f"{b.group_label}\x1f{term}")
                    per_group = []
                    for g in uniq:
                        rows = groups == g
                        if same_group:
                            per_group.append(d.matrix[rows, j : j + 1])
                        else:
                            ind = (labels[rows][:, None] == np.array(levels)[None, :])
                            per_group.append(ind.astype(float) * d.matrix[rows, j : j + 1])
                    mats.append(per_group)
                    colnames.append([f"{g}" for g in (["x"] if same_group else levels)])
            vcs = VCSpec(vc_names, colnames, mats)
            mod = MixedLM(y, X.matrix, groups=groups, exog_re=None, exog_vc=vcs)
            method = "MixedLM (independent variance components)"
        res = mod.fit(reml=settings.reml)
        crit = float(stats.norm.ppf(1 - (1 - settings.interval) / 2))
        k = len(X.names)
        fixed = self._fixed(X.names, np.asarray(res.fe_params), np.asarray(res.bse_fe)[:k],
                            crit)
        scale = float(res.scale)
        components: list[VarianceComponent] = []
        singular = False
        if single:
            cov = np.asarray(res.cov_re, dtype=float)
            components.extend(_correlated_components(blocks[0], designs[0].names, cov))
            singular = _singular_cov(cov / scale)
        else:
            variances = np.asarray(res.vcomp, dtype=float)
            for name, var in zip(mod.exog_vc.names, variances, strict=True):
                group, _, term = name.partition("\x1f")
                components.append(VarianceComponent(group, term, None, "sd",
                                                    float(np.sqrt(max(var, 0.0)))))
                singular = singular or np.sqrt(max(var, 0.0) / scale) < SINGULAR_TOL
        components.append(VarianceComponent("Residual", None, None, "sd", float(np.sqrt(scale))))
        loglik = float(res.llf)
        fit_stats = {"loglik": loglik}
        if settings.reml:
            fit_stats["reml_criterion"] = -2.0 * loglik
        structure = structure_of(list(spec.grouping_labels()), components)
        return (fixed, tuple(components), bool(res.converged), bool(singular), method,
                structure, fit_stats)


def _correlated_components(
    block: RandomTerm, names: tuple[str, ...], cov: np.ndarray
) -> list[VarianceComponent]:
    """SDs then correlations, in lme4's VarCorr order."""
    sds = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    out = [VarianceComponent(block.group_label, n, None, "sd", float(s))
           for n, s in zip(names, sds, strict=True)]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            denom = sds[i] * sds[j]
            corr = float(cov[i, j] / denom) if denom > 0 else float("nan")
            out.append(VarianceComponent(block.group_label, names[i], names[j], "corr", corr))
    return out


def _singular_cov(rel_cov: np.ndarray) -> bool:
    """lme4's criterion: a diagonal entry of the relative Cholesky factor below 1e-4."""
    try:
        chol = np.linalg.cholesky(rel_cov)
    except np.linalg.LinAlgError:
        return True
    return bool(np.any(np.abs(np.diag(chol)) < SINGULAR_TOL))
