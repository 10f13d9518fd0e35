"""A study's binomial and Poisson draws without R: their moments against the model's
closed forms, the response in the form the model's data holds it (successes beside an
unchanged trials column), offsets added to η, designs of a model with an offset, and the
one-line refusals of what a study cannot draw."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, ndtr

from parity.errors import UsageError
from parity.rows.prepare import PreparedData, prepare
from parity.schema import VarianceComponent
from parity.spec.family import FAMILIES, Family
from parity.spec.models import Model, make_model
from parity.study.design import make_design, with_response
from parity.study.simulate import simulate
from parity.study.truth import Truth

N = 2000


def _frame(seed: int = 1, groups: int = 12, per: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = groups * per
    return pd.DataFrame({
        "y": rng.integers(0, 4, n).astype(float),
        "ok": rng.integers(0, 2, n).astype(float),
        "size": rng.integers(5, 15, n).astype(float),
        "x": rng.normal(size=n),
        "t": rng.uniform(1.0, 4.0, n),
        "g": np.repeat([f"g{k:02d}" for k in range(groups)], per),
    })


def _truth(sd: float) -> Truth:
    return Truth(fixed={"(Intercept)": -0.4, "x": 0.6},
                 components=(VarianceComponent("g", "(Intercept)", None, "sd", sd),),
                 source="test")


def _draws(model: Model, data: PreparedData, truth: Truth) -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.array([simulate(model, data, truth, rng) for _ in range(N)])


def _prepared(model: Model, frame: pd.DataFrame | None = None) -> PreparedData:
    return prepare(_frame() if frame is None else frame, model.spec, model.categorical,
                   model.family, model.trials, model.weights)


def test_binomial_draws_are_successes_out_of_the_trials_column() -> None:
    """With no group variation, y ~ Binomial(size, expit(X β)) exactly: the means and
    variances of the draws are n p and n p (1 - p), and no draw exceeds its trials."""
    m = make_model("b", "y ~ x + (1 | g)", ["g"], family="binomial", trials="size")
    data = _prepared(m)
    ys = _draws(m, data, _truth(0.0))
    n = data.frame["size"].to_numpy()
    p = expit(-0.4 + 0.6 * data.frame["x"].to_numpy())
    assert np.all(ys == np.round(ys)) and np.all((ys >= 0) & (ys <= n))
    se = np.sqrt(n * p * (1 - p) / N)
    assert np.all(np.abs(ys.mean(0) - n * p) < 5 * se)
    assert np.allclose(ys.var(0), n * p * (1 - p), rtol=0.2)
    # The replicate's data: successes in the response, the trials column unchanged.
    rep = with_response(data, "y", ys[0])
    assert rep.frame["size"].equals(data.frame["size"])
    assert np.array_equal(rep.frame["y"].to_numpy(), ys[0])


def test_a_zero_one_binomial_response_is_bernoulli() -> None:
    m = make_model("b01", "ok ~ x + (1 | g)", ["g"], family="binomial")
    data = _prepared(m)
    ys = _draws(m, data, _truth(0.0))
    assert set(np.unique(ys)) == {0.0, 1.0}
    p = expit(-0.4 + 0.6 * data.frame["x"].to_numpy())
    assert np.all(np.abs(ys.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / N))


def test_binomial_group_effects_covary_within_groups_only() -> None:
    """On the logit scale u ~ N(0, 1.2²): rows of one group covary, rows of two groups do
    not, and the share of successes is E[expit(η + u)] (by quadrature)."""
    m = make_model("b", "y ~ x + (1 | g)", ["g"], family="binomial", trials="size")
    data = _prepared(m)
    ys = _draws(m, data, _truth(1.2))
    frame = data.frame
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    eta = -0.4 + 0.6 * frame["x"].to_numpy()
    p = (expit(eta[:, None] + 1.2 * nodes[None, :]) @ weights) / weights.sum()
    n = frame["size"].to_numpy()
    assert np.all(np.abs(ys.mean(0) - n * p) < 5 * ys.std(0) / np.sqrt(N))
    g = frame["g"].astype(str).to_numpy()
    share = ys / n
    same = np.corrcoef(share[:, 0], share[:, 1])[0, 1]
    other = np.corrcoef(share[:, 0], share[:, np.flatnonzero(g != g[0])[0]])[0, 1]
    assert g[0] == g[1] and same > 0.2 and abs(other) < 5 / np.sqrt(N)


def test_poisson_draws_with_an_offset_have_the_lognormal_moments() -> None:
    """log E[y | u] = X β + log(t) + u, u ~ N(0, σ²): E[y] = e^(X β + log t + σ²/2),
    Var[y] = μ + μ² (e^σ² - 1), and two rows of one group covary by μ_i μ_j (e^σ² - 1)."""
    m = make_model("p", "y ~ x + offset(log(t)) + (1 | g)", ["g"], family="poisson")
    data = _prepared(m)
    s = 0.5
    ys = _draws(m, data, _truth(s))
    frame = _frame()
    mu = np.exp(-0.4 + 0.6 * frame["x"].to_numpy() + np.log(frame["t"].to_numpy()) + s**2 / 2)
    var = mu + mu**2 * np.expm1(s**2)
    assert np.all(ys == np.round(ys)) and ys.min() >= 0
    assert np.all(np.abs(ys.mean(0) - mu) < 5 * np.sqrt(var / N))
    assert np.allclose(ys.var(0), var, rtol=0.2)
    cov = np.cov(ys[:, 0], ys[:, 1])[0, 1]
    assert cov == pytest.approx(mu[0] * mu[1] * np.expm1(s**2), rel=0.25)


def test_a_design_of_a_model_with_an_offset_keeps_the_offset_column() -> None:
    """The prepared rows hold the offset under its alias (not its input `t`); a design's
    copies keep it, and draws from the design use it."""
    m = make_model("p", "y ~ x + offset(log(t)) + (1 | g)", ["g"], family="poisson")
    data = _prepared(m)
    [alias] = m.spec.offset
    d = make_design(m, data, 30)
    assert d.data.frame["g"].nunique() == 30 and d.data.n_obs == 150
    assert np.array_equal(d.data.frame[alias].to_numpy()[:60], data.frame[alias].to_numpy())
    ys = np.array([simulate(m, d.data, _truth(0.0), np.random.default_rng(k))
                   for k in range(N)])
    mu = np.exp(-0.4 + 0.6 * d.data.frame["x"].to_numpy() + d.data.frame[alias].to_numpy())
    assert np.all(np.abs(ys.mean(0) - mu) < 5 * np.sqrt(mu / N))
    same = make_design(m, data, 12)
    assert same.data.frame.equals(data.frame)


def test_a_design_copies_a_binomial_trials_column() -> None:
    m = make_model("b", "y ~ x + (1 | g)", ["g"], family="binomial", trials="size")
    data = _prepared(m)
    d = make_design(m, data, 24)
    sizes = d.data.frame["size"].to_numpy()
    assert np.array_equal(sizes, np.tile(data.frame["size"].to_numpy(), 2))
    y = simulate(m, d.data, _truth(1.0), np.random.default_rng(0))
    assert np.all((y >= 0) & (y <= sizes))


def test_the_link_of_the_family_is_the_one_inverted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A binomial family on the probit link draws Φ(η), not expit(η)."""
    monkeypatch.setitem(FAMILIES, "binomial_probit",
                        replace(FAMILIES["binomial"], name="binomial", link="probit"))
    m = replace(make_model("b", "ok ~ x + (1 | g)", ["g"], family="binomial"),
                family="binomial_probit")
    data = _prepared(m)
    ys = _draws(m, data, _truth(0.0))
    p = ndtr(-0.4 + 0.6 * data.frame["x"].to_numpy())
    assert np.all(np.abs(ys.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / N))


def test_what_a_study_cannot_draw_is_one_line_naming_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data_model = make_model("p", "y ~ x + (1 | g)", ["g"], family="poisson")
    data = _prepared(data_model)
    monkeypatch.setitem(FAMILIES, "gamma", Family("gamma", "inverse", residual_sd=True))
    gamma = replace(data_model, family="gamma")
    with pytest.raises(UsageError, match="cannot draw gamma responses") as err:
        simulate(gamma, data, _truth(0.5), np.random.default_rng(0))
    assert "\n" not in str(err.value)
    monkeypatch.setitem(FAMILIES, "poisson_sqrt",
                        replace(FAMILIES["poisson"], link="sqrt"))
    with pytest.raises(UsageError, match="poisson responses on the sqrt link"):
        simulate(replace(data_model, family="poisson_sqrt"), data, _truth(0.5),
                 np.random.default_rng(0))
    weighted = make_model("w", "y ~ x + (1 | g)", ["g"], family="poisson", weights="t")
    with pytest.raises(UsageError, match="unweighted.*'t'"):
        simulate(weighted, _prepared(weighted), _truth(0.5), np.random.default_rng(0))


def test_a_glmm_truth_has_no_residual_sd_and_needs_none() -> None:
    """A binomial or Poisson truth has the group SDs only; a Gaussian one without a
    residual SD is refused."""
    m = make_model("p", "y ~ x + (1 | g)", ["g"], family="poisson")
    assert simulate(m, _prepared(m), _truth(0.5), np.random.default_rng(0)).shape == (60,)
    gauss = make_model("n", "x ~ t + (1 | g)", ["g"])
    truth = Truth(fixed={"(Intercept)": 0.0, "t": 1.0}, components=_truth(0.5).components,
                  source="test")
    with pytest.raises(UsageError, match="no residual SD"):
        simulate(gauss, _prepared(gauss), truth, np.random.default_rng(0))
