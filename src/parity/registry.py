"""The engine registry: the one place that names every engine and says what it can do.

Each engine has one row (:class:`EngineInfo`): where its class lives, its kind, the
process group it runs in, the families it fits and what else it cannot do (with the
reason), the Python modules and R packages it needs, the settings its numbers depend on,
and its roles. The fit cache, the workers, the version records, the up-front refusals,
the presence probes of the test suite and the Makefile's R probe read these rows instead
of keeping tables of their own, so adding an engine means its module, its row here (and,
for an R engine, its fit script). docs/architecture.md has the recipe.

This module imports no engine (engine modules import heavy libraries: rpy2, JAX, PyMC),
so the comparison, the reports and the study may read it while the import contracts
forbid them every engine implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from parity.errors import UsageError

# "approximate": an approximate Bayesian fit (variational Bayes, or Laplace at the
# posterior mode), neither a maximised likelihood nor a sampled posterior.
EngineKind = Literal["frequentist", "bayesian", "approximate"]
# The worker process group: engines of one group share worker processes. Embedded R and
# JAX never share a process (rpy2 issues #585, #961); plain Python may go anywhere.
Process = Literal["r", "python", "jax"]
# reference: the engine the others are compared against when none is named; judge: its
# criterion evaluates the other frequentist engines' optima; refitter: it refits models
# with independent random coefficients where another engine fitted them that way.
Role = Literal["reference", "judge", "refitter"]

ALL_FAMILIES: tuple[str, ...] = ("gaussian", "binomial", "poisson")
# The capabilities a row's `cannot` may name; the contract suite reads each.
CAPABILITIES: dict[str, str] = {
    "correlations": "correlation parameters within a ( … | g) block",
    "crossed_correlations": "correlated blocks beside other grouping factors",
    "crossed": "crossed grouping factors (several factors, not nested in one another)",
    "offset": "an offset(...) term: a column added to the linear predictor",
    "weights": "prior weights (lme4's `weights`), of any family",
    "gaussian_weights": "prior weights of a Gaussian model, as lme4's precision weights "
                        "(residual variance sigma^2 / w)",
}


_FAMILY_NAMES = {"gaussian": "Gaussian", "binomial": "binomial", "poisson": "Poisson"}


@dataclass(frozen=True)
class EngineInfo:
    """One engine's row.

    name, target ("module:Class"), kind: what it is and where its class lives.
    process: its worker process group ("r", "python", "jax").
    families: the response families it fits; a model of another family is refused, with
    a reason naming the family, and the fit is `unsupported` (the other engines run).
    requires: Python modules it imports (presence: `Engine.missing()` and the tests).
    r_packages: R packages whose versions can change its numbers, its own first (the fit
    cache's R fingerprint, the versions a fit records, the presence probe, `make r-deps`).
    stack: Python packages whose versions can change its numbers (cache key, versions).
    settings: the `Settings` fields its numbers depend on (cache key).
    cannot: (capability, reason) pairs of what it fits differently from lme4, or not at
    all; the contract suite expects the matching failures, strictly, with the reason.
    roles: "reference", "judge", "refitter" (see `Role`).
    slow: starts first, and may get several workers (`--jobs`).
    draws: it samples a posterior whose draws can be saved (`Settings.save_draws`).
    default: part of a plain `parity run` (the others run when named in --engines).
    r_scripts: the R scripts its numbers depend on, in the order they are sourced.
    compiled: "module:Class" of its fit compiled once and refitted per response
    (`parity study`), or None: the engine is fitted afresh for every replicate.
    """

    name: str
    target: str
    kind: EngineKind
    process: Process
    stack: tuple[str, ...]
    settings: tuple[str, ...]
    families: tuple[str, ...] = ALL_FAMILIES
    requires: tuple[str, ...] = ()
    r_packages: tuple[str, ...] = ()
    cannot: tuple[tuple[str, str], ...] = ()
    roles: frozenset[Role] = frozenset()
    slow: bool = False
    draws: bool = False
    default: bool = True
    r_scripts: tuple[str, ...] = ()
    compiled: str | None = None

    @property
    def embeds_r(self) -> bool:
        return self.process == "r"

    def cannot_do(self, capability: str) -> str | None:
        """The reason the engine cannot do `capability`, or None if it can."""
        return dict(self.cannot).get(capability)

    def family_problem(self, family: str) -> str | None:
        """Why the engine cannot fit a model of `family`, or None."""
        if family in self.families:
            return None
        fitted = " and ".join(_FAMILY_NAMES.get(f, f) for f in self.families)
        return (f"{self.name} fits {fitted} models only, not {_FAMILY_NAMES.get(family, family)} "
                "ones; leave it out of the engines for this model")


_BAYES_STACK = ("bambi", "pymc", "pytensor", "numpyro", "jax", "jaxlib", "formulae",
                "numpy", "pandas", "xarray", "arviz")
_SAMPLER_SETTINGS = ("draws", "tune", "chains", "target_accept", "seed", "interval",
                     "priors")

_ROWS = (
    EngineInfo("lme4", "parity.engines.lme4:Lme4Engine", "frequentist", process="r",
               stack=("rpy2",), settings=("reml", "interval", "nagq", "ddf", "profile"),
               requires=("rpy2",), r_scripts=("parity.R", "lme4_fit.R"),
               # lmerTest's Satterthwaite df and pbkrtest's Kenward-Roger df for lmer's
               # t-tests.
               r_packages=("lme4", "Matrix", "lmerTest", "pbkrtest"),
               roles=frozenset({"reference", "judge", "refitter"})),
    EngineInfo("statsmodels", "parity.engines.statsmodels:StatsmodelsEngine", "frequentist",
               process="python", stack=("statsmodels", "numpy", "scipy", "pandas"),
               settings=("reml", "interval"), requires=("statsmodels",),
               cannot=(("crossed_correlations",
                        "MixedLM fits a full covariance only for the random terms of one "
                        "grouping factor; crossed or `||` models are independent variance "
                        "components"),
                       ("offset", "statsmodels' MixedLM and its Bayesian mixed GLMs "
                        "(BinomialBayesMixedGLM, PoissonBayesMixedGLM) take no offset"),
                       ("weights", "statsmodels' MixedLM and its Bayesian mixed GLMs take no "
                        "prior weights"))),
    EngineInfo("bambi", "parity.engines.bambi:BambiEngine", "bayesian", process="jax",
               stack=_BAYES_STACK, settings=_SAMPLER_SETTINGS,
               requires=("bambi", "numpyro", "jax"), slow=True, draws=True,
               compiled="parity.engines.compiled_fits:CompiledBambi",
               cannot=(("correlations", "Bambi has no correlation parameters: every "
                        "( … | g) block has independent coefficients (bambi#702)"),
                       ("crossed_correlations", "Bambi has no correlation parameters"),
                       ("weights", "Bambi has no prior weights: its likelihood counts every "
                        "row once"))),
    # A second frequentist opinion, opt-in: it needs the R package glmmTMB.
    EngineInfo("glmmtmb", "parity.engines.glmmtmb:GlmmTMBEngine", "frequentist", process="r",
               stack=("rpy2",), settings=("reml", "interval"), requires=("rpy2",),
               default=False, r_scripts=("parity.R", "glmmtmb_fit.R"),
               r_packages=("glmmTMB", "TMB"),
               cannot=(("gaussian_weights",
                        "glmmTMB's weights multiply each row's log-likelihood, so in a "
                        "Gaussian model they are not lme4's precision weights (residual "
                        "variance sigma^2 / w): the two fit different models"),)),
    # R's nlme::lme, opt-in: Gaussian models with one grouping factor or nested ones.
    EngineInfo("nlme", "parity.engines.nlme:NlmeEngine", "frequentist", process="r",
               stack=("rpy2",), settings=("reml", "interval"), families=("gaussian",),
               requires=("rpy2",), default=False, r_scripts=("parity.R", "nlme_fit.R"),
               r_packages=("nlme",),
               cannot=(("crossed", "nlme::lme nests its grouping factors (random = ~ x | "
                        "a/b); crossed factors would need a pdBlocked construction that "
                        "parity does not build"),
                       ("offset", "nlme::lme takes no offset"),
                       ("weights", "nlme expresses weights as a variance function "
                        "(varFixed), which parity does not build"))),
    # Bambi's model with lme4's covariance structure, opt-in: sampled like Bambi.
    EngineInfo("pymc", "parity.engines.pymc_model:PymcEngine", "bayesian", process="jax",
               stack=_BAYES_STACK, settings=_SAMPLER_SETTINGS,
               families=("gaussian",), requires=("pymc", "bambi", "numpyro", "jax"),
               slow=True, draws=True, default=False,
               compiled="parity.engines.compiled_fits:CompiledPymc",
               cannot=(("offset", "parity's PyMC model has no offset term"),
                       ("weights", "parity's PyMC model has no prior weights"))),
    # Stan through R's brms, opt-in: a second, independent Bayesian implementation of
    # the pymc engine's (`(x | g)`, LKJ) and Bambi's (`(x || g)`) models.
    EngineInfo("brms", "parity.engines.brms:BrmsEngine", "bayesian", process="r",
               stack=("rpy2",), settings=_SAMPLER_SETTINGS, families=("gaussian",),
               requires=("rpy2",), slow=True, default=False,
               r_scripts=("parity.R", "brms_fit.R"),
               r_packages=("brms", "rstan", "StanHeaders"),
               cannot=(("offset", "parity does not pass an offset to brms yet"),
                       ("weights", "brms's weights() multiply each row's log-likelihood, "
                        "which is not lme4's precision weights in a Gaussian model; parity "
                        "passes none"))),
)
_REGISTRY: dict[str, EngineInfo] = {row.name: row for row in _ROWS}

ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)
# What a run fits when no engines are named.
DEFAULT_ENGINES: tuple[str, ...] = tuple(row.name for row in _ROWS if row.default)


def engine_info(name: str) -> EngineInfo:
    """The registry row of engine `name` (UsageError for an unknown name)."""
    return _REGISTRY[check_engine(name)]


def rows() -> tuple[EngineInfo, ...]:
    """Every row, in the registry's order."""
    return _ROWS


def all_packages() -> tuple[str, ...]:
    """Every engine's stack, each package once."""
    return tuple(dict.fromkeys(p for row in _ROWS for p in row.stack))


def all_r_packages() -> tuple[str, ...]:
    """Every R engine's packages, each once (the fit cache's R fingerprint, `make r-deps`)."""
    return tuple(dict.fromkeys(p for row in _ROWS for p in row.r_packages))


def engine_kind(name: str) -> EngineKind:
    """Frequentist or Bayesian, without importing the engine's library."""
    return engine_info(name).kind


def engine_with_role(role: Role, among: Sequence[str] | None = None) -> str | None:
    """The engine that plays `role` (among `among`, when given), or None."""
    for row in _ROWS:
        if role in row.roles and (among is None or row.name in among):
            return row.name
    return None


def check_engine(name: str) -> str:
    if name not in _REGISTRY:
        raise UsageError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return name


def check_engines(names: Sequence[str]) -> tuple[str, ...]:
    """Every name known, none twice (`lme4,lme4` would compare lme4 with itself)."""
    for name in names:
        check_engine(name)
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise UsageError(f"engine(s) {', '.join(repeated)} named more than once")
    return tuple(names)


if __name__ == "__main__":  # `python -m parity.registry r-packages`: the Makefile's probe
    import sys

    if sys.argv[1:] == ["r-packages"]:
        print(" ".join(("jsonlite", *all_r_packages())))
