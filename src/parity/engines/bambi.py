"""Bambi on JAX: NUTS through numpyro, with Bambi's default priors.

Bambi's sampler argument changed across releases (`nuts_sampler="numpyro"` in 0.15,
`inference_method="numpyro"` later), and some releases ignored sampler arguments
silently, so the settings recorded are read back from the fit (chains, draws, tuning
steps, sampling library), and a mismatch with what was asked is a warning in the result.
Summaries come from the draws (:mod:`parity.engines.posterior`), not from ArviZ's `summary`.

Bambi gives every `( … | group)` block independent coefficients: it has no correlation
parameters, which the fit's `structure` records.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
import warnings as warnings_module
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from parity import boundary
from parity.engines import engine_info
from parity.engines.base import Engine, Refusal, status_fit
from parity.engines.cost import Cost, sampler_cost
from parity.engines.limits import bambi_problem
from parity.engines.posterior import (
    INTERVAL_METHOD,
    Summary,
    finite_or_none,
    mcse_mean,
    sampler_diagnostics,
    summarize,
)
from parity.engines.prior_set import KEY as PRIOR_SET
from parity.engines.prior_set import block_columns, each, fixed_columns
from parity.engines.prior_set import text as prior_text_of
from parity.engines.sensitivity import METHOD as SENSITIVITY_METHOD
from parity.engines.sensitivity import log_density, too_large
from parity.engines.sensitivity import pair as sense
from parity.environment import package_versions
from parity.rows.dims import DesignDims
from parity.rows.prepare import PreparedData
from parity.schema import (
    Diagnostics,
    Fit,
    FixedEffect,
    GroupEffect,
    Provenance,
    VarianceComponent,
)
from parity.settings import Settings
from parity.spec.models import Model
from parity.spec.priors import Priors, priors_of
from parity.spec.spec import ModelSpec, Term


def _device_count() -> int:
    import jax

    return int(jax.local_device_count())


def bambi_formula(spec: ModelSpec, trials: str | None = None) -> str:
    """Bambi's formula: lme4 notation, with `||` written as `|` (Bambi's blocks are
    independent either way); a binomial count out of `trials` is Bambi's `p(y, trials)`,
    and an offset is formulae's `offset(column)`, as in R."""
    parts = [spec.fixed_rhs(), *spec.offset_terms()]
    for block in spec.random:
        parts.append(f"({block.rhs()} | {block.group_label})")
    response = spec.response if trials is None else f"p({spec.response}, {trials})"
    return f"{response} ~ " + " + ".join(parts)


# parity's family (and whether it has trials) -> Bambi's family, with its default link.
def bambi_family(family: str, trials: str | None) -> str:
    if family == "binomial":
        return "binomial" if trials is not None else "bernoulli"
    return family


def _canonical(term: Term, coord: str | None, levels: dict[str, tuple[str, ...]]) -> str:
    """lme4's column name for one coordinate of a Bambi term (`M, pol` → `genderM:attitudepol`).

    Bambi labels an interaction's coordinate by joining its levels with ", ", so a level
    that itself holds ", " (`Smith, J`) cannot be split back. Every combination of the
    term's levels is joined the same way and looked up instead; a label that two
    combinations share is refused rather than guessed."""
    factors = [v for v in term.variables if v in levels]
    if coord is None or not factors:
        if factors:
            raise ValueError(f"no Bambi level for term {term.label!r}")
        return ":".join(term.variables)
    matches = _joined_levels(tuple(levels[v] for v in factors)).get(coord, [])
    if len(matches) != 1:
        why = "matches no combination" if not matches else "is ambiguous"
        raise ValueError(f"Bambi level {coord!r} of term {term.label!r} {why} of the levels")
    it = iter(matches[0])
    return ":".join(f"{v}{next(it)}" if v in levels else v for v in term.variables)


@functools.lru_cache(maxsize=64)
def _joined_levels(per_factor: tuple[tuple[str, ...], ...]) -> dict[str, list[tuple[str, ...]]]:
    """Each combination of levels under the label Bambi gives it ("a, b")."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for combo in itertools.product(*per_factor):
        out.setdefault(", ".join(combo), []).append(combo)
    return out


def _coords(da: Any) -> list[tuple[str | None, np.ndarray]]:
    """(coordinate label, (chain, draw) array) for each entry of a posterior variable."""
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return [(None, np.asarray(da.transpose("chain", "draw").values))]
    if len(extra) > 1:
        raise ValueError(f"unexpected dimensions {da.dims} in Bambi's posterior")
    dim = extra[0]
    return [
        (str(label), np.asarray(da.sel({dim: label}).transpose("chain", "draw").values))
        for label in da.coords[dim].values
    ]


def draws_path(directory: str | Path, model: str, engine: str = "bambi") -> Path:
    """Where the draws of `model` by `engine` are saved under `directory`."""
    return Path(directory) / f"{model}.{engine}.nc"


def _save_draws(fit: Fit, idata: Any, settings: Settings, engine: str = "bambi") -> Fit:
    """Write the InferenceData the fit was summarised from, so that an analyst can look
    at exactly the draws that were compared; its path goes into the provenance, relative
    to the run's output folder (see `Settings.save_draws`) so that the folder can move."""
    if not settings.save_draws:
        return fit
    path = draws_path(settings.save_draws, fit.model, engine)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        idata.to_netcdf(str(path))
    except Exception as exc:  # the fit stands; only its draws are not kept
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        note = f"draws not saved to {path}: {why}"
        return replace(fit, diagnostics=replace(
            fit.diagnostics, warnings=(*fit.diagnostics.warnings, note)))
    prov = fit.provenance
    relative = _run_relative(path, settings.save_draws)
    return replace(fit, provenance=replace(
        prov, settings={**prov.settings, "draws_file": relative}))


def _run_relative(path: Path, draws_dir: str) -> str:
    """`path` from the run's output folder, the draws folder's parent (`<out>/draws`),
    where results.json is written: `draws/<model>.<engine>.nc`."""
    return path.resolve().relative_to(Path(draws_dir).resolve().parent).as_posix()


def _fixed_effects(spec: ModelSpec, post: Any, levels: dict[str, tuple[str, ...]],
                   interval: float) -> list[FixedEffect]:
    """Posterior mean, SD and interval of every coefficient, under lme4's names."""
    fixed: list[FixedEffect] = []
    if spec.intercept:
        fixed.append(fixed_effect("(Intercept)", summarize(post["Intercept"].values, interval)))
    for term in spec.fixed:
        for coord, arr in _coords(post[term.label]):
            fixed.append(fixed_effect(_canonical(term, coord, levels), summarize(arr, interval)))
    return fixed


def fixed_effect(term: str, s: Summary) -> FixedEffect:
    """A coefficient's posterior summary as the record holds it, Monte-Carlo errors
    included: the equal-tailed interval and the probability of direction from the draws
    (:func:`parity.engines.posterior.p_direction`); a posterior has no test statistic,
    degrees of freedom or p-value."""
    return FixedEffect(term, s.mean, s.sd, s.lower, s.upper, finite_or_none(s.mcse_mean),
                       finite_or_none(s.mcse_sd), interval_method=INTERVAL_METHOD,
                       p_direction=finite_or_none(s.p_direction))


def component(group: str, term: str | None, term2: str | None, kind: Literal["sd", "corr"],
              s: Summary) -> VarianceComponent:
    """A variance component's posterior summary as the record holds it."""
    return VarianceComponent(group, term, term2, kind, s.mean, s.sd, s.lower, s.upper,
                             finite_or_none(s.mcse_mean), INTERVAL_METHOD)


def _fixed_draws(spec: ModelSpec, post: Any) -> np.ndarray:
    """Every coefficient's draws as one column, in `_fixed_effects`' order."""
    columns = [np.asarray(post["Intercept"].values).ravel()] if spec.intercept else []
    for term in spec.fixed:
        columns += [arr.ravel() for _, arr in _coords(post[term.label])]
    return np.column_stack(columns) if columns else np.empty((0, 0))


def _posterior_cov(draws: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """The posterior covariance of the coefficients (the counterpart of `vcov()`)."""
    if draws.size == 0:
        return ()
    cov = np.atleast_2d(np.cov(draws, rowvar=False))
    return tuple(tuple(float(x) for x in row) for row in cov)


def _group_effects(spec: ModelSpec, post: Any,
                   levels: dict[str, tuple[str, ...]]) -> list[GroupEffect]:
    """Posterior mean and SD of each level's deviation (Bambi's `expr|group`, whose
    draws are already deviations from the fixed effect, as lme4's `ranef()`)."""
    out: list[GroupEffect] = []
    for block in spec.random:
        entries = ([("1", None)] if block.intercept else []) + [
            (t.label, t) for t in block.terms
        ]
        for expr, t in entries:
            da = post[f"{expr}|{block.group_label}"]
            factor = next((d for d in da.dims if str(d).endswith("__factor_dim")), None)
            if factor is None:
                raise ValueError(f"no level dimension among {da.dims} of {da.name}")
            for level in da.coords[factor].values:
                for coord, arr in _coords(da.sel({factor: level})):
                    term_name = "(Intercept)" if t is None else _canonical(t, coord, levels)
                    out.append(GroupEffect(block.group_label, str(level), term_name,
                                           float(arr.mean()), float(arr.std(ddof=1)),
                                           finite_or_none(mcse_mean(arr))))
    return out


def _components(spec: ModelSpec, post: Any, levels: dict[str, tuple[str, ...]],
                interval: float) -> list[VarianceComponent]:
    """Every group-level SD (Bambi's `expr|group_sigma`) and the residual SD."""
    components: list[VarianceComponent] = []
    for block in spec.random:
        entries = ([("1", None)] if block.intercept else []) + [
            (t.label, t) for t in block.terms
        ]
        for expr, t in entries:
            var = f"{expr}|{block.group_label}_sigma"
            for coord, arr in _coords(post[var]):
                term_name = "(Intercept)" if t is None else _canonical(t, coord, levels)
                components.append(component(block.group_label, term_name, None, "sd",
                                            summarize(arr, interval)))
    sigma_name = "sigma" if "sigma" in post else f"{spec.response}_sigma"
    if sigma_name in post:  # a binomial or Poisson model has no residual SD
        components.append(component("Residual", None, None, "sd",
                                    summarize(post[sigma_name].values, interval)))
    return components


SensitivityKey = tuple[str, str | None, str | None]


def _per_draw(values: Any) -> np.ndarray:
    """A (chain, draw, ...) array summed to one number a draw: (chain, draw)."""
    arr = np.asarray(values, dtype=float)
    return arr.reshape(arr.shape[0], arr.shape[1], -1).sum(axis=2)


def _log_prior(bmodel: Any, post: Any) -> np.ndarray:
    """The log density of the priors an analyst sets, at every draw: the intercept and
    fixed effects, each group SD (the `sigma` of a group-specific term's prior) and the
    residual SD. KeyError for a distribution parity does not evaluate."""
    parts = getattr(bmodel, "parameters", None) or bmodel.components
    total = np.zeros(post["Intercept"].shape[:2] if "Intercept" in post else
                     next(iter(post.data_vars.values())).shape[:2])
    for name, term in parts[bmodel.family.likelihood.parent].terms.items():
        prior = getattr(term, "prior", None)
        if prior is None or not hasattr(prior, "args"):
            continue
        if "|" in name:
            inner = prior.args.get("sigma")
            if hasattr(inner, "args") and f"{name}_sigma" in post:
                total = total + _per_draw(log_density(inner.name, inner.args,
                                                      post[f"{name}_sigma"].values))
        elif name in post:
            total = total + _per_draw(log_density(prior.name, prior.args, post[name].values))
    if "sigma" in parts and "sigma" in post:
        prior = parts["sigma"].prior
        total = total + _per_draw(log_density(prior.name, prior.args, post["sigma"].values))
    return total


def _sensitivities(spec: ModelSpec, bmodel: Any, idata: Any,
                   levels: dict[str, tuple[str, ...]], n_obs: int
                   ) -> tuple[dict[SensitivityKey, tuple[float | None, float | None]], str]:
    """Each coefficient's and SD's prior and likelihood sensitivity, keyed as
    ("fixed", term, None) and ("sd", group, term); and how they were found, or why not."""
    post = idata.posterior
    draws = int(post.sizes["chain"]) * int(post.sizes["draw"])
    large = too_large(n_obs, draws)
    if large:
        return {}, large
    try:
        lp = _log_prior(bmodel, post)
        ll = _per_draw(next(iter(bmodel.compute_log_likelihood(
            idata, inplace=False).log_likelihood.data_vars.values())).values)
    except Exception as exc:  # a release without the API costs the sensitivities only
        return {}, f"not computed: {type(exc).__name__}: {exc}"
    out: dict[SensitivityKey, tuple[float | None, float | None]] = {}
    if spec.intercept:
        out["fixed", "(Intercept)", None] = sense(post["Intercept"].values, lp, ll)
    for term in spec.fixed:
        for coord, arr in _coords(post[term.label]):
            out["fixed", _canonical(term, coord, levels), None] = sense(arr, lp, ll)
    for block in spec.random:
        for expr, t in ([("1", None)] if block.intercept else []) + [
                (t.label, t) for t in block.terms]:
            for coord, arr in _coords(post[f"{expr}|{block.group_label}_sigma"]):
                name = "(Intercept)" if t is None else _canonical(t, coord, levels)
                out["sd", block.group_label, name] = sense(arr, lp, ll)
    if "sigma" in post:
        out["sd", "Residual", None] = sense(post["sigma"].values, lp, ll)
    return out, SENSITIVITY_METHOD


def with_sensitivity(fixed: list[FixedEffect], components: list[VarianceComponent],
                     found: Mapping[SensitivityKey, tuple[float | None, float | None]]
                     ) -> tuple[list[FixedEffect], list[VarianceComponent]]:
    """The records with their sensitivities, where found: keyed ("fixed", term, None),
    ("sd", group, term) and ("corr", group, "term,term2")."""
    def fe(f: FixedEffect) -> FixedEffect:
        s = found.get(("fixed", f.term, None))
        return f if s is None else replace(f, prior_sensitivity=s[0],
                                           likelihood_sensitivity=s[1])

    def vc(v: VarianceComponent) -> VarianceComponent:
        s = found.get((v.kind, v.group, v.term if v.term2 is None else f"{v.term},{v.term2}"))
        return v if s is None else replace(v, prior_sensitivity=s[0],
                                           likelihood_sensitivity=s[1])

    return [fe(f) for f in fixed], [vc(v) for v in components]


# A study's replicates are many fits of one model: their sensitivity is not measured.
NOT_IN_STUDIES = "not computed for a study's replicates"


def prior_keys(spec: ModelSpec) -> dict[str, tuple[str, str, str | None]]:
    """Bambi's name of each prior of `spec`, with its class and the name a priors
    document gives it: `Intercept`, each fixed term (`gender`), each group-specific term
    (`1|subject`, `attitude|subject`: its SD's prior) and the residual `sigma`."""
    keys: dict[str, tuple[str, str, str | None]] = {}
    if spec.intercept:
        keys["Intercept"] = ("intercept", "Intercept", None)
    for term in spec.fixed:
        keys[term.label] = ("fixed", term.label, None)
    for block in spec.random:
        names = (["1"] if block.intercept else []) + [t.label for t in block.terms]
        for name in names:
            keys[f"{name}|{block.group_label}"] = ("sd", name, block.group_label)
    return keys


def _column_prior(prior: Any, i: int, n: int) -> str:
    """Column `i` of `n`'s prior in the shared vocabulary (a Bambi prior's parameters
    are given once for a term or per column)."""
    args = {k: each(v, n)[i] for k, v in prior.args.items() if not hasattr(v, "args")}
    return prior_text_of(prior.name, args)


def bambi_prior_set(spec: ModelSpec, bmodel: Any, data: PreparedData) -> dict[str, str]:
    """Every parameter's prior as the built Bambi model holds it, keyed as
    :mod:`parity.engines.prior_set` says (a group SD's prior is the `sigma` of its
    group-specific term's Normal)."""
    parts = getattr(bmodel, "parameters", None) or bmodel.components
    terms = parts[bmodel.family.likelihood.parent].terms
    out: dict[str, str] = {}
    if spec.intercept and "Intercept" in terms:
        out["intercept"] = _column_prior(terms["Intercept"].prior, 0, 1)
    for term, names in fixed_columns(data.frame, spec, data.levels):
        for i, name in enumerate(names):
            out[f"fixed {name}"] = _column_prior(terms[term.label].prior, i, len(names))
    for group, label, names in block_columns(data.frame, spec, data.levels):
        sd = terms[f"{label}|{group}"].prior.args.get("sigma")
        for i, name in enumerate(names):
            out[f"sd {group} {name}"] = (_column_prior(sd, i, len(names))
                                         if hasattr(sd, "args") else "bambi: fixed SD")
    if "sigma" in parts:
        out["residual"] = _column_prior(parts["sigma"].prior, 0, 1)
    return out


def bambi_priors(model: Model, priors: Priors | None) -> dict[str, Any]:
    """Bambi's `priors=` for `model` from a priors document: only what the document
    sets; every other prior stays Bambi's default. A group SD's prior is the `sigma` of
    the group-specific term's Normal(0, ·), Bambi's non-centred form."""
    import bambi as bmb

    if priors is None:
        return {}
    out: dict[str, Any] = {}
    for key, (kind, name, group) in prior_keys(model.spec).items():
        chosen = (priors.intercept if kind == "intercept"
                  else priors.fixed_prior(name) if kind == "fixed"
                  else priors.sd_prior(name, group or ""))
        if chosen is None:
            continue
        if kind == "sd":
            out[key] = bmb.Prior("Normal", mu=0.0, sigma=bmb.Prior(chosen.dist, **chosen.args))
        else:
            out[key] = bmb.Prior(chosen.dist, **chosen.args)
    if priors.residual is not None and model.gaussian:
        out["sigma"] = bmb.Prior(priors.residual.dist, **priors.residual.args)
    return out


def build_model(model: Model, data: PreparedData, priors: Priors | None = None) -> Any:
    """The Bambi model of `model` on `data`, with the document's priors where it sets
    them and Bambi's defaults for these rows elsewhere."""
    import bambi as bmb

    return bmb.Model(bambi_formula(model.spec, model.trials), data.frame,
                     categorical=list(data.levels) or None,
                     family=bambi_family(model.family, model.trials),
                     priors=bambi_priors(model, priors) or None)


def prior_refusal(engine: str, model: Model, priors: Priors | None) -> Refusal | None:
    """A priors document's entry that `model` has nothing to put it on in any engine:
    a residual prior of a binomial or Poisson model, whose variance follows its mean."""
    if priors is not None and priors.residual is not None and not model.gaussian:
        return Refusal(f"{engine} cannot put the [residual] prior "
                       f"{priors.residual.text()} on model {model.name}: a {model.family} "
                       "model has no residual SD")
    return None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """PyMC and Bambi log their sampler warnings; keep them in the result, off the terminal."""
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("pymc", "bambi", "numpyro", "jax")]
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]
        lg.propagate = False
    try:
        yield handler.messages
    finally:
        for lg, handlers, propagate in saved:
            lg.handlers = handlers
            lg.propagate = propagate


class BambiEngine(Engine):
    name = "bambi"

    def refuses(self, model: Model, settings: Settings) -> Refusal | None:
        why = bambi_problem(model)
        if why:
            return Refusal(f"model {model.name}: {why}", stops_run=True)
        refusal = prior_refusal(self.name, model, priors_of(settings.priors))
        return refusal or super().refuses(model, settings)

    def cost(self, model: Model, dims: DesignDims, settings: Settings) -> Cost:
        """The draws, formulae's dense indicators and each chain's linear predictor."""
        return sampler_cost(dims, settings)

    def fit(self, model: Model, data: PreparedData, settings: Settings) -> Fit:
        start = time.perf_counter()
        try:
            with captured_logs() as logged, warnings_module.catch_warnings(record=True) as caught:
                warnings_module.simplefilter("always")
                idata, bmodel = self._sample(model, data, settings)
            notes = logged + [f"{w.category.__name__}: {w.message}" for w in caught]
            fit = self._to_fit(model, data, settings, idata, bmodel,
                               time.perf_counter() - start, notes)
            return _save_draws(fit, idata, settings)
        except Exception as exc:  # a library failure is a result, not a crash
            return status_fit(self.name, model, data, "failed",
                              f"bambi: {type(exc).__name__}: {exc}", settings,
                              time.perf_counter() - start)

    @staticmethod
    def _sample(model: Model, data: PreparedData, settings: Settings) -> tuple[Any, Any]:
        bmodel = build_model(model, data, priors_of(settings.priors))
        kwargs: dict[str, Any] = dict(
            draws=settings.draws, tune=settings.tune, chains=settings.chains,
            target_accept=settings.target_accept, random_seed=settings.seed,
            progressbar=False,
        )
        major_minor = tuple(int(p) for p in version("bambi").split(".")[:2])
        if major_minor < (0, 16):
            kwargs["nuts_sampler"] = "numpyro"
        else:
            kwargs["inference_method"] = "numpyro"
        idata = bmodel.fit(**kwargs)
        return idata, bmodel

    def _to_fit(self, model: Model, data: PreparedData, settings: Settings, idata: Any,
                bmodel: Any, seconds: float, notes: list[str],
                sensitivity: bool = True) -> Fit:
        """The draws as parity's record: summaries under lme4's names, diagnostics from
        the draws, and the sampler settings read back from the fit."""
        spec = model.spec
        post = idata.posterior
        fixed = _fixed_effects(spec, post, data.levels, settings.interval)
        components = _components(spec, post, data.levels, settings.interval)
        try:
            effects = _group_effects(spec, post, data.levels)
        except (KeyError, ValueError, StopIteration) as exc:
            # A release that names its group-specific draws otherwise costs the group
            # effects, said in the diagnostics, never the fit.
            effects = []
            notes = [*notes, f"no group effects: Bambi's draws were not read "
                             f"({type(exc).__name__}: {exc})"]
        cov = _posterior_cov(_fixed_draws(spec, post))
        found, how = (_sensitivities(spec, bmodel, idata, data.levels, data.n_obs)
                      if sensitivity else ({}, NOT_IN_STUDIES))
        fixed, components = with_sensitivity(fixed, components, found)
        diagnostics = self._diagnostics(idata, settings, notes, components)
        versions = package_versions(engine_info("bambi").stack)
        # Bambi 0.21 renamed Model.components to Model.parameters.
        parts = getattr(bmodel, "parameters", None) or bmodel.components
        priors = {name: str(term.prior) for name, term in
                  parts[bmodel.family.likelihood.parent].terms.items()}
        if "sigma" in parts:  # the residual SD of a Gaussian model
            priors["sigma"] = str(parts["sigma"].prior)
        document = priors_of(settings.priors)
        if document is not None and document.lkj_eta is not None:
            priors["correlation"] = "none: Bambi's blocks are independent (no LKJ prior)"
        return Fit(
            model=model.name,
            formula=model.formula,
            engine=self.name,
            status="ok",
            reason=None,
            n_obs=data.n_obs,
            n_dropped=data.n_dropped,
            fixed_effects=tuple(fixed),
            variance_components=tuple(components),
            diagnostics=diagnostics,
            provenance=Provenance(
                engine_version=versions.get("bambi", ""),
                r_version=None,
                settings={
                    "requested": {**settings.as_dict(), "sampler": "numpyro"},
                    "ran": self._ran(idata),
                    "summary": f"posterior mean, posterior SD, {settings.interval:.0%} "
                               "equal-tailed interval (ETI)",
                    "priors": priors,
                    PRIOR_SET: bambi_prior_set(spec, bmodel, data),
                    "sensitivity": how,
                },
                seconds=seconds,
                versions=versions,
            ),
            engine_formula=bambi_formula(spec, model.trials),
            structure={g: "independent" for g in spec.grouping_labels()},
            family=model.family,
            link=model.fam.link,
            group_effects=tuple(effects),
            fixed_effects_cov=cov,
            interval=settings.interval,
        )

    def _diagnostics(self, idata: Any, settings: Settings, notes: list[str],
                     components: list[VarianceComponent]) -> Diagnostics:
        """The shared sampler rule (`sampler_diagnostics`) over every sampled value, with
        a warning where the fit was not drawn by numpyro's NUTS as asked."""
        post = idata.posterior

        def values() -> Iterator[np.ndarray]:
            for name in post.data_vars:
                flat = np.asarray(post[name].transpose("chain", "draw", ...).values)
                flat = flat.reshape(flat.shape[0], flat.shape[1], -1)
                for k in range(flat.shape[2]):
                    yield flat[:, :, k]

        ran = self._ran(idata)
        if ran.get("sampler") != "numpyro":
            notes = [*notes,
                     f"asked for numpyro NUTS but the fit reports {ran.get('sampler')!r}"]
        divergences = int(np.asarray(idata.sample_stats["diverging"]).sum()) \
            if "diverging" in idata.sample_stats else None
        return sampler_diagnostics(
            values(), settings=settings,
            ran=ran, divergences=divergences, notes=notes,
            singular=boundary.singular(tuple(components)))

    @staticmethod
    def _ran(idata: Any) -> dict[str, Any]:
        """The sampler settings as the fit itself reports them."""
        post = idata.posterior
        attrs = dict(getattr(idata.posterior, "attrs", {}))
        attrs.update(getattr(idata.sample_stats, "attrs", {}))
        tune = attrs.get("tuning_steps", attrs.get("tune"))
        return {
            "chains": int(post.sizes["chain"]),
            "draws": int(post.sizes["draw"]),
            "tune": int(tune) if tune is not None else None,
            "sampler": attrs.get("inference_library"),
            "sampler_version": attrs.get("inference_library_version"),
            # numpyro runs chains in parallel only with as many devices as chains.
            "host_devices": _device_count(),
        }
