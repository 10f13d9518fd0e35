"""What glmer accepts that lmer does not (one level per row), and a binomial response
given as a two-level factor, coded once as R's binomial family reads it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from parity.errors import DataError
from parity.rows.prepare import prepare
from parity.spec.grammar import parse_formula


def rows(n: int = 24, groups: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({
        "y": rng.poisson(2.0, n).astype(float),
        "x": rng.normal(size=n),
        "obs": [f"o{k:02d}" for k in range(n)],
        "g": np.repeat([f"g{k}" for k in range(groups)], n // groups),
        "ok": rng.choice(["N", "Y"], n),
    })


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_glmm_may_have_one_level_per_row(family: str) -> None:
    df = rows().assign(y=lambda d: (d["y"] > 1).astype(float)) if family == "binomial" \
        else rows()
    data = prepare(df, parse_formula("y ~ x + (1 | obs) + (1 | g)"), family=family)
    assert data.n_obs == 24 and len(data.levels["obs"]) == 24


def test_gaussian_keeps_lmers_rule_and_names_it() -> None:
    with pytest.raises(DataError, match="'obs' has 24 levels for 24 complete rows; lmer needs "
                       "fewer levels than rows in a gaussian model.*check.nobs.vs.nlev"):
        prepare(rows(), parse_formula("y ~ x + (1 | obs)"))


def test_glmm_random_effects_may_equal_but_not_exceed_the_rows() -> None:
    df = rows()
    half = df.assign(h=[f"h{k // 2}" for k in range(24)])  # 12 levels x 2 columns = 24
    prepare(half, parse_formula("y ~ x + (x | h)"), family="poisson")
    with pytest.raises(DataError, match="48 random effects \\(24 levels x 2 columns\\) for 24 "
                       "complete rows; glmer needs at most as many random effects as rows "
                       "in a poisson model \\(lme4's check.nobs.vs.nRE\\)"):
        prepare(df, parse_formula("y ~ x + (x | obs)"), family="poisson")
    with pytest.raises(DataError, match="lmer needs more rows than random effects"):
        prepare(half, parse_formula("y ~ x + (x | h)"))


def test_glmm_grouping_factor_still_needs_two_levels() -> None:
    with pytest.raises(DataError, match="only one level"):
        prepare(rows().assign(g="g0"), parse_formula("y ~ x + (1 | g)"), family="poisson")


def test_two_level_factor_response_first_level_is_failure() -> None:
    df = rows()
    data = prepare(df, parse_formula("ok ~ x + (1 | g)"), family="binomial")
    assert data.response_levels == ("N", "Y")
    assert data.frame["ok"].tolist() == (df["ok"] == "Y").astype(float).tolist()


def test_a_factors_own_level_order_decides_success() -> None:
    """A factor loaded from R keeps R's levels: with levels (Y, N), Y is failure."""
    df = rows().assign(ok=lambda d: pd.Categorical(d["ok"], categories=["Y", "N", "unused"]))
    data = prepare(df, parse_formula("ok ~ x + (1 | g)"), family="binomial")
    assert data.response_levels == ("Y", "N")
    assert data.frame["ok"].tolist() == (df["ok"] == "N").astype(float).tolist()


def test_declared_categorical_and_logical_responses_are_factors() -> None:
    df = rows().assign(b=lambda d: d["ok"] == "Y", c=lambda d: np.where(d["ok"] == "Y", 2, 1))
    logical = prepare(df, parse_formula("b ~ x"), family="binomial")
    assert logical.response_levels == ("False", "True")
    assert logical.frame["b"].tolist() == df["b"].astype(float).tolist()
    declared = prepare(df, parse_formula("c ~ x"), categorical=["c"], family="binomial")
    assert declared.response_levels == ("1", "2")
    assert declared.frame["c"].tolist() == (df["c"] == 2).astype(float).tolist()


def test_numeric_response_digest_is_unchanged_by_the_coding() -> None:
    df = rows().assign(z=lambda d: (d["ok"] == "Y").astype(float))
    numeric = prepare(df, parse_formula("z ~ x"), family="binomial")
    coded = prepare(df, parse_formula("ok ~ x"), family="binomial")
    assert numeric.response_levels is None
    assert coded.frame["ok"].tolist() == numeric.frame["z"].tolist()
    assert coded.digest() != prepare(df.rename(columns={"z": "ok", "ok": "s"}),
                                     parse_formula("ok ~ x"), family="binomial").digest()


@pytest.mark.parametrize(
    ("values", "family", "trials", "message"),
    [
        (["a", "b", "c"], "binomial", None, "'ok' is a factor with 3 level\\(s\\) in the "
         "complete rows \\('a', 'b', 'c'\\); a factor response needs exactly 2"),
        (["Y"], "binomial", None, "with 1 level\\(s\\)"),
        (["N", "Y"], "binomial", "n", "'ok' is a factor.*with trials \\('n'\\)"),
        (["N", "Y"], "gaussian", None, "'ok' is not numeric \\(holds '.'\\); parity fits a "
         "numeric gaussian response \\(a two-level factor is a binomial response\\)"),
        (["N", "Y"], "poisson", None, "numeric poisson response"),
    ],
)
def test_factor_responses_binomial_cannot_read(values: list[str], family: str,
                                               trials: str | None, message: str) -> None:
    df = rows().assign(ok=np.resize(values, 24), n=3.0)
    with pytest.raises(DataError, match=message):
        prepare(df, parse_formula("ok ~ x"), family=family, trials=trials)


def test_report_and_fit_name_the_success_level() -> None:
    from parity.pipeline.workers import with_response_coding
    from parity.reports.content import model_blocks
    from parity.reports.markdown import render_markdown
    from parity.schema import Diagnostics, Fit
    from parity.spec.models import make_model

    model = make_model("m", "ok ~ x + (1 | g)", family="binomial")
    data = prepare(rows(), model.spec, family="binomial")
    bare = Fit("m", model.formula, "lme4", "failed", "no R", data.n_obs, 0,
               diagnostics=Diagnostics(converged=False, singular=False),
               family="binomial", link="logit")
    fit = with_response_coding(bare, model, data)
    assert fit.provenance.settings["response"] == {"column": "ok", "failure": "N",
                                                   "success": "Y"}
    text = render_markdown(model_blocks("m", [fit]))
    assert "'Y' is success (1), 'N' failure (0)" in text
