"""The `pymc` engine: Bambi's model with lme4's covariance structure.

Bambi gives every `( … | g)` block independent coefficients (bambi#702), so its SDs and
correlations never answer "do the Bayesian and frequentist fits of lme4's model agree?".
This engine builds that model in PyMC from parity's parsed spec:

- the likelihood, the fixed-effect priors, the group SD priors and the residual SD prior
  are Bambi's, read from the Bambi model of the same formula and data (not re-derived),
  and like Bambi the non-intercept predictors are centred when there is an intercept, so
  Bambi and this engine differ only in the covariance structure;
- each correlated block `(x | g)` is a multivariate normal whose covariance has an LKJ
  prior on its correlation matrix and Bambi's SD priors, in a non-centred parametrisation
  (u = z (diag(sd) L)ᵀ, z standard normal); `||` blocks stay independent;
- it is sampled with numpyro's NUTS on JAX under Bambi's sampler settings, seed and
  diagnostics, and records `structure: correlated` for its correlated blocks.

The LKJ prior is built from its C-vine (Lewandowski, Kurowicka & Joe 2009, the
construction behind `pm.LKJCholeskyCov` and Stan's `lkj_corr_cholesky`): the canonical
partial correlations are independent Beta(β, β) on (−1, 1), β = η + (k − 2 − j)/2 at
level j, and the Cholesky factor of the correlation matrix is assembled from them. Built
here, it is the same distribution on every PyMC release parity supports, without the
random-draw graph of `LKJCholeskyCov` (which fails under some PyTensor and opt_einsum
pairs at model construction).

The LKJ shape is η = 2 (:data:`LKJ_ETA`): for two coefficients its density of the
correlation is ∝ 1 − r², which keeps the prior off exactly ±1 (where lme4's singular fits
sit, and where the posterior geometry defeats NUTS) while staying wide (prior SD of r
0.45, against 0.58 for the uniform η = 1); larger η would pull correlations toward 0 on
their own, which the comparison would then blame on the data.
"""

from __future__ import annotations

import time
import warnings as warnings_module
from typing import Any

import numpy as np

from parity.engines import engine_info
from parity.engines.bambi import (
    NOT_IN_STUDIES,
    BambiEngine,
    SensitivityKey,
    _save_draws,
    bambi_formula,
    bambi_priors,
    captured_logs,
    component,
    fixed_effect,
    prior_keys,
    with_sensitivity,
)
from parity.engines.base import Refusal, status_fit
from parity.engines.posterior import finite_or_none, mcse_mean, summarize
from parity.engines.prior_set import KEY as PRIOR_SET
from parity.engines.prior_set import text as prior_text_of
from parity.engines.sensitivity import METHOD as SENSITIVITY_METHOD
from parity.engines.sensitivity import log_density, too_large
from parity.engines.sensitivity import pair as sense
from parity.environment import package_versions
from parity.rows.design import build_design, group_codes
from parity.rows.prepare import PreparedData
from parity.schema import (
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    VarianceComponent,
    structure_of,
)
from parity.settings import Settings
from parity.spec.models import Model
from parity.spec.priors import Priors, priors_of
from parity.spec.spec import ModelSpec

LKJ_ETA = 2.0


def _mu(prior: Any) -> Any:
    """A Bambi prior's `mu` (0 where it has none)."""
    return np.asarray(prior.args.get("mu", 0.0), dtype=float)


def _sigma(prior: Any) -> Any:
    """A Bambi prior's `sigma` argument as a number or array (a nested prior's own
    `sigma` for a group-specific term's SD prior)."""
    value = prior.args["sigma"]
    return _sigma(value) if hasattr(value, "args") else np.asarray(value, dtype=float)


def _terms(bmodel: Any) -> dict[str, Any]:
    parts = getattr(bmodel, "parameters", None) or bmodel.components
    return dict(parts[bmodel.family.likelihood.parent].terms)


def _residual_prior(bmodel: Any) -> Any:
    parts = getattr(bmodel, "parameters", None) or bmodel.components
    return parts["sigma"].prior


class _Layout:
    """The model's design as parity builds it (R's coding and names), with each fixed
    column's Bambi prior SD, and each random block's columns, prior SDs and groups."""

    def __init__(self, spec: ModelSpec, data: PreparedData, bmodel: Any) -> None:
        frame, levels = data.frame, data.levels
        terms = _terms(bmodel)
        self.y = frame[spec.response].to_numpy(dtype=float)
        full = build_design(frame, spec.fixed, spec.intercept, levels)
        self.names = [n for n in full.names if n != "(Intercept)"]
        self.X = np.asarray(full.matrix, dtype=float)[:, [i for i, n in enumerate(full.names)
                                                           if n != "(Intercept)"]]
        self.intercept = spec.intercept
        sds: list[float] = []
        mus: list[float] = []
        done = 0
        for i, term in enumerate(spec.fixed):  # each term's columns follow the previous'
            upto = build_design(frame, spec.fixed[: i + 1], spec.intercept, levels).names
            ncol = len([n for n in upto if n != "(Intercept)"]) - done
            sds += list(np.broadcast_to(_sigma(terms[term.label].prior), (ncol,)))
            mus += list(np.broadcast_to(_mu(terms[term.label].prior), (ncol,)))
            done += ncol
        self.beta_sigma = np.asarray(sds, dtype=float)
        self.beta_mu = np.asarray(mus, dtype=float)
        if spec.intercept:
            prior = terms["Intercept"].prior
            self.intercept_mu = float(np.asarray(prior.args["mu"], dtype=float))
            self.intercept_sigma = float(_sigma(prior))
        self.blocks: list[dict[str, Any]] = []
        for block in spec.random:
            design = build_design(frame, block.terms, block.intercept, levels)
            codes, labels = group_codes(frame, block.group)
            priors: list[float] = []
            if block.intercept:
                priors.append(float(_sigma(terms[f"1|{block.group_label}"].prior)))
            for t in block.terms:
                n_t = len(build_design(frame.head(1), (t,), block.intercept, levels).names) - (
                    1 if block.intercept else 0)
                priors += list(np.broadcast_to(
                    _sigma(terms[f"{t.label}|{block.group_label}"].prior), (n_t,)))
            self.blocks.append({"group": block.group_label, "correlated": block.correlated,
                                "Z": np.asarray(design.matrix, dtype=float),
                                "names": list(design.names), "codes": codes,
                                "labels": labels, "sd_sigma": np.asarray(priors, dtype=float)})
        self.sigma_prior = _residual_prior(bmodel)
        self.lkj_eta = LKJ_ETA


def lkj_cholesky(name: str, k: int, eta: float) -> Any:
    """The Cholesky factor of a k × k correlation matrix with an LKJ(eta) prior, from its
    canonical partial correlations (C-vine): z[i, j] ~ 2 Beta(β_j, β_j) − 1 with
    β_j = eta + (k − 2 − j)/2, and row i of the factor built as Stan's `read_corr_L`."""
    import pymc as pm
    import pytensor.tensor as pt

    pairs = [(i, j) for i in range(1, k) for j in range(i)]
    beta = np.array([eta + (k - 2 - j) / 2.0 for _, j in pairs])
    raw = pm.Beta(f"{name}_cpc01", alpha=beta, beta=beta, shape=len(pairs))
    cpc = 2.0 * raw - 1.0
    index = {pair: n for n, pair in enumerate(pairs)}
    rows = [[pt.as_tensor_variable(1.0)] + [pt.as_tensor_variable(0.0)] * (k - 1)]
    for i in range(1, k):
        row: list[Any] = []
        left = pt.as_tensor_variable(1.0)  # 1 - sum of squares so far
        for j in range(i):
            value = cpc[index[(i, j)]] * pt.sqrt(left)
            row.append(value)
            left = left - value**2
        row.append(pt.sqrt(left))
        row += [pt.as_tensor_variable(0.0)] * (k - 1 - i)
        rows.append(row)
    return pt.stack([pt.stack(r) for r in rows])


def build_pymc_model(layout: _Layout) -> Any:
    """The PyMC model of `layout`: Bambi's priors, lme4's covariance structure."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        mu: Any = 0.0
        if layout.X.shape[1]:
            beta = pm.Normal("beta", layout.beta_mu, layout.beta_sigma,
                             shape=layout.X.shape[1])
        if layout.intercept:
            means = layout.X.mean(axis=0)
            centred = pm.Normal("intercept_centred", layout.intercept_mu,
                                layout.intercept_sigma)
            if layout.X.shape[1]:
                mu = centred + pt.dot(layout.X - means, beta)
                pm.Deterministic("intercept", centred - pt.dot(means, beta))
            else:
                mu = centred + pt.zeros(len(layout.y))
                pm.Deterministic("intercept", centred)
        elif layout.X.shape[1]:
            mu = pt.dot(layout.X, beta)
        for b, block in enumerate(layout.blocks):
            k, n_groups = block["Z"].shape[1], len(block["labels"])
            z = pm.Normal(f"z_{b}", 0.0, 1.0, shape=(n_groups, k))
            sds = pm.HalfNormal(f"sd_{b}", sigma=block["sd_sigma"], shape=k)
            if block["correlated"] and k > 1:
                corr_chol = lkj_cholesky(f"lkj_{b}", k, layout.lkj_eta)
                pm.Deterministic(f"corr_{b}", pt.dot(corr_chol, corr_chol.T))
                chol = sds[:, None] * corr_chol
                u = pm.Deterministic(f"u_{b}", pt.dot(z, chol.T))
            else:
                u = pm.Deterministic(f"u_{b}", z * sds)
            mu = mu + (pt.as_tensor_variable(block["Z"]) * u[block["codes"]]).sum(axis=1)
        args = {k: float(np.asarray(v)) for k, v in layout.sigma_prior.args.items()}
        sigma = getattr(pm, layout.sigma_prior.name)("sigma", **args)
        pm.Normal("y", mu, sigma, observed=layout.y)
    return model


def pymc_prior_set(layout: _Layout) -> dict[str, str]:
    """Every parameter's prior as this engine's model holds it (the shared vocabulary of
    :mod:`parity.engines.prior_set`): Normal coefficients, HalfNormal SDs, Bambi's
    residual prior and the LKJ prior of each correlated block."""
    out: dict[str, str] = {}
    if layout.intercept:
        out["intercept"] = prior_text_of("Normal", {"mu": layout.intercept_mu,
                                                    "sigma": layout.intercept_sigma})
    for j, name in enumerate(layout.names):
        out[f"fixed {name}"] = prior_text_of("Normal", {"mu": layout.beta_mu[j],
                                                        "sigma": layout.beta_sigma[j]})
    for block in layout.blocks:
        for j, name in enumerate(block["names"]):
            out[f"sd {block['group']} {name}"] = prior_text_of(
                "HalfNormal", {"sigma": block["sd_sigma"][j]})
        if block["correlated"] and len(block["names"]) > 1:
            out[f"lkj {block['group']}"] = prior_text_of("LKJ", {"eta": layout.lkj_eta})
    residual = layout.sigma_prior
    out["residual"] = prior_text_of(residual.name, {k: float(np.asarray(v))
                                                    for k, v in residual.args.items()})
    return out


def _log_prior(layout: _Layout, post: Any) -> np.ndarray:
    """The log density of the model's priors at every draw (chain, draw): the centred
    intercept's and the coefficients' Normals, the SDs' HalfNormals, the LKJ prior's
    Betas of the canonical partial correlations and the residual SD's prior."""
    from scipy import stats

    def draws(name: str) -> np.ndarray:
        return np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)

    def per_draw(x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], x.shape[1], -1).sum(axis=2)

    total = np.zeros((post.sizes["chain"], post.sizes["draw"]))
    if layout.intercept:
        total += stats.norm.logpdf(draws("intercept_centred"), layout.intercept_mu,
                                   layout.intercept_sigma)
    if layout.names:
        total += per_draw(stats.norm.logpdf(draws("beta"), layout.beta_mu, layout.beta_sigma))
    for b, block in enumerate(layout.blocks):
        total += per_draw(stats.halfnorm.logpdf(draws(f"sd_{b}"), scale=block["sd_sigma"]))
        k = block["Z"].shape[1]
        if f"lkj_{b}_cpc01" in post:
            pairs = [(i, j) for i in range(1, k) for j in range(i)]
            shape = np.array([layout.lkj_eta + (k - 2 - j) / 2.0 for _, j in pairs])
            total += per_draw(stats.beta.logpdf(draws(f"lkj_{b}_cpc01"), shape, shape))
    prior = layout.sigma_prior
    total += log_density(prior.name, {k: np.asarray(v, dtype=float)
                                      for k, v in prior.args.items()}, draws("sigma"))
    return total


def _log_likelihood(layout: _Layout, post: Any) -> np.ndarray:
    """The Gaussian log-likelihood of every row, summed, at every draw (chain, draw)."""
    from scipy import stats

    def draws(name: str) -> np.ndarray:
        return np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)

    mu = np.zeros((post.sizes["chain"], post.sizes["draw"], len(layout.y)))
    if layout.intercept:
        mu += draws("intercept")[..., None]
    if layout.names:
        mu += draws("beta") @ layout.X.T
    for b, block in enumerate(layout.blocks):
        u = draws(f"u_{b}")[:, :, block["codes"], :]  # (chain, draw, rows, columns)
        mu += (u * block["Z"]).sum(axis=-1)
    ll = stats.norm.logpdf(layout.y, mu, draws("sigma")[..., None])
    return np.asarray(ll.sum(axis=-1))


def pymc_sensitivities(layout: _Layout, post: Any
                       ) -> tuple[dict[SensitivityKey, tuple[float | None, float | None]], str]:
    """Each coefficient's, SD's and correlation's prior and likelihood sensitivity, and
    how they were found (or why not)."""
    draws_n = int(post.sizes["chain"]) * int(post.sizes["draw"])
    large = too_large(len(layout.y), draws_n)
    if large:
        return {}, large
    try:
        lp, ll = _log_prior(layout, post), _log_likelihood(layout, post)
    except (KeyError, ValueError) as exc:
        return {}, f"not computed: {type(exc).__name__}: {exc}"

    def draws(name: str) -> np.ndarray:
        return np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)

    out: dict[SensitivityKey, tuple[float | None, float | None]] = {}
    if layout.intercept:
        out["fixed", "(Intercept)", None] = sense(draws("intercept"), lp, ll)
    if layout.names:
        beta = draws("beta")
        for j, name in enumerate(layout.names):
            out["fixed", name, None] = sense(beta[:, :, j], lp, ll)
    for b, block in enumerate(layout.blocks):
        sds, names = draws(f"sd_{b}"), block["names"]
        for j, term in enumerate(names):
            out["sd", block["group"], term] = sense(sds[:, :, j], lp, ll)
        if f"corr_{b}" in post:
            corr = draws(f"corr_{b}")
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    out["corr", block["group"], f"{names[i]},{names[j]}"] = sense(
                        corr[:, :, i, j], lp, ll)
    out["sd", "Residual", None] = sense(draws("sigma"), lp, ll)
    return out, SENSITIVITY_METHOD


class PymcEngine(BambiEngine):
    name = "pymc"

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        start = time.perf_counter()
        try:
            with captured_logs() as logged, \
                    warnings_module.catch_warnings(record=True) as caught:
                warnings_module.simplefilter("always")
                idata, layout, priors = self._sample_pymc(model, data, settings)
            notes = logged + [f"{w.category.__name__}: {w.message}" for w in caught]
            fit = self._pymc_fit(model, data, settings, idata, layout, priors,
                                 time.perf_counter() - start, notes)
            return _save_draws(fit, idata, settings, self.name)
        except Exception as exc:  # a library failure is a result, not a crash
            return status_fit(self.name, model, data, "failed",
                              f"pymc: {type(exc).__name__}: {exc}", settings,
                              time.perf_counter() - start)

    def refuses(self, model: Model, settings: Settings) -> Refusal | None:
        """Bambi's refusals, and a prior the PyMC model cannot express (it samples Normal
        fixed effects and HalfNormal group SDs, as Bambi's defaults are), by name."""
        refusal = super().refuses(model, settings)
        if refusal is not None:
            return refusal
        priors = priors_of(settings.priors)
        if priors is None:
            return None
        for key, (kind, name, group) in prior_keys(model.spec).items():
            chosen = (priors.intercept if kind == "intercept"
                      else priors.fixed_prior(name) if kind == "fixed"
                      else priors.sd_prior(name, group or ""))
            wanted = "HalfNormal" if kind == "sd" else "Normal"
            if chosen is not None and chosen.dist != wanted:
                return Refusal(f"pymc cannot express the prior {chosen.text()} of {key}: "
                               f"parity's PyMC model takes {wanted} priors there")
        return None

    @staticmethod
    def build(model: Model, data: PreparedData, priors: Priors | None = None
              ) -> tuple[Any, _Layout, dict[str, str]]:
        """The PyMC model of `model` on `data`, its layout, and the priors it took from
        Bambi's model of the same rows (with a priors document's, where it sets them)."""
        import bambi as bmb

        bmodel = bmb.Model(bambi_formula(model.spec), data.frame,
                           categorical=list(data.levels) or None,
                           priors=bambi_priors(model, priors) or None)
        layout = _Layout(model.spec, data, bmodel)
        if priors is not None and priors.lkj_eta is not None:
            layout.lkj_eta = priors.lkj_eta
        named = {name: str(term.prior) for name, term in _terms(bmodel).items()}
        named["sigma"] = str(layout.sigma_prior)
        named["correlation"] = f"LKJCorr(eta={layout.lkj_eta:g}) per correlated block"
        return build_pymc_model(layout), layout, named

    @classmethod
    def _sample_pymc(cls, model: Model, data: PreparedData, settings: Settings
                     ) -> tuple[Any, _Layout, dict[str, str]]:
        import pymc as pm

        pm_model, layout, priors = cls.build(model, data, priors_of(settings.priors))
        with pm_model:
            idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              target_accept=settings.target_accept,
                              random_seed=settings.seed, nuts_sampler="numpyro",
                              progressbar=False)
        return idata, layout, priors

    def _pymc_fit(self, model: Model, data: PreparedData, settings: Settings, idata: Any,
                  layout: _Layout, priors: dict[str, str], seconds: float,
                  notes: list[str], sensitivity: bool = True) -> Fit:
        post = idata.posterior
        interval = settings.interval

        def draws(name: str) -> np.ndarray:
            return np.asarray(post[name].transpose("chain", "draw", ...).values)

        fixed: list[FixedEffect] = []
        columns: list[np.ndarray] = []
        if layout.intercept:
            arr = draws("intercept")
            columns.append(arr.reshape(-1))
            fixed.append(fixed_effect("(Intercept)", summarize(arr, interval)))
        if layout.names:
            beta = draws("beta")
            for j, name in enumerate(layout.names):
                columns.append(beta[:, :, j].reshape(-1))
                fixed.append(fixed_effect(name, summarize(beta[:, :, j], interval)))
        cov = np.atleast_2d(np.cov(np.column_stack(columns), rowvar=False))
        components: list[VarianceComponent] = []
        effects: list[GroupEffect] = []
        for b, block in enumerate(layout.blocks):
            sds, names = draws(f"sd_{b}"), block["names"]
            for j, term in enumerate(names):
                components.append(component(block["group"], term, None, "sd",
                                            summarize(sds[:, :, j], interval)))
            if f"corr_{b}" in post:
                corr = draws(f"corr_{b}")
                for i in range(len(names)):
                    for j in range(i + 1, len(names)):
                        components.append(component(
                            block["group"], names[i], names[j], "corr",
                            summarize(corr[:, :, i, j], interval)))
            u = draws(f"u_{b}")
            for g, level in enumerate(block["labels"]):
                for j, term in enumerate(names):
                    x = u[:, :, g, j]
                    effects.append(GroupEffect(block["group"], level, term, float(x.mean()),
                                               float(x.std(ddof=1)),
                                               finite_or_none(mcse_mean(x))))
        components.append(component("Residual", None, None, "sd",
                                    summarize(draws("sigma"), interval)))
        found, how = (pymc_sensitivities(layout, post) if sensitivity
                      else ({}, NOT_IN_STUDIES))
        fixed, components = with_sensitivity(fixed, components, found)
        diagnostics = self._diagnostics(idata, settings, notes, components)
        versions = package_versions(engine_info(self.name).stack)
        return Fit(
            model=model.name, formula=model.formula, engine=self.name, status="ok",
            reason=None, n_obs=data.n_obs, n_dropped=data.n_dropped,
            fixed_effects=tuple(fixed), variance_components=tuple(components),
            diagnostics=diagnostics,
            provenance=Provenance(
                engine_version=versions.get("pymc", ""), r_version=None,
                settings={
                    "requested": {**settings.as_dict(), "sampler": "numpyro"},
                    "ran": self._ran(idata),
                    "summary": f"posterior mean, posterior SD, {interval:.0%} equal-tailed "
                               "interval (ETI)",
                    "priors": priors,
                    "lkj_eta": layout.lkj_eta,
                    PRIOR_SET: pymc_prior_set(layout),
                    "sensitivity": how,
                },
                seconds=seconds, versions=versions),
            engine_formula=f"PyMC: {bambi_formula(model.spec)} with LKJ-Cholesky covariance "
                           "per correlated block",
            structure=structure_of(list(model.spec.grouping_labels()), components),
            group_effects=tuple(effects),
            fixed_effects_cov=tuple(tuple(float(x) for x in row) for row in cov),
            interval=interval,
        )
