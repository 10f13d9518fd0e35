"""Offsets and weights in R: lme4 through parity (parity computes the offset and hands R
its column; the weights column by name) equals lme4 on the analyst's own text in plain
R, glmmTMB agrees with lme4, and the engines without them refuse before fitting."""

from __future__ import annotations

import json
import subprocess
from functools import cache

import pandas as pd
import pytest

from conftest import need
from parity.inputs.r_datasets import load_r_dataset
from parity.pipeline.workers import Outcome, run_models
from parity.schema import Fit
from parity.settings import Settings
from parity.spec.models import Model, make_model

pytestmark = pytest.mark.r

OFFSET = "incidence ~ period + offset(log(size)) + (1 | herd)"
WEIGHTED = "Reaction ~ Days + (1 | Subject)"

# lme4 in plain R, on the text as typed: R evaluates offset(log(size)) itself, and the
# weights are the column the Python side builds (`weighted_sleepstudy`).
DIRECT_R = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
m <- if (args[[1]] == "offset") {
  glmer(incidence ~ period + offset(log(size)) + (1 | herd), family = poisson,
        data = lme4::cbpp)
} else {
  d <- lme4::sleepstudy
  d$w <- 0.5 + ((seq_len(nrow(d)) - 1) %% 7) / 4
  lmer(Reaction ~ Days + (1 | Subject), data = d, weights = w)
}
vc <- as.data.frame(VarCorr(m))
cat(toJSON(list(terms = names(fixef(m)), est = unname(fixef(m)),
                se = unname(sqrt(diag(as.matrix(vcov(m))))),
                grp = vc$grp, sdcor = vc$sdcor), digits = NA))
"""


def weighted_sleepstudy() -> tuple[pd.DataFrame, tuple[str, ...]]:
    """sleepstudy with positive weights 0.5, 0.75, …, 2 in turn (row i: 0.5 + (i % 7) / 4)."""
    data = load_r_dataset("lme4::sleepstudy")
    frame = data.frame.copy()
    frame["w"] = 0.5 + (pd.RangeIndex(len(frame)) % 7) / 4
    return frame, tuple(data.factors)


@cache
def offset_outcome() -> Outcome:
    data = load_r_dataset("lme4::cbpp")
    model = make_model("offset", OFFSET, tuple(data.factors), "poisson")
    return run_models([model], data.frame, ["lme4", "glmmtmb"], Settings())


@cache
def weighted_outcome() -> tuple[Model, Outcome]:
    frame, factors = weighted_sleepstudy()
    model = make_model("weighted", WEIGHTED, factors, weights="w")
    return model, run_models([model], frame, ["lme4", "glmmtmb"], Settings())


@cache
def direct(which: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["Rscript", "-e", DIRECT_R, which], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def fit_of(outcome: Outcome, engine: str) -> Fit:
    fit = next(f for f in outcome.fits if f.engine == engine)
    assert fit.status == "ok", fit.reason
    return fit


def assert_equals_r(fit: Fit, ref: dict, rel: float) -> None:  # type: ignore[type-arg]
    assert [fe.term for fe in fit.fixed_effects] == ref["terms"]
    for fe, est, se in zip(fit.fixed_effects, ref["est"], ref["se"], strict=True):
        assert fe.estimate == pytest.approx(est, rel=rel), fe.term
        assert fe.std_error == pytest.approx(se, rel=rel), fe.term
    ours = {v.group: v.estimate for v in fit.variance_components if v.kind == "sd"}
    for grp, sdcor in zip(ref["grp"], ref["sdcor"], strict=True):
        assert ours[grp] == pytest.approx(sdcor, rel=rel), grp


def test_an_offset_through_parity_equals_glmer_on_the_written_text() -> None:
    need("R")
    fit = fit_of(offset_outcome(), "lme4")
    assert_equals_r(fit, direct("offset"), rel=1e-6)
    assert fit.engine_formula == "incidence ~ 1 + period + offset(log(size)) + (1 | herd)"


def test_glmmtmb_agrees_with_lme4_on_the_offset_model() -> None:
    need("R")
    pytest.importorskip("rpy2")
    lme4 = fit_of(offset_outcome(), "lme4")
    tmb = next(f for f in offset_outcome().fits if f.engine == "glmmtmb")
    if tmb.status == "skipped":
        pytest.skip(f"glmmTMB: {tmb.reason}")
    assert tmb.status == "ok", tmb.reason
    # Two optimisers of one Laplace likelihood: measured 3.4e-4 on the intercept, 3.5e-4
    # on the herd SD.
    for a, b in zip(lme4.fixed_effects, tmb.fixed_effects, strict=True):
        assert a.term == b.term
        assert b.estimate == pytest.approx(a.estimate, rel=1e-3), a.term
    (sd_lme4,) = [v.estimate for v in lme4.variance_components]
    (sd_tmb,) = [v.estimate for v in tmb.variance_components]
    assert sd_tmb == pytest.approx(sd_lme4, rel=1e-3)


def test_weights_through_parity_equal_lmer_with_weights() -> None:
    need("R")
    _, outcome = weighted_outcome()
    assert_equals_r(fit_of(outcome, "lme4"), direct("weighted"), rel=1e-6)


def test_glmmtmb_refuses_gaussian_weights_it_would_read_otherwise() -> None:
    _, outcome = weighted_outcome()
    tmb = next(f for f in outcome.fits if f.engine == "glmmtmb")
    assert tmb.status == "unsupported"
    assert (tmb.reason or "").startswith("glmmtmb does not fit a model with weights: ")
    assert "precision weights" in (tmb.reason or "")


def test_lme4s_criterion_judges_with_the_weights() -> None:
    """The judge's REML criterion at lme4's own optimum is the one lmer reports: the
    weights reach `parity_reml_at` too."""
    need("R")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from parity.pipeline.workers import evaluate_at, init_worker
    from parity.rows.prepare import prepare

    model, outcome = weighted_outcome()
    fit = fit_of(outcome, "lme4")
    frame, factors = weighted_sleepstudy()
    data = prepare(frame, model.spec, factors, model.family, None, model.weights)
    # In a spawned worker, as a run judges: embedded R would set LD_LIBRARY_PATH in this
    # process, and every process the suite starts after it would load R's libraries.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=init_worker, initargs=(None, 1)) as pool:
        at = pool.submit(evaluate_at, "lme4", model, data, fit).result()
    assert at["criterion"] == pytest.approx(fit.fit_statistics["reml_criterion"], rel=1e-9)


def test_statsmodels_and_bambi_refuse_weights_before_fitting() -> None:
    frame, factors = weighted_sleepstudy()
    model = make_model("weighted", WEIGHTED, factors, weights="w")
    outcome = run_models([model], frame, ["statsmodels", "bambi"], Settings(),
                         matched_references=False)
    reasons = {f.engine: f.reason or "" for f in outcome.fits}
    assert all(f.status == "unsupported" and f.provenance.seconds == 0.0
               for f in outcome.fits)
    assert reasons["statsmodels"].startswith("statsmodels does not fit a model with weights: "
                                             "statsmodels' MixedLM")
    assert reasons["bambi"].startswith("bambi does not fit a model with weights: Bambi has "
                                       "no prior weights")


TERMS_READER = r"""
tt <- stats::terms(stats::as.formula(commandArgs(trailingOnly = TRUE)[[1]]))
vars <- vapply(as.list(attr(tt, "variables"))[-1], function(v) paste(deparse(v), collapse = ""), "")
cat(jsonlite::toJSON(list(terms = attr(tt, "term.labels"),
                          offsets = vars[attr(tt, "offset")])), "\n")
"""


@pytest.mark.parametrize("text", [OFFSET, "y ~ x + offset(I(a*2)) + offset(log(b))"])
def test_r_reads_the_written_offsets_as_parity_does(text: str) -> None:
    """R's `terms()` on the formula parity writes back finds the same fixed terms and
    offsets, the latter named as the spec names them."""
    need("R")
    from parity.spec.grammar import parse_formula

    spec = parse_formula(text)
    out = subprocess.run(["Rscript", "-e", TERMS_READER, spec.written_formula()],
                         capture_output=True, text=True, check=True, timeout=60)
    row = json.loads(out.stdout)
    names = {d.alias: d.name for d in spec.derived}
    fixed = [t for t in row["terms"] if "|" not in t]
    assert fixed == [t.label for t in spec.fixed]
    assert row["offsets"] == [names[a] for a in spec.offset]
