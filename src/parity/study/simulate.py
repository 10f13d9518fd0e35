"""Responses drawn from a Gaussian linear mixed model with known parameters.

y = X β + Σ_blocks Z_b u_b + ε, with each group's coefficients u ~ N(0, Σ_b) (Σ_b from the
block's SDs and, where the block is correlated, its correlations) and ε ~ N(0, σ²). The
design matrices are R's (:func:`parity.rows.design.build_design`), so the columns are
matched to lme4's names. `r_scripts/simulate.R` draws the same from lme4's `simulate()`,
and a test holds the two to the same moments.

A covariance on the boundary (a correlation of ±1, an SD of 0) is positive semidefinite,
not definite: the draws use its symmetric square root, not a Cholesky factor.
"""

from __future__ import annotations

import numpy as np

from parity.errors import UsageError
from parity.rows.design import build_design, group_codes
from parity.rows.prepare import PreparedData
from parity.spec.models import Model
from parity.study.truth import Truth


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


def mean_and_blocks(model: Model, data: PreparedData, truth: Truth
                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """X β, and per random block (Z, group codes, square root of its covariance)."""
    if not model.gaussian:
        raise UsageError(f"a study simulates Gaussian models; {model.name!r} is "
                         f"{model.family}")
    spec, frame, levels = model.spec, data.frame, data.levels
    design = build_design(frame, spec.fixed, spec.intercept, levels)
    missing = [n for n in design.names if n not in truth.fixed]
    if missing:
        raise UsageError(f"the truth has no fixed effect {', '.join(missing)}")
    mean = design.matrix @ np.array([truth.fixed[n] for n in design.names])
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


def simulate(model: Model, data: PreparedData, truth: Truth,
             rng: np.random.Generator) -> np.ndarray:
    """One response vector for the rows of `data`."""
    mean, blocks = mean_and_blocks(model, data, truth)
    y = mean.copy()
    for z, codes, root in blocks:
        u = rng.standard_normal((int(codes.max()) + 1, root.shape[0])) @ root
        y += np.einsum("ij,ij->i", z, u[codes])
    return y + residual_sd(truth) * rng.standard_normal(len(y))


def replicate_rng(seed: int, groups: int, replicate: int) -> np.random.Generator:
    """The random stream of one replicate: the same numbers whichever worker draws them,
    in whatever order, so a resumed study is the study it continues."""
    return np.random.default_rng([seed, groups, replicate])


def replicate_seed(seed: int, groups: int, replicate: int) -> int:
    """The sampler seed of one replicate's Bayesian fits."""
    return int(np.random.SeedSequence([seed, groups, replicate, 1]).generate_state(1)[0]
               % (2**31 - 1))
