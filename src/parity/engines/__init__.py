"""The engine registry: the one place that names every engine and what it depends on.

Each engine has one row (:class:`EngineInfo`): where its class lives, its kind, the
packages and settings its numbers depend on (the fit cache keys on them, the fit records
their versions), the worker group it runs in, and where its refusals are checked. The
cache, the workers, the version records and the up-front checks read these rows instead
of keeping tables of their own, so adding an engine means its module, its row here and
its tolerance rules. Engine modules import heavy libraries (rpy2, JAX, PyMC), so they are
loaded only when a run asks for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from parity.engines.base import Engine, EngineKind
from parity.errors import UsageError


@dataclass(frozen=True)
class EngineInfo:
    """One engine's row."""

    name: str
    target: str  # "module:Class"
    kind: EngineKind
    # Packages whose versions can change its numbers (cache key, recorded versions).
    stack: tuple[str, ...]
    # Settings fields its numbers depend on (cache key).
    settings: tuple[str, ...]
    # Engines of one worker group share a worker process; R and JAX never share one.
    worker: str
    # Slow engines start first, and may get several workers (`--jobs`).
    slow: bool = False
    # "module:function" taking a Model and returning why the engine cannot fit it, or None.
    refuses: str | None = None
    # It samples a posterior whose draws can be saved (`Settings.save_draws`).
    draws: bool = False
    # What the engine fits differently from lme4, declared once with the reason (the
    # contract suite holds the engine to it): `correlations` (it has no correlation
    # parameters), `crossed_correlations` (none across several grouping factors).
    cannot: tuple[tuple[str, str], ...] = ()
    # Part of a plain `parity run` (the others run when named in --engines).
    default: bool = True
    # R scripts its numbers depend on, in the order they are sourced (the shared
    # `parity.R` first): the fit cache keys on them and on R's versions.
    r_scripts: tuple[str, ...] = ()
    # R packages whose versions can change its numbers (the first is the engine's own):
    # the fit cache's R fingerprint, the versions a fit records, the presence probe.
    r_packages: tuple[str, ...] = ()
    # "module:Class" of its fit compiled once and refitted per response (`parity study`),
    # or None: the engine is fitted afresh for every replicate.
    compiled: str | None = None

    @property
    def embeds_r(self) -> bool:
        return bool(self.r_scripts)

    def cannot_do(self, capability: str) -> str | None:
        """The reason the engine cannot do `capability`, or None if it can."""
        return dict(self.cannot).get(capability)


_ROWS = (
    EngineInfo("lme4", "parity.engines.lme4:Lme4Engine", "frequentist",
               stack=("rpy2",), settings=("reml", "interval", "nagq"), worker="frequentist",
               r_scripts=("parity.R", "lme4_fit.R"), r_packages=("lme4", "Matrix")),
    EngineInfo("statsmodels", "parity.engines.statsmodels:StatsmodelsEngine", "frequentist",
               stack=("statsmodels", "numpy", "scipy", "pandas"),
               settings=("reml", "interval"), worker="frequentist",
               cannot=(("crossed_correlations",
                        "MixedLM fits a full covariance only for the random terms of one "
                        "grouping factor; crossed or `||` models are independent variance "
                        "components"),)),
    EngineInfo("bambi", "parity.engines.bambi:BambiEngine", "bayesian",
               stack=("bambi", "pymc", "pytensor", "numpyro", "jax", "jaxlib", "formulae",
                      "numpy", "pandas", "xarray", "arviz"),
               settings=("draws", "tune", "chains", "target_accept", "seed", "interval"),
               worker="bambi", slow=True, refuses="parity.engines.limits:bambi_problem",
               draws=True, compiled="parity.engines.compiled_fits:CompiledBambi",
               cannot=(("correlations", "Bambi has no correlation parameters: every "
                        "( … | g) block has independent coefficients (bambi#702)"),
                       ("crossed_correlations", "Bambi has no correlation parameters"))),
    # A second frequentist opinion, opt-in: it needs the R package glmmTMB.
    EngineInfo("glmmtmb", "parity.engines.glmmtmb:GlmmTMBEngine", "frequentist",
               stack=("rpy2",), settings=("reml", "interval"), worker="frequentist",
               default=False, r_scripts=("parity.R", "glmmtmb_fit.R"),
               r_packages=("glmmTMB", "TMB")),
    # Bambi's model with lme4's covariance structure, opt-in: sampled like Bambi.
    EngineInfo("pymc", "parity.engines.pymc_model:PymcEngine", "bayesian",
               stack=("bambi", "pymc", "pytensor", "numpyro", "jax", "jaxlib", "formulae",
                      "numpy", "pandas", "xarray", "arviz"),
               settings=("draws", "tune", "chains", "target_accept", "seed", "interval"),
               worker="bambi", slow=True, refuses="parity.engines.limits:bambi_problem",
               draws=True, default=False,
               compiled="parity.engines.compiled_fits:CompiledPymc"),
)
_REGISTRY: dict[str, EngineInfo] = {row.name: row for row in _ROWS}

ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)
# What a run fits when no engines are named.
DEFAULT_ENGINES: tuple[str, ...] = tuple(row.name for row in _ROWS if row.default)


def engine_info(name: str) -> EngineInfo:
    """The registry row of engine `name` (UsageError for an unknown name)."""
    return _REGISTRY[check_engine(name)]


def all_packages() -> tuple[str, ...]:
    """Every engine's stack, each package once."""
    return tuple(dict.fromkeys(p for row in _ROWS for p in row.stack))


def all_r_packages() -> tuple[str, ...]:
    """Every R engine's packages, each once (the fit cache's R fingerprint)."""
    return tuple(dict.fromkeys(p for row in _ROWS for p in row.r_packages))


def engine_kind(name: str) -> EngineKind:
    """Frequentist or Bayesian, without importing the engine's library."""
    return engine_info(name).kind


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


def load_engine(name: str) -> Engine:
    """Import and construct the engine called `name`."""
    module_name, _, cls_name = engine_info(name).target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    engine: Engine = cls()
    return engine


__all__ = ["DEFAULT_ENGINES", "ENGINE_NAMES", "Engine", "EngineInfo", "EngineKind",
           "all_packages", "all_r_packages", "check_engine", "check_engines", "engine_info",
           "engine_kind", "load_engine"]
