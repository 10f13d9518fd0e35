"""statsmodels: OLS for fixed-only models, MixedLM (REML) for models with grouping terms.

statsmodels receives design matrices built by :mod:`parity.rows.design` (R's coding and
names), not a formula. MixedLM can fit a full covariance matrix only for the random
terms of a single grouping factor; any other structure (crossed or nested factors,
`||`, several blocks) is fitted as independent variance components, and the fit records
that its structure differs from lme4's.

What an analyst publishes of each coefficient is statsmodels' own: its test statistic,
p-value and `conf_int` at the run's interval level. OLS reports t-tests on its residual
degrees of freedom (Wald-t); GLM and MixedLM report z-tests (Wald-z, no degrees of
freedom: MixedLM's `tvalues` are z statistics, and its p-values are normal). The Bayesian
mixed GLMs have no test: their interval is the equal-tailed interval of the variational
normal posterior, and their probability of direction is that posterior's,
Phi(|mean| / sd); the library has a function for neither, so both are parity's
(`VARIATIONAL_INTERVAL`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from parity import boundary
from parity.engines import engine_info
from parity.engines.base import Engine, status_fit
from parity.engines.cost import Cost, statsmodels_cost
from parity.environment import package_versions
from parity.rows.design import Design, build_design, group_codes
from parity.rows.dims import DesignDims
from parity.rows.prepare import PreparedData
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    StatisticKind,
    VarianceComponent,
    criterion_of,
    structure_of,
)
from parity.settings import Settings
from parity.spec.models import Model
from parity.spec.spec import RandomTerm

# How the Bayesian mixed GLMs' intervals are found: the equal-tailed interval of the
# mean-field normal posterior, mean -/+ z sd, for a fixed effect; for an SD, exp of that
# interval of its log (the log SD's posterior is normal). Computed by parity.
VARIATIONAL_INTERVAL = "variational normal (parity)"
VARIATIONAL_SD_INTERVAL = "variational normal, log scale (parity)"


@dataclass
class _Parts:
    """What one statsmodels fit produced, before it becomes a Fit."""

    fixed: tuple[FixedEffect, ...]
    components: tuple[VarianceComponent, ...]
    converged: bool
    singular: bool
    method: str
    structure: dict[str, str]
    fit_statistics: dict[str, float]
    cov: np.ndarray
    group_effects: tuple[GroupEffect, ...] = ()
    notes: list[str] = field(default_factory=list)
    criterion: str | None = None  # None: from the model (REML/ML, or OLS)
    kind: str | None = None       # "approximate" for the Bayesian mixed GLMs


def likelihood_statistics(loglik: float, df: int, n_obs: int,
                          reml: bool | None) -> dict[str, float]:
    """logLik, AIC, BIC and deviance (-2 logLik) as lme4 computes them: `df` counts the
    fixed effects, the covariance parameters and the residual variance, and BIC's n is
    the number of rows. `reml_criterion` too under REML (None: least squares)."""
    out = {"loglik": loglik, "aic": -2.0 * loglik + 2.0 * df,
           "bic": -2.0 * loglik + df * math.log(n_obs), "deviance": -2.0 * loglik,
           "df": float(df)}
    if reml:
        out["reml_criterion"] = -2.0 * loglik
    return out


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {w.message}", None)
    return tuple(seen)


class StatsmodelsEngine(Engine):
    name = "statsmodels"

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """Dense where MixedLM fits several grouping factors as variance components."""
        return statsmodels_cost(dims, model.gaussian)

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if not model.gaussian:
                    parts = (self._bayes_mixed_glm(model, data, settings)
                             if model.spec.is_mixed else self._glm(model, data, settings))
                elif model.spec.is_mixed:
                    parts = self._mixed(model, data, settings)
                else:
                    parts = self._ols(model, data, settings)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return status_fit(self.name, model, data, "failed",
                              f"statsmodels: {type(exc).__name__}: {exc}", settings,
                              time.perf_counter() - start)
        criterion = parts.criterion if parts.criterion or parts.kind else criterion_of(
            model.fam, settings.reml, mixed=model.spec.is_mixed)
        k = len(parts.fixed)
        return Fit(
            model=model.name,
            formula=model.formula,
            engine=self.name,
            status="ok",
            reason=None,
            n_obs=data.n_obs,
            n_dropped=data.n_dropped,
            fixed_effects=parts.fixed,
            variance_components=parts.components,
            diagnostics=Diagnostics(converged=parts.converged, singular=parts.singular,
                                    warnings=_messages(caught) + tuple(parts.notes)),
            provenance=Provenance(
                engine_version=version("statsmodels"),
                r_version=None,
                settings={"method": parts.method, "reml": settings.reml,
                          "interval": settings.interval},
                seconds=time.perf_counter() - start,
                versions=package_versions(engine_info("statsmodels").stack),
            ),
            engine_formula=parts.method,
            structure=parts.structure,
            fit_statistics=parts.fit_statistics,
            criterion=criterion,
            group_effects=parts.group_effects,
            fixed_effects_cov=tuple(tuple(float(x) for x in row)
                                    for row in np.asarray(parts.cov)[:k, :k]),
            family=model.family,
            link=model.fam.link,
            kind=parts.kind,
            interval=settings.interval,
        )

    @staticmethod
    def _tested(names: tuple[str, ...], res: Any, k: int, interval: float, kind: StatisticKind,
                df: float | None = None) -> tuple[FixedEffect, ...]:
        """The first `k` coefficients of a statsmodels result as it reports them: estimate,
        SE, test statistic (`tvalues`, z statistics unless `kind` is t), p-value and
        `conf_int` at `interval`; a t-test's `df` are the residual degrees of freedom."""
        est, se = np.asarray(res.params)[:k], np.asarray(res.bse)[:k]
        stat, p = np.asarray(res.tvalues)[:k], np.asarray(res.pvalues)[:k]
        ci = np.asarray(res.conf_int(alpha=1 - interval))[:k]
        method = "Wald-t" if kind == "t" else "Wald-z"
        return tuple(
            FixedEffect(n, float(e), float(s), float(lo), float(hi), statistic=float(t),
                        statistic_kind=kind, df=df, df_method=None if df is None else
                        "residual", p_value=float(pv), interval_method=method)
            for n, e, s, (lo, hi), t, pv in zip(names, est, se, ci, stat, p, strict=True)
        )

    def _ols(self, model: Model, data: PreparedData, settings: Settings) -> _Parts:
        import statsmodels.api as sm

        spec = model.spec
        X = build_design(data.frame, spec.fixed, spec.intercept, data.levels)
        y = data.frame[spec.response].to_numpy(dtype=float)
        res = sm.OLS(y, X.matrix).fit()
        fixed = self._tested(X.names, res, len(X.names), settings.interval, "t",
                             float(res.df_resid))
        resid = VarianceComponent("Residual", None, None, "sd", float(np.sqrt(res.scale)))
        # lm's df counts the residual variance too; statsmodels' own AIC does not.
        stats_ = likelihood_statistics(float(res.llf), len(X.names) + 1, len(y), None)
        return _Parts(fixed, (resid,), True, False, "OLS", {}, stats_,
                      np.asarray(res.cov_params()))

    def _glm(self, model: Model, data: PreparedData, settings: Settings) -> _Parts:
        """A binomial or Poisson model without grouping terms: GLM, by ML (IRLS)."""
        import statsmodels.api as sm

        spec = model.spec
        X = build_design(data.frame, spec.fixed, spec.intercept, data.levels)
        y = data.frame[spec.response].to_numpy(dtype=float)
        if model.family == "poisson":
            family: Any = sm.families.Poisson()
            endog: np.ndarray = y
        else:
            family = sm.families.Binomial()
            endog = y if model.trials is None else np.column_stack(
                [y, data.frame[model.trials].to_numpy(dtype=float) - y])
        res = sm.GLM(endog, X.matrix, family=family).fit()
        fixed = self._tested(X.names, res, len(X.names), settings.interval, "z")
        stats_ = likelihood_statistics(float(res.llf), len(X.names), len(y), None)
        return _Parts(fixed, (), bool(res.converged), False, f"GLM {model.family}", {},
                      stats_, np.asarray(res.cov_params()), criterion="ML")

    def _bayes_mixed_glm(self, model: Model, data: PreparedData,
                         settings: Settings) -> _Parts:
        """A binomial or Poisson mixed model: statsmodels' BinomialBayesMixedGLM or
        PoissonBayesMixedGLM, fitted by variational Bayes (mean field) with its default
        priors (fixed effects N(0, 2²), log SDs N(0, 1)). Every random column is an
        independent variance component, whatever the formula's `|`: the structure says
        so. It takes 0/1 outcomes, so a count of y successes in n trials becomes n rows,
        y of them 1: the same binomial likelihood."""
        from statsmodels.genmod.bayes_mixed_glm import (
            BinomialBayesMixedGLM,
            PoissonBayesMixedGLM,
        )

        spec, frame = model.spec, data.frame
        X = build_design(frame, spec.fixed, spec.intercept, data.levels)
        y = frame[spec.response].to_numpy(dtype=float)
        columns: list[np.ndarray] = []
        ident: list[int] = []
        names: list[tuple[str, str, str]] = []  # group, level, term per column
        vc_terms: list[tuple[str, str]] = []     # group, term per variance component
        for block in spec.random:
            design = build_design(frame, block.terms, block.intercept, data.levels)
            codes, labels = group_codes(frame, block.group)
            for j, term in enumerate(design.names):
                vc_terms.append((block.group_label, term))
                for k, level in enumerate(labels):
                    columns.append((codes == k) * design.matrix[:, j])
                    ident.append(len(vc_terms) - 1)
                    names.append((block.group_label, level, term))
        Z = np.column_stack(columns)
        exog = np.asarray(X.matrix, dtype=float)
        if model.family == "binomial" and model.trials is not None:
            n = frame[model.trials].to_numpy(dtype=int)
            rows = np.repeat(np.arange(len(y)), n)
            ones = np.concatenate([np.arange(m) < int(s) for m, s in zip(n, y, strict=True)])
            endog, exog, Z = ones.astype(float), exog[rows], Z[rows]
        else:
            endog = y
        cls = PoissonBayesMixedGLM if model.family == "poisson" else BinomialBayesMixedGLM
        mod = cls(endog, exog, exog_vc=Z, ident=np.asarray(ident, dtype=int))
        res = mod.fit_vb()
        crit = float(stats.norm.ppf(1 - (1 - settings.interval) / 2))
        fe_mean, fe_sd = np.asarray(res.fe_mean), np.asarray(res.fe_sd)
        # No test: the variational posterior's interval and probability of direction.
        fixed = tuple(
            FixedEffect(n, float(m), float(sd), float(m - crit * sd), float(m + crit * sd),
                        interval_method=VARIATIONAL_INTERVAL,
                        p_direction=float(stats.norm.cdf(abs(m) / sd)) if sd > 0 else None)
            for n, m, sd in zip(X.names, fe_mean, fe_sd, strict=True))
        components = []
        for (group, term), m, s in zip(vc_terms, np.asarray(res.vcp_mean),
                                       np.asarray(res.vcp_sd), strict=True):
            # The posterior of log SD is N(m, s²): the SD's is log-normal.
            mean = float(np.exp(m + s**2 / 2))
            sd = mean * float(np.sqrt(np.expm1(s**2)))
            components.append(VarianceComponent(group, term, None, "sd", mean, sd,
                                                float(np.exp(m - crit * s)),
                                                float(np.exp(m + crit * s)),
                                                interval_method=VARIATIONAL_SD_INTERVAL))
        effects = tuple(GroupEffect(g, lv, t, float(m), float(s)) for (g, lv, t), m, s in
                        zip(names, np.asarray(res.vc_mean), np.asarray(res.vc_sd),
                            strict=True))
        retvals = getattr(res, "optim_retvals", None)  # scipy's OptimizeResult, a dict
        converged = bool(retvals.get("success", True)) if isinstance(retvals, dict) else True
        method = f"{cls.__name__} (variational Bayes, independent variance components)"
        return _Parts(fixed, tuple(components), converged, boundary.singular(components),
                      method, {g: "independent" for g in spec.grouping_labels()}, {},
                      np.diag(fe_sd**2), effects, kind="approximate")

    @staticmethod
    def _components_model(y: np.ndarray, exog: np.ndarray, frame: pd.DataFrame,
                          blocks: tuple[RandomTerm, ...], designs: list[Design]) -> Any:
        """MixedLM with one variance component per random column.

        Blocks of one grouping factor (`||`, or `(1 | g) + (0 + x | g)`) are fitted within
        that factor's groups: each component's matrix for group k is its column on group
        k's rows. Different grouping factors (crossed) are fitted within one all-rows
        group, each component's matrix being its column times the level indicators."""
        from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

        n = len(frame)
        coded = {g: group_codes(frame, g) for g in dict.fromkeys(b.group for b in blocks)}
        same_group = len(coded) == 1
        codes = coded[blocks[0].group][0] if same_group else np.zeros(n, np.int64)
        rows_of = [np.flatnonzero(codes == k) for k in range(int(codes.max()) + 1)]
        vc_names: list[str] = []
        mats: list[list[np.ndarray]] = []
        colnames: list[list[list[str]]] = []
        for b, d in zip(blocks, designs, strict=True):
            level_codes, level_labels = coded[b.group]
            for j, term in enumerate(d.names):
                vc_names.append(f"{b.group_label}\x1f{term}")
                column = d.matrix[:, j : j + 1]
                # colnames[component][group]: the names of that group's columns.
                if same_group:
                    mats.append([column[rows] for rows in rows_of])
                    colnames.append([[term] for _ in rows_of])
                else:
                    ind = level_codes[:, None] == np.arange(len(level_labels))[None, :]
                    mats.append([ind[rows].astype(float) * column[rows] for rows in rows_of])
                    colnames.append([list(level_labels) for _ in rows_of])
        vcs = VCSpec(vc_names, colnames, mats)
        return MixedLM(y, exog, groups=codes, exog_re=None, exog_vc=vcs)

    def _mixed(self, model: Model, data: PreparedData, settings: Settings) -> _Parts:
        from statsmodels.regression.mixed_linear_model import MixedLM

        spec = model.spec
        frame = data.frame
        X = build_design(frame, spec.fixed, spec.intercept, data.levels)
        y = frame[spec.response].to_numpy(dtype=float)
        blocks = spec.random
        designs = [build_design(frame, b.terms, b.intercept, data.levels) for b in blocks]
        single = len(blocks) == 1 and blocks[0].correlated
        if single:
            codes, _ = group_codes(frame, blocks[0].group)
            mod = MixedLM(y, X.matrix, groups=codes, exog_re=designs[0].matrix)
            method = "MixedLM (correlated random effects)"
        else:
            mod = self._components_model(y, X.matrix, frame, blocks, designs)
            method = "MixedLM (independent variance components)"
        _check_group_order(mod)
        res = mod.fit(reml=settings.reml)
        k = len(X.names)
        # MixedLM's params are the fixed effects, then the covariance parameters.
        fixed = self._tested(X.names, res, k, settings.interval, "z")
        scale = float(res.scale)
        components: list[VarianceComponent] = []
        if single:
            cov = np.asarray(res.cov_re, dtype=float)
            components.extend(_correlated_components(blocks[0], designs[0].names, cov))
        else:
            variances = np.asarray(res.vcomp, dtype=float)
            for name, var in zip(mod.exog_vc.names, variances, strict=True):
                group, _, term = name.partition("\x1f")
                components.append(VarianceComponent(group, term, None, "sd",
                                                    float(np.sqrt(max(var, 0.0)))))
        components.append(VarianceComponent("Residual", None, None, "sd", float(np.sqrt(scale))))
        n_cov = (len(designs[0].names) * (len(designs[0].names) + 1) // 2 if single
                 else len(mod.exog_vc.names))
        fit_stats = likelihood_statistics(float(res.llf), k + n_cov + 1, len(y), settings.reml)
        structure = structure_of(list(spec.grouping_labels()), components)
        notes: list[str] = []
        try:
            effects = _group_effects(res, frame, blocks, designs, single)
        except (ValueError, np.linalg.LinAlgError) as exc:
            effects = ()
            notes.append(f"no group effects: statsmodels cannot compute the conditional "
                         f"modes ({exc})")
        # statsmodels has no singular flag of its own: the one boundary rule decides.
        return _Parts(fixed, tuple(components), bool(res.converged),
                      boundary.singular(components), method, structure, fit_stats,
                      np.asarray(res.cov_params()), effects, notes)


def _group_effects(res: Any, frame: pd.DataFrame, blocks: tuple[RandomTerm, ...],
                   designs: list[Design], single: bool) -> tuple[GroupEffect, ...]:
    """The conditional modes (`random_effects`) with the square roots of the diagonals
    of their conditional covariances (`random_effects_cov`), under lme4's names.

    Values are read by position: the per-group vector lists the correlated block's
    columns, then each variance component's columns in `VCSpec` order, which
    `_components_model` built (one column per group for a factor's own blocks, one per
    level of the factor in a crossed model's single all-rows group)."""
    modes = res.random_effects
    covs = res.random_effects_cov
    out: list[GroupEffect] = []
    if single:
        _, labels = group_codes(frame, blocks[0].group)
        for code, label in enumerate(labels):
            values = np.asarray(modes[code], dtype=float)
            sds = np.sqrt(np.clip(np.diag(np.asarray(covs[code], dtype=float)), 0.0, None))
            out.extend(GroupEffect(blocks[0].group_label, label, term, float(v), float(s))
                       for term, v, s in zip(designs[0].names, values, sds, strict=True))
        return tuple(out)
    coded = {b.group: group_codes(frame, b.group) for b in blocks}
    same_group = len(coded) == 1
    group_labels = coded[blocks[0].group][1] if same_group else ["all"]
    for code, _ in enumerate(group_labels):
        values = np.asarray(modes[code], dtype=float)
        sds = np.sqrt(np.clip(np.diag(np.asarray(covs[code], dtype=float)), 0.0, None))
        pos = 0
        for b, d in zip(blocks, designs, strict=True):
            levels = [group_labels[code]] if same_group else coded[b.group][1]
            for term in d.names:
                for level in levels:
                    out.append(GroupEffect(b.group_label, level, term, float(values[pos]),
                                           float(sds[pos])))
                    pos += 1
        if pos != len(values):
            raise ValueError(f"{len(values)} conditional modes where {pos} were expected")
    return tuple(out)


def _check_group_order(mod: Any) -> None:
    """The per-group matrices are built for groups 0 … G-1 in that order, each from its
    rows in data order; fail loudly if MixedLM ever groups rows otherwise."""
    labels = [int(g) for g in mod.group_labels]
    if labels != list(range(len(labels))) or any(
        list(mod.row_indices[g]) != sorted(mod.row_indices[g]) for g in mod.group_labels
    ):
        raise ValueError("MixedLM grouped the rows in an order parity did not build its "
                         "per-group matrices in")


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
