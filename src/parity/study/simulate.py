"""Responses drawn from a mixed model with known parameters, as lme4's `simulate()` draws
them from a fit.

The linear predictor is η = X β + offset + Σ_blocks Z_b u_b, with each group's
coefficients u ~ N(0, Σ_b) (Σ_b from the block's SDs and, where the block is correlated,
its correlations; for a GLMM these are on the link scale). The response given η is the
family's (lme4's `simulate.merMod`, `use.u = FALSE`):

- gaussian (identity link): y = η + ε, ε ~ N(0, σ²), σ the truth's residual SD;
- binomial: y ~ Binomial(n, μ), μ = linkinv(η), n the trials column (the model's
  `trials`), or 1 for a 0/1 response; y is the number of successes, the trials column
  stays as it is (lme4 returns cbind(y, n − y));
- poisson: y ~ Poisson(μ), μ = linkinv(η).

A family or link the study cannot draw, and prior weights (which change what a draw is:
a Gaussian variance σ²/w, a binomial's trials), are refused as one-line UsageErrors.
Offsets are added to η, as `simulate()` adds them to its fitted values.

The design matrices are R's (:func:`parity.rows.design.build_design`), so the columns are
matched to lme4's names. `r_scripts/simulate.R` draws the same from lme4's `simulate()`,
and tests hold the two to the same moments (`tests/engines/test_study_runs.py` for a
Gaussian model, `tests/engines/test_study_glmm.py` for binomial and Poisson ones).

A covariance on the boundary (a correlation of ±1, an SD of 0) is positive semidefinite,
not definite: the draws use its symmetric square root, not a Cholesky factor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit, ndtr

from parity.errors import UsageError
from parity.rows.design import build_design, group_codes
from parity.rows.prepare import PreparedData
from parity.spec.family import Family
from parity.spec.models import Model
from parity.study.truth import Truth

# link -> its inverse, μ from η (R's make.link(link)$linkinv)
LINK_INVERSES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda eta: eta,
    "logit": expit,
    "probit": ndtr,
    "cloglog": lambda eta: -np.expm1(-np.exp(eta)),
    "log": np.exp,
}
# The families a study draws (each one's draw is in `_respond`).
DRAWN_FAMILIES: tuple[str, ...] = ("gaussian", "binomial", "poisson")


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _block_cov(truth: Truth, group: str, names: tuple[str, ...], correlated: bool
               ) -> np.ndarray:
    sd = {v.term: v.estimate for v in truth.components if v.group == group and v.kind == "sd"}
    missing = [n for n in names if n not in sd]
    if missing:
        raise UsageError(f"the truth has no SD for {group}: {', '.join(missing)}")
    s = np.array([sd[n] for n in names])
    corr = np.eye(len(names))
    if correlated:
        for v in truth.components:
            if v.group == group and v.kind == "corr" and v.term in names and v.term2 in names:
                i, j = names.index(v.term), names.index(str(v.term2))
                corr[i, j] = corr[j, i] = v.estimate
    return np.outer(s, s) * corr


def check_drawable(model: Model) -> Family:
    """The model's family, or a one-line UsageError saying why a study cannot draw its
    responses (a family or link it has no draw for, prior weights)."""
    fam = model.fam
    if fam.name not in DRAWN_FAMILIES:
        raise UsageError(f"a study cannot draw {fam.name} responses ({model.name!r}); it "
                         f"draws {', '.join(DRAWN_FAMILIES)} ones")
    if fam.link not in LINK_INVERSES:
        raise UsageError(f"a study cannot draw {fam.name} responses on the {fam.link} link "
                         f"({model.name!r}); it knows {', '.join(LINK_INVERSES)}")
    if model.weights is not None:
        raise UsageError(f"a study draws unweighted responses; {model.name!r} has prior "
                         f"weights ({model.weights!r}), which would change each draw's "
                         "variance (or a binomial's trials)")
    return fam


def offset(model: Model, data: PreparedData) -> np.ndarray | None:
    """The sum of the model's offset columns (None without one): added to η."""
    if not model.spec.offset:
        return None
    return np.sum([data.frame[a].to_numpy(dtype=float) for a in model.spec.offset], axis=0)


def mean_and_blocks(model: Model, data: PreparedData, truth: Truth
                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """X β (plus any offset), and per random block (Z, group codes, square root of its
    covariance)."""
    check_drawable(model)
    spec, frame, levels = model.spec, data.frame, data.levels
    design = build_design(frame, spec.fixed, spec.intercept, levels)
    missing = [n for n in design.names if n not in truth.fixed]
    if missing:
        raise UsageError(f"the truth has no fixed effect {', '.join(missing)}")
    mean = design.matrix @ np.array([truth.fixed[n] for n in design.names])
    shift = offset(model, data)
    if shift is not None:
        mean = mean + shift
    blocks = []
    for block in spec.random:
        z = build_design(frame, block.terms, block.intercept, levels)
        codes, _ = group_codes(frame, block.group)
        cov = _block_cov(truth, block.group_label, z.names, block.correlated)
        blocks.append((z.matrix, codes, _sqrt_psd(cov)))
    return mean, blocks


def residual_sd(truth: Truth) -> float:
    for v in truth.components:
        if v.group == "Residual" and v.kind == "sd":
            return v.estimate
    raise UsageError("the truth has no residual SD")


def trials(model: Model, data: PreparedData) -> np.ndarray:
    """Each row's number of trials: the trials column, or 1 for a 0/1 response."""
    if model.trials is None:
        return np.ones(data.n_obs)
    return data.frame[model.trials].to_numpy(dtype=float)


def linear_predictor(model: Model, data: PreparedData, truth: Truth,
                     rng: np.random.Generator) -> np.ndarray:
    """η of one draw: X β + offset + each block's Z u, u drawn per group."""
    mean, blocks = mean_and_blocks(model, data, truth)
    eta = mean.copy()
    for z, codes, root in blocks:
        u = rng.standard_normal((int(codes.max()) + 1, root.shape[0])) @ root
        eta += np.einsum("ij,ij->i", z, u[codes])
    return eta


def _respond(model: Model, data: PreparedData, truth: Truth, eta: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    fam = model.fam
    if fam.name == "gaussian":  # identity link: η is the mean
        return eta + residual_sd(truth) * rng.standard_normal(len(eta))
    mu = LINK_INVERSES[fam.link](eta)
    if fam.name == "binomial":
        n = trials(model, data)
        return rng.binomial(n.astype(np.int64), np.clip(mu, 0.0, 1.0)).astype(float)
    return rng.poisson(mu).astype(float)


def simulate(model: Model, data: PreparedData, truth: Truth,
             rng: np.random.Generator) -> np.ndarray:
    """One response vector for the rows of `data`: the response column as the model's
    data holds it (a binomial's successes, its trials column unchanged)."""
    eta = linear_predictor(model, data, truth, rng)
    return _respond(model, data, truth, eta, rng)


def replicate_rng(seed: int, groups: int, replicate: int) -> np.random.Generator:
    """The random stream of one replicate: the same numbers whichever worker draws them,
    in whatever order, so a resumed study is the study it continues."""
    return np.random.default_rng([seed, groups, replicate])


def replicate_seed(seed: int, groups: int, replicate: int) -> int:
    """The sampler seed of one replicate's Bayesian fits."""
    return int(np.random.SeedSequence([seed, groups, replicate, 1]).generate_state(1)[0]
               % (2**31 - 1))
